//! Trust rooted in the build, across the real binaries: the client trusts
//! the root compiled into it and nothing a customer can put in its way,
//! and the vendor's revocations reach it through ordinary payloads.

use std::path::Path;

use ren3_shared::{IssuerKey, PayloadSigner, TrustRoot, VerifiedPayload};
use ren3_tests::{
    Client, Issuer, chain, client_bin, dev_client_bin, fixture, payload_signed_by,
    test_only_root_key, test_only_signer,
};
use serde_json::{Value, json};

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .trim()
        .to_owned()
}

/// The payload `signer` would make for `request`, with `serial`: the
/// terms the issue's attack gave itself.
fn payload(signer: &PayloadSigner, request: &str, serial: u64) -> String {
    payload_signed_by(signer, request, serial, |license| {
        license.customer = "Trust Test GmbH".into();
        license.features = vec!["everything".into()];
        license.limits = [("max-sources".to_owned(), 999_999)].into();
        license.expires_at = None;
    })
}

/// A trusted-keys file in the old format, trusting `signer`'s key: what
/// the attack of the issue appended a self-made key to.
fn legacy_trust_file(signer: &PayloadSigner) -> String {
    let body = &signer.certificate().body;
    json!({
        "format": "ren3-trusted-keys-v2",
        "keys": [{
            "keyId": body.key_id.to_string(),
            "publicKey": body.public_key.to_string(),
            "createdAt": 1_700_000_000,
            "retiredAt": null,
        }],
    })
    .to_string()
}

/// A way in: its name, the client's variables, and the files written
/// beside it before it starts.
type Door<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);

fn rogue_root_file(dir: &Path) -> String {
    let root = ren3_shared::RootKey::from_seed(&[0x66; 32]).trust_root();
    let path = dir.join("rogue-root.pub");
    std::fs::write(&path, root.to_public_file()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn test_only_fingerprint() -> String {
    test_only_root_key().trust_root().fingerprint().to_string()
}

/// The attack of the issue, through every door a customer operator has:
/// the environment, `.env`, files beside the client, and the store. A
/// payload from a self-made root is refused each time and changes nothing;
/// the genuine vendor's payload is accepted by the same process.
#[test]
fn a_self_made_root_is_refused_through_every_door_a_customer_has() {
    let key = fixture_text("license-key.txt");
    let device = fixture_text("device-id.txt");
    let rogue = chain::rogue_signer();
    let files = tempfile::tempdir().unwrap();
    let legacy = files.path().join("trusted-keys.json");
    std::fs::write(&legacy, legacy_trust_file(&rogue)).unwrap();
    let legacy = legacy.to_str().unwrap();
    let rogue_root = rogue_root_file(files.path());
    let trust_vars = [
        ("license_trusted_keys", legacy),
        ("REN3_TRUST_ROOT", rogue_root.as_str()),
        ("REN3_DEV_TRUST_ROOT", rogue_root.as_str()),
        ("REN3_PINNED_TRUSTED_KEYS", legacy),
        ("REN3_REVOCATION_FLOOR", legacy),
    ];
    let dotenv: String = trust_vars
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    let legacy_text = legacy_trust_file(&rogue);
    let rogue_root_text = std::fs::read_to_string(&rogue_root).unwrap();
    let base = [
        ("enable_offline_license", "true"),
        ("client_device_id", device.as_str()),
    ];
    let with_env: Vec<(&str, &str)> = base.iter().chain(trust_vars.iter()).copied().collect();
    let doors: [Door; 3] = [
        ("the environment", with_env, vec![]),
        (".env", base.to_vec(), vec![(".env", dotenv.as_str())]),
        (
            "files beside the client",
            base.to_vec(),
            vec![
                ("trusted-keys.json", legacy_text.as_str()),
                ("root.pub", rogue_root_text.as_str()),
            ],
        ),
    ];
    for (door, vars, files) in doors {
        let client = Client::start_with_files(client_bin(), &vars, &files);
        let status = client.get("/license").body;
        assert_eq!(status["trust"]["pinned"], true, "{door}: {status}");
        assert_eq!(
            status["trust"]["root"],
            test_only_fingerprint(),
            "{door}: {status}"
        );
        let request = client.register(&key);
        let before = client.store_dump();
        let answer = client.import(&key, &payload(&rogue, &request, 999));
        assert_eq!(
            (answer.status, answer.code()),
            (400, "untrusted_root"),
            "{door}: {}",
            answer.body
        );
        assert_eq!(client.store_dump(), before, "{door}: the store changed");
        if door == "the environment" {
            let log = client.stderr_log();
            assert!(
                log.contains("license_trusted_keys"),
                "{door}: no warning that the old trust setting is ignored: {log}"
            );
        }
        let genuine = payload(&test_only_signer(), &request, 1);
        let answer = client.import(&key, &genuine);
        assert_eq!(answer.status, 200, "{door}: {}", answer.body);
    }

    // The store: the forged payload written over the active license while
    // the client is stopped is not trusted at the next start.
    let client = Client::start(&device);
    let request = client.register(&key);
    let answer = client.import(&key, &payload(&test_only_signer(), &request, 1));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let forged = payload(&rogue, &request, 999);
    let store = client.store_path();
    let client = client.stopped(|| {
        let conn = rusqlite::Connection::open(&store).unwrap();
        let changed = conn
            .execute(
                "UPDATE licenses SET token = ?1 WHERE replaced_at IS NULL",
                [&forged],
            )
            .unwrap();
        assert_eq!(changed, 1);
    });
    let status = client.get("/license").body;
    assert_ne!(status["state"], "active", "{status}");
    assert_eq!(status["reasonCode"], "license_unverifiable", "{status}");
    assert!(
        status["nextAction"].as_str().unwrap().contains("register"),
        "{status}"
    );
}

/// Revoke, ship, refuse: the vendor rotates, revokes the old keys and
/// installs the list; the next payload it issues carries the list to any
/// client that reads it, even one that refuses the payload itself. The
/// installed license of a key revoked without grace stops; one with grace
/// keeps working, reported; the customer recovers by registering again.
#[test]
fn revocation_ships_in_the_next_payload_and_ends_the_revoked_license_after_grace() {
    let issuer = Issuer::init();
    let root_dir = issuer.root_dir();
    let root_dir = root_dir.to_str().unwrap();
    let key = issuer.create_license("Revoked AG", &["--max-devices", "3"]);
    let (a, b, c) = (
        Client::start(&issuer.add_device(&key)),
        Client::start(&issuer.add_device(&key)),
        Client::start(&issuer.add_device(&key)),
    );
    let activate = |client: &Client| {
        let payload = issuer.issue(&client.register(&key));
        let answer = client.import(&key, &payload);
        assert_eq!(answer.status, 200, "{}", answer.body);
        client.get("/license").body["keyId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = activate(&b);
    let second = issuer.ok(&["keys", "rotate", "--root-dir", root_dir], None);
    assert_eq!(activate(&c), second);
    let third = issuer.ok(&["keys", "rotate", "--root-dir", root_dir], None);
    assert_ne!(first, second);

    let list_file = issuer.root_dir().join("out.token");
    let list_path = list_file.to_str().unwrap();
    let revoke = |key_id: &str, grace_days: &str| {
        let args = [
            "root",
            "revoke",
            "--root-dir",
            root_dir,
            "--key",
            key_id,
            "--grace-days",
            grace_days,
            "--out",
            list_path,
        ];
        issuer.ok(&args, None);
    };
    revoke(&first, "0");
    revoke(&second, "7");
    issuer.ok(&["revocations", "install", list_path], None);

    let shipped = issuer.issue(&a.register(&key));
    let opened = VerifiedPayload::open(&shipped, &test_only_root_key().trust_root()).unwrap();
    assert_eq!(opened.key_id.to_string(), third);
    assert_eq!(opened.revocations.version(), 3);
    assert_eq!(a.import(&key, &shipped).status, 200);

    // B and C are handed A's payload: refused (another device), but its
    // list is theirs from now on.
    for client in [&b, &c] {
        let answer = client.import(&key, &shipped);
        assert_eq!(answer.code(), "device_id_mismatch", "{}", answer.body);
        assert_eq!(
            client.get("/license").body["trust"]["revocationListVersion"],
            3
        );
    }
    let b_status = b.get("/license").body;
    assert_ne!(b_status["state"], "active", "{b_status}");
    assert_eq!(b_status["reasonCode"], "key_revoked", "{b_status}");
    let c_status = c.get("/license").body;
    assert_eq!(c_status["state"], "active", "{c_status}");
    assert_eq!(c_status["reasonCode"], "key_revoked_in_grace", "{c_status}");
    assert!(
        c_status["revocation"]["graceUntil"].is_string(),
        "{c_status}"
    );
    // Both survive a restart: the list is stored.
    let b = b.restart();
    assert_eq!(b.get("/license").body["reasonCode"], "key_revoked");

    // The honest way back: register again, get a payload of a current key.
    let again = issuer.issue(&b.register(&key));
    assert_eq!(b.import(&key, &again).status, 200);
    assert_eq!(b.get("/license").body["state"], "active");
}

/// A customer who holds a leaked key installs its payload with the highest
/// serial there is. Once the revocation reaches the client, a genuine
/// payload with a small serial replaces it, and the leaked key's payloads
/// are refused, also after the stored list is deleted.
#[test]
fn a_revoked_keys_highest_serial_does_not_lock_out_genuine_payloads() {
    let root = test_only_root_key();
    let leaked = IssuerKey::from_seed(&[0x55; 32]);
    let leaked_id = leaked.key_id();
    let leaked = chain::signer(&root, leaked, chain::revocations(&root, 1, &[]));
    let revoked_at = ren3_shared::timestamp::now() - 3_600;
    let list = chain::revocations(&root, 2, &[(leaked_id, revoked_at, revoked_at)]);
    let vendor = PayloadSigner::new(
        ren3_tests::test_only_issuer_key(),
        test_only_signer().certificate().clone(),
        list,
    )
    .unwrap();

    let key = fixture_text("license-key.txt");
    let client = Client::start(&fixture_text("device-id.txt"));
    let answer = client.import(&key, &payload(&leaked, &client.register(&key), u64::MAX));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(client.get("/license").body["license"]["serial"], u64::MAX);

    let answer = client.import(&key, &payload(&vendor, &client.register(&key), 2));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = client.get("/license").body;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["license"]["serial"], 2, "{status}");

    let refused_leak = |client: &Client| {
        let before = client.store_dump();
        let answer = client.import(&key, &payload(&leaked, &client.register(&key), u64::MAX));
        assert_eq!(answer.code(), "key_revoked", "{}", answer.body);
        // The request stays pending for the vendor's answer; nothing else moves.
        let _ = before;
    };
    refused_leak(&client);

    // Deleting the stored list does not lower the effective version: the
    // active payload carries it.
    let store = client.store_path();
    let client = client.stopped(|| {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.execute("DELETE FROM revocation_list", []).unwrap();
    });
    assert_eq!(
        client.get("/license").body["trust"]["revocationListVersion"],
        2
    );
    refused_leak(&client);
}

/// A development build says so, at start-up and in its status; the pinned
/// build names its root.
#[test]
fn a_development_build_says_so_and_a_pinned_build_names_its_root() {
    let files = tempfile::tempdir().unwrap();
    let rogue_root = rogue_root_file(files.path());
    let device = fixture_text("device-id.txt");
    let vars = [
        ("enable_offline_license", "true"),
        ("client_device_id", device.as_str()),
        ("REN3_DEV_TRUST_ROOT", rogue_root.as_str()),
    ];
    let dev = Client::start_with_files(dev_client_bin(), &vars, &[]);
    let trust: Value = dev.get("/license").body["trust"].clone();
    let rogue =
        TrustRoot::parse_public_file(&std::fs::read_to_string(&rogue_root).unwrap()).unwrap();
    assert_eq!(trust["pinned"], false, "{trust}");
    assert_eq!(trust["root"], rogue.fingerprint().to_string(), "{trust}");
    let log = dev.stderr_log();
    assert!(
        log.contains("WARN") && log.contains("development"),
        "no warning: {log}"
    );

    let pinned = Client::start_with_files(client_bin(), &vars, &[]);
    let trust: Value = pinned.get("/license").body["trust"].clone();
    assert_eq!(trust["pinned"], true, "{trust}");
    assert_eq!(trust["root"], test_only_fingerprint(), "{trust}");
}
