use serde_json::json;

use crate::support::{DEVICE_ID, KEY, TestApp, key};

#[tokio::test]
async fn status_without_offline_licensing_says_how_to_enable_it() {
    let app = TestApp::disabled().await;
    let status = app.get_status().await;
    assert_eq!(status.content_type(), "application/json");
    let reason = status.json["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("enable_offline_license=true"), "{reason}");
    assert_eq!(
        status.json,
        json!({
            "state": "unlicensed",
            "reason": reason,
            "offlineLicensing": false,
            "clientDeviceId": null,
            "pendingRequests": 0,
            "license": null,
        })
    );
    assert!(!app.state.license().is_licensed());
}

#[tokio::test]
async fn status_moves_from_unlicensed_to_pending_to_active() {
    let app = TestApp::new().await;
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "unlicensed");
    assert_eq!(status.json["offlineLicensing"], true);
    assert_eq!(status.json["clientDeviceId"], DEVICE_ID);
    assert_eq!(status.json["license"], json!(null));
    assert!(
        status.json["reason"]
            .as_str()
            .unwrap()
            .contains("POST /license/register")
    );

    app.register(&key()).await;
    app.register(&key()).await;
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "pending");
    assert_eq!(status.json["pendingRequests"], 2);
    assert!(
        status.json["reason"]
            .as_str()
            .unwrap()
            .contains("2 license requests are waiting")
    );

    app.install(1).await;
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "active");
    assert!(!status.text.contains(KEY));
    assert!(!status.text.contains("licenseKeyHint"));
}

#[tokio::test]
async fn status_shows_a_license_that_is_not_yet_in_effect() {
    let app = TestApp::new().await;
    app.install(1).await;
    app.set_now(crate::support::NOW - 301);
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "not_yet_valid");
    assert!(!app.state.license().is_licensed());
}
