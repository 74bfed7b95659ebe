//! Helpers for the end-to-end tests: the real `ren3-issuer` and
//! `ren3-client` binaries, each with its own temporary store, on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use ren3_testkit::{
    assert_is_this_checkouts_commit, chain, client_in, dump_sqlite, dump_sqlite_except, fixture,
    free_port, hostile, qr, test_only_issuer_key, test_only_root_key, test_only_signer,
};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

/// Where this test executable's build lives: the target directory and the
/// profile's directory in it, read from the executable's own path
/// (`<target>/<profile>/deps/<test>`), so that `CARGO_TARGET_DIR`, a
/// `build.target-dir` setting and `--release` are all honoured.
struct BuildDirs {
    target: PathBuf,
    profile: PathBuf,
}

fn build_dirs() -> BuildDirs {
    let exe = std::env::current_exe().unwrap();
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps")
        .to_path_buf();
    let target = profile.parent().unwrap().to_path_buf();
    BuildDirs { target, profile }
}

/// `cargo SUBCOMMAND --locked` in the workspace, into `target`, with the
/// profile this test executable was built with.
fn cargo_in(subcommand: &str, target: &Path, profile: &Path, args: &[&str]) -> Command {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([subcommand, "--locked", "--quiet", "--target-dir"])
        .arg(target);
    match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
        None => panic!("no profile directory in {}", profile.display()),
    }
    command.args(args);
    command
}

/// Builds the binaries once per test run, into the target directory and
/// profile of this test run, and returns the directory they are in. Cargo
/// only builds a package's binaries for that package's own tests
/// (`CARGO_BIN_EXE_*`), so this crate builds those tests: the `cli` tests
/// of `ren3-issuer` and `ren3-client-cli`, which need their binaries.
///
/// They are built as `cargo test --workspace` builds them, so that after
/// that command this is a no-op. A plain `cargo build -p ...` would choose
/// the dependencies' features from those two packages alone, where `cargo
/// test --workspace` unifies them across the workspace and its
/// dev-dependencies: a different build of about 70 crates, which cost a
/// cold CI run two minutes.
///
/// The development build of `ren3-client` ([`dev_client_bin`]) comes first,
/// the same way with the `dev-root` feature added: only `ren3-client` and
/// its binary are compiled again. Cargo puts that binary where the pinned
/// one goes, so it is copied aside, and the pinned build that follows puts
/// the pinned binary back before any test runs one.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dirs = build_dirs();
        let build = |features: &[&str]| {
            let status = cargo_in(
                "test",
                &dirs.target,
                &dirs.profile,
                &[&["--workspace", "--no-run", "--test", "cli"], features].concat(),
            )
            .status()
            .expect("cargo runs");
            assert!(
                status.success(),
                "building ren3-client and ren3-issuer {features:?} failed"
            );
        };
        // The development root needs debug assertions: a `--release` run
        // has no development build (see `dev_client_bin`).
        if cfg!(debug_assertions) {
            build(&["--features", "ren3-client-cli/dev-root"]);
            let dev = dev_dir(&dirs.profile);
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::copy(dirs.profile.join("ren3-client"), dev.join("ren3-client"))
                .expect("the development build of ren3-client is there");
        }
        build(&[]);
        dirs.profile
    })
}

/// Where [`bin_dir`] keeps the development build of `ren3-client`.
fn dev_dir(profile: &Path) -> PathBuf {
    profile.join("ren3-client-dev-root")
}

/// Writes `input` to a spawned command's stdin and closes it. A command
/// refused before it reads its input (a usage error, say) closes the pipe
/// first; what it printed, which the caller asserts on, says why.
pub fn feed(child: &mut Child, input: &str) {
    let mut stdin = child.stdin.take().unwrap();
    if let Err(e) = stdin.write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
}

pub fn issuer_bin() -> PathBuf {
    bin_dir().join("ren3-issuer")
}

/// `ren3-issuer`, isolated from the machine: none of the runner's `REN3_*`
/// variables and no configuration file ([`ren3_testkit::issuer_isolated`]).
pub fn issuer_command() -> Command {
    ren3_testkit::issuer_isolated(issuer_bin())
}

pub fn client_bin() -> PathBuf {
    bin_dir().join("ren3-client")
}

/// The base URL a just-started server prints as its first stdout line,
/// `listening on http://ADDR`.
fn listening_address(child: &mut Child, what: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{what} did not start: {line:?}"))
        .to_owned()
}

/// The vendor's side: an initialised issuer store in a temporary directory.
pub struct Issuer {
    dir: TempDir,
}

impl Issuer {
    /// A store initialised under the TEST-ONLY root, the root every test
    /// build of the client is pinned to, so its payloads are accepted.
    pub fn init() -> Self {
        Self::init_with(&[], &[])
    }

    /// The root directory of this issuer: the TEST-ONLY root key, plain,
    /// as `init --root-dir` adopts it.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A store initialised under a root of its own, made by `init`: a
    /// vendor no test build of the client trusts, or a customer playing one.
    pub fn init_with_own_root() -> Self {
        let issuer = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let root_dir = issuer.root_dir();
        issuer.ok(
            &[
                "init",
                "--root-dir",
                root_dir.to_str().unwrap(),
                "--plain-root",
            ],
            None,
        );
        issuer
    }

    /// Places the TEST-ONLY root key in [`Issuer::root_dir`] (0700, its key
    /// file 0600), as a vendor brings an existing offline root.
    fn place_test_only_root(&self) {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let dir = self.root_dir();
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let seed = ren3_shared::binary::encode(test_only_root_key().seed());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("root.key"))
            .unwrap();
        writeln!(
            file,
            "# TEST ONLY: the root of fixtures/, whose seed is public\nren3-root-key-seed-v1: {seed}"
        )
        .unwrap();
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("issuer.db")
    }

    /// Runs `ren3-issuer --db <store> ARGS`, feeding `stdin` if given.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = issuer_command()
            .arg("--db")
            .arg(self.db())
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        feed(&mut child, stdin.unwrap_or_default());
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout, trimmed.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "ren3-issuer {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "ren3-issuer {args:?} unexpectedly succeeded"
        );
        assert!(out.stdout.is_empty(), "a failing command printed a result");
        String::from_utf8(out.stderr).unwrap()
    }

    /// `license create`; returns the license key.
    pub fn create_license(&self, customer: &str, extra: &[&str]) -> String {
        let mut args = vec!["license", "create", "--customer", customer];
        args.extend_from_slice(extra);
        self.ok(&args, None)
    }

    /// `device add`; returns the client device id.
    pub fn add_device(&self, license_key: &str) -> String {
        self.ok(&["device", "add", "--license", license_key], None)
    }

    /// Writes the root public file clients are built with (`trust
    /// export-root`) and returns its path.
    pub fn export_root(&self) -> PathBuf {
        let path = self.dir.path().join("root.pub");
        self.ok(
            &["trust", "export-root", "--out", path.to_str().unwrap()],
            None,
        );
        path
    }

    /// `issue --request -`; returns the payload token.
    pub fn issue(&self, request: &str) -> String {
        self.ok(&["issue", "--request", "-"], Some(request))
    }
}

/// An HTTP answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// The `code` of a problem+json answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// The customer's side: a running `ren3-client` with its own store.
pub struct Client {
    child: Child,
    pub base: String,
    dir: TempDir,
    env: Vec<(String, String)>,
    bin: PathBuf,
    agent: ureq::Agent,
    /// Where the process's stderr goes, when it is captured to a file.
    log: Option<PathBuf>,
}

impl Client {
    /// Starts a client with offline licensing on, as the document says:
    /// its two variables are all it needs.
    pub fn start(device_id: &str) -> Self {
        Self::start_with(&[
            ("enable_offline_license", "true"),
            ("client_device_id", device_id),
        ])
    }

    /// Starts a client with exactly these variables (plus its store path and
    /// port 0).
    pub fn start_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(client_bin(), dir, env, None)
    }

    /// [`Client::start_with`], with the process's stderr written to a file
    /// of its own instead of the test's, for [`Client::stderr_log`].
    pub fn start_logging_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = dir.path().join("stderr.log");
        Self::spawn(client_bin(), dir, env, Some(log))
    }

    /// Starts the client binary `bin` with exactly these variables, and
    /// `files` (name, text) written to its working directory first, such
    /// as a `.env`; its stderr goes to a file of its own
    /// ([`Client::stderr_log`]).
    pub fn start_with_files(bin: PathBuf, vars: &[(&str, &str)], files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = dir.path().join("stderr.log");
        Self::spawn(bin, dir, env, Some(log))
    }

    /// The working directory the client runs in (its `.env` is read there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the client binary `bin` (another build of it) with exactly
    /// these variables, plus its store path and port 0.
    pub fn start_bin_with(bin: PathBuf, vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(bin, dir, env, None)
    }

    fn spawn(bin: PathBuf, dir: TempDir, env: Vec<(String, String)>, log: Option<PathBuf>) -> Self {
        let stderr = match &log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(&bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("license_db_path", dir.path().join("license.db"))
            .env("listen_addr", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let base = listening_address(&mut child, "ren3-client");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            child,
            base,
            dir,
            env,
            bin,
            agent,
            log,
        }
    }

    /// Stops the process, runs `edit` (on the store, say), and starts it
    /// again on the same store.
    pub fn stopped(mut self, edit: impl FnOnce()) -> Self {
        self.stop();
        edit();
        self.restart()
    }

    /// Stops the process and starts it again on the same store.
    pub fn restart(mut self) -> Self {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut self.env);
        let bin = std::mem::take(&mut self.bin);
        let log = self.log.take();
        Self::spawn(bin, dir, env, log)
    }

    /// Whether the process is still running (it has not exited or died).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What the process wrote to stderr so far, when started with
    /// [`Client::start_logging_with`].
    pub fn stderr_log(&self) -> String {
        let path = self.log.as_ref().expect("started with start_logging_with");
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    }

    /// The SHA-256 of the store's files as they are on disk: the database
    /// and its write-ahead log (not the `-shm` index, which readers touch).
    /// Equal digests mean a byte-identical store.
    pub fn store_file_digest(&self) -> String {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for suffix in ["", "-wal"] {
            let mut name = self.store_path().into_os_string();
            name.push(suffix);
            match std::fs::read(&name) {
                Ok(bytes) => {
                    hasher.update(suffix.as_bytes());
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(&bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot read {}: {e}", Path::new(&name).display()),
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("license.db")
    }

    fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
        Answer {
            status,
            content_type,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.base))
                .call()
                .unwrap(),
        )
    }

    /// POSTs raw bytes with the given content type (none if `None`).
    pub fn post_raw(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        Self::answer(request.send(body).unwrap())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, Some("application/json"), body.to_string().as_bytes())
    }

    /// Step 3 of the document; returns the license request token.
    pub fn register(&self, license_key: &str) -> String {
        let answer = self.post_json(
            "/license/register",
            &serde_json::json!({ "licenseKey": license_key, "export": true }),
        );
        assert_eq!(answer.status, 200, "register failed: {}", answer.body);
        answer.body["licenseRequest"].as_str().unwrap().to_owned()
    }

    /// Step 5 of the document.
    pub fn import(&self, license_key: &str, payload: &str) -> Answer {
        self.post_json(
            "/license/import",
            &serde_json::json!({ "licenseKey": license_key, "licensePayload": payload }),
        )
    }

    /// Every row of every table, in order: equal dumps mean an unchanged store.
    pub fn store_dump(&self) -> String {
        dump_sqlite(&self.store_path())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Token surgery for forgery tests: the same token with its signed message
/// changed by `edit` and a *correct* checksum, so that only the signature
/// can catch it (docs/FORMAT.md §3).
pub fn reseal_with_edited_message(token: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let mut message = ren3_shared::binary::decode(parts[0]).unwrap();
    edit(&mut message);
    with_checksum(&format!(
        "{prefix}{}.{}",
        ren3_shared::binary::encode(&message),
        parts[1]
    ))
}

/// The same token with its signed message changed by `edit` and signed
/// again with the raw Ed25519 key of `seed`: what the holder of a leaked
/// key can do, past every check the issuer would make.
pub fn resign_with_edited_message(
    token: &str,
    seed: &[u8; 32],
    edit: impl FnOnce(&mut Vec<u8>),
) -> String {
    use ed25519_dalek::Signer as _;
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let mut message = ren3_shared::binary::decode(parts[0]).unwrap();
    edit(&mut message);
    let signature = ed25519_dalek::SigningKey::from_bytes(seed).sign(&message);
    with_checksum(&format!(
        "{prefix}{}.{}",
        ren3_shared::binary::encode(&message),
        ren3_shared::binary::encode(&signature.to_bytes())
    ))
}

/// Replaces the first `from` in `message` by `to`.
pub fn replace_bytes(message: &mut Vec<u8>, from: &str, to: &str) {
    let text = String::from_utf8(std::mem::take(message)).unwrap();
    assert!(text.contains(from), "{from} is not in the message");
    *message = text.replacen(from, to, 1).into_bytes();
}

/// The same token with signature bytes changed by `edit` and a correct checksum.
pub fn reseal_with_edited_signature(token: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let mut signature = ren3_shared::binary::decode(parts[1]).unwrap();
    edit(&mut signature);
    with_checksum(&format!(
        "{prefix}{}.{}",
        parts[0],
        ren3_shared::binary::encode(&signature)
    ))
}

fn with_checksum(signed_part: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(signed_part.as_bytes());
    format!(
        "{signed_part}.{}",
        ren3_shared::binary::encode(&digest[..6])
    )
}

/// Wraps `text` at `width` columns with CRLF, as a mail client would.
pub fn wrap_like_a_mail_client(text: &str, width: usize) -> String {
    text.as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The vendor's web console: a running `ren3-issuer serve` on port 0.
pub struct Console {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Issuer {
    /// `user add NAME --role admin`, the password on stdin: the scenarios
    /// use every page; the roles have their own tests in the console's.
    pub fn add_user(&self, name: &str, password: &str) {
        self.ok(
            &["user", "add", name, "--role", "admin"],
            Some(&format!("{password}\n")),
        );
    }

    /// Starts `ren3-issuer serve --listen 127.0.0.1:0` on this store.
    pub fn serve(&self) -> Console {
        self.serve_with(&[])
    }

    /// [`Issuer::serve`] with more options for `serve`.
    pub fn serve_with(&self, options: &[&str]) -> Console {
        let mut child = issuer_command()
            .arg("--db")
            .arg(self.db())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(options)
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let base = listening_address(&mut child, "ren3-issuer serve");
        Console { child, base }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in console user: the session cookie and the CSRF token that
/// every form of the session carries. Sessions live in the issuer's store,
/// so one outlives a restart of the console.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// `ren3_session=…`, for a `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}

/// An HTTP agent for the console: any status is an answer, and redirects
/// are not followed, so that a confirmed form's `303 See Other` is seen.
pub fn console_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The value of a page's first hidden `csrf` field.
pub fn csrf_of(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().map(str::to_owned)
}

/// The `name=value` part of the `Set-Cookie` header that sets `name`.
fn set_cookie(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

impl Console {
    /// SIGKILLs the process and reaps it, leaving the store as a crash
    /// would; [`Issuer::serve`] then starts the console again on it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Logs in through the login form, as a browser does (its
    /// double-submit CSRF cookie included), and reads the session's CSRF
    /// token from the dashboard.
    pub fn login(&self, name: &str, password: &str) -> ConsoleSession {
        let agent = console_agent();
        let mut form = agent.get(format!("{}/login", self.base)).call().unwrap();
        let login_cookie = set_cookie(&form, "ren3_login_csrf").expect("a login CSRF cookie");
        let token = csrf_of(&form.body_mut().read_to_string().unwrap()).expect("a CSRF field");
        let answer = agent
            .post(format!("{}/login", self.base))
            .header("cookie", &login_cookie)
            .send_form([
                ("csrf", token.as_str()),
                ("name", name),
                ("password", password),
            ])
            .unwrap();
        assert_eq!(answer.status().as_u16(), 303, "the login failed");
        let cookie = set_cookie(&answer, "ren3_session").expect("a session cookie");
        let mut dashboard = agent
            .get(format!("{}/", self.base))
            .header("cookie", &cookie)
            .call()
            .unwrap();
        assert_eq!(dashboard.status().as_u16(), 200, "the session is refused");
        let csrf = csrf_of(&dashboard.body_mut().read_to_string().unwrap())
            .expect("a CSRF field on the dashboard");
        ConsoleSession { cookie, csrf }
    }
}

impl Issuer {
    /// `init` with extra arguments and environment, e.g. `--encrypt` with
    /// `REN3_ISSUER_PASSPHRASE`.
    /// The root directory holds the TEST-ONLY root, which `init` adopts.
    pub fn init_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let issuer = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        issuer.place_test_only_root();
        let root_dir = issuer.root_dir();
        let mut all = vec!["init", "--root-dir", root_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = issuer.run_with_env(&all, None, env);
        assert!(
            out.status.success(),
            "ren3-issuer init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        issuer
    }

    /// [`Issuer::run`] with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut child = issuer_command()
            .arg("--db")
            .arg(self.db())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        feed(&mut child, stdin.unwrap_or_default());
        child.wait_with_output().unwrap()
    }

    /// The issuer's store, every table but the audit log: a refusal is
    /// audited, and changes nothing else.
    pub fn dump_without_audit(&self) -> String {
        dump_sqlite_except(&self.db(), &["audit"])
    }

    /// The key directory's files and their contents, sorted by name.
    pub fn key_files(&self) -> Vec<(String, String)> {
        let dir = self.dir.path().join("issuer.db.keys");
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }
}

impl Client {
    /// SIGKILLs the process (on Unix `Child::kill` sends SIGKILL) and reaps
    /// it, leaving the store as a crash would; [`Client::restart`] then
    /// starts it again on the same store.
    pub fn kill(&mut self) {
        self.stop();
    }
}

/// The payload a vendor would send for `request` with `serial`, signed
/// in-process with the TEST-ONLY issuer key: much faster than running the
/// issuer when a test needs hundreds of them.
pub fn test_only_payload(request: &str, serial: u64) -> String {
    test_only_payload_with(request, serial, |_| {})
}

/// [`test_only_payload`] with its terms changed by `edit` before signing:
/// a payload for another device, an expired one, one that answers no
/// request.
pub fn test_only_payload_with(
    request: &str,
    serial: u64,
    edit: impl FnOnce(&mut ren3_shared::License),
) -> String {
    payload_signed_by(&test_only_signer(), request, serial, edit)
}

/// The payload `signer` makes for `request` with `serial`: issued a minute
/// ago, expiring in 2096, then changed by `edit` before signing.
pub fn payload_signed_by(
    signer: &ren3_shared::PayloadSigner,
    request: &str,
    serial: u64,
    edit: impl FnOnce(&mut ren3_shared::License),
) -> String {
    let request = ren3_shared::VerifiedRequest::open(request).unwrap();
    let issued_at = ren3_shared::timestamp::now() - 60;
    let mut license = ren3_shared::License {
        customer: "Reliability GmbH".into(),
        features: vec!["ingest".into()],
        limits: std::collections::BTreeMap::new(),
        issued_at,
        not_before: issued_at,
        expires_at: Some(4_000_000_000),
        grace_seconds: 0,
        clock_policy: ren3_shared::ClockPolicy::Advisory,
        serial,
        license_key_fingerprint: request.request.license_key_fingerprint,
        client_device_id: request.request.client_device_id.clone(),
        device_public_key: request.device_public_key.into(),
        request_hash: request.hash(),
    };
    edit(&mut license);
    signer.sign_payload(&license).unwrap().token()
}

/// `PRAGMA integrity_check` of an SQLite file, read-only: `"ok"` when sound.
pub fn sqlite_integrity(path: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

/// A seeded random generator for a randomised test: the seed comes from
/// `REN3_TEST_SEED` if set (to replay a failure) and is always printed.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    use rand::SeedableRng as _;
    let seed = std::env::var("REN3_TEST_SEED")
        .ok()
        .map(|s| s.parse().expect("REN3_TEST_SEED is a u64"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with REN3_TEST_SEED={seed})");
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// One row of the client's `licenses` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicense {
    pub id: i64,
    pub token: String,
    pub serial: u64,
    pub active: bool,
    pub deactivated: bool,
}

/// One row of the client's `release_receipts` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub counter: u64,
    pub license_id: i64,
    pub serial: u64,
    pub token: String,
}

/// What the client's store holds, read directly and read-only: licenses
/// by `id` (commit order), pending request hashes by `seq`, receipts by
/// counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStoreSnapshot {
    pub licenses: Vec<StoredLicense>,
    pub pending_hashes: Vec<String>,
    pub receipts: Vec<StoredReceipt>,
}

impl ClientStoreSnapshot {
    pub fn read(path: &Path) -> Self {
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        // One read transaction, so the three tables are one moment's state.
        conn.execute_batch("BEGIN").unwrap();
        let licenses = conn
            .prepare(
                "SELECT id, token, serial, replaced_at IS NULL, deactivated_at IS NOT NULL
                 FROM licenses ORDER BY id",
            )
            .unwrap()
            .query_map([], |row| {
                Ok(StoredLicense {
                    id: row.get(0)?,
                    token: row.get(1)?,
                    serial: row.get::<_, i64>(2)?.cast_unsigned(),
                    active: row.get(3)?,
                    deactivated: row.get(4)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // The pending requests: those above the newest license's
        // `answered_seq` (client migration 3). Forgotten ones may stay
        // stored until a batch of them is deleted.
        let pending_hashes = conn
            .prepare(
                "SELECT request_hash FROM pending_requests
                 WHERE seq > coalesce((SELECT answered_seq FROM licenses ORDER BY id DESC LIMIT 1), 0)
                 ORDER BY seq",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let receipts = conn
            .prepare(
                "SELECT counter, license_id, serial, token FROM release_receipts
                 ORDER BY counter",
            )
            .unwrap()
            .query_map([], |row| {
                Ok(StoredReceipt {
                    counter: row.get::<_, i64>(0)?.cast_unsigned(),
                    license_id: row.get(1)?,
                    serial: row.get::<_, i64>(2)?.cast_unsigned(),
                    token: row.get(3)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        Self {
            licenses,
            pending_hashes,
            receipts,
        }
    }

    /// The active license's token, if one is active.
    pub fn active_token(&self) -> Option<&str> {
        let active: Vec<&StoredLicense> = self.licenses.iter().filter(|l| l.active).collect();
        assert!(
            active.len() <= 1,
            "more than one active license: {active:?}"
        );
        active.first().map(|l| l.token.as_str())
    }
}

/// The hash of a license request token, as the client stores it.
pub fn request_hash(request: &str) -> String {
    ren3_shared::VerifiedRequest::open(request)
        .unwrap()
        .hash()
        .to_string()
}

/// A development build of `ren3-client` (feature `dev-root`), which takes
/// its root from `REN3_DEV_TRUST_ROOT` at run time. `bin_dir` builds it
/// beside the pinned one, which it never replaces.
///
/// The development root also needs debug assertions, which a `--release`
/// test run does not have: there, this panics and says so.
pub fn dev_client_bin() -> PathBuf {
    if !cfg!(debug_assertions) {
        panic!(
            "a development build of ren3-client needs debug assertions: run this test without --release"
        );
    }
    dev_dir(bin_dir()).join("ren3-client")
}
