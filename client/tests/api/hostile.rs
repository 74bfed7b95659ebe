//! Hostile input on every endpoint, from the shared generator
//! (`ren3_testkit::hostile`): every case gets a 4xx problem+json with a
//! documented `code`, never a 5xx, a panic or a leaked detail, and leaves
//! the store exactly as it was.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use ren3_shared::{DeviceKey, LicenseRequest, Product, ReleaseReceipt};
use ren3_testkit::hostile::{self, CLIENT_4XX_CODES as DOCUMENTED_4XX, FLIP_CODES, TOKEN_CODES};
use serde_json::json;

use crate::support::{DEVICE_ID, KEY, NOW, Reply, TestApp, answer, key, sign};

fn raw(uri: &str, content_type: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::builder().method(Method::POST).uri(uri);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body)).unwrap()
}

/// A refusal: 4xx, problem+json, a documented code, nothing leaked, the
/// license key not echoed, never sniffed as HTML.
#[track_caller]
fn assert_refused(reply: &Reply, context: &str) {
    assert!(
        reply.status.is_client_error(),
        "{context}: {} {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "{context}"
    );
    assert!(
        DOCUMENTED_4XX.contains(&reply.code()),
        "{context}: undocumented code: {}",
        reply.text
    );
    reply.assert_problem(reply.status, reply.code(), context);
    if let Some(leak) = hostile::leaks(&reply.text) {
        panic!("{context}: the answer leaks {leak:?}: {}", reply.text);
    }
    assert!(!reply.text.contains(KEY), "{context}: the key is echoed");
    // Serde's message may quote a field name the caller sent (escaped as
    // JSON); a browser must never sniff the answer as HTML.
    assert_eq!(
        reply.headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff",
        "{context}"
    );
}

/// An app with an active license (serial 1) and a pending request, so that
/// every endpoint has something a hostile input could wrongly change.
async fn busy_app() -> (TestApp, String) {
    let app = TestApp::new().await;
    app.install(1).await;
    let pending = app.register(&key()).await;
    (app, pending)
}

#[tokio::test]
async fn every_endpoint_refuses_hostile_bodies_with_a_stable_problem() {
    let (app, pending) = busy_app().await;
    let payload = sign(&answer(&pending, 2));
    let endpoints = [
        (
            "/license/register",
            json!({"licenseKey": KEY, "export": true}),
        ),
        (
            "/license/import",
            json!({"licenseKey": KEY, "licensePayload": payload}),
        ),
        ("/license/deactivate", json!({"licenseKey": KEY})),
    ];
    let (mut count, mut wrong) = (0, Vec::new());
    for (uri, valid) in endpoints {
        for case in hostile::json_body_cases(&valid) {
            let context = format!("{uri} case {}", case.name());
            let before = app.dump().await;
            let reply = app
                .send(raw(uri, case.content_type, case.body.clone()))
                .await;
            if reply.status.as_u16() != case.status || reply.code() != case.code {
                wrong.push(format!("{context}: {} {}", reply.status, reply.text));
                continue;
            }
            assert_refused(&reply, &context);
            reply.assert_problem(reply.status, case.code, &context);
            assert_eq!(app.dump().await, before, "{context}: the store changed");
            count += 1;
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(count > 100, "{count} cases");
    // The valid bodies still work: the cases were refused for what they are.
    let reply = app.import(&key(), &payload).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn import_refuses_every_hostile_payload_token_with_its_code() {
    let (app, pending) = busy_app().await;
    let payload = sign(&answer(&pending, 2));
    let receipt = ReleaseReceipt {
        released_at: NOW,
        client_device_id: ren3_shared::DeviceId::parse(DEVICE_ID).unwrap(),
        license_key_fingerprint: key().fingerprint(),
        serial: 1,
        counter: 1,
    }
    .sign(&DeviceKey::from_seed(&[3; 32]))
    .unwrap()
    .token();
    let cases = hostile::token_cases(&payload, &[&pending, &receipt]);
    assert!(cases.len() > 40);
    for case in cases {
        let context = format!("case {}", case.name());
        let before = app.dump().await;
        let reply = app.import(&key(), &case.input).await;
        if case.expected == "token_too_large" {
            // Over HTTP the 64 KiB body limit answers first.
            reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &context);
        } else {
            reply.assert_problem(StatusCode::BAD_REQUEST, case.expected, &context);
        }
        assert_refused(&reply, &context);
        assert_eq!(app.dump().await, before, "{context}: the store changed");
    }
    assert_eq!(app.import(&key(), &payload).await.status, StatusCode::OK);
}

/// Every byte of the signed message flipped in turn (resealed, so only the
/// signature can tell), then every character of the token text.
#[tokio::test]
async fn import_refuses_every_single_byte_and_character_change() {
    let (app, pending) = busy_app().await;
    let payload = sign(&answer(&pending, 2));
    let before = app.dump().await;
    let bytes = hostile::flipped_message_bytes(&payload);
    let characters = hostile::flipped_characters(&payload);
    assert!(bytes.len() > 300 && characters.len() > 400);
    for (what, flips) in [("message byte", bytes), ("character", characters)] {
        for (i, token) in flips {
            let context = format!("{what} {i} flipped");
            let reply = app.import(&key(), &token).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{context}: {}",
                reply.text
            );
            assert!(
                FLIP_CODES.contains(&reply.code()),
                "{context}: {}",
                reply.text
            );
            assert_refused(&reply, &context);
        }
    }
    assert_eq!(app.dump().await, before, "the store changed");
    assert_eq!(app.import(&key(), &payload).await.status, StatusCode::OK);
}

#[tokio::test]
async fn control_characters_and_script_in_text_fields_are_refused() {
    let (app, pending) = busy_app().await;
    let payload = sign(&answer(&pending, 2));
    for (id, description, text) in hostile::hostile_texts() {
        let spliced = format!("{}{text}{}", &KEY[..10], &KEY[10..]);
        let bodies = [
            (
                "register, licenseKey",
                "/license/register",
                json!({"licenseKey": text, "export": true}),
                "invalid_license_key",
            ),
            (
                "register, licenseKey with the text inside a valid key",
                "/license/register",
                json!({"licenseKey": spliced, "export": true}),
                "invalid_license_key",
            ),
            (
                "import, licenseKey",
                "/license/import",
                json!({"licenseKey": text, "licensePayload": payload}),
                "invalid_license_key",
            ),
            (
                "import, licensePayload",
                "/license/import",
                json!({"licenseKey": KEY, "licensePayload": text}),
                "",
            ),
            (
                "deactivate, licenseKey",
                "/license/deactivate",
                json!({"licenseKey": spliced}),
                "invalid_license_key",
            ),
        ];
        for (field, uri, body, code) in bodies {
            let context = format!("{id}. {description} in {field}");
            let before = app.dump().await;
            let reply = app.post(uri, body).await;
            assert_refused(&reply, &context);
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{context}");
            if code.is_empty() {
                assert!(
                    TOKEN_CODES.contains(&reply.code()),
                    "{context}: {}",
                    reply.text
                );
            } else {
                assert_eq!(reply.code(), code, "{context}: {}", reply.text);
            }
            assert!(
                !reply.text.contains(&text),
                "{context}: the text is echoed: {}",
                reply.text
            );
            assert_eq!(app.dump().await, before, "{context}: the store changed");
        }
    }
}

/// The one endpoint that reads no body: junk in its query or body is
/// ignored (the status is a read), never a 5xx, and changes nothing.
#[tokio::test]
async fn status_ignores_junk_query_and_body() {
    let (app, _) = busy_app().await;
    let plain = app.get_status().await.text;
    let before = app.dump().await;
    let cases: [(&str, &str, Vec<u8>); 5] = [
        (
            "1. script in the query",
            "/license?%3Cscript%3E=1",
            Vec::new(),
        ),
        (
            "2. NUL and controls in the query",
            "/license?a=%00%1b%7f&a=2",
            Vec::new(),
        ),
        ("3. a JSON body", "/license", b"{\"licenseKey\":1}".to_vec()),
        ("4. non-UTF-8 body", "/license", vec![0xff; 1024]),
        ("5. a body over the limit", "/license", vec![b'['; 100_000]),
    ];
    for (context, uri, body) in cases {
        let reply = app
            .send(
                Request::builder()
                    .uri(uri)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.text);
        assert_eq!(reply.text, plain, "{context}");
        assert!(hostile::leaks(&reply.text).is_none(), "{context}");
        assert_eq!(app.dump().await, before, "{context}: the store changed");
    }
}

/// The repudiation pair in a request as a payload: refused as the wrong
/// kind before any key is parsed; in the payload's own key-id line, as a
/// signer nobody trusts.
#[tokio::test]
async fn small_order_keys_and_signatures_are_refused() {
    let (app, pending) = busy_app().await;
    let request = LicenseRequest::new(
        ren3_shared::DeviceId::parse(DEVICE_ID).unwrap(),
        &key(),
        Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        },
        NOW,
    )
    .unwrap()
    .sign(&DeviceKey::from_seed(&[4; 32]))
    .unwrap()
    .token();
    let weak_request = hostile::token_cases(&request, &[])
        .into_iter()
        .find(|c| {
            c.description
                .starts_with("the small-order identity key as signer")
        })
        .unwrap();
    let payload = sign(&answer(&pending, 2));
    let weak_payload = hostile::token_cases(&payload, &[])
        .into_iter()
        .filter(|c| c.description.contains("repudiation") || c.description.contains("small-order"))
        .collect::<Vec<_>>();
    assert_eq!(weak_payload.len(), 3);
    let before = app.dump().await;
    let reply = app.import(&key(), &weak_request.input).await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "token_wrong_kind", "weak request");
    for case in weak_payload {
        let reply = app.import(&key(), &case.input).await;
        reply.assert_problem(StatusCode::BAD_REQUEST, case.expected, &case.name());
    }
    assert_eq!(app.dump().await, before);
}
