//! The `Host` check on the licensing endpoints ([`ren3_server::host`]):
//! requests addressed to a name other than `localhost`, a loopback
//! address, the listen address or a name in `license_allowed_hosts` are
//! refused, so a web page cannot reach them through DNS rebinding.
//!
//! The check is a layer of [`super::app`]'s router only: routes an
//! ingestor merges in are its own business.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use ren3_server::host::HostRefusal;
pub use ren3_server::host::{AllowedHost, AllowedHosts};

use super::problem::ApiError;
use crate::state::AppState;

/// The layer's function: refuses a request addressed to another name
/// before anything else reads it.
pub(super) async fn check_host(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match state
        .allowed_hosts()
        .judge(request.uri(), request.headers())
    {
        Ok(()) => next.run(request).await,
        Err(HostRefusal::Invalid) => ApiError::host_invalid().into_response(),
        Err(HostRefusal::NotAllowed(host)) => ApiError::host_not_allowed(&host).into_response(),
    }
}
