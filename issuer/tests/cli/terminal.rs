//! Text a customer wrote, printed by the CLI. A customer holds the device
//! key, so they can sign a request or a receipt whose JSON carries terminal
//! escapes, in a field name (which serde's "unknown field" message repeats
//! as it is) or in a value. `inspect`, `issue` and `release`, for people and
//! with `--json`, must show each escape and never send it: no control
//! character but the line breaks the CLI writes, and no bidi control,
//! reaches stdout or stderr (`cli::terminal`).

use std::fs;
use std::process::Output;

use ed25519_dalek::Signer as _;
use ren3_shared::{DeviceId, DeviceKey, Kind, LicenseKey, LicenseRequest, Product, ReleaseReceipt};
use serde_json::Value;

use crate::support::{Workdir, request_token};

/// One of each thing a terminal would do when sent it.
const HOSTILE: &[(&str, &str)] = &[
    ("1. set the window title (OSC 0)", "\u{1b}]0;pwned\u{7}"),
    (
        "2. write the clipboard (OSC 52)",
        "\u{1b}]52;c;cHduZWQ=\u{7}",
    ),
    (
        "3. erase the line (CSI 2K) after a carriage return",
        "\r\u{1b}[2Ksignature: verifies",
    ),
    ("4. a C1 CSI", "\u{9b}2K\u{9b}31mred"),
    ("5. a right-to-left override", "abc\u{202e}fed.exe"),
    (
        "6. a line break and a tab before a line of its own",
        "x\n\tsignature: verifies",
    ),
];

/// The installation that signs everything here: bound to the seat.
const INSTALLATION: u8 = 7;

/// Where the hostile text stands in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A field name, before the genuine fields.
    FieldName,
    /// The value of `counter`, where a number belongs.
    Value,
}

/// The characters the CLI must not send: C0 (the CLI's own line breaks
/// aside), DEL, C1 and the bidi controls.
fn is_terminal_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `text` as people see it printed: `\u{1b}` for ESC.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if is_terminal_control(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The output as text, after checking that it sends nothing a terminal
/// would obey and forges no `signature:` line.
#[track_caller]
fn checked(bytes: &[u8], context: &str) -> String {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|e| panic!("{context}: the output is not UTF-8: {e}"));
    if let Some(c) = text.chars().find(|&c| c != '\n' && is_terminal_control(c)) {
        panic!("{context}: sent {:?} raw: {text:?}", c);
    }
    assert!(
        !text
            .lines()
            .any(|line| line.trim_start().starts_with("signature: verifies")),
        "{context}: a forged line: {text:?}"
    );
    text
}

/// A device-signed token of `kind` around `body`, signed by the
/// installation: a genuine signature over JSON the customer wrote.
fn signed(kind: Kind, body: &str) -> String {
    let seed = [INSTALLATION; 32];
    let mut message = format!(
        "{}\n{}\n",
        kind.domain(),
        DeviceKey::from_seed(&seed).public_key()
    )
    .into_bytes();
    message.extend_from_slice(body.as_bytes());
    let signature = ed25519_dalek::SigningKey::from_bytes(&seed).sign(&message);
    ren3_testkit::hostile::reseal(kind.prefix(), &message, &signature.to_bytes())
}

/// `genuine` (a JSON object) with `hostile` at `place`.
fn with_hostile(genuine: &Value, hostile: &str, place: Place) -> String {
    match place {
        Place::FieldName => {
            let fields = genuine.to_string();
            format!(
                "{{{}:1,{}",
                serde_json::to_string(hostile).unwrap(),
                &fields[1..]
            )
        }
        Place::Value => {
            let mut body = genuine.clone();
            body["counter"] = Value::from(hostile);
            body.to_string()
        }
    }
}

/// A store with a license whose one seat is bound to the installation,
/// and the JSON of a genuine request and receipt of it.
struct Scene {
    store: Workdir,
    request: Value,
    receipt: Value,
}

fn scene() -> Scene {
    let store = Workdir::initialised();
    let key = store.create_license("ACME", 1);
    let device = store.add_device(&key);
    let first = store.token_file("request", &request_token(&key, &device, INSTALLATION, 1));
    store.ok(&["issue", "--request", &first]);
    Scene {
        request: genuine_request(&key, &device),
        receipt: serde_json::to_value(ReleaseReceipt {
            released_at: ren3_shared::timestamp::now(),
            client_device_id: device,
            license_key_fingerprint: key.fingerprint(),
            serial: 1,
            counter: 3,
        })
        .unwrap(),
        store,
    }
}

fn genuine_request(key: &LicenseKey, device: &DeviceId) -> Value {
    let request = LicenseRequest::new(
        device.clone(),
        key,
        Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        },
        ren3_shared::timestamp::now(),
    )
    .unwrap()
    .with_counter(2);
    serde_json::to_value(request).unwrap()
}

/// Runs `args`, which must fail (exit 1), and checks both streams; returns
/// them.
fn refused(store: &Workdir, args: &[&str], context: &str) -> (String, String) {
    let out: Output = store.run(args);
    assert_eq!(out.status.code(), Some(1), "{context}: {out:?}");
    let stdout = checked(&out.stdout, &format!("{context}: stdout"));
    let stderr = checked(&out.stderr, &format!("{context}: stderr"));
    assert!(!stderr.contains("panicked"), "{context}: {stderr}");
    (stdout, stderr)
}

#[test]
fn escapes_in_a_customers_request_or_receipt_are_shown_never_sent() {
    let s = scene();
    let before = s.store.dump_without_audit();
    let kinds = [
        (Kind::Request, &s.request, ["issue", "--request"]),
        (Kind::Receipt, &s.receipt, ["release", "--receipt"]),
    ];
    for (name, hostile) in HOSTILE {
        for place in [Place::FieldName, Place::Value] {
            for (kind, genuine, [command, flag]) in kinds {
                let context = format!("{name}, {place:?} of a {kind:?}");
                let file = s.store.token_file(
                    "token",
                    &signed(kind, &with_hostile(genuine, hostile, place)),
                );

                let (report, _) = refused(&s.store, &["inspect", &file], &context);
                assert!(report.contains("does NOT verify"), "{context}: {report}");
                let (_, error) = refused(&s.store, &[command, flag, &file], &context);
                assert!(error.starts_with("error: "), "{context}: {error}");
                assert_eq!(error.lines().count(), 1, "{context}: {error}");
                if place == Place::FieldName {
                    // serde repeats the name as it is: shown escaped.
                    let shown = shown(hostile);
                    assert!(report.contains(&shown), "{context}: {report}");
                    assert!(error.contains(&shown), "{context}: {error}");
                }

                let (json, _) = refused(&s.store, &["--json", "inspect", &file], &context);
                let json: Value = serde_json::from_str(&json)
                    .unwrap_or_else(|e| panic!("{context}: not JSON ({e}): {json}"));
                assert_eq!(json["verified"], false, "{context}: {json}");
                if place == Place::FieldName {
                    // The same value, escaped only in its bytes.
                    let message = json["problem"]["message"].as_str().unwrap_or_default();
                    assert!(message.contains(hostile), "{context}: {json}");
                }
                let (out, error) = refused(&s.store, &["--json", command, flag, &file], &context);
                assert_eq!(out, "", "{context}");
                assert!(error.starts_with("error: "), "{context}: {error}");
            }
        }
    }
    assert_eq!(
        s.store.dump_without_audit(),
        before,
        "a refusal changed the store"
    );
}

/// A batch names each refused request by its file, and a file's name is
/// the customer's too when they send it as an attachment.
#[test]
fn a_batch_shows_escapes_in_file_names_and_errors_on_lines_of_their_own() {
    let s = scene();
    let before = s.store.dump_without_audit();
    let dir = s.store.path("requests");
    fs::create_dir(&dir).unwrap();
    for (n, (_, hostile)) in HOSTILE.iter().enumerate() {
        let token = signed(
            Kind::Request,
            &with_hostile(&s.request, hostile, Place::FieldName),
        );
        fs::write(dir.join(format!("{n}-{hostile}.txt")), token).unwrap();
    }
    let (_, stderr) = refused(
        &s.store,
        &["issue", "--request", "requests", "--out-dir", "payloads"],
        "a batch",
    );
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("refused: "))
        .collect();
    assert_eq!(refusals.len(), HOSTILE.len(), "{stderr}");
    for ((name, hostile), line) in HOSTILE.iter().zip(&refusals) {
        // The file's name, then the error's copy of the field name.
        assert_eq!(line.matches(&shown(hostile)).count(), 2, "{name}: {line}");
    }
    assert_eq!(s.store.dump_without_audit(), before);
}
