//! Hostile input on every CLI command that reads a token or a file, from
//! the shared generator (`ren3_testkit::hostile`), over the real binary:
//! a non-zero exit, the stable code on stderr (`[code]`) or in `inspect
//! --json`'s `problem.code`, nothing on stdout for an error, no panic, and
//! the store unchanged (every table but the audit log, where a refusal is
//! recorded).

use std::fs;
use std::path::Path;
use std::process::Output;

use ren3_shared::{DeviceKey, ReleaseReceipt};
use ren3_testkit::hostile::{self, FLIP_CODES, TOKEN_CODES};
use serde_json::Value;

use crate::support::{Workdir, request_token};

/// An initialised store with a two-seat license: device 1 with an
/// unanswered request, device 2 issued (bound) with a valid receipt.
struct Scene {
    store: Workdir,
    request: String,
    payload: String,
    receipt: String,
}

fn scene() -> Scene {
    let store = Workdir::initialised();
    let key = store.create_license("ACME", 2);
    let (first, second) = (store.add_device(&key), store.add_device(&key));
    let installation = DeviceKey::from_seed(&[2; 32]);
    let request_one = request_token(&key, &first, 1, 1);
    let request_two = request_token(&key, &second, 2, 1);
    let file = store.file("request-two.txt", request_two.as_bytes());
    let payload = store
        .ok(&["issue", "--request", &file])
        .trim_end()
        .to_owned();
    let receipt = ReleaseReceipt {
        released_at: ren3_shared::timestamp::now(),
        client_device_id: second,
        license_key_fingerprint: key.fingerprint(),
        serial: 1,
        counter: 1,
    }
    .sign(&installation)
    .unwrap()
    .token();
    Scene {
        store,
        request: request_one,
        payload,
        receipt,
    }
}

/// A refused command: non-zero exit, nothing on stdout, `error:` and no
/// panic on stderr.
#[track_caller]
fn assert_refused(out: &Output, context: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{context}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{context}: a result on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.starts_with("error: "), "{context}: {stderr}");
    assert!(!stderr.contains("panicked"), "{context}: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{context}: {stderr}");
    stderr
}

/// The `[code]` a refusal's message ends with.
fn code_of(stderr: &str) -> &str {
    stderr
        .trim_end()
        .rsplit_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or_default()
}

#[test]
fn issue_and_release_refuse_every_hostile_token_with_its_code() {
    let s = scene();
    let before = s.store.dump_without_audit();
    let commands = [
        (
            "issue",
            "--request",
            &s.request,
            [s.payload.as_str(), &s.receipt],
        ),
        (
            "release",
            "--receipt",
            &s.receipt,
            [s.request.as_str(), &s.payload],
        ),
    ];
    for (command, flag, valid, others) in commands {
        for case in hostile::token_cases(valid, &others) {
            let context = format!("{command} case {}", case.name());
            let file = s.store.file("token.txt", case.input.as_bytes());
            let out = s.store.run(&[command, flag, &file]);
            let stderr = assert_refused(&out, &context);
            if case.input.len() > ren3_shared::token::MAX_INPUT_LEN {
                // The CLI stops reading at the limit, before any parsing.
                assert!(stderr.contains("more than 64 KiB"), "{context}: {stderr}");
            } else {
                assert_eq!(code_of(&stderr), case.expected, "{context}: {stderr}");
            }
            assert_eq!(
                s.store.dump_without_audit(),
                before,
                "{context}: the store changed"
            );
        }
    }
}

#[test]
fn inspect_reports_every_hostile_token_as_not_verifying() {
    let s = scene();
    let before = s.store.dump_without_audit();
    for case in hostile::token_cases(&s.request, &[]) {
        let context = format!("inspect case {}", case.name());
        let file = s.store.file("token.txt", case.input.as_bytes());
        let out = s.store.run(&["--json", "inspect", &file]);
        assert_eq!(out.status.code(), Some(1), "{context}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{context}: {stderr}");
        if out.stdout.is_empty() {
            // Not readable as any kind of token: an error, no report.
            assert!(stderr.starts_with("error: "), "{context}: {stderr}");
        } else {
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["verified"], false, "{context}: {report}");
            let code = report["problem"]["code"].as_str().unwrap_or_default();
            assert!(TOKEN_CODES.contains(&code), "{context}: {report}");
        }
        assert_eq!(
            s.store.dump_without_audit(),
            before,
            "{context}: the store changed"
        );
    }
}

/// A sample of the single-byte and single-character changes over the real
/// binary; every change is checked in-process by the console's suite.
#[test]
fn issue_refuses_a_sample_of_single_byte_and_character_changes() {
    let s = scene();
    let before = s.store.dump_without_audit();
    let flips: Vec<(String, String)> = hostile::flipped_message_bytes(&s.request)
        .into_iter()
        .map(|(i, t)| (format!("message byte {i}"), t))
        .chain(
            hostile::flipped_characters(&s.request)
                .into_iter()
                .map(|(i, t)| (format!("character {i}"), t)),
        )
        .collect();
    for (what, token) in hostile::sample(&flips, 37) {
        let file = s.store.file("token.txt", token.as_bytes());
        let out = s.store.run(&["issue", "--request", &file]);
        let stderr = assert_refused(&out, &what);
        assert!(FLIP_CODES.contains(&code_of(&stderr)), "{what}: {stderr}");
    }
    assert_eq!(s.store.dump_without_audit(), before);
}

/// Files that are not a token file at all, for every option that reads one.
#[test]
fn every_file_option_refuses_unreadable_files() {
    let s = scene();
    let before = s.store.dump_without_audit();
    let dir = s.store.path("a-directory");
    fs::create_dir(&dir).unwrap();
    let files: Vec<(&str, String)> = vec![
        ("1. empty file", s.store.file("empty.txt", b"")),
        (
            "2. non-UTF-8 file",
            s.store.file("binary.txt", &[0xff, 0xfe, 0x00, 0xc3, 0x28]),
        ),
        (
            "3. huge file (1 MiB)",
            s.store.file("huge.txt", &vec![b'A'; 1024 * 1024]),
        ),
        ("4. a directory", dir.to_str().unwrap().to_owned()),
        (
            "5. a missing file",
            s.store.path("missing.txt").to_str().unwrap().to_owned(),
        ),
        (
            "6. control characters and markup",
            s.store
                .file("markup.txt", b"\x1b[2J<script>alert(1)</script>\x07"),
        ),
    ];
    let root_files: Vec<(&str, String)> = vec![
        (
            "7. root file: a JSON document",
            s.store.file("nested.json", "[".repeat(100_000).as_bytes()),
        ),
        (
            "8. root file: two key lines",
            s.store.file(
                "twice.pub",
                format!(
                    "ren3-root-public-key-v1: {key}\nren3-root-public-key-v1: {key}\n",
                    key = ren3_shared::trust::TEST_ONLY_ROOT_PUBLIC_KEY
                )
                .as_bytes(),
            ),
        ),
        (
            "9. root file: an unknown line",
            s.store.file("unknown.pub", b"<script>alert(1)</script>\n"),
        ),
        (
            "10. root file: the small-order identity key",
            s.store.file(
                "weak.pub",
                format!(
                    "ren3-root-public-key-v1: {}\n",
                    ren3_shared::binary::encode(&hostile::IDENTITY_POINT)
                )
                .as_bytes(),
            ),
        ),
        (
            "11. root file: another label",
            s.store.file(
                "label.pub",
                b"ren3-trusted-keys-v2: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
            ),
        ),
    ];
    let valid_request = s.store.file("request.txt", s.request.as_bytes());
    for (name, file) in &files {
        for args in [
            vec!["issue", "--request", file.as_str()],
            vec!["release", "--receipt", file.as_str()],
            vec!["inspect", file.as_str()],
            vec!["issue", "--request", file.as_str(), "--out", "out.txt"],
        ] {
            let context = format!("{name}: {args:?}");
            let out = s.store.run(&args);
            let stderr = assert_refused(&out, &context);
            if *name == "1. empty file" && args[0] != "inspect" {
                assert_eq!(code_of(&stderr), "token_empty", "{context}: {stderr}");
            }
            if *name == "6. control characters and markup" {
                assert!(
                    !stderr.contains('\u{1b}'),
                    "{context}: raw escape on stderr"
                );
            }
            assert!(!Path::new(&s.store.path("out.txt")).exists(), "{context}");
            assert_eq!(
                s.store.dump_without_audit(),
                before,
                "{context}: the store changed"
            );
        }
    }
    for (name, file) in files.iter().chain(&root_files) {
        let args = ["inspect", valid_request.as_str(), "--root", file.as_str()];
        let context = format!("{name}: {args:?}");
        let out = s.store.run(&args);
        assert_refused(&out, &context);
        assert_eq!(
            s.store.dump_without_audit(),
            before,
            "{context}: the store changed"
        );
    }
}
