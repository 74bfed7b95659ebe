//! The license lifecycle on the customer's side, across the real
//! `ren3-client` process: renewal with history, downgrades, deactivation
//! with a release receipt, and key rotation. Clock behaviour needs an
//! injected clock, so it is tested in-process (`client/tests/api/clock.rs`).

use ren3_shared::{IssuerKey, PayloadSigner, VerifiedReceipt, VerifiedRequest, timestamp};
use ren3_tests::{
    Answer, Client, Issuer, chain, fixture, payload_signed_by, replace_bytes,
    resign_with_edited_message, test_only_root_key,
};
use serde_json::json;

/// The serial `payload` carries: the issuer's, from the issuance time
/// (`docs/FORMAT.md` §5).
fn serial_of(payload: &str) -> u64 {
    ren3_shared::payload::decode_unverified(payload)
        .unwrap()
        .1
        .serial
}

fn vendor(issuer: &Issuer) -> (String, String) {
    let key = issuer.create_license(
        "Lifecycle GmbH",
        &[
            "--features",
            "ingest",
            "--expires",
            "2099-12-31",
            "--max-devices",
            "2",
        ],
    );
    let device = issuer.add_device(&key);
    (key, device)
}

fn deactivate(client: &Client, key: &str) -> Answer {
    client.post_json("/license/deactivate", &json!({ "licenseKey": key }))
}

/// Rows of one table in a store dump.
fn rows(dump: &str, table: &str) -> Vec<String> {
    dump.split(&format!("[{table}]\n"))
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take_while(|line| !line.starts_with('['))
        .map(str::to_owned)
        .collect()
}

/// Whether a dumped license row is the active one: its columns 8 and 9,
/// `replaced_at` and `deactivated_at`, are both NULL.
fn is_active(row: &str) -> bool {
    let columns: Vec<&str> = row.split('|').collect();
    columns.get(7) == Some(&"NULL") && columns.get(8) == Some(&"NULL")
}

/// Sends `send`, expects the problem `status` and `code`, and checks that
/// neither the store nor the status changed.
fn assert_refused(client: &Client, status: u16, code: &str, send: impl FnOnce() -> Answer) {
    let store = client.store_dump();
    let state = client.get("/license").body;
    let answer = send();
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{}",
        answer.body
    );
    assert!(
        answer.content_type.starts_with("application/problem+json"),
        "{}",
        answer.content_type
    );
    assert_eq!(client.store_dump(), store, "a refusal changed the store");
    assert_eq!(
        client.get("/license").body,
        state,
        "a refusal changed the status"
    );
}

#[test]
fn renewal_replaces_the_license_keeps_history_and_refuses_downgrades() {
    let issuer = Issuer::init();
    let (key, device) = vendor(&issuer);
    let client = Client::start(&device);
    // Two requests; the vendor answers the newer one first, so the older
    // one gets the higher serial.
    let older = client.register(&key);
    let newer = client.register(&key);
    let serial_1 = issuer.issue(&newer);
    let serial_2 = issuer.issue(&older);

    let answer = client.import(&key, &serial_2);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(serial_of(&serial_2) > serial_of(&serial_1));
    assert_eq!(answer.body["license"]["serial"], serial_of(&serial_2));
    assert_eq!(client.get("/license").body["pendingRequests"], 1);

    // The newer request is still pending, but its payload is older.
    assert_refused(&client, 409, "downgrade_rejected", || {
        client.import(&key, &serial_1)
    });

    // A renewal: a new request, a payload with a higher serial.
    let serial_3 = issuer.issue(&client.register(&key));
    let answer = client.import(&key, &serial_3);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = client.get("/license").body;
    assert_eq!(status["state"], "active");
    assert_eq!(status["license"]["serial"], serial_of(&serial_3));

    let licenses = rows(&client.store_dump(), "licenses");
    assert_eq!(licenses.len(), 2, "{licenses:?}");
    assert!(
        licenses[0].contains(&serial_2),
        "the first stays in history"
    );
    assert!(licenses[1].contains(&serial_3));
    assert!(
        is_active(&licenses[1]),
        "only the newest is active: {licenses:?}"
    );
    assert!(!is_active(&licenses[0]));
}

#[test]
fn deactivation_returns_a_device_signed_receipt_and_leaves_the_client_unlicensed() {
    let issuer = Issuer::init();
    let (key, device) = vendor(&issuer);
    let client = Client::start(&device);
    let request = client.register(&key);
    let payload = issuer.issue(&request);
    assert_eq!(client.import(&key, &payload).status, 200);

    let answer = deactivate(&client, &key);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!answer.body.to_string().contains(&key), "the key is echoed");
    let token = answer.body["releaseReceipt"].as_str().unwrap();
    let receipt = VerifiedReceipt::open(token).unwrap();
    assert_eq!(receipt.receipt.client_device_id.as_str(), device);
    assert_eq!(
        receipt.receipt.license_key_fingerprint,
        ren3_shared::LicenseKey::parse(&key).unwrap().fingerprint()
    );
    assert_eq!(receipt.receipt.serial, serial_of(&payload));
    // One sequence for requests and receipts: the request took 1.
    assert_eq!(receipt.receipt.counter, 2);
    let request = VerifiedRequest::open(&request).unwrap();
    assert_eq!(request.request.counter, 1);
    assert_eq!(
        receipt.device_public_key, request.device_public_key,
        "signed by the device key the payload is bound to"
    );
    // That key signs nothing more: the next request has a new one.
    let next = VerifiedRequest::open(&client.register(&key)).unwrap();
    assert_ne!(next.device_public_key, request.device_public_key);
    assert_eq!(next.request.counter, 3);

    let client = client.restart();
    let status = client.get("/license").body;
    assert_eq!(status["state"], "pending", "{status}");
    assert_eq!(status["licensed"], false);
    assert_eq!(status["license"], json!(null));
    let licenses = rows(&client.store_dump(), "licenses");
    assert_eq!(licenses.len(), 1, "kept in history");
    assert!(!is_active(&licenses[0]), "{licenses:?}");

    // Nothing is active any more: a second deactivation changes nothing.
    assert_refused(&client, 409, "no_active_license", || {
        deactivate(&client, &key)
    });
}

#[test]
fn deactivation_with_the_wrong_key_is_refused_and_changes_nothing() {
    let issuer = Issuer::init();
    let (key, device) = vendor(&issuer);
    let other = issuer.create_license("Someone Else", &[]);
    let client = Client::start(&device);
    let payload = issuer.issue(&client.register(&key));
    assert_eq!(client.import(&key, &payload).status, 200);

    assert_refused(&client, 422, "license_key_mismatch", || {
        deactivate(&client, &other)
    });
    let typo = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('0') { '1' } else { '0' }
    );
    assert_refused(&client, 400, "invalid_license_key", || {
        deactivate(&client, &typo)
    });
    assert_refused(&client, 422, "invalid_body", || {
        client.post_json("/license/deactivate", &json!({}))
    });
    assert_eq!(client.get("/license").body["state"], "active");
}

/// The payload a vendor signing with `signer` would send for `request`.
fn payload_for(request: &str, signer: &PayloadSigner, serial: u64, issued_at: i64) -> String {
    payload_signed_by(signer, request, serial, |license| {
        license.customer = "Rotation AG".into();
        license.issued_at = issued_at;
        license.not_before = issued_at;
    })
}

/// Key rotation needs nothing from the customer: any key the pinned root
/// certified signs payloads the client accepts, within its certificate's
/// window; a key under another root is refused whatever it signs.
#[test]
fn client_accepts_every_key_its_root_certified_within_the_window_and_nothing_else() {
    let root = test_only_root_key();
    let now = timestamp::now();
    let rotated = chain::signer(
        &root,
        IssuerKey::from_seed(&[21u8; 32]),
        chain::revocations(&root, 1, &[]),
    );
    let window_end = now - 86_400;
    let ended = PayloadSigner::new(
        IssuerKey::from_seed(&[22u8; 32]),
        chain::certify(
            &root,
            &IssuerKey::from_seed(&[22u8; 32]),
            chain::NOT_BEFORE,
            window_end,
        ),
        chain::revocations(&root, 1, &[]),
    )
    .unwrap();
    let key = std::fs::read_to_string(fixture("license-key.txt")).unwrap();
    let key = key.trim();
    let device = std::fs::read_to_string(fixture("device-id.txt")).unwrap();
    let client = Client::start(device.trim());
    let request = client.register(key);

    assert_refused(&client, 400, "untrusted_root", || {
        client.import(key, &payload_for(&request, &chain::rogue_signer(), 1, now))
    });
    // A window that ended cannot be signed into through the issuer's
    // checks; the key's holder can sign anyway, and the client refuses it.
    let inside = payload_for(&request, &ended, 1, window_end - 60);
    let late = resign_with_edited_message(&inside, &[22u8; 32], |m| {
        let issued = format!("\"issuedAt\":{}", window_end - 60);
        replace_bytes(m, &issued, &format!("\"issuedAt\":{window_end}"));
    });
    assert_refused(&client, 400, "outside_certificate", || {
        client.import(key, &late)
    });
    let answer = client.import(key, &inside);
    assert_eq!(
        answer.status, 200,
        "issued inside the window: {}",
        answer.body
    );

    let renewal = payload_for(&client.register(key), &rotated, 2, now);
    let answer = client.import(key, &renewal);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = client.get("/license").body;
    assert_eq!(status["keyId"], rotated.key_id().to_string());

    // A restart verifies the stored license through the same chain.
    let client = client.restart();
    let status = client.get("/license").body;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["keyId"], rotated.key_id().to_string());
}
