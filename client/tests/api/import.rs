use axum::http::StatusCode;
use ren3_shared::binary::Bytes;
use ren3_shared::{DeviceKey, License, timestamp};
use serde_json::json;

use crate::support::{
    DAY, DEVICE_ID, KEY, NOW, TestApp, answer, assemble_token, disassemble_token, key,
    other_device_id, other_key, rogue_issuer, sign, test_only_root,
};

#[tokio::test]
async fn import_installs_the_license_and_the_handle_reports_it() {
    let app = TestApp::new().await;
    let handle = app.state.license();
    assert!(!handle.is_licensed());

    let request = app.register(&key()).await;
    let payload = sign(&answer(&request, 1));
    let reply = app.import(&key(), &payload).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["state"], "active");
    assert!(!reply.text.contains(KEY) && !reply.text.contains(&payload));

    let status = app.get_status().await;
    assert_eq!(status.json, reply.json);
    let key_id = crate::support::issuer().key_id().to_string();
    assert_eq!(
        status.json,
        json!({
            "state": "active",
            "reasonCode": "valid",
            "reason": format!("licensed to ACME Logistics GmbH until {}", timestamp::format(NOW + 365 * DAY)),
            "licensed": true,
            "nextAction": "nothing to do now; to renew, export a new request with POST \
                           /license/register (or `ren3-client request`, or the license page \
                           at /license/page) and send it to the ReN3 team before 2028-01-15",
            "offlineLicensing": true,
            "clientDeviceId": crate::support::DEVICE_ID,
            "pendingRequests": 0,
            "keyId": key_id,
            "deviceMatches": true,
            "daysRemaining": 365,
            "warning": false,
            "grace": {"inGrace": false, "seconds": 0, "endsAt": timestamp::format(NOW + 365 * DAY)},
            "clock": {
                "suspect": false,
                "policy": "advisory",
                "toleranceSeconds": 86_400,
                "highWaterMark": timestamp::format(NOW),
            },
            "revocation": null,
            "trust": {
                "root": test_only_root().fingerprint().to_string(),
                "pinned": true,
                "revocationListVersion": 1,
            },
            "license": {
                "customer": "ACME Logistics GmbH",
                "features": ["ingest", "reports"],
                "limits": {"max-sources": 12},
                "issuedAt": timestamp::format(NOW),
                "notBefore": timestamp::format(NOW),
                "expiresAt": timestamp::format(NOW + 365 * DAY),
                "graceSeconds": 0,
                "clockPolicy": "advisory",
                "serial": 1,
                "keyId": key_id,
            }
        })
    );

    assert!(handle.is_licensed());
    assert!(handle.has_feature("ingest"));
    assert!(handle.has_feature("reports"));
    assert!(!handle.has_feature("export"));
    assert_eq!(handle.limit("max-sources"), Some(12));
    assert_eq!(handle.limit("max-users"), None);
    assert_eq!(handle.expires_at(), Some(NOW + 365 * DAY));

    let licenses = app.licenses().await;
    assert_eq!(licenses.len(), 1);
    assert_eq!(licenses[0].token, payload, "the canonical token is stored");
    assert_eq!(licenses[0].replaced_at, None, "the new license is active");
    assert_eq!(app.pending().await, 0, "the answered request is forgotten");
}

#[tokio::test]
async fn import_refusals_change_nothing() {
    let app = TestApp::new().await;
    app.install(5).await;
    let request = app.register(&key()).await;
    let good = answer(&request, 6);
    let token = sign(&good);
    let with = |change: fn(&mut License)| {
        let mut license = good.clone();
        change(&mut license);
        sign(&license)
    };
    let tampered = {
        let (prefix, message, signature) = disassemble_token(&token);
        let text = String::from_utf8(message).unwrap().replace("ACME", "ACMF");
        assemble_token(&prefix, text.as_bytes(), &signature)
    };
    // Its chain is the installed payload's, which the client remembers
    // verified: only the payload's own signature is checked, and this one
    // is another genuine payload's.
    let spliced = {
        let (prefix, message, _) = disassemble_token(&token);
        let (_, _, other_signature) = disassemble_token(&sign(&answer(&request, 7)));
        assemble_token(&prefix, &message, &other_signature)
    };
    let bad_signer = assemble_token(
        "ren3-payload-v3.",
        b"ren3/license-payload/v3\nAAAA\n{}",
        &[0u8; 64],
    );
    let other_key = other_key();

    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        (
            "1. typo in the key",
            "REN3K1-00000-00000-00000-00000-00001",
            token.clone(),
            StatusCode::BAD_REQUEST,
            "invalid_license_key",
        ),
        (
            "2. empty payload",
            KEY,
            " \n ".into(),
            StatusCode::BAD_REQUEST,
            "token_empty",
        ),
        (
            "3. a request, not a payload",
            KEY,
            request.clone(),
            StatusCode::BAD_REQUEST,
            "token_wrong_kind",
        ),
        (
            "4. not a token",
            KEY,
            "hello".into(),
            StatusCode::BAD_REQUEST,
            "token_unrecognised",
        ),
        (
            "5. another format version",
            KEY,
            "ren3-payload-v2.abc.def.ghi".into(),
            StatusCode::BAD_REQUEST,
            "token_unsupported_version",
        ),
        (
            "6. truncated",
            KEY,
            token[..token.len() - 5].into(),
            StatusCode::BAD_REQUEST,
            "token_damaged",
        ),
        (
            "7. altered after signing",
            KEY,
            tampered,
            StatusCode::BAD_REQUEST,
            "signature_invalid",
        ),
        (
            "7b. another genuine payload's signature, the same chain",
            KEY,
            spliced,
            StatusCode::BAD_REQUEST,
            "signature_invalid",
        ),
        (
            "8. signed under a root this build does not trust",
            KEY,
            rogue_issuer().sign_payload(&good).unwrap().token(),
            StatusCode::BAD_REQUEST,
            "untrusted_root",
        ),
        (
            "9. signer is not a key id",
            KEY,
            bad_signer,
            StatusCode::BAD_REQUEST,
            "token_invalid",
        ),
        (
            "10. another license key",
            other_key.reveal(),
            token.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_key_mismatch",
        ),
        (
            "11. another device id",
            KEY,
            with(|l| l.client_device_id = other_device_id()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "device_id_mismatch",
        ),
        (
            "12. another installation",
            KEY,
            with(|l| l.device_public_key = DeviceKey::from_seed(&[5u8; 32]).public_key().into()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "device_key_mismatch",
        ),
        (
            "13. a request never made",
            KEY,
            with(|l| l.request_hash = Bytes([9u8; 32])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_request",
        ),
        (
            "14. not yet valid",
            KEY,
            with(|l| l.not_before = NOW + 301),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_not_yet_valid",
        ),
        (
            "15. expired",
            KEY,
            with(|l| {
                l.not_before = NOW - DAY;
                l.expires_at = Some(NOW)
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_expired",
        ),
        (
            "16. same serial",
            KEY,
            with(|l| l.serial = 5),
            StatusCode::CONFLICT,
            "downgrade_rejected",
        ),
        (
            "17. older serial",
            KEY,
            with(|l| l.serial = 4),
            StatusCode::CONFLICT,
            "downgrade_rejected",
        ),
    ];
    let handle = app.state.license();
    for (context, license_key, payload, status, code) in cases {
        let before = (app.dump().await, app.installed());
        let reply = app
            .post(
                "/license/import",
                json!({"licenseKey": license_key, "licensePayload": payload}),
            )
            .await;
        reply.assert_problem(status, code, context);
        assert!(!reply.text.contains(KEY), "{context}: the key is echoed");
        assert_eq!(
            (app.dump().await, app.installed()),
            before,
            "{context}: state changed"
        );
        assert_eq!(
            handle.installed().map(|i| i.license.serial),
            Some(5),
            "{context}"
        );
    }

    let reply = app.import(&key(), &token).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the untouched request is still answerable: {}",
        reply.text
    );
    assert_eq!(handle.installed().map(|i| i.license.serial), Some(6));
}

#[tokio::test]
async fn import_refusal_details_say_what_to_do() {
    let app = TestApp::new().await;
    let request = app.register(&key()).await;
    let mut license = answer(&request, 1);
    license.client_device_id = other_device_id();
    let reply = app.import(&key(), &sign(&license)).await;
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(detail.contains(other_device_id().as_str()), "{detail}");
    assert!(detail.contains("check client_device_id"), "{detail}");

    let mut license = answer(&request, 1);
    license.request_hash = Bytes([9u8; 32]);
    let reply = app.import(&key(), &sign(&license)).await;
    assert_eq!(
        reply.json["detail"],
        "this payload answers a request this installation did not make, or one that a newer \
         import superseded; export a new request with POST /license/register"
    );
}

#[tokio::test]
async fn import_refused_while_offline_licensing_is_disabled() {
    let app = TestApp::disabled().await;
    let before = app.dump().await;
    let reply = app.import(&key(), "ren3-payload-v2.abc.def.ghi").await;
    reply.assert_problem(
        StatusCode::CONFLICT,
        "offline_licensing_disabled",
        "disabled",
    );
    assert_eq!(app.dump().await, before);
    assert!(app.installed().is_none());
}

#[tokio::test]
async fn import_refuses_oversized_payload_text_by_its_token_code() {
    let app = TestApp::new().await;
    let before = app.dump().await;
    let error = app
        .state
        .import(KEY, &"a".repeat(64 * 1024 + 1))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "token_too_large");
    assert_eq!(app.dump().await, before);
}

#[tokio::test]
async fn import_of_the_active_payload_again_changes_nothing() {
    let app = TestApp::new().await;
    let payload = app.install(1).await;
    let before = (app.dump().await, app.installed());
    let first = app.get_status().await;

    let reply = app.import(&key(), &payload).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json, first.json);
    assert_eq!((app.dump().await, app.installed()), before);
}

#[tokio::test]
async fn import_refuses_payload_for_a_superseded_request() {
    let app = TestApp::new().await;
    let older = app.register(&key()).await;
    let newer = app.register(&key()).await;
    let reply = app.import(&key(), &sign(&answer(&newer, 1))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(app.pending().await, 0, "older requests are superseded");

    let before = (app.dump().await, app.installed());
    let reply = app.import(&key(), &sign(&answer(&older, 2))).await;
    reply.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_request",
        "superseded",
    );
    assert_eq!((app.dump().await, app.installed()), before);
}

#[tokio::test]
async fn import_answering_an_older_request_keeps_newer_ones() {
    let app = TestApp::new().await;
    let older = app.register(&key()).await;
    let newer = app.register(&key()).await;
    assert_eq!(
        app.import(&key(), &sign(&answer(&older, 1))).await.status,
        StatusCode::OK
    );
    assert_eq!(app.pending().await, 1);

    let reply = app.import(&key(), &sign(&answer(&newer, 2))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(app.state.license().installed().unwrap().license.serial, 2);
}

#[tokio::test]
async fn import_of_a_newer_serial_replaces_the_active_license() {
    let app = TestApp::new().await;
    app.install(1).await;
    app.set_now(NOW + 10);
    let second = app.install(2).await;

    let licenses = app.licenses().await;
    assert_eq!(licenses.len(), 2, "every import is kept");
    assert_eq!(
        (licenses[0].replaced_at, licenses[0].deactivated_at),
        (Some(NOW + 10), None),
        "the old one is marked replaced, not deactivated"
    );
    assert_eq!(licenses[1].token, second);
    assert_eq!(licenses[1].replaced_at, None);
    assert_eq!(app.get_status().await.json["license"]["serial"], 2);
}

#[tokio::test]
async fn import_for_another_license_key_replaces_whatever_its_serial() {
    let app = TestApp::new().await;
    app.install(5).await;
    let request = app.register(&other_key()).await;
    let reply = app.import(&other_key(), &sign(&answer(&request, 1))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["license"]["serial"], 1);
}

#[tokio::test]
async fn import_accepts_a_license_within_the_clock_skew_tolerance() {
    let app = TestApp::new().await;
    let request = app.register(&key()).await;
    let mut license = answer(&request, 1);
    license.not_before = NOW + 300;
    license.issued_at = NOW + 300;
    let reply = app.import(&key(), &sign(&license)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["state"], "active");
    assert!(app.state.license().is_licensed());
}

#[tokio::test]
async fn installed_license_expires_by_the_clock() {
    let app = TestApp::new().await;
    app.install(1).await;
    let handle = app.state.license();

    app.set_now(NOW + 365 * DAY - 1);
    assert!(handle.is_licensed());

    app.set_now(NOW + 365 * DAY);
    assert!(!handle.is_licensed());
    assert!(!handle.has_feature("ingest"));
    assert_eq!(handle.limit("max-sources"), None);
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "expired");
    assert!(status.json["reason"].as_str().unwrap().contains("expired"));
    assert_eq!(status.json["license"]["serial"], 1);
}

#[tokio::test]
async fn concurrent_imports_leave_the_newest_license_published_and_stored() {
    let app = TestApp::new().await;
    let older = app.register(&key()).await;
    let newer = app.register(&key()).await;
    let (first, second) = (sign(&answer(&older, 1)), sign(&answer(&newer, 2)));
    let key = key();
    let (a, b) = tokio::join!(app.import(&key, &first), app.import(&key, &second));
    assert_eq!(b.status, StatusCode::OK, "{}", b.text);
    assert!(
        a.status == StatusCode::OK || a.code() == "unknown_request",
        "{}",
        a.text
    );
    assert_eq!(app.state.license().installed().unwrap().license.serial, 2);
    let active: Vec<_> = app
        .licenses()
        .await
        .into_iter()
        .filter(|l| l.replaced_at.is_none())
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].token, second);
}

#[tokio::test]
async fn forgotten_requests_stay_refused_while_stored_and_are_deleted_in_batches() {
    // More pending requests than the client keeps by itself (as the HTTP
    // bench's store has), answered in order: each import forgets the
    // request it answers and every older one, and the stored rows of
    // forgotten requests are deleted once a batch of them piles up.
    let app = TestApp::new().await;
    let tokens: Vec<String> = app
        .state
        .store()
        .call(|conn| {
            let device = ren3_client::store::load_or_create_device_key(conn, NOW)?;
            let tx = ren3_client::store::write_transaction(conn)?;
            let mut tokens = Vec::new();
            for n in 0..80 {
                let request = ren3_shared::LicenseRequest::new(
                    ren3_shared::DeviceId::parse(DEVICE_ID).unwrap(),
                    &key(),
                    ren3_shared::Product {
                        name: "ren3-ingestor".into(),
                        version: "1.0.0".into(),
                    },
                    NOW + n,
                )
                .unwrap()
                .sign(&device)
                .unwrap();
                ren3_client::store::write_pending_request(&tx, &request, NOW)?;
                tokens.push(request.token());
            }
            tx.commit()?;
            Ok::<_, ren3_client::StoreError>(tokens)
        })
        .await
        .unwrap();
    assert_eq!(app.pending().await, 80);

    let mut most_stored = 0;
    for (n, token) in tokens.iter().enumerate().step_by(3) {
        let reply = app
            .import(&key(), &sign(&answer(token, n as u64 + 1)))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{n}: {}", reply.text);
        let left = 80 - (n as u64 + 1);
        assert_eq!(app.pending().await, left, "{n}");
        assert_eq!(reply.json["pendingRequests"], left, "{n}");
        let stored = app.count("pending_requests").await as u64;
        assert!(
            stored - left <= 32 + 3,
            "{n}: {stored} stored for {left} pending"
        );
        most_stored = most_stored.max(stored - left);

        // The request just answered, and one forgotten before it, may still
        // be stored; neither can be answered again.
        for (old, serial) in [(n, n as u64 + 100), (n.saturating_sub(1), n as u64 + 200)] {
            let before = (app.dump().await, app.installed());
            let reply = app
                .import(&key(), &sign(&answer(&tokens[old], serial)))
                .await;
            reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown_request", "");
            assert_eq!((app.dump().await, app.installed()), before, "{n}: {old}");
        }
    }
    assert!(
        most_stored >= 30,
        "forgotten rows were kept for a batch: {most_stored}"
    );

    // A new request deletes every forgotten one.
    app.register(&key()).await;
    assert_eq!(
        app.count("pending_requests").await as u64,
        app.pending().await
    );
}
