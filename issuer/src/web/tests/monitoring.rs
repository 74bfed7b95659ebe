//! `/healthz`, `/readyz` and `/metrics`: outside the login, on the
//! console's router and on the metrics listener's. Each console records
//! into a Prometheus recorder of its own (`Metrics::own`), so that tests
//! running at once count only their own work.

use super::*;
use crate::web::{Metrics, metrics_app};

fn get_from(path: &str, host: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap()
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_login() {
    let console = Console::new();
    for (i, path) in ["/healthz", "/readyz", "/metrics"].into_iter().enumerate() {
        let answer = console.get(path).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{i}: {path}: {}",
            answer.body
        );
        assert_ne!(answer.location(), "/login", "{i}: {path}");
    }
    let metrics = console.get("/metrics").await;
    assert_eq!(
        metrics.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        has_line(&metrics.body, "# TYPE ren3_issuer_seats_in_use gauge"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn readiness_is_503_with_a_problem_when_the_store_cannot_be_read() {
    let console = Console::new();
    let conn = rusqlite::Connection::open(&console.t.paths.db).unwrap();
    conn.execute_batch("DROP TABLE licenses").unwrap();

    let answer = console.get("/readyz").await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(
        answer.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    let problem: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(problem["code"], "store_unavailable");
    assert_eq!(problem["status"], 503);
    assert!(
        problem["detail"].as_str().unwrap().contains("store"),
        "{}",
        answer.body
    );
    // The cause goes to the log only.
    assert!(!answer.body.contains("licenses"), "{}", answer.body);
    assert_eq!(console.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_without_a_recorder_are_503_saying_what_to_install() {
    let t = TestStore::new();
    let state = AppState::new(
        setup::open_store(&t.paths).unwrap(),
        setup::open_keys(&t.paths).unwrap(),
        Config::default(),
    );
    let answer = super::super::app(state)
        .oneshot(get_from("/metrics", "localhost"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "metrics_unavailable");
    assert!(problem["detail"].as_str().unwrap().contains("with_metrics"));
}

#[tokio::test]
async fn metrics_count_issuances_refusals_logins_and_seats_in_aggregate() {
    let mut console = Console::new();
    let refused = console.try_login("alice", "not the password").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    console.log_in().await;
    let (key, _) = console.license(acme(1));
    let first = ren3_issuer_core::devices::add(&mut console.t.store, &actor(), &key, None, NOW)
        .unwrap()
        .device
        .client_device_id;
    let second = ren3_issuer_core::devices::add(&mut console.t.store, &actor(), &key, None, NOW)
        .unwrap()
        .device
        .client_device_id;
    let csrf = console.csrf.clone();
    let issued = console
        .post(
            "/issue",
            &[
                ("csrf", &csrf),
                ("request", &request(&key, &first, &installation(1))),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.body);
    let no_seat = console
        .post(
            "/issue",
            &[
                ("csrf", &csrf),
                ("request", &request(&key, &second, &installation(2))),
            ],
        )
        .await;
    assert!(no_seat.body.contains("no_free_seat"), "{}", no_seat.body);

    let metrics = console.get("/metrics").await;
    let text = &metrics.body;
    for (i, line) in [
        "ren3_issuer_issuances_total{repeated=\"false\"} 1",
        "ren3_issuer_refusals_total{action=\"issue\",code=\"no_free_seat\"} 1",
        "ren3_issuer_logins_total{result=\"ok\"} 1",
        "ren3_issuer_logins_total{result=\"wrong_credentials\"} 1",
        "ren3_issuer_seats_in_use 1",
        "# TYPE ren3_issuer_issuances_total counter",
        "# TYPE ren3_issuer_store_transaction_seconds histogram",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(has_line(text, line), "{i}: {line} in\n{text}");
    }
    assert!(
        text.contains(
            "ren3_issuer_store_transaction_seconds_bucket{transaction=\"write\",le=\"+Inf\"} "
        ),
        "{text}"
    );
    assert!(text.contains("# HELP ren3_issuer_logins_total "), "{text}");
    // No license, customer, device or user in any series.
    for (i, secret) in ["ACME", "REN3K1", "REN3D1", "alice", key.hint().as_str()]
        .into_iter()
        .enumerate()
    {
        assert!(!text.contains(secret), "{i}: {secret} in\n{text}");
    }
}

#[tokio::test]
async fn the_metrics_listener_serves_only_its_three_routes_to_any_host() {
    let t = TestStore::new();
    let state = AppState::new(
        setup::open_store(&t.paths).unwrap(),
        setup::open_keys(&t.paths).unwrap(),
        Config::default(),
    )
    .with_metrics(Metrics::own());
    let router = metrics_app(state);
    for (i, path) in ["/metrics", "/healthz", "/readyz"].into_iter().enumerate() {
        let answer = router
            .clone()
            .oneshot(get_from(path, "192.0.2.10:9464"))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{i}: {path}");
    }
    for (i, path) in ["/login", "/", "/licenses", "/keys/root.pub"]
        .into_iter()
        .enumerate()
    {
        let answer = router
            .clone()
            .oneshot(get_from(path, "192.0.2.10:9464"))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{i}: {path}");
    }
}
