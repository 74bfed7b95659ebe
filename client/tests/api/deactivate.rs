//! `POST /license/deactivate`: the license stops working atomically, and a
//! release receipt signed by the device key proves it.

use axum::http::StatusCode;
use ren3_shared::{VerifiedReceipt, timestamp};
use serde_json::json;

use crate::support::{DAY, DEVICE_ID, KEY, NOW, TestApp, answer, key, other_key, sign};

#[tokio::test]
async fn deactivate_stops_the_license_and_returns_a_signed_receipt() {
    let app = TestApp::new().await;
    let payload = app.install(3).await;
    app.register(&key()).await;
    app.set_now(NOW + DAY);
    let handle = app.state.license();
    assert!(handle.is_licensed());
    let released_key = app.state.device_public_key();

    let reply = app.deactivate(KEY).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(!reply.text.contains(KEY), "the key is echoed");
    let token = reply.json["releaseReceipt"].as_str().unwrap();
    assert!(token.starts_with("ren3-receipt-v2."), "{token}");
    let receipt = VerifiedReceipt::open(token).unwrap();
    // Signed with the key bound at the vendor, which is then retired.
    assert_eq!(receipt.device_public_key, released_key);
    assert_ne!(app.state.device_public_key(), released_key);
    assert_eq!(receipt.receipt.client_device_id.as_str(), DEVICE_ID);
    assert_eq!(receipt.receipt.license_key_fingerprint, key().fingerprint());
    assert_eq!(receipt.receipt.serial, 3);
    // After the two requests: one sequence for everything the key signs.
    assert_eq!(receipt.receipt.counter, 3);
    assert_eq!(receipt.receipt.released_at, NOW + DAY);
    assert_eq!(reply.json["serial"], 3);
    assert_eq!(reply.json["counter"], 3);
    assert_eq!(reply.json["releasedAt"], timestamp::format(NOW + DAY));
    assert_eq!(reply.json["clientDeviceId"], DEVICE_ID);
    assert!(reply.json["sendTo"].as_str().unwrap().contains("ReN3 team"));

    assert!(!handle.is_licensed());
    assert!(handle.installed().is_none());
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "unlicensed", "{status}");
    assert_eq!(status["reasonCode"], "deactivated");
    assert_eq!(status["pendingRequests"], 0, "pending requests are dropped");
    assert_eq!(status["deviceMatches"], json!(null), "{status}");
    assert!(
        status["nextAction"]
            .as_str()
            .unwrap()
            .contains("release receipt")
    );

    let licenses = app.licenses().await;
    assert_eq!(licenses.len(), 1, "the license is kept in history");
    assert_eq!(licenses[0].token, payload);
    assert_eq!(licenses[0].replaced_at, Some(NOW + DAY));
    assert_eq!(licenses[0].deactivated_at, Some(NOW + DAY));
    assert_eq!(app.count("release_receipts").await, 1);
    assert!(
        app.dump()
            .await
            .iter()
            .any(|row| row.starts_with("release_receipts: ") && row.contains(token)),
        "the receipt is stored"
    );
}

#[tokio::test]
async fn deactivate_refusals_change_nothing() {
    let app = TestApp::new().await;
    app.install(1).await;
    let other = other_key();
    let cases = [
        (
            "1. typo in the key",
            json!({"licenseKey": "REN3K1-00000-00000-00000-00000-00001"}),
            StatusCode::BAD_REQUEST,
            "invalid_license_key",
        ),
        (
            "2. another license's key",
            json!({"licenseKey": other.reveal()}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_key_mismatch",
        ),
        (
            "3. no key",
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "4. an unknown field",
            json!({"licenseKey": KEY, "force": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (context, body, status, code) in cases {
        let before = (app.dump().await, app.installed());
        let reply = app.post("/license/deactivate", body).await;
        reply.assert_problem(status, code, context);
        assert!(!reply.text.contains(KEY), "{context}: the key is echoed");
        assert_eq!((app.dump().await, app.installed()), before, "{context}");
        assert!(app.state.license().is_licensed(), "{context}");
    }
}

#[tokio::test]
async fn deactivate_without_an_active_license_is_refused_and_changes_nothing() {
    let app = TestApp::new().await;
    app.register(&key()).await;
    let before = (app.dump().await, app.installed());
    app.deactivate(KEY).await.assert_problem(
        StatusCode::CONFLICT,
        "no_active_license",
        "never licensed",
    );
    assert_eq!((app.dump().await, app.installed()), before);

    app.install(1).await;
    assert_eq!(app.deactivate(KEY).await.status, StatusCode::OK);
    let before = (
        app.dump().await,
        app.installed(),
        app.get_status().await.json,
    );
    app.deactivate(KEY)
        .await
        .assert_problem(StatusCode::CONFLICT, "no_active_license", "again");
    assert_eq!(
        (
            app.dump().await,
            app.installed(),
            app.get_status().await.json
        ),
        before
    );
}

#[tokio::test]
async fn deactivate_is_refused_while_offline_licensing_is_disabled() {
    let app = TestApp::disabled().await;
    let before = app.dump().await;
    app.deactivate(KEY).await.assert_problem(
        StatusCode::CONFLICT,
        "offline_licensing_disabled",
        "disabled",
    );
    assert_eq!(app.dump().await, before);
}

#[tokio::test]
async fn receipt_counter_grows_and_a_released_payload_cannot_come_back() {
    let app = TestApp::new().await;
    let first = app.install(1).await;
    let reply = app.deactivate(KEY).await;
    assert_eq!(reply.json["counter"], 2, "after the request");

    // Bound to the key the deactivation retired.
    let before = (app.dump().await, app.installed());
    app.import(&key(), &first).await.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "device_key_mismatch",
        "the released payload",
    );
    assert_eq!((app.dump().await, app.installed()), before);

    let request = app.register(&key()).await;
    let reply = app.import(&key(), &sign(&answer(&request, 2))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(app.state.license().is_licensed());
    let reply = app.deactivate(KEY).await;
    assert_eq!(reply.json["counter"], 4);
    assert_eq!(reply.json["serial"], 2);
    assert_eq!(app.licenses().await.len(), 2);
}

#[tokio::test]
async fn deactivation_survives_a_restart() {
    let app = TestApp::new().await;
    app.install(1).await;
    assert_eq!(app.deactivate(KEY).await.status, StatusCode::OK);
    let before = app.dump().await;
    let app = app.restart().await;
    assert_eq!(app.dump().await, before);
    assert!(!app.state.license().is_licensed());
    assert_eq!(app.get_status().await.json["reasonCode"], "deactivated");
}
