use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use ren3_client::BODY_LIMIT;
use serde_json::json;

use crate::support::{KEY, TestApp};

fn request(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    let app = TestApp::new().await;
    let json = Some("application/json");
    let huge = json!({"licenseKey": KEY, "licensePayload": "a".repeat(BODY_LIMIT)}).to_string();
    let cases = [
        (
            "1. syntax error",
            request(Method::POST, "/license/register", json, "{\"licenseKey\": "),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "2. unknown field",
            request(
                Method::POST,
                "/license/register",
                json,
                json!({"licenseKey": KEY, "export": true, "force": true}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "3. missing field",
            request(
                Method::POST,
                "/license/register",
                json,
                json!({"licenseKey": KEY}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "4. wrong type",
            request(
                Method::POST,
                "/license/register",
                json,
                json!({"licenseKey": KEY, "export": "yes"}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "5. snake_case field",
            request(
                Method::POST,
                "/license/import",
                json,
                json!({"license_key": KEY, "licensePayload": "x"}).to_string(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "6. wrong content type",
            request(
                Method::POST,
                "/license/import",
                Some("text/plain"),
                json!({"licenseKey": KEY, "licensePayload": "x"}).to_string(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "7. no content type",
            request(
                Method::POST,
                "/license/register",
                None,
                json!({"licenseKey": KEY, "export": true}).to_string(),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "8. oversized body",
            request(Method::POST, "/license/import", json, huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "9. unknown route",
            request(Method::GET, "/licence", None, Body::empty()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "10. wrong method",
            request(Method::GET, "/license/register", None, Body::empty()),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "11. wrong method on status",
            request(Method::DELETE, "/license", None, Body::empty()),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "12. a declared length over the limit, refused before the body is read",
            {
                let mut request = request(Method::POST, "/license/import", json, "{}");
                request
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, (BODY_LIMIT + 1).into());
                request
            },
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (context, request, status, code) in cases {
        let before = app.dump().await;
        let reply = app.send(request).await;
        reply.assert_problem(status, code, context);
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read: the connection must end.
            assert_eq!(
                reply.headers.get(header::CONNECTION).map(|v| v.as_bytes()),
                Some(b"close".as_slice()),
                "{context}"
            );
        }
        assert!(!reply.text.contains(KEY), "{context}: the key is echoed");
        assert_eq!(app.dump().await, before, "{context}: the store changed");
    }
}

#[tokio::test]
async fn wrong_method_names_the_allowed_one() {
    let app = TestApp::new().await;
    let reply = app
        .send(request(Method::GET, "/license/import", None, Body::empty()))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers.get(header::ALLOW).unwrap(), "POST");
}

#[tokio::test]
async fn responses_are_not_cached_or_sniffed() {
    let app = TestApp::new().await;
    for reply in [
        app.get_status().await,
        app.send(request(Method::GET, "/nowhere", None, Body::empty()))
            .await,
    ] {
        assert_eq!(
            reply.headers.get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        assert_eq!(
            reply.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
            "nosniff"
        );
    }
}

#[tokio::test]
async fn storage_failures_are_500_with_details_only_in_the_log() {
    let app = TestApp::new().await;
    app.state
        .store()
        .call(|conn| {
            conn.execute_batch("DROP TABLE pending_requests")
                .map_err(ren3_client::StoreError::from)
        })
        .await
        .unwrap();

    let register = app
        .post(
            "/license/register",
            json!({"licenseKey": KEY, "export": true}),
        )
        .await;
    let status = app
        .send(request(Method::GET, "/license", None, Body::empty()))
        .await;
    for (context, reply) in [("register", register), ("status", status)] {
        reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", context);
        assert!(
            !reply.text.contains("pending_requests"),
            "{context}: {}",
            reply.text
        );
        assert!(!reply.text.contains("SQLite"), "{context}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_after_the_configured_timeout() {
    use std::convert::Infallible;
    use std::time::{Duration, Instant};

    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use http_body_util::{BodyExt as _, Full};

    let app = TestApp::with_vars(&[("license_body_timeout", "200ms")]).await;
    let before = app.dump().await;
    let body = json!({"licenseKey": KEY, "licensePayload": "ren3-payload-v1.a.b.c"}).to_string();
    // Half the body, then silence: the trailers never come.
    let half = Full::new(Bytes::from(body[..body.len() / 2].to_owned()))
        .with_trailers(std::future::pending::<Option<Result<HeaderMap, Infallible>>>());
    let started = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        app.send(request(
            Method::POST,
            "/license/import",
            Some("application/json"),
            Body::new(half),
        )),
    )
    .await
    .expect("the stalled body is cut off, not waited for");
    reply.assert_problem(StatusCode::BAD_REQUEST, "unreadable_body", "stalled body");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.dump().await, before, "a refusal changes nothing");
}
