//! Every refusal of an import: a precise problem+json answer, and a store
//! and status that did not change.

use std::collections::BTreeMap;

use ren3_shared::{ClockPolicy, DeviceKey, License, VerifiedRequest};
use ren3_tests::{
    Answer, Client, Issuer, reseal_with_edited_message, reseal_with_edited_signature,
};
use serde_json::json;

/// A vendor and a customer who have reached step 5: the payload is in hand.
struct ReadyToImport {
    issuer: Issuer,
    key: String,
    device: String,
    client: Client,
    payload: String,
}

fn ready_to_import() -> ReadyToImport {
    let issuer = Issuer::init();
    let key = issuer.create_license("Refusal Testers Inc", &["--max-devices", "3"]);
    let device = issuer.add_device(&key);
    let client = Client::start(&device);
    let payload = issuer.issue(&client.register(&key));
    ReadyToImport {
        issuer,
        key,
        device,
        client,
        payload,
    }
}

/// Sends `send` and checks the answer's status and code, that it is
/// problem+json with a detail, and that neither the store nor the status
/// changed.
fn assert_refused(
    client: &Client,
    status: u16,
    code: &str,
    send: impl FnOnce() -> Answer,
) -> Answer {
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
    assert!(
        !answer.body["detail"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{}",
        answer.body
    );
    assert_eq!(
        client.store_dump(),
        store,
        "a refused call changed the store"
    );
    assert_eq!(
        client.get("/license").body,
        state,
        "a refused call changed the status"
    );
    answer
}

#[test]
fn import_refuses_a_flipped_byte_in_the_signed_part() {
    let r = ready_to_import();
    // 1. Damage in transit: the checksum no longer matches.
    let mut damaged = r.payload.clone().into_bytes();
    let at = "ren3-payload-v3.".len() + 40;
    damaged[at] = if damaged[at] == b'A' { b'B' } else { b'A' };
    let damaged = String::from_utf8(damaged).unwrap();
    assert_refused(&r.client, 400, "token_damaged", || {
        r.client.import(&r.key, &damaged)
    });
    // 2. Forgery: a byte of the signed message changed, checksum recomputed.
    let forged = reseal_with_edited_message(&r.payload, |m| {
        let at = m.len() - 10;
        m[at] ^= 0x01;
    });
    assert_refused(&r.client, 400, "signature_invalid", || {
        r.client.import(&r.key, &forged)
    });
    // 3. Forgery: the signature itself altered.
    let forged = reseal_with_edited_signature(&r.payload, |s| s[5] ^= 0x80);
    assert_refused(&r.client, 400, "signature_invalid", || {
        r.client.import(&r.key, &forged)
    });
    // 4. Truncation.
    let cut = &r.payload[..r.payload.len() - 12];
    assert_refused(&r.client, 400, "token_damaged", || {
        r.client.import(&r.key, cut)
    });
    // And the genuine payload still imports afterwards.
    assert_eq!(r.client.import(&r.key, &r.payload).status, 200);
}

/// The customer's own "vendor": `ren3-issuer init` makes a root of its own,
/// with the same license and device, and issues a payload the client's
/// pinned root never certified.
#[test]
fn import_refuses_a_payload_from_an_issuer_under_another_root() {
    let r = ready_to_import();
    let own = Issuer::init_with_own_root();
    let key = own.create_license("Self-Signed Ltd", &["--features", "everything"]);
    let device = own.add_device(&key);
    let client = Client::start(&device);
    let payload = own.issue(&client.register(&key));
    let answer = assert_refused(&client, 400, "untrusted_root", || {
        client.import(&key, &payload)
    });
    assert!(
        answer.body["detail"].as_str().unwrap().contains("root"),
        "{}",
        answer.body
    );
    // The genuine vendor's payload still imports on the first installation.
    assert_eq!(r.client.import(&r.key, &r.payload).status, 200);
}

#[test]
fn import_refuses_a_payload_for_another_device_id() {
    let r = ready_to_import();
    let other_device = r.issuer.add_device(&r.key);
    let other = Client::start(&other_device);
    other.register(&r.key);
    assert_refused(&other, 422, "device_id_mismatch", || {
        other.import(&r.key, &r.payload)
    });
}

#[test]
fn import_refuses_a_payload_for_another_installation_with_the_same_device_id() {
    let r = ready_to_import();
    let clone = Client::start(&r.device);
    let clone_request = clone.register(&r.key);
    assert_refused(&clone, 422, "device_key_mismatch", || {
        clone.import(&r.key, &r.payload)
    });
    // The vendor refuses to issue for the second installation while the
    // first holds the seat, whatever the seat count.
    r.issuer.ok(
        &["issue", "--request", "-"],
        Some(&r.client.register(&r.key)),
    );
    r.issuer
        .fails(&["issue", "--request", "-"], Some(&clone_request));
}

#[test]
fn import_refuses_a_wrong_or_mistyped_license_key() {
    let r = ready_to_import();
    let other_key = r.issuer.create_license("Someone Else", &[]);
    assert_refused(&r.client, 422, "license_key_mismatch", || {
        r.client.import(&other_key, &r.payload)
    });
    // One character changed: caught by the check character before anything else.
    let mut typo = r.key.clone().into_bytes();
    let last = typo.len() - 2;
    typo[last] = if typo[last] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    assert_refused(&r.client, 400, "invalid_license_key", || {
        r.client.import(&typo, &r.payload)
    });
    assert_refused(&r.client, 400, "invalid_license_key", || {
        r.client.post_json(
            "/license/register",
            &json!({"licenseKey": typo, "export": true}),
        )
    });
}

#[test]
fn import_refuses_a_payload_for_an_older_request() {
    let r = ready_to_import();
    // The operator exported twice; the vendor answered both; the newer one was imported.
    let newer = r.issuer.issue(&r.client.register(&r.key));
    assert_eq!(r.client.import(&r.key, &newer).status, 200);
    assert_refused(&r.client, 422, "unknown_request", || {
        r.client.import(&r.key, &r.payload)
    });
}

#[test]
fn import_refuses_a_request_pasted_as_a_payload() {
    let r = ready_to_import();
    let request = r.client.register(&r.key);
    let answer = assert_refused(&r.client, 400, "token_wrong_kind", || {
        r.client.import(&r.key, &request)
    });
    assert_eq!(
        answer.body["detail"],
        "this is a license request, not a license payload"
    );
}

#[test]
fn an_expired_license_is_refused_by_the_issuer_and_by_the_client() {
    let r = ready_to_import();
    let stderr = r.issuer.fails(
        &[
            "license",
            "create",
            "--customer",
            "Late Ltd",
            "--expires",
            "2020-01-01",
        ],
        None,
    );
    assert!(stderr.contains("past"), "{stderr}");

    // A payload the real issuer would never sign: signed with the TEST-ONLY
    // key, which this client's root certified, and already expired.
    let client = Client::start(&r.device);
    let request = VerifiedRequest::open(&client.register(&r.key)).unwrap();
    let license = License {
        customer: "Late Ltd".into(),
        features: vec![],
        limits: BTreeMap::new(),
        issued_at: 1_700_000_000,
        not_before: 1_700_000_000,
        expires_at: Some(1_700_100_000),
        grace_seconds: 0,
        clock_policy: ClockPolicy::Advisory,
        serial: 1,
        license_key_fingerprint: request.request.license_key_fingerprint,
        client_device_id: request.request.client_device_id.clone(),
        device_public_key: request.device_public_key.into(),
        request_hash: request.hash(),
    };
    let expired = ren3_tests::test_only_signer()
        .sign_payload(&license)
        .unwrap()
        .token();
    assert_refused(&client, 422, "license_expired", || {
        client.import(&r.key, &expired)
    });

    // The same, but bound to a device key this installation does not hold.
    let foreign = License {
        device_public_key: DeviceKey::from_seed(&[7; 32]).public_key().into(),
        expires_at: None,
        ..license
    };
    let foreign = ren3_tests::test_only_signer()
        .sign_payload(&foreign)
        .unwrap()
        .token();
    assert_refused(&client, 422, "device_key_mismatch", || {
        client.import(&r.key, &foreign)
    });
}

#[test]
fn malformed_and_oversized_bodies_get_problem_json() {
    let r = ready_to_import();
    let c = &r.client;
    let json = Some("application/json");
    assert_refused(c, 400, "invalid_json", || {
        c.post_raw("/license/import", json, b"{\"licenseKey\":")
    });
    assert_refused(c, 415, "unsupported_media_type", || {
        c.post_raw("/license/import", Some("text/plain"), b"{}")
    });
    assert_refused(c, 415, "unsupported_media_type", || {
        c.post_raw("/license/import", None, b"{}")
    });
    assert_refused(c, 422, "invalid_body", || {
        c.post_json("/license/import", &json!({"licenseKey": r.key}))
    });
    assert_refused(c, 422, "invalid_body", || {
        c.post_json(
            "/license/import",
            &json!({"licenseKey": r.key, "licensePayload": r.payload, "force": true}),
        )
    });
    assert_refused(c, 422, "invalid_body", || {
        c.post_json(
            "/license/register",
            &json!({"licenseKey": 42, "export": "yes"}),
        )
    });
    // Just over the 64 KiB limit: the client answers before reading the
    // body, and a body much larger than the socket buffers would make the
    // sender fail with a broken pipe instead of reading the answer.
    let huge = json!({"licenseKey": r.key, "licensePayload": "A".repeat(70 * 1024)});
    assert_refused(c, 413, "body_too_large", || {
        c.post_json("/license/import", &huge)
    });
    assert_refused(c, 400, "online_activation_unavailable", || {
        c.post_json(
            "/license/register",
            &json!({"licenseKey": r.key, "export": false}),
        )
    });
}

#[test]
fn a_client_without_offline_licensing_says_how_to_enable_it() {
    let client = Client::start_with(&[]);
    let answer = assert_refused(&client, 409, "offline_licensing_disabled", || {
        client.post_json(
            "/license/register",
            &json!({"licenseKey": "REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q", "export": true}),
        )
    });
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("enable_offline_license=true")
    );
}
