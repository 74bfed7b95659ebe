//! The customer's side without curl: `ren3-client request`, `import`,
//! `status` and `deactivate` against the running service, and the issuer's
//! CLI on the files they write. No step sends HTTP from the test itself.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ren3_tests::{Client, Issuer, client_bin, free_port, qr, wrap_like_a_mail_client};
use serde_json::Value;

/// Runs `ren3-client ARGS` as the operator would where the service runs:
/// in its working directory, with its environment (what `Client::spawn`
/// sets, then `vars`), and `extra` on top, feeding `stdin` (never a
/// terminal).
fn run_in(
    dir: &Path,
    vars: &[(&str, &str)],
    extra: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut child = ren3_tests::client_in(client_bin(), dir)
        .args(args)
        .envs(vars.iter().copied())
        .envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    ren3_tests::feed(&mut child, stdin);
    child.wait_with_output().unwrap()
}

/// A running service and how to run the CLI beside it. The service listens
/// on port 0, which its configuration cannot tell the CLI, so the CLI gets
/// the printed address through `REN3_CLIENT_URL`, as a script would.
struct Site {
    client: Client,
    vars: Vec<(&'static str, String)>,
}

impl Site {
    fn start(device: &str) -> Self {
        Self::start_with(device, &[])
    }

    /// [`Site::start`] with `extra` variables, for the service and the CLI.
    fn start_with(device: &str, extra: &[(&'static str, &str)]) -> Self {
        let mut vars = vec![
            ("enable_offline_license", "true".to_owned()),
            ("client_device_id", device.to_owned()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let client = Client::start_with(&borrowed);
        Self { client, vars }
    }

    fn dir(&self) -> &Path {
        self.client.dir()
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(&[], args, stdin)
    }

    /// [`Site::run`] with `extra` variables for the CLI alone.
    fn run_with(&self, extra: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
        let vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut extra = extra.to_vec();
        extra.push(("REN3_CLIENT_URL", &self.client.base));
        run_in(self.dir(), &vars, &extra, args, stdin)
    }

    /// A command that must succeed: its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert!(
            out.status.success(),
            "ren3-client {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A command that must fail with `code`: its stderr, after checking
    /// that stdout is empty.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args, "");
        assert_eq!(
            out.status.code(),
            Some(code),
            "ren3-client {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "a failing command printed a result");
        String::from_utf8(out.stderr).unwrap()
    }

    /// `status --json`, checking that its exit code says the state.
    fn status(&self) -> Value {
        let out = self.run(&["status", "--json"], "");
        let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        });
        assert_eq!(
            out.status.code(),
            Some(status_code(&status)),
            "the exit code of {status}"
        );
        status
    }

    /// `status`'s exit code alone.
    fn status_code(&self) -> Option<i32> {
        self.run(&["status"], "").status.code()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(name)).unwrap()
    }
}

/// A license and a device from the issuer, and a service configured with
/// the device, its key saved in `license-key.txt` where the service runs.
fn site_with_key() -> (Issuer, Site, String) {
    let issuer = Issuer::init();
    let key = issuer.create_license("ACME Corp", &["--features", "ingest"]);
    let device = issuer.add_device(&key);
    let site = Site::start(&device);
    site.write("license-key.txt", &format!("{key}\n"));
    (issuer, site, key)
}

#[test]
fn the_whole_exchange_runs_with_the_two_command_lines() {
    let (issuer, site, key) = site_with_key();
    let at = |name: &str| site.dir().join(name).to_str().unwrap().to_owned();

    // Step 3: the request, written to a file for the ReN3 team.
    let out = site.run(
        &[
            "request",
            "--license-key-file",
            "license-key.txt",
            "--out",
            "req.txt",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the token went to the file");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("wrote the license request to req.txt"),
        "{stderr}"
    );
    let request = site.read("req.txt");
    assert!(request.starts_with("ren3-request-v2."), "{request}");
    assert!(!request.contains(&key) && !stderr.contains(&key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(at("req.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777 & !0o644,
            0,
            "{mode:o}: readable, writable by its owner only"
        );
    }
    assert_eq!(site.status()["state"], "pending");

    // Step 4: the ReN3 team answers; the payload comes back by mail,
    // wrapped, and goes to the service as it arrived.
    issuer.ok(
        &[
            "issue",
            "--request",
            &at("req.txt"),
            "--out",
            &at("issued.txt"),
        ],
        None,
    );
    let payload = site.read("issued.txt");
    site.write("payload.txt", &wrap_like_a_mail_client(payload.trim(), 72));

    // Step 5: the import prints the explained status.
    let shown = site.ok(&[
        "import",
        "payload.txt",
        "--license-key-file",
        "license-key.txt",
    ]);
    assert!(shown.starts_with("state:"), "{shown}");
    assert!(shown.lines().next().unwrap().contains("active"), "{shown}");
    assert!(
        shown.contains("customer:") && shown.contains("ACME Corp"),
        "{shown}"
    );
    assert!(!shown.contains(&key));

    let shown = site.ok(&["status"]);
    let first: Vec<&str> = shown.lines().take(3).collect();
    assert!(
        first[0].starts_with("state:") && first[0].contains("active"),
        "{shown}"
    );
    assert!(first[1].starts_with("why:"), "{shown}");
    assert!(first[2].starts_with("what to do:"), "{shown}");
    let status = site.status();
    assert_eq!(status["state"], "active");
    assert_eq!(status["licensed"], true);

    // Deactivation: the receipt to a file, and the ReN3 team frees the seat.
    let out = site.run(
        &[
            "deactivate",
            "--license-key-file",
            "license-key.txt",
            "--out",
            "receipt.txt",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let receipt = site.read("receipt.txt");
    assert!(receipt.starts_with("ren3-receipt-"), "{receipt}");
    assert_eq!(site.status()["state"], "unlicensed");
    issuer.ok(&["release", "--receipt", &at("receipt.txt")], None);
}

#[test]
fn tokens_go_to_stdout_alone_and_the_key_can_come_from_stdin() {
    let (issuer, site, key) = site_with_key();
    let out = site.run(&["request", "--license-key-file", "-"], &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let request = String::from_utf8(out.stdout).unwrap();
    assert_eq!(request.lines().count(), 1, "{request}");
    assert!(request.starts_with("ren3-request-v2."));

    // The payload from stdin, the key from its file.
    let payload = issuer.issue(request.trim());
    let out = site.run(
        &[
            "import",
            "-",
            "--license-key-file",
            "license-key.txt",
            "--json",
        ],
        &payload,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "active");

    // Both from stdin cannot be: a usage error.
    let out = site.run(&["import", "-", "--license-key-file", "-"], &payload);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--license-key-file FILE"));

    let out = site.run(&["deactivate", "--license-key-file", "license-key.txt"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receipt = String::from_utf8(out.stdout).unwrap();
    assert!(receipt.starts_with("ren3-receipt-") && receipt.lines().count() == 1);
    issuer.ok(&["release", "--receipt", "-"], Some(&receipt));
}

#[test]
fn the_default_address_is_listen_addr_through_loopback_from_dot_env() {
    let issuer = Issuer::init();
    let key = issuer.create_license("ACME Corp", &[]);
    let device = issuer.add_device(&key);
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let site = Client::start_with(&[
        ("enable_offline_license", "true"),
        ("client_device_id", &device),
        ("listen_addr", &listen),
    ]);
    // Another directory whose .env says where the service listens: the
    // wildcard is reached through loopback, with a Host the service takes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("enable_offline_license=true\nclient_device_id={device}\nlisten_addr={listen}\n"),
    )
    .unwrap();
    let out = Command::new(client_bin())
        .args(["status", "--json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "not licensed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "unlicensed");
    drop(site);

    // Port 0 cannot be found from the configuration: say to give --url.
    let out = run_in(dir.path(), &[], &[], &["status"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--url"), "{stderr}");
}

#[test]
fn the_key_is_never_an_argument_and_must_come_from_somewhere() {
    let (_issuer, site, _key) = site_with_key();

    // A key file that is not there: nothing is asked of the service.
    let stderr = site.fails(&["request", "--license-key-file", "nope.txt"], 1);
    assert!(
        stderr.starts_with("error: cannot read the license key from nope.txt"),
        "{stderr}"
    );
    site.write("empty.txt", "\n");
    let stderr = site.fails(&["request", "--license-key-file", "empty.txt"], 1);
    assert!(
        stderr.contains("empty.txt holds no license key"),
        "{stderr}"
    );

    // No file and no terminal: say which option to use.
    for command in ["request", "deactivate"] {
        let stderr = site.fails(&[command], 1);
        assert!(stderr.contains("--license-key-file FILE"), "{stderr}");
        assert!(stderr.contains("no terminal"), "{stderr}");
    }
    site.write("payload.txt", "ren3-payload-v3.x");
    let stderr = site.fails(&["import", "payload.txt"], 1);
    assert!(stderr.contains("--license-key-file FILE"), "{stderr}");

    // There is no option that takes the key itself.
    let stderr = site.fails(&["request", "--license-key", "REN3K1-X"], 2);
    assert!(stderr.contains("--license-key"), "{stderr}");

    let status = site.status();
    assert_eq!(status["state"], "unlicensed");
    assert_eq!(status["pendingRequests"], 0);
}

#[test]
fn refusals_by_the_service_show_its_detail_and_code() {
    let (issuer, site, _key) = site_with_key();
    let request = site.ok(&["request", "--license-key-file", "license-key.txt"]);
    let payload = issuer.issue(request.trim());

    // Damaged in transit: exit 1 with the service's code.
    let mut damaged = payload.into_bytes();
    let at = "ren3-payload-v3.".len() + 40;
    damaged[at] = if damaged[at] == b'A' { b'B' } else { b'A' };
    site.write("damaged.txt", std::str::from_utf8(&damaged).unwrap());
    let stderr = site.fails(
        &[
            "import",
            "damaged.txt",
            "--license-key-file",
            "license-key.txt",
        ],
        1,
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.trim_end().ends_with("[token_damaged]"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // A key with a typo, refused by the service.
    site.write("typo.txt", "REN3K1-00000-00000-00000-0000X");
    let stderr = site.fails(&["deactivate", "--license-key-file", "typo.txt"], 1);
    assert!(
        stderr.trim_end().ends_with("[invalid_license_key]"),
        "{stderr}"
    );

    // An empty payload file never reaches the service.
    site.write("blank.txt", " \n\n");
    let stderr = site.fails(
        &[
            "import",
            "blank.txt",
            "--license-key-file",
            "license-key.txt",
        ],
        1,
    );
    assert!(stderr.contains("blank.txt is empty"), "{stderr}");
    assert_eq!(site.status()["state"], "pending");
}

#[test]
fn out_refuses_to_overwrite_a_file_unless_forced() {
    let (_issuer, site, _key) = site_with_key();
    site.write("req.txt", "keep me\n");
    let args = [
        "request",
        "--license-key-file",
        "license-key.txt",
        "--out",
        "req.txt",
    ];
    let stderr = site.fails(&args, 1);
    assert!(stderr.contains("req.txt already exists"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(site.read("req.txt"), "keep me\n");
    // Refused before the service was asked: no request was recorded.
    assert_eq!(site.status()["pendingRequests"], 0);

    let mut forced = args.to_vec();
    forced.push("--force");
    site.ok(&forced);
    assert!(site.read("req.txt").starts_with("ren3-request-v2."));
    assert_eq!(site.status()["pendingRequests"], 1);

    // A refused deactivation (nothing is active) leaves no file behind.
    let stderr = site.fails(
        &[
            "deactivate",
            "--license-key-file",
            "license-key.txt",
            "--out",
            "receipt.txt",
        ],
        1,
    );
    assert!(stderr.trim_end().ends_with(']'), "{stderr}");
    assert!(!site.dir().join("receipt.txt").exists());
}

#[test]
fn version_help_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &[], &[], &["--version"], "");
    assert!(out.status.success());
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(
        version.starts_with(&format!(
            "ren3-client {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
    let commit = version.split("(commit ").nth(1).unwrap();
    let commit = commit.split(';').next().unwrap();
    ren3_tests::assert_is_this_checkouts_commit(commit);
    assert!(version.contains("; trust root "), "{version}");
    assert!(version.trim_end().ends_with(", pinned)"), "{version}");

    // The fingerprint is the one the running service reports.
    let (_issuer, site, _key) = site_with_key();
    let root = site.status()["trust"]["root"].as_str().unwrap().to_owned();
    assert!(version.contains(&root), "{version} vs {root}");

    let out = run_in(dir.path(), &[], &[], &["--help"], "");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in ["serve", "request", "import", "status", "deactivate"] {
        assert!(help.contains(command), "{help}");
    }
    let out = run_in(dir.path(), &[], &[], &["request", "--help"], "");
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("--license-key-file") && help.contains("--out"),
        "{help}"
    );

    for args in [
        vec!["launch"],
        vec!["status", "--bogus"],
        vec!["import"],
        vec!["request", "--force"],
    ] {
        let out = run_in(dir.path(), &[], &[], &args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
    let out = run_in(
        dir.path(),
        &[],
        &[("REN3_CLIENT_URL", "ftp://example")],
        &["status"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));

    for command in ["request", "deactivate"] {
        let out = run_in(dir.path(), &[], &[], &[command, "--help"], "");
        let help = String::from_utf8(out.stdout).unwrap();
        for said in ["--qr ", "--qr-svg <FILE>", "stderr", "COLUMNS", "exits 0"] {
            assert!(help.contains(said), "{command}: {said} in {help}");
        }
    }
    let out = run_in(dir.path(), &[], &[], &["status", "--help"], "");
    let help = String::from_utf8(out.stdout).unwrap();
    for said in ["0 licensed", "3 licensed but act soon", "4 not licensed"] {
        assert!(help.contains(said), "{said} in {help}");
    }
}

#[test]
fn serve_is_the_default_and_can_be_named() {
    // `Client::start_with` runs the binary with no arguments: it serves.
    let site = Client::start_with(&[]);
    assert!(site.base.starts_with("http://127.0.0.1:"), "{}", site.base);

    let dir = tempfile::tempdir().unwrap();
    let mut child = ren3_tests::client_in(client_bin(), dir.path())
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );

    // A configuration error still stops it with exit 2.
    let out = run_in(dir.path(), &[("listen_addr", "nowhere")], &[], &[], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("listen_addr"), "{stderr}");
}

/// The exit code `status` gives for a status answer: 0 licensed, 3
/// licensed but act soon, 4 not licensed.
fn status_code(status: &Value) -> i32 {
    match (status["licensed"].as_bool(), status["reasonCode"].as_str()) {
        (Some(true), Some("valid")) => 0,
        (Some(true), _) => 3,
        _ => 4,
    }
}

/// Wide enough for any request's code.
const WIDE: (&str, &str) = ("COLUMNS", "200");

/// The text of the QR code drawn in `stderr` (the lines with its colours).
fn terminal_qr(stderr: &str) -> String {
    qr::read_modules(&qr::terminal_modules(stderr))
}

/// The text of the QR code in an SVG file.
fn svg_qr(svg: &str) -> String {
    qr::read_modules(&qr::svg_modules(svg))
}

#[test]
fn qr_draws_the_printed_token_on_stderr_and_stdout_keeps_it_alone() {
    let (issuer, site, _key) = site_with_key();
    let out = site.run_with(
        &[WIDE],
        &["request", "--license-key-file", "license-key.txt", "--qr"],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let request = String::from_utf8(out.stdout).unwrap();
    assert_eq!(request.lines().count(), 1, "the token alone: {request}");
    assert!(request.starts_with("ren3-request-v2."), "{request}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        terminal_qr(&stderr),
        request.trim(),
        "1: the request's code"
    );
    assert!(stderr.contains("scan the code above"), "{stderr}");

    // The release receipt's code, after the exchange.
    let payload = issuer.issue(request.trim());
    site.write("payload.txt", &payload);
    site.ok(&[
        "import",
        "payload.txt",
        "--license-key-file",
        "license-key.txt",
    ]);
    let out = site.run_with(
        &[WIDE],
        &[
            "deactivate",
            "--license-key-file",
            "license-key.txt",
            "--qr",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receipt = String::from_utf8(out.stdout).unwrap();
    assert!(receipt.starts_with("ren3-receipt-") && receipt.lines().count() == 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        terminal_qr(&stderr),
        receipt.trim(),
        "2: the receipt's code"
    );
    issuer.ok(&["release", "--receipt", "-"], Some(&receipt));
}

#[test]
fn qr_svg_writes_the_code_and_refuses_to_overwrite_without_force() {
    let (_issuer, site, _key) = site_with_key();
    let args = [
        "request",
        "--license-key-file",
        "license-key.txt",
        "--qr-svg",
        "request.svg",
    ];
    let request = site.ok(&args);
    let svg = site.read("request.svg");
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert!(svg.contains("<title>ReN3 license request</title>"), "{svg}");
    assert_eq!(svg_qr(&svg), request.trim());
    assert_eq!(site.status()["pendingRequests"], 1);

    // An existing image is refused before the service is asked.
    let stderr = site.fails(&args, 1);
    assert!(stderr.contains("request.svg already exists"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(site.read("request.svg"), svg);
    assert_eq!(site.status()["pendingRequests"], 1);

    let mut forced = args.to_vec();
    forced.push("--force");
    let newer = site.ok(&forced);
    assert_ne!(newer, request);
    assert_eq!(svg_qr(&site.read("request.svg")), newer.trim());
    assert_eq!(site.status()["pendingRequests"], 2);

    // One file cannot be both the token and its image.
    let stderr = site.fails(
        &[
            "request",
            "--license-key-file",
            "license-key.txt",
            "--out",
            "same",
            "--qr-svg",
            "same",
        ],
        2,
    );
    assert!(stderr.contains("--out and --qr-svg"), "{stderr}");
    assert!(!site.dir().join("same").exists());
    assert_eq!(site.status()["pendingRequests"], 2);
}

#[test]
fn with_a_portal_configured_the_code_carries_its_url_with_the_request() {
    let issuer = Issuer::init();
    let key = issuer.create_license("ACME Corp", &[]);
    let device = issuer.add_device(&key);
    let portal = "https://licensing.example/ren3/register";
    let site = Site::start_with(&device, &[("license_portal_url", portal)]);
    site.write("license-key.txt", &key);
    let out = site.run_with(
        &[WIDE],
        &[
            "request",
            "--license-key-file",
            "license-key.txt",
            "--qr",
            "--qr-svg",
            "request.svg",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let request = String::from_utf8(out.stdout).unwrap();
    assert!(
        request.starts_with("ren3-request-v2."),
        "the token alone: {request}"
    );
    let carried = format!("{portal}?request={}", request.trim());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(terminal_qr(&stderr), carried, "1: terminal");
    assert_eq!(svg_qr(&site.read("request.svg")), carried, "2: SVG");
}

#[test]
fn a_terminal_too_narrow_for_the_code_says_so_and_the_request_is_still_made() {
    let (_issuer, site, _key) = site_with_key();
    let narrow = ("COLUMNS", "40");
    let out = site.run_with(
        &[narrow],
        &["request", "--license-key-file", "license-key.txt", "--qr"],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let request = String::from_utf8(out.stdout).unwrap();
    assert!(request.starts_with("ren3-request-v2.") && request.lines().count() == 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains('\x1b'), "no code drawn: {stderr}");
    let warning = stderr.lines().find(|l| l.starts_with("warning:")).unwrap();
    assert!(warning.contains("and this one has 40"), "{warning}");
    let needed: usize = warning
        .split("needs a terminal ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((90..=110).contains(&needed), "{warning}");
    assert!(warning.contains("--qr-svg FILE"), "{warning}");
    let page = format!("{}/license/page", site.client.base);
    assert!(warning.contains(&page), "{warning}");
    assert_eq!(site.status()["pendingRequests"], 1);

    // Exactly wide enough draws it.
    let columns = needed.to_string();
    let out = site.run_with(
        &[("COLUMNS", &columns)],
        &["request", "--license-key-file", "license-key.txt", "--qr"],
        "",
    );
    let request = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(terminal_qr(&stderr), request.trim(), "{stderr}");

    // With the image written, the warning points to it.
    let out = site.run_with(
        &[narrow],
        &[
            "request",
            "--license-key-file",
            "license-key.txt",
            "--qr",
            "--qr-svg",
            "request.svg",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("open the image in request.svg"), "{stderr}");
}

#[test]
fn status_exit_code_says_licensed_act_soon_or_not_licensed() {
    let (issuer, site, _key) = site_with_key();
    assert_eq!(site.status_code(), Some(4), "1: no license");
    let request = site.ok(&["request", "--license-key-file", "license-key.txt"]);
    assert_eq!(site.status()["state"], "pending");
    assert_eq!(site.status_code(), Some(4), "2: pending");
    site.write("payload.txt", &issuer.issue(request.trim()));
    site.ok(&[
        "import",
        "payload.txt",
        "--license-key-file",
        "license-key.txt",
    ]);
    assert_eq!(site.status()["reasonCode"], "valid");
    assert_eq!(site.status_code(), Some(0), "3: active");

    // A license inside its expiry warning window: licensed, act soon.
    let year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952;
    let expires = format!("{}-06-30", year + 2);
    let key = issuer.create_license("ACME Corp", &["--expires", &expires]);
    let device = issuer.add_device(&key);
    let site = Site::start_with(&device, &[("license_warning_days", "3650")]);
    site.write("license-key.txt", &key);
    let request = site.ok(&["request", "--license-key-file", "license-key.txt"]);
    site.write("payload.txt", &issuer.issue(request.trim()));
    site.ok(&[
        "import",
        "payload.txt",
        "--license-key-file",
        "license-key.txt",
    ]);
    let status = site.status();
    assert_eq!(
        (&status["state"], &status["reasonCode"]),
        (&Value::from("active"), &Value::from("expiry_warning"))
    );
    assert_eq!(site.status_code(), Some(3), "4: expiry warning");

    // Deactivated: not licensed again.
    site.ok(&["deactivate", "--license-key-file", "license-key.txt"]);
    assert_eq!(site.status_code(), Some(4), "5: deactivated");
}
