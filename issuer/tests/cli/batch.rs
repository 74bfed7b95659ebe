//! `ren3-issuer issue` over many requests: a directory or a stream on
//! stdin, issued in batches of one transaction each.

use std::fs;
use std::path::Path;

use ren3_shared::{Kind, LicenseKey, TrustRoot, VerifiedPayload, VerifiedRequest};
use serde_json::Value;

use crate::support::{Workdir, request_token, stderr, stdout};

impl Workdir {
    /// `n` requests, each from its own device and installation of one license.
    fn requests(&self, n: u8) -> (LicenseKey, Vec<String>) {
        let key = self.create_license("ACME", u32::from(n));
        let requests = (1..=n)
            .map(|i| request_token(&key, &self.add_device(&key), i, 1))
            .collect();
        (key, requests)
    }
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = stdout(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let trust = w.trust();
    for (n, (payload, request)) in lines.iter().zip(&requests).enumerate() {
        answers(payload, request, &trust, &format!("line {n}"));
    }
    assert!(stderr(&out).contains("1 transaction"), "{}", stderr(&out));
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
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
    let key = w.create_license("ACME", 1);
    let (first, second) = (w.add_device(&key), w.add_device(&key));
    let stranger = LicenseKey::generate().unwrap();
    let good = request_token(&key, &first, 1, 1);
    let stream = [
        good.clone(),
        request_token(&stranger, &second, 2, 1),
        request_token(&key, &second, 3, 1),
    ]
    .join("\n");
    let out = w.run_with_stdin(&["--json", "issue", "--request", "-"], &stream);
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr(&out);
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
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
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
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
    assert!(stderr(&out).contains("--out-dir"), "{}", stderr(&out));
    assert!(!w.path("one.txt").exists());
}
