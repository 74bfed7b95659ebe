//! Health and metrics: `/healthz` (the process answers), `/readyz` (the
//! store answers a read) and `/metrics` (the installed recorder's values,
//! in the Prometheus text format).
//!
//! [`super::app`] serves them on the licensing port, under its `Host`
//! check; [`metrics_app`] alone, without that check, on a listener of its
//! own (`license_metrics_addr`), so that a Prometheus on another host can
//! scrape an installation whose licensing port answers only this machine.
//! Nothing they answer names a license key, a customer or a device: the
//! metrics' labels are states, operations and refusal codes.

use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;

use super::problem::ApiError;
use crate::state::AppState;

/// The `Content-Type` of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The three routes, for the licensing router and [`metrics_app`].
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The router of the metrics listener: `/metrics`, `/healthz` and
/// `/readyz`, and nothing else, for any `Host`.
pub fn metrics_app(state: AppState) -> Router {
    super::served_alike(routes().fallback(not_found)).with_state(state)
}

/// Serves [`metrics_app`] on `listener` until `shutdown` completes, with
/// the connection limits of the licensing port
/// ([`crate::Config::connection_limits`]).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config().connection_limits;
    ren3_server::serve(listener, metrics_app(state), limits, shutdown).await
}

/// `GET /healthz`: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the store answers a read through the service's own
/// connection; 503 `store_unavailable` otherwise, with the cause in the log.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.check_store().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!("not ready: the license store cannot be read: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "The license store is unavailable",
                "the license store cannot be read, so licensing operations fail; the \
                 service's log says why: check the disk, the store file (license_db_path) \
                 and its permissions",
            )
            .into_response()
        }
    }
}

/// `GET /metrics`: the gauges set to the license now, then the recorder's
/// text; 503 `metrics_unavailable` when no renderer was given
/// ([`AppState::with_metrics`]).
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(render) = state.metrics_renderer().cloned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            "No metrics recorder",
            "this process serves no metrics: no recorder was given to the licensing router. \
             `ren3-client serve` installs one; an ingestor that embeds ren3-client installs \
             a recorder of the `metrics` crate (such as metrics-exporter-prometheus's) and \
             passes its render function to AppState::with_metrics",
        )
        .into_response();
    };
    if let Err(e) = state.publish_metrics().await {
        tracing::warn!("the license gauges may be stale: the store cannot be read: {e}");
    }
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], render()).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Not found",
        format!(
            "there is nothing at `{}`; this listener serves GET /metrics, /healthz and /readyz",
            uri.path().escape_debug()
        ),
    )
}
