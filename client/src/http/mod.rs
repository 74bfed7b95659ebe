//! The licensing endpoints of the customer's registration guide, plus
//! `GET /license` for the status.

mod handlers;
pub mod host;
pub mod monitoring;
pub mod problem;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use handlers::{
    DeactivateBody, DeactivateResponse, ImportBody, RegisterBody, RegisterResponse, SEND_TO,
};
pub use monitoring::{metrics_app, serve_metrics};
pub use problem::{ApiError, Json};

use crate::state::AppState;

/// The largest request body accepted. The bodies carry a license key and
/// one payload, which are a few kilobytes; anything near this is a mistake.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long a caller may take to send a request's body, unless
/// `license_body_timeout` says otherwise ([`crate::Config::body_timeout`]).
pub const BODY_TIMEOUT: Duration = crate::config::DEFAULT_BODY_TIMEOUT;

/// The licensing router (and `/healthz`, `/readyz`, `/metrics`:
/// [`monitoring`]), with problem+json for unknown routes and methods,
/// answering only requests addressed to an allowed host ([`host`]), and
/// refusing a body not sent within the configured timeout
/// ([`crate::Config::body_timeout`]).
/// To merge it into another router that has its own fallback, call
/// `reset_fallback` on one of them first.
pub fn app(state: AppState) -> Router {
    let router = Router::new();
    // The local license page, for callers on this machine only
    // (`crate::page`), under the same `Host` check and limits.
    #[cfg(feature = "page")]
    let router = if state.config().page {
        router.merge(crate::page::routes())
    } else {
        router
    };
    let router = router
        // Health and metrics ([`monitoring`]), under the same `Host` check.
        .merge(monitoring::routes())
        .route("/license", get(handlers::status))
        .route("/license/register", post(handlers::register))
        .route("/license/import", post(handlers::import))
        .route("/license/deactivate", post(handlers::deactivate))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyTimeoutLayer::new(state.config().body_timeout))
        .layer(middleware::from_fn(refuse_oversize))
        // Before anything reads the request: a request addressed to another
        // name gets nothing but the refusal. A layer of these routes only,
        // so routes an ingestor merges in are not checked.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ));
    served_alike(router).with_state(state)
}

/// What every response of the service's routers carries, the licensing
/// port's and the metrics listener's: not kept by caches or sniffed as
/// another content type (responses describe this installation's
/// licensing), and a span per request.
///
/// Spans record the method and path only: bodies hold license keys and
/// tokens, which never reach the log. Every request at DEBUG: at INFO, a
/// line per status poll cost a sixth of its time (wrk, bench/http.sh).
/// Refusals and changes log at INFO where they happen.
pub(super) fn served_alike(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
}

/// Serves [`app`] on `listener` until `shutdown` completes, then finishes
/// the requests in flight and records the clock's high-water mark.
/// Connections are held to the configured limits
/// ([`ren3_server::serve`]: a header timeout, a bound that closes the
/// longest-waiting connection to make room, a lingering close after a
/// refused body); an ingestor that serves [`app`] with its own server
/// should hold its connections to the same.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config().connection_limits;
    let served = ren3_server::serve(listener, app(state.clone()), limits, shutdown).await;
    state.license().check();
    if let Err(e) = state.persist_clock().await {
        tracing::warn!("cannot record the clock's high-water mark at shutdown: {e}");
    }
    served
}

/// Refuses a body whose declared length is over [`BODY_LIMIT`] before
/// reading any of it: no waiting for a gigabyte that will be refused, and
/// no `100 Continue` inviting it.
///
/// Every 413 answer, this one or the JSON extractor's past the limit, also
/// says `Connection: close`: the rest of the body is never read, so the
/// connection cannot carry another request, and a caller that kept it for
/// its next request would find it closed under that request.
async fn refuse_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let mut response = if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        ApiError::body_too_large().into_response()
    } else {
        next.run(request).await
    };
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
