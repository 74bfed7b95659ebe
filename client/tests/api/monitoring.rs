//! `/healthz`, `/readyz` and `/metrics`, on the licensing router (under its
//! `Host` check) and on the metrics listener's (without it). The metrics
//! tests record into a Prometheus recorder of their own, set for the
//! test's thread only, so that tests running at once do not share one.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use ren3_client::metrics_app;

use crate::support::*;

fn get(uri: &str) -> Request<Body> {
    Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

fn get_from(uri: &str, host: &str) -> Request<Body> {
    Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap()
}

/// `app` serving `recorder`'s text at `/metrics`, as `ren3-client serve`
/// serves the one it installs.
fn with_metrics(app: &mut TestApp, recorder: &PrometheusRecorder) {
    let handle = recorder.handle();
    app.router = ren3_client::app(app.state.clone().with_metrics(move || handle.render()));
}

/// Breaks the store under the running service, as a damaged file would:
/// a table every status reads is gone.
async fn break_store(app: &TestApp) {
    app.state
        .store()
        .call(|conn| {
            conn.execute_batch("DROP TABLE pending_requests")
                .map_err(ren3_client::StoreError::from)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn health_and_readiness_answer_on_the_licensing_port_under_its_host_check() {
    let app = TestApp::new().await;
    for (i, path) in ["/healthz", "/readyz"].into_iter().enumerate() {
        let reply = app.send(get(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{i}: {path}: {}", reply.text);
        assert!(reply.text.len() < 16, "{i}: {path}: a tiny body");
        assert_eq!(
            reply.headers.get(header::CACHE_CONTROL).unwrap(),
            "no-store",
            "{i}: {path}"
        );
        let refused = app.send(get_from(path, "rebound.example")).await;
        refused.assert_problem(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            &format!("{i}: {path} from another name"),
        );
    }
}

#[tokio::test]
async fn readiness_is_503_with_a_problem_when_the_store_cannot_be_read() {
    let app = TestApp::new().await;
    let metrics = metrics_app(app.state.clone());
    break_store(&app).await;

    let reply = app.send(get("/readyz")).await;
    reply.assert_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "licensing port",
    );
    assert!(reply.text.contains("license store"), "{}", reply.text);
    // The cause goes to the log only.
    assert!(!reply.text.contains("pending_requests"), "{}", reply.text);
    assert!(!reply.text.contains("SQLite"), "{}", reply.text);
    // The process still answers.
    assert_eq!(app.send(get("/healthz")).await.status, StatusCode::OK);

    // The same on the metrics listener's router.
    let answer = tower::ServiceExt::oneshot(metrics, get_from("/readyz", "10.1.2.3:9464"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_without_a_recorder_are_503_saying_what_to_install() {
    let app = TestApp::new().await;
    let reply = app.send(get("/metrics")).await;
    reply.assert_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "metrics_unavailable",
        "no recorder",
    );
    assert!(
        reply.text.contains("AppState::with_metrics"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn metrics_count_imports_and_refusals_by_code_and_show_the_license_now() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut app = TestApp::new().await;
    with_metrics(&mut app, &recorder);

    let unlicensed = app.send(get("/metrics")).await;
    assert_eq!(unlicensed.status, StatusCode::OK, "{}", unlicensed.text);
    assert_eq!(
        unlicensed.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for (i, line) in [
        "ren3_client_license_state{state=\"unlicensed\"} 1",
        "ren3_client_license_state{state=\"active\"} 0",
        "ren3_client_license_licensed 0",
        "ren3_client_license_remaining_days NaN",
        "ren3_client_clock_suspect 0",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            unlicensed.text.lines().any(|l| l == line),
            "{i}: {line} in\n{}",
            unlicensed.text
        );
    }

    let payload = app.install(1).await;
    let refused = app.import(&other_key(), &payload).await;
    refused.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "license_key_mismatch",
        "refused import",
    );

    let licensed = app.send(get("/metrics")).await;
    assert_eq!(licensed.status, StatusCode::OK, "{}", licensed.text);
    for (i, line) in [
        "ren3_client_registrations_total 1",
        "ren3_client_imports_total 1",
        "ren3_client_refusals_total{operation=\"import\",code=\"license_key_mismatch\"} 1",
        "ren3_client_license_state{state=\"active\"} 1",
        "ren3_client_license_state{state=\"unlicensed\"} 0",
        "ren3_client_license_state{state=\"pending\"} 0",
        "ren3_client_license_licensed 1",
        "ren3_client_license_remaining_days 365",
        "ren3_client_clock_suspect 0",
        "# TYPE ren3_client_refusals_total counter",
        "# TYPE ren3_client_license_remaining_days gauge",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(
            licensed.text.lines().any(|l| l == line),
            "{i}: {line} in\n{}",
            licensed.text
        );
    }
    assert!(
        licensed.text.contains("# HELP ren3_client_imports_total "),
        "{}",
        licensed.text
    );
    // Nothing names the license, its key or the customer.
    for (i, secret) in [KEY, "ACME", DEVICE_ID, "REN3K1", "REN3D1"]
        .into_iter()
        .enumerate()
    {
        assert!(!licensed.text.contains(secret), "{i}: {secret}");
    }

    // Half a day later, the gauge says so at the scrape, with no change.
    app.set_now(NOW + DAY / 2);
    let later = app.send(get("/metrics")).await;
    assert!(
        later
            .text
            .lines()
            .any(|l| l == "ren3_client_license_remaining_days 364.5"),
        "{}",
        later.text
    );
}

#[tokio::test]
async fn the_metrics_listener_serves_only_its_three_routes_to_any_host() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let app = TestApp::new().await;
    let handle = recorder.handle();
    let router = metrics_app(app.state.clone().with_metrics(move || handle.render()));
    let send = |request| tower::ServiceExt::oneshot(router.clone(), request);

    for (i, path) in ["/metrics", "/healthz", "/readyz"].into_iter().enumerate() {
        // A Prometheus on another host, by this host's address.
        let answer = send(get_from(path, "192.0.2.10:9464")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{i}: {path}");
    }
    for (i, path) in ["/license", "/license/page", "/"].into_iter().enumerate() {
        let answer = send(get_from(path, "192.0.2.10:9464")).await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{i}: {path}");
    }
    let register = Request::builder()
        .method(Method::POST)
        .uri("/license/register")
        .header(header::HOST, "192.0.2.10:9464")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"licenseKey":"x","export":true}"#))
        .unwrap();
    assert_eq!(
        send(register).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "no licensing operation"
    );
    // The licensing router itself still refuses that name.
    let licensing = app.send(get_from("/metrics", "192.0.2.10:9464")).await;
    assert_eq!(licensing.status, StatusCode::MISDIRECTED_REQUEST);
}
