use axum::http::StatusCode;
use ren3_client::store::MAX_PENDING_REQUESTS;
use ren3_shared::{LicenseKey, VerifiedRequest, timestamp};
use serde_json::json;

use crate::support::{DEVICE_ID, KEY, NOW, TestApp, answer, key, sign};

#[tokio::test]
async fn register_exports_a_signed_request_and_records_it_as_pending() {
    let app = TestApp::new().await;
    let reply = app
        .post(
            "/license/register",
            json!({"licenseKey": KEY, "export": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.content_type(), "application/json");

    let body = reply.json.as_object().unwrap();
    let mut fields: Vec<&str> = body.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "clientDeviceId",
            "createdAt",
            "licenseKeyHint",
            "licenseRequest",
            "requestId",
            "sendTo"
        ]
    );
    let token = body["licenseRequest"].as_str().unwrap();
    let request = VerifiedRequest::open(token).unwrap();
    assert_eq!(request.device_public_key, app.state.device_public_key());
    assert_eq!(request.request.client_device_id.as_str(), DEVICE_ID);
    assert_eq!(request.request.license_key_fingerprint, key().fingerprint());
    assert_eq!(request.request.created_at, NOW);
    assert_eq!(request.request.product.name, "ren3-ingestor");
    assert_eq!(request.request.product.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(body["requestId"], request.request.request_id.to_string());
    assert_eq!(body["clientDeviceId"], DEVICE_ID);
    assert_eq!(body["createdAt"], timestamp::format(NOW));
    assert_eq!(body["licenseKeyHint"], "REN3K1-00000-…");
    assert!(body["sendTo"].as_str().unwrap().contains("ReN3 team"));
    assert!(!reply.text.contains(KEY), "the key must not be echoed");

    let dump = app.dump().await;
    let pending: Vec<&String> = dump
        .iter()
        .filter(|row| row.starts_with("pending_requests: "))
        .collect();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].contains(&request.hash().to_string()));
    assert!(pending[0].contains(&request.token()));
    assert!(
        !dump.iter().any(|row| row.contains(KEY)),
        "the key is never stored"
    );

    let status = app.get_status().await;
    assert_eq!(status.json["state"], "pending");
    assert_eq!(status.json["pendingRequests"], 1);
}

#[tokio::test]
async fn register_refusals_store_nothing() {
    let enabled = TestApp::new().await;
    let disabled = TestApp::disabled().await;
    let cases = [
        (
            &disabled,
            json!({"licenseKey": KEY, "export": true}),
            StatusCode::CONFLICT,
            "offline_licensing_disabled",
            "enable_offline_license=true",
        ),
        (
            &enabled,
            json!({"licenseKey": KEY, "export": false}),
            StatusCode::BAD_REQUEST,
            "online_activation_unavailable",
            "send {\"export\": true}",
        ),
        (
            &enabled,
            json!({"licenseKey": "REN3K1-00000-00000-00000-00000-00001", "export": true}),
            StatusCode::BAD_REQUEST,
            "invalid_license_key",
            "contains a typo",
        ),
        (
            &enabled,
            json!({"licenseKey": "", "export": true}),
            StatusCode::BAD_REQUEST,
            "invalid_license_key",
            "is empty",
        ),
        (
            &enabled,
            json!({"licenseKey": DEVICE_ID, "export": true}),
            StatusCode::BAD_REQUEST,
            "invalid_license_key",
            "starts with `REN3K1-`",
        ),
    ];
    for (n, (app, body, status, code, needle)) in cases.into_iter().enumerate() {
        let before = app.dump().await;
        let reply = app.post("/license/register", body).await;
        reply.assert_problem(status, code, &format!("{n}."));
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{n}. {detail}");
        assert_eq!(app.dump().await, before, "{n}. the store changed");
    }
    let disabled_detail = disabled
        .post(
            "/license/register",
            json!({"licenseKey": KEY, "export": true}),
        )
        .await
        .json["detail"]
        .to_string();
    assert!(
        disabled_detail.contains("client_device_id="),
        "{disabled_detail}"
    );
    assert!(disabled_detail.contains("restart"), "{disabled_detail}");
}

#[tokio::test]
async fn register_keeps_at_most_sixteen_pending_requests() {
    let app = TestApp::new().await;
    let first = app.register(&key()).await;
    for _ in 1..MAX_PENDING_REQUESTS {
        app.register(&key()).await;
    }
    assert_eq!(app.count("pending_requests").await, 16);
    assert!(
        app.dump()
            .await
            .iter()
            .any(|row| row.contains(&VerifiedRequest::open(&first).unwrap().hash().to_string()))
    );

    let seventeenth = app.register(&key()).await;
    assert_eq!(app.count("pending_requests").await, 16);
    assert_eq!(app.get_status().await.json["pendingRequests"], 16);
    let dump = app.dump().await;
    let hash = |token: &str| VerifiedRequest::open(token).unwrap().hash().to_string();
    assert!(
        !dump.iter().any(|row| row.contains(&hash(&first))),
        "the oldest is gone"
    );
    assert!(dump.iter().any(|row| row.contains(&hash(&seventeenth))));

    let reply = app.import(&key(), &sign(&answer(&first, 1))).await;
    reply.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_request",
        "evicted request",
    );
}

#[tokio::test]
async fn registers_under_strangers_keys_never_push_out_the_customers_request() {
    let app = TestApp::new().await;
    let genuine = app.register(&key()).await;
    // Anyone who reaches the port, with well-formed keys of their own.
    let strangers: Vec<LicenseKey> = (0..MAX_PENDING_REQUESTS)
        .map(|_| LicenseKey::generate().unwrap())
        .collect();
    let (fit, beyond) = strangers.split_at(strangers.len() - 1);
    for stranger in fit {
        app.register(stranger).await;
    }
    assert_eq!(app.pending().await, 16);

    // A seventeenth key: refused, and nothing changes.
    let before = (app.dump().await, app.installed());
    let reply = app
        .post(
            "/license/register",
            json!({"licenseKey": beyond[0].reveal(), "export": true}),
        )
        .await;
    reply.assert_problem(
        StatusCode::CONFLICT,
        "too_many_pending_requests",
        "a seventeenth key",
    );
    let detail = reply.json["detail"].as_str().unwrap();
    for needle in ["POST /license/import", "POST /license/deactivate", "16"] {
        assert!(detail.contains(needle), "{needle}: {detail}");
    }
    assert_eq!((app.dump().await, app.installed()), before);

    // Another request under a key already pending is accepted: it replaces
    // that key's older one, never another key's newest.
    let again = app.register(&fit[0]).await;
    let again_too = app.register(&key()).await;
    assert_eq!(app.pending().await, 16);
    let dump = app.dump().await;
    let stored = |token: &str| {
        let hash = VerifiedRequest::open(token).unwrap().hash().to_string();
        dump.iter().any(|row| row.contains(&hash))
    };
    assert!(stored(&again) && stored(&again_too));
    assert!(
        !stored(&genuine),
        "the customer's own newer request replaced it"
    );

    // Had the customer sent the first request, its payload is gone with it;
    // the newest is what they send, and its payload imports.
    let reply = app.import(&key(), &sign(&answer(&again_too, 1))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["state"], "active");
}

#[tokio::test]
async fn the_genuine_request_survives_a_flood_and_its_payload_imports() {
    let app = TestApp::new().await;
    let genuine = app.register(&key()).await;
    for n in 0..MAX_PENDING_REQUESTS {
        let reply = app
            .post(
                "/license/register",
                json!({"licenseKey": LicenseKey::generate().unwrap().reveal(), "export": true}),
            )
            .await;
        let expected = if n + 1 < MAX_PENDING_REQUESTS {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(reply.status, expected, "{n}. {}", reply.text);
    }
    let reply = app.import(&key(), &sign(&answer(&genuine, 1))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["state"], "active");
}
