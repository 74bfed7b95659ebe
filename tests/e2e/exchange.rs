//! The document's five steps, as a customer and the ReN3 team perform them.

use ren3_tests::{Client, Issuer};

/// The serial `payload` carries: the issuer's, from the issuance time
/// (`docs/FORMAT.md` §5).
fn serial_of(payload: &str) -> u64 {
    ren3_shared::payload::decode_unverified(payload)
        .unwrap()
        .1
        .serial
}

/// Step 1: the vendor creates a license key and a client device id.
fn vendor_prepares(issuer: &Issuer) -> (String, String) {
    let key = issuer.create_license(
        "ACME Corp",
        &[
            "--features",
            "ingest,export",
            "--limit",
            "max-sources=10",
            "--expires",
            "2099-12-31",
            "--max-devices",
            "2",
        ],
    );
    let device = issuer.add_device(&key);
    (key, device)
}

#[test]
fn offline_registration_follows_the_document_end_to_end() {
    let issuer = Issuer::init();
    let (key, device) = vendor_prepares(&issuer);
    assert!(key.starts_with("REN3K1-"), "{key}");
    assert!(device.starts_with("REN3D1-"), "{device}");

    // Step 2: enable_offline_license=true and client_device_id in the environment.
    let client = Client::start(&device);
    assert_eq!(client.get("/license").body["state"], "unlicensed");

    // Step 3: the document's exact curl body.
    let body = format!("{{\n  \"licenseKey\": \"{key}\",\n  \"export\": true\n}}");
    let answer = client.post_raw(
        "/license/register",
        Some("application/json"),
        body.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let request = answer.body["licenseRequest"].as_str().unwrap().to_owned();
    assert!(request.starts_with("ren3-request-v2."));
    assert_eq!(answer.body["clientDeviceId"], device.as_str());
    assert!(
        !answer.body.to_string().contains(&key),
        "the license key leaked into the request"
    );
    assert_eq!(client.get("/license").body["state"], "pending");

    // Step 4: the ReN3 team turns the request into a payload.
    let payload = issuer.issue(&request);
    assert!(payload.starts_with("ren3-payload-v3."));
    assert!(!payload.contains(&key));

    // Step 5: the document's exact curl body.
    let body = format!("{{\n  \"licenseKey\": \"{key}\",\n  \"licensePayload\": \"{payload}\"\n}}");
    let answer = client.post_raw("/license/import", Some("application/json"), body.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["state"], "active");

    let status = client.get("/license").body;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["clientDeviceId"], device.as_str());
    assert_eq!(status["license"]["customer"], "ACME Corp");
    assert_eq!(
        status["license"]["features"],
        serde_json::json!(["export", "ingest"])
    );
    assert_eq!(status["license"]["limits"]["max-sources"], 10);
    assert_eq!(status["license"]["expiresAt"], "2100-01-01T00:00:00Z");
    assert_eq!(status["license"]["serial"], serial_of(&payload));
    assert!(status["license"]["keyId"].is_string());
    assert!(
        !status.to_string().contains(&key),
        "status must never show the license key"
    );

    // The license survives a restart, and importing it again is idempotent.
    let client = client.restart();
    assert_eq!(client.get("/license").body["state"], "active");
    let before = client.store_dump();
    let again = client.import(&key, &payload);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(client.store_dump(), before);
}

#[test]
fn renewal_with_a_new_request_replaces_the_active_license() {
    let issuer = Issuer::init();
    let (key, device) = vendor_prepares(&issuer);
    let client = Client::start(&device);
    let first = issuer.issue(&client.register(&key));
    assert_eq!(client.import(&key, &first).status, 200);

    let second = issuer.issue(&client.register(&key));
    let answer = client.import(&key, &second);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(serial_of(&second) > serial_of(&first));
    assert_eq!(
        client.get("/license").body["license"]["serial"],
        serial_of(&second)
    );

    // The first payload is now older than the active one: refused.
    let before = client.store_dump();
    let stale = client.import(&key, &first);
    assert_eq!(stale.status / 100, 4, "{}", stale.body);
    assert_eq!(client.store_dump(), before);
    assert_eq!(
        client.get("/license").body["license"]["serial"],
        serial_of(&second)
    );
}

#[test]
fn issuing_the_same_request_twice_gives_the_same_payload_and_one_seat() {
    let issuer = Issuer::init();
    let (key, device) = vendor_prepares(&issuer);
    let client = Client::start(&device);
    let request = client.register(&key);
    let first = issuer.issue(&request);
    // Handing the payload out again is audited, and changes nothing else.
    let issuer_store = ren3_tests::dump_sqlite_except(&issuer.db(), &["audit"]);
    assert_eq!(issuer.issue(&request), first);
    assert_eq!(
        ren3_tests::dump_sqlite_except(&issuer.db(), &["audit"]),
        issuer_store
    );
}

#[test]
fn inspect_shows_and_verifies_both_kinds_of_token() {
    let issuer = Issuer::init();
    let (key, device) = vendor_prepares(&issuer);
    let client = Client::start(&device);
    let request = client.register(&key);
    let payload = issuer.issue(&request);

    let shown = issuer.ok(&["inspect", "-"], Some(&request));
    assert!(shown.contains(&device), "{shown}");
    let shown = issuer.ok(&["--json", "inspect", "-"], Some(&payload));
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(shown.to_string().contains("ACME Corp"), "{shown}");

    let forged = ren3_tests::reseal_with_edited_message(&payload, |m| {
        let at = m.len() - 3;
        m[at] ^= 1;
    });
    let out = issuer.run(&["inspect", "-"], Some(&forged));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a forged payload must not inspect as valid"
    );
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("does NOT verify"), "{report}");
}
