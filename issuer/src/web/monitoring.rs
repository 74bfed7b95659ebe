//! Health and metrics: `/healthz` (the process answers), `/readyz` (the
//! store answers a read) and `/metrics` (Prometheus text), outside the
//! login. [`super::app`] serves them under the console's `Host` check;
//! [`app`] alone, for any `Host`, on the listener of
//! `serve --metrics-listen`, for a Prometheus on another host.
//!
//! The core emits the metrics through the `metrics` facade
//! ([`ren3_issuer_core::monitoring`]); [`Metrics`] is the recorder they go
//! to and renders it. Nothing here names a license, a customer or a user.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use ren3_issuer_core::monitoring as core_metrics;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use super::AppState;

/// The `Content-Type` of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The Prometheus recorder the console's metrics go to, and its renderer.
pub struct Metrics {
    handle: PrometheusHandle,
    /// A recorder of the console's own, not the process's: the store's
    /// work runs with it set ([`AppState`]'s `call`). `None`: the
    /// process's global recorder, which [`Metrics::install`] set.
    own: Option<PrometheusRecorder>,
}

impl Metrics {
    /// Installs the Prometheus recorder as the process's (`serve`), with
    /// no listener of its own: [`app`] and the console render it.
    ///
    /// # Errors
    ///
    /// When a recorder is installed already.
    pub fn install() -> Result<Self, BuildError> {
        let handle = builder().install_recorder()?;
        core_metrics::describe();
        Ok(Self { handle, own: None })
    }

    /// A recorder of this console's own, installed nowhere: what its store
    /// calls emit goes to it alone (tests, which run many consoles in one
    /// process).
    pub fn own() -> Self {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        let metrics = Self {
            handle,
            own: Some(recorder),
        };
        metrics.recording(core_metrics::describe);
        metrics
    }

    /// The renderer, to run its upkeep.
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    /// Runs `f` with this console's recorder, if it has one of its own.
    pub(super) fn recording<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.own {
            Some(recorder) => metrics::with_local_recorder(recorder, f),
            None => f(),
        }
    }
}

/// The store's latency as a histogram with buckets (aggregatable across
/// consoles), not a summary.
fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(core_metrics::STORE_SECONDS.to_owned()),
            &core_metrics::STORE_SECONDS_BUCKETS,
        )
        .expect("STORE_SECONDS_BUCKETS is not empty, the builder's only refusal")
}

/// The three routes, for the console's router and [`app`].
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The metrics listener's router: `/metrics`, `/healthz` and `/readyz`,
/// nothing else, for any `Host`.
pub fn app(state: AppState) -> Router {
    routes()
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "this listener serves GET /metrics, /healthz and /readyz only",
            )
        })
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes, with the
/// console's connection limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: ren3_server::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    ren3_server::serve(listener, app(state), limits, shutdown).await
}

/// `GET /healthz`: the process answers.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the store answers a read, through the console's own
/// connection; 503 `store_unavailable` otherwise, with the cause in the log.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    match state
        .call(|store, _| core_metrics::check_readable(store))
        .await
    {
        Ok(Ok(())) => "ready\n".into_response(),
        Ok(Err(e)) => {
            tracing::warn!("not ready: the store cannot be read: {e}");
            store_unavailable()
        }
        Err(e) => {
            tracing::warn!("not ready: {e:?}");
            store_unavailable()
        }
    }
}

fn store_unavailable() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the issuer store cannot be read, so the console cannot work; its log says why: \
         check the disk, the store file (--db) and its permissions",
    )
}

/// `GET /metrics`: the gauges read from the store, then the recorder's
/// text; 503 `metrics_unavailable` when the console has no recorder.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let Some(metrics) = state.metrics().cloned() else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "this console has no metrics recorder: `ren3-issuer serve` installs one; a \
             program that builds the console itself gives it one with \
             AppState::with_metrics",
        );
    };
    match state
        .call(|store, _| core_metrics::publish_store_gauges(store))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("the seat gauge may be stale: {e}"),
        Err(e) => tracing::warn!("the seat gauge may be stale: {e:?}"),
    }
    let text = metrics.recording(|| metrics.handle.render());
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

/// An RFC 9457 problem, as the client's endpoints answer: monitoring
/// reads these, not a person.
fn problem(status: StatusCode, code: &'static str, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": format!("urn:ren3:problem:{code}"),
        "title": status.canonical_reason().unwrap_or_default(),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The recorder in the state, shared by its clones.
pub(super) type SharedMetrics = Arc<Metrics>;
