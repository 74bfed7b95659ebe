//! The `Host` check on the licensing endpoints (DNS rebinding): the names
//! they answer to, the refusals, and the ingestor's own merged routes,
//! which are not checked.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::get;
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;

use crate::support::{KEY, TestApp};

async fn app() -> TestApp {
    TestApp::with_vars(&[
        ("listen_addr", "192.168.50.5:5000"),
        (
            "license_allowed_hosts",
            "Ingestor.Example, 10.9.8.7,[fd00::7]",
        ),
    ])
    .await
}

fn status_request(host: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().uri("/license");
    if let Some(host) = host {
        request = request.header(header::HOST, host);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn licensing_routes_answer_localhost_loopback_the_listen_address_and_configured_names() {
    let app = app().await;
    let allowed = [
        "localhost:1234",
        "localhost",
        "127.0.0.1:5000",
        "127.0.0.2",
        "[::1]:80",
        "[0:0:0:0:0:0:0:1]:5000",
        "192.168.50.5:9999",
        "ingestor.example",
        "INGESTOR.EXAMPLE.:8443",
        "10.9.8.7:5000",
        "[fd00::7]:5000",
    ];
    for (n, host) in allowed.into_iter().enumerate() {
        let reply = app.send_raw(status_request(Some(host))).await;
        assert_eq!(reply.status, StatusCode::OK, "{n}. {host}: {}", reply.text);
        assert_eq!(reply.json["state"], "unlicensed", "{n}. {host}");
    }
}

#[tokio::test]
async fn other_hosts_and_a_missing_host_are_refused_and_change_nothing() {
    let app = app().await;
    app.register(&crate::support::key()).await;
    let before = (app.dump().await, app.installed());
    // (Host headers, status, code)
    let cases: &[(&[&str], StatusCode, &str)] = &[
        (
            &["evil.example"],
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
        ),
        (
            &["evil.example:5000"],
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
        ),
        (
            &["localhost.evil.example"],
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
        ),
        (
            &["192.168.50.6:5000"],
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
        ),
        (
            &["0.0.0.0:5000"],
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
        ),
        (
            &["[::2]"],
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
        ),
        (&[], StatusCode::BAD_REQUEST, "host_invalid"),
        (
            &["localhost", "localhost"],
            StatusCode::BAD_REQUEST,
            "host_invalid",
        ),
        (&["user@localhost"], StatusCode::BAD_REQUEST, "host_invalid"),
        (&[""], StatusCode::BAD_REQUEST, "host_invalid"),
        (&["local host"], StatusCode::BAD_REQUEST, "host_invalid"),
    ];
    for (n, (hosts, status, code)) in cases.iter().enumerate() {
        for (method, uri, body) in [
            (Method::GET, "/license", String::new()),
            (
                Method::POST,
                "/license/register",
                json!({"licenseKey": KEY, "export": true}).to_string(),
            ),
            (
                Method::POST,
                "/license/deactivate",
                json!({"licenseKey": KEY}).to_string(),
            ),
            (Method::GET, "/nowhere", String::new()),
        ] {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            for host in *hosts {
                request = request.header(header::HOST, *host);
            }
            let reply = app.send_raw(request.body(Body::from(body)).unwrap()).await;
            let context = format!("{n}. {hosts:?} {method} {uri}");
            reply.assert_problem(*status, code, &context);
            assert_eq!(
                reply.headers[header::CACHE_CONTROL],
                "no-store",
                "{context}"
            );
            let detail = reply.json["detail"].as_str().unwrap();
            if *code == "host_not_allowed" {
                assert!(
                    detail.contains("license_allowed_hosts"),
                    "{context}: {detail}"
                );
            } else {
                assert!(detail.contains("Host: localhost"), "{context}: {detail}");
            }
        }
    }
    assert_eq!((app.dump().await, app.installed()), before);
}

#[tokio::test]
async fn an_absolute_target_is_judged_by_its_own_authority() {
    let app = app().await;
    let request = |uri: &str| {
        Request::builder()
            .uri(uri)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .unwrap()
    };
    let reply = app.send_raw(request("http://evil.example/license")).await;
    reply.assert_problem(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        "absolute form",
    );
    let reply = app.send_raw(request("http://127.0.0.1:5000/license")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn a_wildcard_listen_address_does_not_allow_every_name() {
    let app = TestApp::with_vars(&[("listen_addr", "0.0.0.0:5000")]).await;
    for (n, (host, status)) in [
        ("10.1.2.3:5000", StatusCode::MISDIRECTED_REQUEST),
        ("0.0.0.0:5000", StatusCode::MISDIRECTED_REQUEST),
        ("evil.example", StatusCode::MISDIRECTED_REQUEST),
        ("127.0.0.1:5000", StatusCode::OK),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = app.send_raw(status_request(Some(host))).await;
        assert_eq!(reply.status, status, "{n}. {host}: {}", reply.text);
    }
}

#[tokio::test]
async fn the_ingestors_merged_routes_are_not_host_checked() {
    let app = app().await;
    let router = ren3_client::app(app.state.clone())
        .merge(Router::new().route("/ingest", get(|| async { "ingested" })));
    let call = |uri: &'static str, host: &'static str| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(
                    Request::builder()
                        .uri(uri)
                        .header(header::HOST, host)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    assert_eq!(
        call("/ingest", "evil.example").await,
        (StatusCode::OK, "ingested".to_owned())
    );
    assert_eq!(
        call("/license", "evil.example").await.0,
        StatusCode::MISDIRECTED_REQUEST
    );
    assert_eq!(call("/license", "localhost").await.0, StatusCode::OK);
}
