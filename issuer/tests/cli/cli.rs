//! The `ren3-issuer` binary's contract: what goes to stdout (the result,
//! alone), to stderr (messages, `error: ...`), and the exit codes.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use ren3_shared::{DeviceId, DeviceKey, LicenseKey, ReleaseReceipt, VerifiedPayload, binary};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::{INIT, Workdir, request_token, stderr, stdout};

impl Workdir {
    /// Writes a request signed by installation `n` to a file; returns its path.
    fn request(&self, key: &LicenseKey, device: &DeviceId, n: u8) -> String {
        self.numbered_request(key, device, n, 1)
    }

    /// Writes a request of installation `n` with its sequence number
    /// `counter` to a file; returns its path.
    fn numbered_request(&self, key: &LicenseKey, device: &DeviceId, n: u8, counter: u64) -> String {
        let token = request_token(key, device, n, counter);
        self.token_file("request", &token)
    }

    /// Writes the release receipt installation `n` signs when it
    /// deactivates serial `serial`, with its sequence number `counter`, to
    /// a file; returns its path.
    fn receipt(
        &self,
        key: &LicenseKey,
        device: &DeviceId,
        n: u8,
        serial: u64,
        counter: u64,
    ) -> String {
        let token = ReleaseReceipt {
            released_at: ren3_shared::timestamp::now(),
            client_device_id: device.clone(),
            license_key_fingerprint: key.fingerprint(),
            serial,
            counter,
        }
        .sign(&DeviceKey::from_seed(&[n; 32]))
        .unwrap()
        .token();
        self.token_file("receipt", &token)
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `token` with its signed message changed and a fresh checksum: well
/// formed, so only the signature check can catch it.
fn tamper(token: &str, from: &str, to: &str) -> String {
    let dot = token.find('.').unwrap() + 1;
    let (prefix, rest) = token.split_at(dot);
    let parts: Vec<&str> = rest.split('.').collect();
    let message = String::from_utf8(binary::decode(parts[0]).unwrap()).unwrap();
    assert!(message.contains(from));
    let signed = format!(
        "{prefix}{}.{}",
        binary::encode(message.replace(from, to).as_bytes()),
        parts[1]
    );
    let check = binary::encode(&Sha256::digest(signed.as_bytes())[..6]);
    format!("{signed}.{check}")
}

// ---- init and the key store

#[test]
fn init_creates_key_dir_0700_and_key_file_0600_and_prints_only_the_key_id() {
    let w = Workdir::new();
    let out = w.run(INIT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key_id = stdout(&out);
    let key_id = key_id.strip_suffix('\n').unwrap();
    assert!(!key_id.contains('\n'));
    assert!(stderr(&out).contains("created the issuer store"));

    assert!(w.db().is_file());
    assert_eq!(mode(&w.keys_dir()), 0o700);
    let key_file = w.keys_dir().join(format!("{key_id}.key"));
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(fs::read_dir(w.keys_dir()).unwrap().count(), 1);
    // The seed never reaches the terminal.
    let seed_line = fs::read_to_string(&key_file).unwrap();
    let seed = seed_line
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next_back()
        .unwrap();
    assert!(!stderr(&out).contains(seed));
}

#[test]
fn second_init_is_refused_and_changes_nothing() {
    let w = Workdir::initialised();
    let db_before = fs::read(w.db()).unwrap();
    let err = w.fails(INIT);
    assert!(err.contains("already an issuer store"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(fs::read(w.db()).unwrap(), db_before);
    assert_eq!(fs::read_dir(w.keys_dir()).unwrap().count(), 1);
}

#[test]
fn db_and_keys_dir_come_from_flags_or_environment() {
    let w = Workdir::new();
    let key_id = w
        .command(INIT)
        .env("REN3_ISSUER_DB", w.path("env.db"))
        .env("REN3_ISSUER_KEYS", w.path("env-keys"))
        .output()
        .unwrap();
    assert_eq!(key_id.status.code(), Some(0), "{}", stderr(&key_id));
    assert!(w.path("env.db").is_file());
    assert_eq!(mode(&w.path("env-keys")), 0o700);
    assert!(!w.db().exists());

    w.ok(&[
        "--db",
        "flag.db",
        "init",
        "--root-dir",
        "flag-root",
        "--plain-root",
    ]);
    assert_eq!(mode(&w.path("flag.db.keys")), 0o700);
}

#[test]
fn commands_without_a_store_say_to_run_init_and_create_nothing() {
    let w = Workdir::new();
    for args in [
        &["license", "list"][..],
        &["keys", "list"],
        &["trust", "export-root"],
        &["license", "create", "--customer", "ACME"],
    ] {
        let err = w.fails(args);
        assert_eq!(
            err,
            "error: no issuer store at ren3-issuer.db; run `ren3-issuer init` first \
             [store_missing]\n",
            "{args:?}"
        );
    }
    assert_eq!(fs::read_dir(w.dir()).unwrap().count(), 0);
}

#[test]
fn issue_refuses_a_group_readable_key_store_and_names_the_fix() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let request = w.request(&key, &device, 1);
    let keys_dir = w.keys_dir();

    fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o750)).unwrap();
    let err = w.fails(&["issue", "--request", &request]);
    // The path as the user gave it (here the default, relative to the
    // working directory), so the suggested command works as typed.
    assert!(err.contains("ren3-issuer.db.keys has mode 0750"), "{err}");
    assert!(err.contains("`chmod 700 ren3-issuer.db.keys`"), "{err}");

    fs::set_permissions(&keys_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let key_file = fs::read_dir(&keys_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let key_file = Path::new("ren3-issuer.db.keys").join(key_file.file_name().unwrap());
    fs::set_permissions(w.dir().join(&key_file), fs::Permissions::from_mode(0o644)).unwrap();
    let err = w.fails(&["issue", "--request", &request]);
    assert!(
        err.contains(&format!("{} has mode 0644", key_file.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("`chmod 600 {}`", key_file.display())),
        "{err}"
    );
    assert_eq!(w.show(&key)["issuances"], Value::Array(vec![]));
}

// ---- licenses and devices

#[test]
fn license_create_prints_only_the_key() {
    let w = Workdir::initialised();
    let out = w.run(&[
        "license",
        "create",
        "--customer",
        "ACME GmbH",
        "--features",
        "ingest, export,ingest",
        "--limit",
        "max-sources=10",
        "--expires",
        "2999-03-01",
        "--max-devices",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = stdout(&out);
    let key = LicenseKey::parse(key.strip_suffix('\n').unwrap()).unwrap();
    assert!(stderr(&out).contains("ACME GmbH"));
    assert!(stderr(&out).contains(&key.hint()));

    let shown = w.show(&key)["license"].clone();
    assert_eq!(shown["customer"], "ACME GmbH");
    assert_eq!(shown["features"], serde_json::json!(["export", "ingest"]));
    assert_eq!(shown["limits"], serde_json::json!({ "max-sources": 10 }));
    assert_eq!(shown["expiresAt"], "2999-03-02T00:00:00Z");
    assert_eq!(shown["maxDevices"], 3);
    assert_eq!(shown["status"], "active");
    // The key itself is never stored.
    assert!(!String::from_utf8_lossy(&fs::read(w.db()).unwrap()).contains(key.reveal()));
}

#[test]
fn license_create_refuses_invalid_terms_and_stores_nothing() {
    let w = Workdir::initialised();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "1. padded customer",
            &["--customer", " ACME"],
            "white space",
        ),
        ("2. empty customer", &["--customer", ""], "empty"),
        (
            "3. bad feature",
            &["--customer", "A", "--features", "Ingest"],
            "`Ingest`",
        ),
        (
            "4. limit without value",
            &["--customer", "A", "--limit", "x"],
            "name=value",
        ),
        (
            "5. negative limit",
            &["--customer", "A", "--limit", "x=-1"],
            "whole number",
        ),
        (
            "6. limit twice",
            &["--customer", "A", "--limit", "x=1", "--limit", "x=2"],
            "twice",
        ),
        (
            "7. zero devices",
            &["--customer", "A", "--max-devices", "0"],
            "at least 1",
        ),
        (
            "8. past expiry",
            &["--customer", "A", "--expires", "2020-01-01"],
            "is in the past",
        ),
        (
            "9. unreadable expiry",
            &["--customer", "A", "--expires", "tomorrow"],
            "YYYY-MM-DD",
        ),
    ];
    for (name, extra, expected) in cases {
        let mut args = vec!["license", "create"];
        args.extend_from_slice(extra);
        let err = w.fails(&args);
        assert!(err.contains(expected), "{name}: {err}");
    }
    assert_eq!(
        w.json(&["license", "list"])["licenses"],
        Value::Array(vec![])
    );
}

#[test]
fn usage_errors_exit_2() {
    let w = Workdir::initialised();
    for args in [
        &["license", "create"][..],
        &[
            "license",
            "create",
            "--customer",
            "A",
            "--max-devices",
            "-1",
        ],
        &["frobnicate"],
    ] {
        assert_eq!(w.run(args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn device_add_prints_only_a_new_unbound_device_id_of_the_license() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    // Any spelling of the key that LicenseKey::parse accepts will do.
    let sloppy = key.reveal().to_lowercase().replace('-', " ");
    let out = w.run(&["device", "add", "--license", &sloppy, "--label", "plant 4"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = DeviceId::parse(stdout(&out).strip_suffix('\n').unwrap()).unwrap();

    let devices = w.show(&key)["devices"].clone();
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["clientDeviceId"], id.as_str());
    assert_eq!(devices[0]["label"], "plant 4");
    assert_eq!(devices[0]["publicKey"], Value::Null);
}

#[test]
fn device_add_refuses_an_unknown_or_mistyped_license() {
    let w = Workdir::initialised();
    let stranger = LicenseKey::generate().unwrap();
    let err = w.fails(&["device", "add", "--license", stranger.reveal()]);
    assert!(err.contains("no license has the key"), "{err}");
    assert!(!err.contains(stranger.reveal()), "{err}");
    let err = w.fails(&["device", "add", "--license", "REN3K1-nonsense"]);
    assert!(err.contains("license key"), "{err}");
}

// ---- issue

#[test]
fn issue_prints_only_a_payload_that_verifies_under_the_exported_root() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let request = w.request(&key, &device, 1);

    let out = w.run(&["issue", "--request", &request]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let payload = stdout(&out);
    let payload = payload.strip_suffix('\n').unwrap();
    assert!(payload.starts_with("ren3-payload-v3.") && !payload.contains('\n'));

    let opened = VerifiedPayload::open(payload, &w.trust()).unwrap();
    assert!(
        stderr(&out).contains(&format!("serial {}", opened.license.serial)),
        "{}",
        stderr(&out)
    );
    assert_eq!(opened.license.customer, "ACME");
    assert_eq!(opened.license.client_device_id, device);
    // The first serial of a device is the issuance time in microseconds.
    assert_eq!(
        opened.license.serial,
        opened.license.issued_at as u64 * 1_000_000
    );
    assert_eq!(
        opened.license.device_public_key,
        DeviceKey::from_seed(&[1; 32]).public_key()
    );
    let show = w.show(&key);
    assert_eq!(
        show["devices"][0]["publicKey"],
        opened.license.device_public_key.to_string()
    );
    assert_eq!(show["issuances"][0]["payload"], payload);
}

#[test]
fn issue_reads_stdin_and_writes_out_file() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let armoured = ren3_shared::Kind::Request.armor(&request_token(&key, &device, 1, 1));
    let out = w.run_with_stdin(
        &["issue", "--request", "-", "--out", "payload.txt"],
        &armoured,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let written = fs::read_to_string(w.path("payload.txt")).unwrap();
    assert!(VerifiedPayload::open(&written, &w.trust()).is_ok());
    assert_eq!(mode(&w.path("payload.txt")) & 0o022, 0);
}

#[test]
fn issue_twice_returns_same_payload() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let request = w.request(&key, &device, 1);
    let first = w.ok(&["issue", "--request", &request]);
    let before = w.show(&key);
    let out = w.run(&["issue", "--request", &request]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), first);
    assert!(stderr(&out).contains("answered before"), "{}", stderr(&out));
    assert_eq!(w.show(&key), before);
}

#[test]
fn issue_gives_a_higher_serial_to_a_second_request_of_the_same_device() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let first = w.json(&["issue", "--request", &w.request(&key, &device, 1)]);
    let second = w.json(&["issue", "--request", &w.request(&key, &device, 1)]);
    assert_eq!(
        (first["repeated"].clone(), second["repeated"].clone()),
        (false.into(), false.into())
    );
    assert!(
        second["serial"].as_u64().unwrap() > first["serial"].as_u64().unwrap(),
        "{first} then {second}"
    );
    assert_eq!(w.show(&key)["issuances"].as_array().unwrap().len(), 2);
}

#[test]
fn issue_refusals_exit_1_with_a_reason_and_change_nothing() {
    let w = Workdir::initialised();
    let acme = w.create_license("ACME", 1);
    let acme_device = w.add_device(&acme);
    let acme_spare = w.add_device(&acme);
    let globex = w.create_license("Globex", 1);
    let globex_device = w.add_device(&globex);
    let suspended = w.create_license("Suspended Inc", 1);
    let suspended_device = w.add_device(&suspended);
    w.ok(&["license", "suspend", suspended.reveal()]);
    w.ok(&["issue", "--request", &w.request(&acme, &acme_device, 1)]);
    let stranger = LicenseKey::generate().unwrap();

    let cases = [
        (
            "1. unknown license",
            w.request(&stranger, &acme_device, 1),
            "no license has the key",
        ),
        (
            "2. suspended",
            w.request(&suspended, &suspended_device, 1),
            "suspended",
        ),
        (
            "3. foreign device",
            w.request(&acme, &globex_device, 1),
            "belongs to the license",
        ),
        (
            "4. other installation",
            w.request(&acme, &acme_device, 2),
            "another installation",
        ),
        (
            "5. no free seat",
            w.request(&acme, &acme_spare, 3),
            "no free seat",
        ),
        (
            "6. not a request",
            w.path("missing.txt").display().to_string(),
            "cannot read",
        ),
    ];
    for (name, request, expected) in cases {
        let before: Vec<Value> = [&acme, &globex, &suspended].map(|k| w.show(k)).into();
        let err = w.fails(&["issue", "--request", &request]);
        assert!(err.contains(expected), "{name}: {err}");
        let after: Vec<Value> = [&acme, &globex, &suspended].map(|k| w.show(k)).into();
        assert_eq!(after, before, "{name}");
    }
}

// ---- output forms

#[test]
fn json_output_parses_for_every_command() {
    let w = Workdir::new();
    let init = w.json(INIT);
    assert!(init["keyId"].is_string());
    let created = w.json(&["license", "create", "--customer", "ACME"]);
    let key = LicenseKey::parse(created["licenseKey"].as_str().unwrap()).unwrap();
    assert_eq!(created["keyHint"], key.hint());
    let device = w.json(&["device", "add", "--license", key.reveal()]);
    let device = DeviceId::parse(device["clientDeviceId"].as_str().unwrap()).unwrap();
    let issued = w.json(&["issue", "--request", &w.request(&key, &device, 1)]);
    let payload = issued["payload"].as_str().unwrap().to_owned();
    assert_eq!(issued["keyId"], init["keyId"]);

    let keys = w.json(&["keys", "list"]);
    assert_eq!(keys["keys"][0]["keyId"], init["keyId"]);
    assert_eq!(keys["keys"][0]["signsNewPayloads"], true);
    assert!(keys["keys"][0]["certificate"]["notAfter"].is_string());
    assert_eq!(keys["keys"][0]["revoked"], Value::Null);
    assert_eq!(
        w.json(&["trust", "export-root"])["fingerprint"],
        init["rootFingerprint"]
    );
    let exported = w.json(&["trust", "export-root", "--out", "root.pub"]);
    assert_eq!(exported["keyId"], init["rootKeyId"]);
    assert_eq!(
        fs::read_to_string(w.path("root.pub")).unwrap(),
        fs::read_to_string(w.path("root/root.pub")).unwrap()
    );
    assert_eq!(
        w.json(&["license", "list"])["licenses"][0]["boundDevices"],
        1
    );
    assert_eq!(
        w.json(&["license", "show", key.reveal()])["issuances"][0]["serial"],
        issued["serial"]
    );
    fs::write(w.path("payload.txt"), &payload).unwrap();
    let inspected = w.json(&["inspect", "payload.txt"]);
    assert_eq!(inspected["verified"], true);
    assert_eq!(inspected["fields"]["customer"], "ACME");
}

#[test]
fn text_lists_show_licenses_and_keys() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME GmbH", 2);
    let device = w.add_device(&key);
    w.ok(&["issue", "--request", &w.request(&key, &device, 1)]);
    let list = w.ok(&["license", "list"]);
    let row = list.lines().nth(1).unwrap();
    assert!(
        row.contains("ACME GmbH") && row.contains(&key.hint()),
        "{list}"
    );
    assert!(
        row.contains("active") && row.contains("never") && row.contains("1/2"),
        "{list}"
    );
    let show = w.ok(&["license", "show", key.reveal()]);
    let device_row = show.lines().find(|l| l.contains(device.as_str())).unwrap();
    let installation = DeviceKey::from_seed(&[1; 32]).public_key().to_string();
    assert!(
        device_row.contains("bound ") && device_row.contains(&installation),
        "{show}"
    );
    assert!(w.ok(&["keys", "list"]).contains("signing"));
}

// ---- inspect

#[test]
fn inspect_verifies_good_tokens_against_the_store_or_a_root_file() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let request = w.request(&key, &device, 1);
    let payload = w.ok(&["issue", "--request", &request]);
    fs::write(w.path("payload.txt"), &payload).unwrap();
    fs::write(w.path("exported.pub"), w.ok(&["trust", "export-root"])).unwrap();

    let shown = w.ok(&["inspect", &request]);
    assert!(
        shown.contains("signature:") && shown.contains("verifies"),
        "{shown}"
    );
    assert!(shown.contains(device.as_str()), "{shown}");
    let shown = w.ok(&["inspect", "payload.txt"]);
    assert!(shown.contains("verifies against the root"), "{shown}");
    assert!(
        shown.contains("revocation list:") && shown.contains("version 1"),
        "{shown}"
    );
    assert!(
        shown.contains("customer:") && shown.contains("ACME"),
        "{shown}"
    );

    // Elsewhere, with no store, the root public key file does the job...
    let elsewhere = Workdir::new();
    let trust = w.path("exported.pub").display().to_string();
    let payload_file = w.path("payload.txt").display().to_string();
    let shown = elsewhere.ok(&["inspect", &payload_file, "--root", &trust]);
    assert!(shown.contains("verifies against the root"), "{shown}");
    // ...and without one, the fields still show but it does not verify.
    let out = elsewhere.run(&["inspect", &payload_file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("does NOT verify"), "{}", stdout(&out));
    assert!(stdout(&out).contains("ACME"));
}

#[test]
fn inspect_reports_tampered_tokens_and_exits_1() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    let payload = w.ok(&["issue", "--request", &w.request(&key, &device, 1)]);
    let payload = payload.trim_end();

    let forged = tamper(payload, "\"ACME\"", "\"EVIL\"");
    let out = w.run_with_stdin(&["inspect", "-"], &forged);
    assert_eq!(out.status.code(), Some(1));
    let shown = stdout(&out);
    assert!(shown.contains("does NOT verify: "), "{shown}");
    assert!(shown.contains("signature does not verify"), "{shown}");
    assert!(shown.contains("EVIL"), "{shown}");

    let damaged = &payload[..payload.len() - 4];
    let out = w.run_with_stdin(&["--json", "inspect", "-"], damaged);
    assert_eq!(out.status.code(), Some(1));
    let inspected: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(inspected["verified"], false);
    assert_eq!(inspected["problem"]["code"], "token_damaged");
}

#[test]
fn inspect_names_what_it_expects_for_other_input() {
    let w = Workdir::initialised();
    let out = w.run_with_stdin(&["inspect", "-"], "hello");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.contains("not a token this tool reads"), "{err}");
    for prefix in [
        "ren3-request-v2.",
        "ren3-payload-v3.",
        "ren3-receipt-v2.",
        "ren3-certificate-v1.",
        "ren3-revocations-v1.",
        "ren3-certification-request-v1.",
    ] {
        assert!(err.contains(prefix), "{prefix}: {err}");
    }
}

#[test]
fn user_add_reads_the_password_from_stdin_and_refuses_short_ones() {
    let w = Workdir::initialised();
    let short = w.run_with_stdin(&["user", "add", "bob"], "too short\n");
    assert_eq!(short.status.code(), Some(1));
    assert!(stderr(&short).contains("at least 12"), "{}", stderr(&short));
    let added = w.run_with_stdin(&["user", "add", "alice"], "a long console passphrase\n");
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let users = w.json(&["user", "list"]);
    assert_eq!(users["users"][0]["name"], "alice");
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
    w.ok(&["user", "remove", "alice"]);
    assert!(
        w.fails(&["user", "remove", "alice"])
            .contains("no user `alice`")
    );
}

#[test]
fn license_update_suspend_and_revoke_change_a_license_by_key() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let key = key.reveal();
    let updated = w.json(&[
        "license",
        "update",
        key,
        "--features",
        "export,ingest",
        "--limit",
        "max-sources=5",
        "--expires",
        "2099-12-31",
    ]);
    assert_eq!(updated["features"], serde_json::json!(["export", "ingest"]));
    assert_eq!(updated["limits"]["max-sources"], 5);
    assert_eq!(updated["expiresAt"], "2100-01-01T00:00:00Z");
    assert_eq!(w.json(&["license", "suspend", key])["status"], "suspended");
    assert_eq!(w.json(&["license", "reactivate", key])["status"], "active");
    assert_eq!(w.json(&["license", "revoke", key])["status"], "revoked");
    assert!(w.fails(&["license", "reactivate", key]).contains("final"));
    assert!(
        w.fails(&["license", "update", key, "--features", "x"])
            .contains("final")
    );
}

// ---- seats: release receipts and the installation's sequence number

/// The newest audit row, as (action, result, detail).
fn newest_audit(w: &Workdir) -> (String, String, String) {
    let store =
        ren3_issuer_core::setup::open_store(&ren3_issuer_core::StorePaths::new(w.db(), None))
            .unwrap();
    let page =
        ren3_issuer_core::audit::page(&store, &ren3_issuer_core::audit::Filter::default(), 1)
            .unwrap();
    let entry = page.entries.into_iter().next().unwrap();
    (entry.action, entry.result, entry.detail)
}

/// Issue 14's attack: installation A deactivates and its receipt R1 is kept
/// back; A registers again and is answered with serial 2. R1 must not free
/// the seat, or A and a second installation B would both run on one seat.
#[test]
fn a_receipt_kept_back_while_the_installation_registered_again_is_refused_as_stale() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let device = w.add_device(&key);
    // A (installation 1): request 1 → serial 1, imported; deactivates: R1
    // has counter 2.
    let first = w.json(&[
        "issue",
        "--request",
        &w.numbered_request(&key, &device, 1, 1),
    ]);
    let serial_1 = first["serial"].as_u64().unwrap();
    let r1 = w.receipt(&key, &device, 1, serial_1, 2);
    // A registers again (request 3): "already bound to this installation".
    let second = w.json(&[
        "issue",
        "--request",
        &w.numbered_request(&key, &device, 1, 3),
    ]);
    let serial_2 = second["serial"].as_u64().unwrap();
    assert!(serial_2 > serial_1, "{serial_2} after {serial_1}");

    let inspected = w.run(&["inspect", &r1]);
    assert!(
        stdout(&inspected).contains("would be refused (receipt_stale)"),
        "{}",
        stdout(&inspected)
    );
    let before = w.show(&key);
    let err = w.fails(&["release", "--receipt", &r1]);
    for says in [
        "the seat was not released; nothing changed",
        "counter 2",
        "before request 3",
        &format!("serial {serial_2}"),
        "Ask the customer for the receipt of their latest deactivation",
        "if the machine is gone",
        &format!("`ren3-issuer device release --device {device} --force --reason TEXT`"),
        "[receipt_stale]",
    ] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert_eq!(w.show(&key), before, "the seat stays bound");
    let (action, result, detail) = newest_audit(&w);
    assert_eq!(
        (action.as_str(), result.as_str()),
        ("device.release", "refused")
    );
    assert!(detail.starts_with("receipt_stale: "), "{detail}");

    // B (installation 2), the same device id on another machine, cannot
    // take the seat.
    let b_request = w.numbered_request(&key, &device, 2, 1);
    let err = w.fails(&["issue", "--request", &b_request]);
    assert!(
        err.contains("[device_bound_to_other_installation]"),
        "{err}"
    );

    // A forced release still frees it, and B gets a higher serial still.
    w.ok(&[
        "device",
        "release",
        "--device",
        device.as_str(),
        "--force",
        "--reason",
        "customer sent a stale receipt; machine A retired",
    ]);
    let third = w.json(&["issue", "--request", &b_request]);
    assert!(third["serial"].as_u64().unwrap() > serial_2, "{third}");
    let bound: Vec<Value> = w.show(&key)["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["publicKey"].clone())
        .collect();
    assert_eq!(
        bound,
        [Value::from(
            DeviceKey::from_seed(&[2; 32]).public_key().to_string()
        )]
    );
}

/// The honest sequence: register, the vendor issues, the payload is lost
/// in the mail, the customer deactivates (the receipt comes after the
/// request) and sends the receipt. It frees the seat.
#[test]
fn a_receipt_signed_after_a_request_whose_payload_was_lost_frees_the_seat() {
    let cases: [(&str, &[u64], u64, u64); 2] = [
        ("1. the first payload lost", &[1], 1, 2),
        ("2. serial 1 imported, a renewal lost", &[1, 2], 1, 3),
    ];
    for (name, requests, serial, counter) in cases {
        let w = Workdir::initialised();
        let key = w.create_license("ACME", 1);
        let device = w.add_device(&key);
        // The serials issued, in order: the receipt names the `serial`-th.
        let serials: Vec<u64> = requests
            .iter()
            .map(|&n| {
                w.json(&[
                    "issue",
                    "--request",
                    &w.numbered_request(&key, &device, 1, n),
                ])["serial"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        let serial = serials[usize::try_from(serial).unwrap() - 1];
        let receipt = w.receipt(&key, &device, 1, serial, counter);
        let out = w.run(&["release", "--receipt", &receipt]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("{device}\n"), "{name}");
        let details = w.show(&key);
        assert_eq!(details["devices"][0]["publicKey"], Value::Null, "{name}");
        assert_eq!(details["releases"][0]["counter"], counter, "{name}");
        // The seat is free for another installation.
        let other = w.json(&[
            "issue",
            "--request",
            &w.numbered_request(&key, &device, 2, 1),
        ]);
        assert_eq!(other["repeated"], false, "{name}");
    }
}

/// Every refusal ends with its stable code, whichever rule refused, so a
/// script can tell them apart without parsing the sentence.
#[test]
fn every_refusal_ends_with_its_code() {
    let w = Workdir::initialised();
    let unknown_key = "REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q";
    for (args, code) in [
        (&["license", "show", unknown_key][..], "license_unknown"),
        (
            &["license", "create", "--customer", " "],
            "customer_invalid",
        ),
        (
            &["license", "create", "--customer", "ACME", "--limit", "x"],
            "limit_invalid",
        ),
        (&["keys", "retire", "AAAAAAAAAAs"], "key_unknown"),
        (&["user", "remove", "nobody"], "user_unknown"),
    ] {
        let err = w.fails(args);
        assert!(
            err.starts_with("error: ") && err.ends_with(&format!(" [{code}]\n")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn version_names_the_package_and_the_commit() {
    let work = Workdir::new();
    let out = work.run(&["--version"]);
    assert!(out.status.success());
    let version = stdout(&out);
    let prefix = format!("ren3-issuer {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = version
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version}"));
    ren3_testkit::assert_is_this_checkouts_commit(commit);
}
