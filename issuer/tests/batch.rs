//! `ren3-issuer issue` over many requests: a directory or a stream on
//! stdin, issued in batches of one transaction each.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ren3_shared::{
    DeviceId, DeviceKey, Kind, LicenseKey, LicenseRequest, Product, TrustRoot, VerifiedPayload,
    VerifiedRequest,
};
use serde_json::Value;

struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn initialised() -> Self {
        let w = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        w.ok(&["init", "--root-dir", "root", "--plain-root"]);
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ren3-issuer"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("REN3_ISSUER_DB")
            .env_remove("REN3_ISSUER_KEYS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn license(&self, max_devices: u32) -> LicenseKey {
        let key = self.ok(&[
            "license",
            "create",
            "--customer",
            "ACME",
            "--max-devices",
            &max_devices.to_string(),
        ]);
        LicenseKey::parse(key.trim_end()).unwrap()
    }

    fn device(&self, key: &LicenseKey) -> DeviceId {
        DeviceId::parse(
            self.ok(&["device", "add", "--license", key.reveal()])
                .trim_end(),
        )
        .unwrap()
    }

    fn show(&self, key: &LicenseKey) -> Value {
        serde_json::from_str(&self.ok(&["--json", "license", "show", key.reveal()])).unwrap()
    }

    fn trust(&self) -> TrustRoot {
        TrustRoot::parse_public_file(&self.ok(&["trust", "export-root"])).unwrap()
    }

    /// `n` requests, each from its own device and installation of one license.
    fn requests(&self, n: u8) -> (LicenseKey, Vec<String>) {
        let key = self.license(u32::from(n));
        let requests = (1..=n)
            .map(|i| request(&key, &self.device(&key), i))
            .collect();
        (key, requests)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn request(key: &LicenseKey, device: &DeviceId, installation: u8) -> String {
    let product = Product {
        name: "ren3-ingestor".into(),
        version: "1.0.0".into(),
    };
    LicenseRequest::new(device.clone(), key, product, 1_800_000_000)
        .unwrap()
        .sign(&DeviceKey::from_seed(&[installation; 32]))
        .unwrap()
        .token()
}

/// Asserts `payload` verifies and answers `request`.
fn answers(payload: &str, request: &str, trust: &TrustRoot, context: &str) {
    let opened = VerifiedPayload::open(payload, trust).unwrap();
    assert_eq!(
        opened.license.request_hash,
        VerifiedRequest::open(request).unwrap().hash(),
        "{context}"
    );
}

fn write_dir(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, contents) in files {
        fs::write(dir.join(name), contents).unwrap();
    }
}

#[test]
fn issue_over_a_directory_writes_one_payload_file_per_request_in_one_transaction() {
    let w = Workdir::initialised();
    let (key, requests) = w.requests(3);
    let dir = w.path("requests");
    write_dir(
        &dir,
        &[
            ("c.req", &requests[2]),
            ("a.req", &requests[0]),
            ("b.req", &requests[1]),
        ],
    );
    fs::create_dir(dir.join("not-a-file")).unwrap();
    let out = w.run(&[
        "--json",
        "issue",
        "--request",
        dir.to_str().unwrap(),
        "--out-dir",
        "payloads",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["issued"], 3);
    assert_eq!(report["refused"], 0);
    assert_eq!(report["batches"], 1);
    let inputs: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["input"].as_str().unwrap())
        .collect();
    assert!(
        inputs[0].ends_with("a.req") && inputs[2].ends_with("c.req"),
        "{inputs:?}"
    );

    let trust = w.trust();
    for (name, request) in [
        ("a", &requests[0]),
        ("b", &requests[1]),
        ("c", &requests[2]),
    ] {
        let payload = fs::read_to_string(w.path(&format!("payloads/{name}.req.payload"))).unwrap();
        answers(&payload, request, &trust, name);
    }
    let shown = w.show(&key);
    assert_eq!(shown["issuances"].as_array().unwrap().len(), 3);
}

#[test]
fn issue_over_a_stream_prints_one_payload_a_line_in_request_order() {
    let w = Workdir::initialised();
    let (_, requests) = w.requests(3);
    let stream = format!("{}\n\n{}\n{}\n", requests[0], requests[1], requests[2]);
    let out = w.run_with_stdin(&["issue", "--request", "-"], &stream);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let trust = w.trust();
    for (n, (payload, request)) in lines.iter().zip(&requests).enumerate() {
        answers(payload, request, &trust, &format!("line {n}"));
    }
    assert!(
        text(&out.stderr).contains("1 transaction"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn issue_over_a_stream_of_armoured_blocks_names_the_files_after_the_request_ids() {
    let w = Workdir::initialised();
    let (_, requests) = w.requests(2);
    let stream = format!(
        "Hello,\n{}\nand the second:\n{}Regards\n",
        Kind::Request.armor(&requests[0]),
        Kind::Request.armor(&requests[1])
    );
    let out = w.run_with_stdin(&["issue", "--request", "-", "--out-dir", "out"], &stream);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let trust = w.trust();
    for request in &requests {
        let id = VerifiedRequest::open(request).unwrap().request.request_id;
        let payload = fs::read_to_string(w.path(&format!("out/{id}.payload"))).unwrap();
        answers(&payload, request, &trust, &id.to_string());
    }
}

#[test]
fn a_batch_with_refusals_issues_the_rest_reports_each_refusal_and_exits_1() {
    let w = Workdir::initialised();
    let key = w.license(1);
    let (first, second) = (w.device(&key), w.device(&key));
    let stranger = LicenseKey::generate().unwrap();
    let good = request(&key, &first, 1);
    let stream = [
        good.clone(),
        request(&stranger, &second, 2),
        request(&key, &second, 3),
    ]
    .join("\n");
    let out = w.run_with_stdin(&["--json", "issue", "--request", "-"], &stream);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("refused: request 2 of standard input")
            && stderr.contains("[license_unknown]"),
        "{stderr}"
    );
    assert!(stderr.contains("[no_free_seat]"), "{stderr}");
    assert!(
        stderr.contains("error: 2 of 3 requests were refused"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["issued"].clone(), report["refused"].clone()),
        (1.into(), 2.into())
    );
    let results = report["results"].as_array().unwrap();
    assert_eq!(results[1]["refused"]["code"], "license_unknown");
    assert_eq!(results[2]["refused"]["code"], "no_free_seat");
    answers(
        results[0]["payload"].as_str().unwrap(),
        &good,
        &w.trust(),
        "issued",
    );

    // The refused requests took nothing: the second device is still free.
    let shown = w.show(&key);
    assert_eq!(shown["issuances"].as_array().unwrap().len(), 1);
    let devices = shown["devices"].as_array().unwrap();
    assert!(devices[0]["publicKey"].is_string(), "{shown}");
    assert!(devices[1]["publicKey"].is_null(), "{shown}");
}

#[test]
fn issuing_the_same_directory_again_returns_the_same_payloads_and_changes_nothing() {
    let w = Workdir::initialised();
    let (key, requests) = w.requests(2);
    let dir = w.path("requests");
    write_dir(&dir, &[("one", &requests[0]), ("two", &requests[1])]);
    let dir = dir.to_str().unwrap();
    let first = w.ok(&["issue", "--request", dir]);
    let before = w.show(&key);
    let out = w.run(&["--json", "issue", "--request", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["repeated"], 2);
    let again: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["payload"].as_str().unwrap())
        .collect();
    assert_eq!(again, first.lines().collect::<Vec<_>>());
    assert_eq!(w.show(&key), before);
}

#[test]
fn batch_size_sets_how_many_requests_share_a_transaction() {
    let w = Workdir::initialised();
    let (_, requests) = w.requests(5);
    let out = w.run_with_stdin(
        &["--json", "issue", "--request", "-", "--batch-size", "2"],
        &requests.join("\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["issued"].clone(), report["batches"].clone()),
        (5.into(), 3.into())
    );
}

#[test]
fn out_file_is_refused_for_several_requests() {
    let w = Workdir::initialised();
    let (_, requests) = w.requests(2);
    let out = w.run_with_stdin(
        &["issue", "--request", "-", "--out", "one.txt"],
        &requests.join("\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--out-dir"),
        "{}",
        text(&out.stderr)
    );
    assert!(!w.path("one.txt").exists());
}
