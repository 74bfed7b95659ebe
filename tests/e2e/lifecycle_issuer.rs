//! The vendor's side of the license lifecycle with the real binaries: key
//! rotation and retirement, releasing and transferring seats with the
//! client's release receipts, forced releases, renewals with new terms, and
//! signing keys encrypted at rest. Every refusal leaves the issuer's store
//! as it was (but for the audit row that records the refusal).

use ren3_tests::{Client, Issuer};
use serde_json::{Value, json};

/// The serial `payload` carries: the issuer's, from the issuance time
/// (`docs/FORMAT.md` §5).
fn serial_of(payload: &str) -> u64 {
    ren3_shared::payload::decode_unverified(payload)
        .unwrap()
        .1
        .serial
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A license of `seats` seats, never expiring, with one device per entry
/// of `devices`.
fn license(issuer: &Issuer, seats: &str) -> String {
    issuer.create_license(
        "ACME Corp",
        &["--features", "ingest", "--max-devices", seats],
    )
}

/// Registers, issues and imports: the client is active afterwards.
fn activate(issuer: &Issuer, client: &Client, key: &str) -> String {
    let payload = issuer.issue(&client.register(key));
    let answer = client.import(key, &payload);
    assert_eq!(answer.status, 200, "{}", answer.body);
    payload
}

fn deactivate(client: &Client, key: &str) -> String {
    let answer = client.post_json("/license/deactivate", &json!({ "licenseKey": key }));
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["releaseReceipt"].as_str().unwrap().to_owned()
}

/// Runs a command that must fail, and proves it changed nothing.
fn refused(issuer: &Issuer, args: &[&str], stdin: Option<&str>) -> String {
    let before = issuer.dump_without_audit();
    let stderr = issuer.fails(args, stdin);
    assert_eq!(
        issuer.dump_without_audit(),
        before,
        "{args:?} changed the store"
    );
    stderr
}

/// Rotation through the offline root, as the vendor does it when the root
/// lives on another machine: the new key asks to be certified, the root
/// answers from its own directory, the issuer installs the answer. Until
/// then the old key keeps signing; after it, the new one does, and a client
/// that was running all along accepts its payloads with nothing new to read.
#[test]
fn a_rotated_key_signs_once_the_offline_root_certifies_it_and_running_clients_accept_it() {
    let issuer = Issuer::init();
    let keys = |issuer: &Issuer| json_of(&issuer.ok(&["--json", "keys", "list"], None));
    let old_key = keys(&issuer)["keys"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = license(&issuer, "2");
    let device = issuer.add_device(&key);
    let client = Client::start(&device);

    // 1. A new key without a certificate signs nothing: the old one signs.
    let new_key = issuer.ok(&["keys", "rotate"], None);
    assert_ne!(new_key, old_key);
    let listed = keys(&issuer);
    assert_eq!(listed["keys"][1]["keyId"], new_key.as_str());
    assert_eq!(listed["keys"][1]["signsNewPayloads"], false, "{listed}");
    assert_eq!(listed["keys"][1]["certificate"], Value::Null, "{listed}");
    assert_eq!(listed["keys"][0]["signsNewPayloads"], true, "{listed}");

    // 2. The round trip through files: the root's directory is only ever
    //    given to `root certify`.
    let dir = tempfile::tempdir().unwrap();
    let request_file = dir.path().join("certify-me.token");
    let certificate_file = dir.path().join("certificate.token");
    issuer.ok(
        &[
            "keys",
            "certification-request",
            &new_key,
            "--out",
            request_file.to_str().unwrap(),
        ],
        None,
    );
    let root_dir = issuer.root_dir();
    issuer.ok(
        &[
            "root",
            "certify",
            "--root-dir",
            root_dir.to_str().unwrap(),
            "--request",
            request_file.to_str().unwrap(),
            "--out",
            certificate_file.to_str().unwrap(),
        ],
        None,
    );
    let certificate = std::fs::read_to_string(&certificate_file).unwrap();
    let inspected = issuer.ok(&["inspect", "-"], Some(&certificate));
    assert!(inspected.contains(&new_key), "{inspected}");
    issuer.ok(
        &[
            "keys",
            "install-certificate",
            certificate_file.to_str().unwrap(),
        ],
        None,
    );
    let listed = keys(&issuer);
    assert_eq!(listed["keys"][1]["signsNewPayloads"], true, "{listed}");
    assert_eq!(listed["keys"][0]["signsNewPayloads"], false, "{listed}");

    // 3. The new key signs, and the client that was already running
    //    accepts it: its root certified the key.
    let issued = json_of(&issuer.ok(
        &["--json", "issue", "--request", "-"],
        Some(&client.register(&key)),
    ));
    assert_eq!(issued["keyId"], new_key.as_str());
    let answer = client.import(&key, issued["payload"].as_str().unwrap());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(client.get("/license").body["keyId"], new_key.as_str());

    // 4. A certificate from another root is refused and changes nothing.
    let stranger = Issuer::init_with_own_root();
    let stranger_key = stranger.ok(&["keys", "rotate"], None);
    let foreign_request = dir.path().join("foreign.token");
    stranger.ok(
        &[
            "keys",
            "certification-request",
            &stranger_key,
            "--out",
            foreign_request.to_str().unwrap(),
        ],
        None,
    );
    let foreign = stranger.ok(
        &[
            "root",
            "certify",
            "--root-dir",
            stranger.root_dir().to_str().unwrap(),
            "--request",
            foreign_request.to_str().unwrap(),
        ],
        None,
    );
    let stderr = refused(
        &issuer,
        &["keys", "install-certificate", "-"],
        Some(&foreign),
    );
    assert!(stderr.contains("untrusted_root"), "{stderr}");
}

#[test]
fn a_retired_keys_earlier_payloads_stay_valid_and_it_signs_nothing_more() {
    let issuer = Issuer::init();
    let old_key = json_of(&issuer.ok(&["--json", "keys", "list"], None))["keys"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = license(&issuer, "1");
    let device = issuer.add_device(&key);
    let client = Client::start(&device);
    let old_payload = issuer.issue(&client.register(&key));

    // 1. the only certified unretired key cannot be retired
    let stderr = refused(&issuer, &["keys", "retire", &old_key], None);
    assert!(stderr.contains("key_last_unretired"), "{stderr}");
    // 2. nor can an unknown one
    let stderr = refused(&issuer, &["keys", "retire", "AAAAAAAAAAA"], None);
    assert!(stderr.contains("key_unknown"), "{stderr}");

    let root_dir = issuer.root_dir();
    let new_key = issuer.ok(
        &["keys", "rotate", "--root-dir", root_dir.to_str().unwrap()],
        None,
    );
    issuer.ok(&["keys", "retire", &old_key], None);
    let listed = json_of(&issuer.ok(&["--json", "keys", "list"], None));
    assert!(listed["keys"][0]["retiredAt"].is_string(), "{listed}");
    assert_eq!(listed["keys"][1]["keyId"], new_key.as_str());
    assert_eq!(listed["keys"][1]["signsNewPayloads"], true, "{listed}");
    // 3. retiring it again is refused
    let stderr = refused(&issuer, &["keys", "retire", &old_key], None);
    assert!(stderr.contains("key_already_retired"), "{stderr}");

    // A payload the retired key signed before its retirement still imports:
    // retirement stops signing; only revocation refuses what a key signed.
    let answer = client.import(&key, &old_payload);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let renewal = json_of(&issuer.ok(
        &["--json", "issue", "--request", "-"],
        Some(&client.register(&key)),
    ));
    assert_eq!(renewal["keyId"], new_key.as_str());
}

#[test]
fn receipt_transfers_the_seat_to_another_installation_and_is_accepted_once() {
    let issuer = Issuer::init();
    let key = license(&issuer, "1");
    let first = Client::start(&issuer.add_device(&key));
    let second_device = issuer.add_device(&key);
    let second = Client::start(&second_device);
    activate(&issuer, &first, &key);

    // The only seat is taken.
    let waiting = second.register(&key);
    let stderr = refused(&issuer, &["issue", "--request", "-"], Some(&waiting));
    assert!(stderr.contains("no free seat"), "{stderr}");

    let receipt = deactivate(&first, &key);
    let inspected = json_of(&issuer.ok(&["--json", "inspect", "-"], Some(&receipt)));
    assert_eq!(inspected["kind"], "receipt");
    assert_eq!(inspected["verified"], true);
    assert_eq!(
        inspected["fields"]["release"]["wouldRelease"], true,
        "{inspected}"
    );

    let released = issuer.ok(&["release", "--receipt", "-"], Some(&receipt));
    assert!(released.starts_with("REN3D1-"), "{released}");
    let shown = json_of(&issuer.ok(&["--json", "license", "show", &key], None));
    assert_eq!(shown["releases"][0]["forced"], false, "{shown}");
    assert_eq!(shown["releases"][0]["counter"], 2);

    // 1. the same receipt again
    let stderr = refused(&issuer, &["release", "--receipt", "-"], Some(&receipt));
    assert!(stderr.contains("receipt_replayed"), "{stderr}");
    // 2. a forged one
    let forged = ren3_tests::reseal_with_edited_message(&receipt, |m| {
        let text = String::from_utf8(m.clone()).unwrap();
        *m = text.replace("\"counter\":2", "\"counter\":3").into_bytes();
    });
    let stderr = refused(&issuer, &["release", "--receipt", "-"], Some(&forged));
    assert!(stderr.contains("signature_invalid"), "{stderr}");

    // The freed seat goes to the other installation.
    let payload = issuer.issue(&waiting);
    let answer = second.import(&key, &payload);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(second.get("/license").body["state"], "active");
}

/// Issue 14's attack, step by step, with documented commands only: the
/// customer deactivates A and keeps the receipt back, registers A again,
/// then sends the old receipt to free the seat for a second machine B
/// with the same device id. One seat, one machine: A's new key cannot be
/// answered until its seat is released; once it is, the receipt is spent
/// and B is refused.
#[test]
fn a_receipt_kept_back_cannot_put_two_machines_on_one_seat() {
    let issuer = Issuer::init();
    let key = license(&issuer, "1");
    let device = issuer.add_device(&key);
    let a = Client::start(&device);
    activate(&issuer, &a, &key);
    let kept_back = deactivate(&a, &key);

    // A registers again: a new device key, whose seat is still bound to
    // the old one until the receipt comes.
    let again = a.register(&key);
    let stderr = refused(&issuer, &["issue", "--request", "-"], Some(&again));
    assert!(
        stderr.contains("device_bound_to_other_installation"),
        "{stderr}"
    );

    // The receipt frees the seat; A's new request is answered.
    issuer.ok(&["release", "--receipt", "-"], Some(&kept_back));
    let payload = issuer.issue(&again);
    assert_eq!(a.import(&key, &payload).status, 200);

    // The receipt again, and a second machine with the same device id:
    // refused; only A is active, and the issuer counts one seat.
    let stderr = refused(&issuer, &["release", "--receipt", "-"], Some(&kept_back));
    assert!(
        stderr.contains("receipt_replayed") || stderr.contains("receipt_wrong_device"),
        "{stderr}"
    );
    let b = Client::start(&device);
    let stderr = refused(
        &issuer,
        &["issue", "--request", "-"],
        Some(&b.register(&key)),
    );
    assert!(
        stderr.contains("device_bound_to_other_installation") || stderr.contains("no free seat"),
        "{stderr}"
    );
    assert_eq!(a.get("/license").body["state"], "active");
    assert_ne!(b.get("/license").body["state"], "active");
}

/// The honest sequence the sequence number must let through: the customer
/// registers, the vendor answers, the payload is lost in the mail, and the
/// customer deactivates. The receipt was signed after the request the
/// vendor answered, so it frees the seat.
#[test]
fn a_payload_lost_in_the_mail_does_not_stop_the_honest_release() {
    let issuer = Issuer::init();
    let key = license(&issuer, "1");
    let device = issuer.add_device(&key);
    let a = Client::start(&device);
    activate(&issuer, &a, &key);
    // A renewal is asked for and answered, and the answer never arrives.
    let _lost = issuer.issue(&a.register(&key));
    let receipt = deactivate(&a, &key);
    let released = issuer.ok(&["release", "--receipt", "-"], Some(&receipt));
    assert_eq!(released, device);
    // The seat is free: a new installation takes it.
    let b = Client::start(&device);
    activate(&issuer, &b, &key);
    assert_eq!(b.get("/license").body["state"], "active");
}

#[test]
fn forced_release_frees_a_lost_machines_seat_and_its_late_receipt_is_refused() {
    let issuer = Issuer::init();
    let key = license(&issuer, "1");
    let device = issuer.add_device(&key);
    let lost = Client::start(&device);
    activate(&issuer, &lost, &key);
    // The machine "is lost" with a receipt it signed but nobody sent.
    let late_receipt = deactivate(&lost, &key);

    let stderr = refused(
        &issuer,
        &[
            "device", "release", "--device", &device, "--force", "--reason", " ",
        ],
        None,
    );
    assert!(stderr.contains("release_reason_invalid"), "{stderr}");
    let out = issuer.run(
        &["device", "release", "--device", &device, "--reason", "lost"],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "--force is required");

    issuer.ok(
        &[
            "device",
            "release",
            "--device",
            &device,
            "--force",
            "--reason",
            "laptop stolen",
        ],
        None,
    );
    let shown = json_of(&issuer.ok(&["--json", "license", "show", &key], None));
    assert_eq!(shown["releases"][0]["forced"], true, "{shown}");
    assert_eq!(shown["releases"][0]["reason"], "laptop stolen");
    let audit = rusqlite::Connection::open(issuer.db())
        .unwrap()
        .query_row(
            "SELECT detail FROM audit WHERE action = 'device.force-release' AND result = 'ok'",
            [],
            |row| row.get::<_, String>(0),
        )
        .unwrap();
    assert!(
        audit.contains("FORCED") && audit.contains("laptop stolen"),
        "{audit}"
    );

    // A replacement installation takes the same device id.
    let replacement = Client::start(&device);
    activate(&issuer, &replacement, &key);
    // The lost machine's receipt turns up: it is from another installation.
    let stderr = refused(&issuer, &["release", "--receipt", "-"], Some(&late_receipt));
    assert!(stderr.contains("receipt_wrong_device"), "{stderr}");
    let inspected = json_of(&issuer.ok(&["--json", "inspect", "-"], Some(&late_receipt)));
    assert_eq!(
        inspected["fields"]["release"]["problem"]["code"],
        "receipt_wrong_device"
    );
}

#[test]
fn renewal_carries_new_terms_grace_and_clock_policy_in_a_higher_serial() {
    let issuer = Issuer::init();
    let key = issuer.create_license(
        "ACME Corp",
        &[
            "--features",
            "ingest",
            "--expires",
            "2099-12-31",
            "--grace-days",
            "14",
            "--clock-policy",
            "enforcing",
        ],
    );
    let device = issuer.add_device(&key);
    let client = Client::start(&device);
    let first = activate(&issuer, &client, &key);
    let inspected = json_of(&issuer.ok(&["--json", "inspect", "-"], Some(&first)));
    assert_eq!(inspected["fields"]["graceSeconds"], 14 * 86_400);
    assert_eq!(inspected["fields"]["clockPolicy"], "enforcing");

    let stderr = refused(
        &issuer,
        &["license", "update", &key, "--grace-days", "400"],
        None,
    );
    assert!(stderr.contains("366 days"), "{stderr}");
    issuer.ok(
        &[
            "license",
            "update",
            &key,
            "--features",
            "ingest,reports",
            "--expires",
            "2100-06-30",
            "--grace-days",
            "0",
            "--clock-policy",
            "advisory",
        ],
        None,
    );
    let renewed = activate(&issuer, &client, &key);
    let inspected = json_of(&issuer.ok(&["--json", "inspect", "-"], Some(&renewed)));
    assert_eq!(inspected["fields"]["serial"], serial_of(&renewed));
    assert!(serial_of(&renewed) > serial_of(&first));
    assert_eq!(inspected["fields"]["graceSeconds"], 0);
    assert_eq!(inspected["fields"]["clockPolicy"], "advisory");
    let status = client.get("/license").body;
    assert_eq!(status["license"]["serial"], serial_of(&renewed), "{status}");
    assert_eq!(status["license"]["features"], json!(["ingest", "reports"]));
    assert_eq!(status["license"]["expiresAt"], "2100-07-01T00:00:00Z");
}

#[test]
fn encrypted_key_signs_with_the_right_passphrase_and_nothing_with_a_wrong_one() {
    let right = [("REN3_ISSUER_PASSPHRASE", "correct horse battery staple")];
    let wrong = [("REN3_ISSUER_PASSPHRASE", "incorrect horse")];
    let issuer = Issuer::init_with(&["--encrypt"], &right);
    let files = issuer.key_files();
    assert!(
        files[0]
            .1
            .contains("ren3-issuer-signing-key-encrypted-v2: argon2id"),
        "{files:?}"
    );
    let key = license(&issuer, "1");
    let device = issuer.add_device(&key);
    let client = Client::start(&device);
    let request = client.register(&key);

    for (name, env) in [("1. wrong passphrase", &wrong[..]), ("2. none", &[][..])] {
        let before = issuer.dump_without_audit();
        let out = issuer.run_with_env(&["issue", "--request", "-"], Some(&request), env);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing signed");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let expected = if env.is_empty() {
            "REN3_ISSUER_PASSPHRASE"
        } else {
            "wrong passphrase"
        };
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert_eq!(issuer.dump_without_audit(), before, "{name}");
        assert_eq!(issuer.key_files(), files, "{name}");
    }

    let out = issuer.run_with_env(&["issue", "--request", "-"], Some(&request), &right);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let payload = String::from_utf8(out.stdout).unwrap();
    let answer = client.import(&key, payload.trim());
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn a_plain_key_can_be_encrypted_later_and_a_rotated_key_encrypted_from_the_start() {
    let issuer = Issuer::init();
    let pass = [("REN3_ISSUER_PASSPHRASE", "pass phrase")];
    let first = json_of(&issuer.ok(&["--json", "keys", "list"], None))["keys"][0]["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = issuer.run_with_env(&["keys", "encrypt", &first], None, &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = issuer.run_with_env(&["keys", "rotate", "--encrypt"], None, &pass);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = json_of(&issuer.ok(&["--json", "keys", "list"], None));
    assert_eq!(listed["keys"][0]["privateKey"], "encrypted");
    assert_eq!(listed["keys"][1]["privateKey"], "encrypted");
    // Encrypting twice is refused and leaves the file as it was.
    let files = issuer.key_files();
    let out = issuer.run_with_env(&["keys", "encrypt", &first], None, &pass);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key_already_encrypted"));
    assert_eq!(issuer.key_files(), files);
}
