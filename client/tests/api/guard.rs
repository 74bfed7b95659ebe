//! The license guard on the ingestor's own routes: who gets through, and
//! the problem+json code of every refusal.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::{get, post};
use ren3_client::{LicenseHandle, Licensed, RequireLicense};
use ren3_shared::ClockPolicy;

use crate::support::{DAY, KEY, NOW, Reply, TestApp};

async fn ingest(licensed: Licensed) -> String {
    format!(
        "max-sources={}",
        licensed
            .limit("max-sources")
            .map_or("none".to_owned(), |m| m.to_string())
    )
}

async fn customer(licensed: Licensed) -> String {
    licensed.license().customer.clone()
}

/// `/ingest` needs feature `ingest`, `/export` feature `export`, and
/// `/customer` has no layer: only the `Licensed` extractor guards it.
fn ingestor(handle: LicenseHandle) -> Router {
    Router::new()
        .route("/ingest", post(ingest))
        .route_layer(RequireLicense::new(handle.clone()).feature("ingest"))
        .merge(
            Router::new()
                .route("/export", post(ingest))
                .route_layer(RequireLicense::new(handle.clone()).feature("export")),
        )
        .route("/customer", get(customer))
        .with_state(handle)
}

async fn call(app: &TestApp, method: Method, path: &str) -> Reply {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    let response = ingestor(app.state.license())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

/// How a test app gets into the state under test.
#[derive(Clone, Copy, Debug)]
enum Setup {
    NoLicense,
    Active,
    Grace,
    Expired,
    SuspectClock(ClockPolicy),
    Deactivated,
}

async fn prepared(setup: Setup) -> TestApp {
    let app = TestApp::new().await;
    let grace = |l: &mut ren3_shared::License| l.grace_seconds = (7 * DAY).cast_unsigned();
    match setup {
        Setup::NoLicense => {}
        Setup::Active => {
            app.install(1).await;
        }
        Setup::Grace => {
            app.install_with(1, grace).await;
            app.set_now(NOW + 366 * DAY);
        }
        Setup::Expired => {
            app.install_with(1, grace).await;
            app.set_now(NOW + 373 * DAY);
        }
        Setup::SuspectClock(policy) => {
            app.install_with(1, |l| l.clock_policy = policy).await;
            app.set_now(NOW + 10 * DAY);
            app.state.license().check();
            app.set_now(NOW + 5 * DAY);
        }
        Setup::Deactivated => {
            app.install(1).await;
            assert_eq!(app.deactivate(KEY).await.status, StatusCode::OK);
        }
    }
    app
}

#[tokio::test]
async fn guard_admits_licensed_work_and_refuses_the_rest_with_a_reason() {
    use ClockPolicy::{Advisory, Enforcing};
    // (setup, path, expected: Ok(body) or Err(code))
    let cases: [(Setup, &str, Result<&str, &str>); 14] = [
        (Setup::NoLicense, "/ingest", Err("unlicensed")),
        (Setup::NoLicense, "/customer", Err("unlicensed")),
        (Setup::Active, "/ingest", Ok("max-sources=12")),
        (Setup::Active, "/customer", Ok("ACME Logistics GmbH")),
        (Setup::Active, "/export", Err("feature_missing")),
        (Setup::Grace, "/ingest", Ok("max-sources=12")),
        (Setup::Expired, "/ingest", Err("expired")),
        (Setup::Expired, "/export", Err("expired")),
        (Setup::Expired, "/customer", Err("expired")),
        (
            Setup::SuspectClock(Advisory),
            "/ingest",
            Ok("max-sources=12"),
        ),
        (
            Setup::SuspectClock(Enforcing),
            "/ingest",
            Err("clock_suspect"),
        ),
        (
            Setup::SuspectClock(Enforcing),
            "/customer",
            Err("clock_suspect"),
        ),
        (Setup::Deactivated, "/ingest", Err("unlicensed")),
        (Setup::Deactivated, "/customer", Err("unlicensed")),
    ];
    for (n, (setup, path, expected)) in cases.into_iter().enumerate() {
        let app = prepared(setup).await;
        let method = if path == "/customer" {
            Method::GET
        } else {
            Method::POST
        };
        let before = app.dump().await;
        let reply = call(&app, method, path).await;
        let context = format!("{n}. {setup:?} {path}");
        match expected {
            Ok(body) => {
                assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.text);
                assert_eq!(reply.text, body, "{context}");
            }
            Err(code) => reply.assert_problem(StatusCode::FORBIDDEN, code, &context),
        }
        assert_eq!(app.dump().await, before, "{context}: the guard wrote");
    }
}

#[tokio::test]
async fn guard_refusal_details_say_what_is_wrong() {
    let app = prepared(Setup::Active).await;
    let reply = call(&app, Method::POST, "/export").await;
    assert!(
        reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("does not include the feature `export`"),
        "{}",
        reply.text
    );
    let app = prepared(Setup::SuspectClock(ClockPolicy::Enforcing)).await;
    let detail = call(&app, Method::POST, "/ingest").await.json["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("correct the clock"), "{detail}");
}

#[tokio::test]
async fn guard_answers_while_the_store_is_locked_by_another_task() {
    let app = prepared(Setup::Active).await;
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let store = app.state.store().clone();
    let holder = tokio::spawn(async move {
        store
            .call(move |_conn| {
                locked_tx.send(()).unwrap();
                // Holds the connection, as a long import would.
                release_rx.recv().unwrap();
                Ok::<_, ren3_client::StoreError>(())
            })
            .await
    });
    locked_rx.await.unwrap();

    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        call(&app, Method::POST, "/ingest"),
    )
    .await
    .expect("the guard waited for the store");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(app.state.license().is_licensed());

    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
}
