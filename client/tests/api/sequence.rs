//! The installation's sequence number (docs/FORMAT.md §6): every request
//! and every release receipt the device key signs takes the next value, and
//! a deactivation retires the key that signed its receipt.

use axum::http::StatusCode;
use ren3_shared::{LicenseKey, PublicKey, VerifiedReceipt, VerifiedRequest};
use serde_json::json;

use crate::support::{KEY, TestApp, answer, key, other_key, sign};

/// The `n`th made-up key: well formed, with its check character.
fn stranger_key(n: u8) -> LicenseKey {
    for last in b"0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
        let text = format!("REN3K1-33333-33333-33333-{n:05}-3333{}", char::from(*last));
        if let Ok(key) = LicenseKey::parse(&text) {
            return key;
        }
    }
    unreachable!("one check character fits")
}

/// Registers `key` and returns the request's counter and signer.
async fn register(app: &TestApp, key: &LicenseKey) -> (u64, PublicKey, String) {
    let token = app.register(key).await;
    let request = VerifiedRequest::open(&token).unwrap();
    (request.request.counter, request.device_public_key, token)
}

/// Deactivates [`KEY`] and returns the receipt's counter and signer.
async fn deactivate(app: &TestApp) -> (u64, PublicKey) {
    let reply = app.deactivate(KEY).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let receipt = VerifiedReceipt::open(reply.json["releaseReceipt"].as_str().unwrap()).unwrap();
    assert_eq!(reply.json["counter"], receipt.receipt.counter);
    (receipt.receipt.counter, receipt.device_public_key)
}

/// The sequence number the store recorded last.
async fn last_taken(app: &TestApp) -> u64 {
    app.state
        .store()
        .call(|conn| ren3_client::store::last_sequence_number(conn))
        .await
        .unwrap()
}

#[tokio::test]
async fn one_counter_rises_across_requests_and_receipts() {
    let app = TestApp::new().await;
    let first_key = app.state.device_public_key();
    let (one, signer, _) = register(&app, &key()).await;
    assert_eq!((one, signer), (1, first_key));
    let (two, _, token) = register(&app, &key()).await;
    assert_eq!(two, 2);
    let reply = app.import(&key(), &sign(&answer(&token, 1))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(last_taken(&app).await, 2, "an import signs nothing");

    let (three, signer) = deactivate(&app).await;
    assert_eq!((three, signer), (3, first_key));
    let (four, signer, _) = register(&app, &key()).await;
    assert_eq!(four, 4, "the sequence goes on under the new key");
    assert_ne!(signer, first_key);
    assert_eq!(signer, app.state.device_public_key());
    assert_eq!(last_taken(&app).await, 4);
}

#[tokio::test]
async fn a_refused_register_or_deactivation_takes_no_number() {
    let app = TestApp::new().await;
    assert_eq!(register(&app, &key()).await.0, 1);
    let cases = [
        (
            "no license to deactivate",
            "/license/deactivate",
            json!({"licenseKey": KEY}),
            StatusCode::CONFLICT,
            "no_active_license",
        ),
        (
            "a typo",
            "/license/register",
            json!({"licenseKey": "REN3K1-00000-00000-00000-00000-00001", "export": true}),
            StatusCode::BAD_REQUEST,
            "invalid_license_key",
        ),
    ];
    for (context, uri, body, status, code) in cases {
        let before = app.dump().await;
        app.post(uri, body)
            .await
            .assert_problem(status, code, context);
        assert_eq!(app.dump().await, before, "{context}");
    }

    // Fifteen more keys fill the pending list; a sixteenth more is refused.
    for n in 0..15 {
        assert_eq!(register(&app, &stranger_key(n)).await.0, u64::from(n) + 2);
    }
    let before = app.dump().await;
    app.post(
        "/license/register",
        json!({"licenseKey": stranger_key(15).reveal(), "export": true}),
    )
    .await
    .assert_problem(
        StatusCode::CONFLICT,
        "too_many_pending_requests",
        "a key too many",
    );
    assert_eq!(app.dump().await, before, "the refusal kept its number");

    let (next, _, token) = register(&app, &key()).await;
    assert_eq!(next, 17, "no number went to the refused register");
    let reply = app.import(&key(), &sign(&answer(&token, 1))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let before = app.dump().await;
    app.deactivate(other_key().reveal()).await.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "license_key_mismatch",
        "another key",
    );
    assert_eq!(app.dump().await, before);
    assert_eq!(deactivate(&app).await.0, 18);
}

#[tokio::test]
async fn a_deactivation_retires_the_device_key_and_its_pending_requests() {
    let app = TestApp::new().await;
    let released = app.install(1).await;
    let old_key = app.state.device_public_key();
    // Asked before the release; the vendor may still answer it.
    let (_, signer, late) = register(&app, &key()).await;
    assert_eq!(signer, old_key);
    assert_eq!(app.pending().await, 1);

    let (_, signer) = deactivate(&app).await;
    assert_eq!(signer, old_key, "the receipt is signed with the bound key");
    let new_key = app.state.device_public_key();
    assert_ne!(new_key, old_key);
    assert_eq!(
        app.pending().await,
        0,
        "requests of the old key are forgotten"
    );
    let stored: String = app
        .state
        .store()
        .call(|conn| {
            Ok::<_, ren3_client::StoreError>(conn.query_row(
                "SELECT public_key FROM device_key",
                [],
                |row| row.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(stored, new_key.to_string());
    let status = app.get_status().await.json;
    assert_eq!(status["reasonCode"], "deactivated", "{status}");
    assert_eq!(status["deviceMatches"], json!(null), "{status}");
    assert_eq!(status["pendingRequests"], 0);

    // Nothing bound to the old key installs: not the released payload, not
    // an answer to the request made before the release.
    for (context, payload) in [
        ("the released payload", released),
        ("an answer to the late request", sign(&answer(&late, 2))),
    ] {
        let before = (app.dump().await, app.installed());
        app.import(&key(), &payload).await.assert_problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "device_key_mismatch",
            context,
        );
        assert_eq!((app.dump().await, app.installed()), before, "{context}");
    }

    // A request under the new key is answered and installs.
    let (_, signer, token) = register(&app, &key()).await;
    assert_eq!(signer, new_key);
    let reply = app.import(&key(), &sign(&answer(&token, 3))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["deviceMatches"], true);
    assert!(app.state.license().is_licensed());

    // And the new key is the one a restart loads.
    let app = app.restart().await;
    assert_eq!(app.state.device_public_key(), new_key);
    assert!(app.state.license().is_licensed());
    assert_eq!(app.get_status().await.json["deviceMatches"], true);
}

#[tokio::test]
async fn a_restart_keeps_the_sequence_and_the_new_key() {
    let app = TestApp::new().await;
    app.install(1).await;
    let app = app.restart().await;
    let (counter, old_key) = deactivate(&app).await;
    assert_eq!(counter, 2);
    let new_key = app.state.device_public_key();

    let app = app.restart().await;
    assert_eq!(app.state.device_public_key(), new_key);
    assert_eq!(last_taken(&app).await, 2);
    let (counter, signer, _) = register(&app, &key()).await;
    assert_eq!((counter, signer), (3, new_key));
    assert_ne!(signer, old_key);
}

#[tokio::test]
async fn concurrent_registers_take_distinct_numbers() {
    let app = TestApp::new().await;
    let key = key();
    let replies = tokio::join!(
        app.register(&key),
        app.register(&key),
        app.register(&key),
        app.register(&key),
        app.register(&key),
        app.register(&key),
        app.register(&key),
        app.register(&key),
    );
    let replies = [
        replies.0, replies.1, replies.2, replies.3, replies.4, replies.5, replies.6, replies.7,
    ];
    let mut counters: Vec<u64> = replies
        .iter()
        .map(|token| VerifiedRequest::open(token).unwrap().request.counter)
        .collect();
    counters.sort_unstable();
    assert_eq!(counters, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_deactivated_stored_problem_is_no_longer_reported() {
    let app = TestApp::new().await;
    app.install(1).await;
    // Another device id: the stored license is not used.
    let other = crate::support::other_device_id();
    let app = app
        .restart_with(&[("client_device_id", other.as_str())])
        .await;
    let status = app.get_status().await.json;
    assert_eq!(status["reasonCode"], "device_id_mismatch", "{status}");
    assert_eq!(status["deviceMatches"], false);

    deactivate(&app).await;
    let status = app.get_status().await.json;
    assert_eq!(status["reasonCode"], "deactivated", "{status}");
    assert_eq!(status["deviceMatches"], json!(null), "{status}");
    assert_eq!(status["keyId"], json!(null), "{status}");
}
