//! The local license page: the registration guide's exchange as HTML forms,
//! for an operator at this machine's browser (or at the end of an SSH
//! tunnel) instead of `curl`.
//!
//! It offers the explained status, a form that exports a request (shown to
//! copy, to download as a file and as a QR code), a form that imports a
//! pasted or uploaded payload, and deactivation with the receipt to
//! download. It calls the same [`Licensing`](crate::Licensing) operations
//! as the JSON endpoints, so every refusal is theirs, with its code.
//!
//! What guards it, in the order a request meets it:
//! - `only_this_machine`: the connection's peer must be a loopback
//!   address. It is read from the connection ([`ConnectInfo`]), not from a
//!   header, and a server that does not record it gets the page refused,
//!   not served to everyone.
//! - the licensing router's `Host` check ([`crate::http::host`]), so a web
//!   page elsewhere cannot reach it through DNS rebinding;
//! - on every form, a CSRF token that must match a `SameSite=Strict`
//!   cookie (`csrf`), and a refusal of requests a browser marks as
//!   cross-site;
//! - a Content-Security-Policy without any script: the page needs none.
//!
//! A license key typed into a form is used for the one operation and
//! dropped: it is never stored, logged or shown back in a page.

mod csrf;
mod forms;
mod views;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// Where the page is served.
pub const PAGE_PATH: &str = "/license/page";

/// No script at all, styles from the page's own stylesheet only, forms sent
/// only to this origin, and never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page's routes, with their own guards and headers; the licensing
/// router ([`crate::http::app`]) merges them under its `Host` check.
pub(crate) fn routes() -> Router<AppState> {
    let router = Router::new()
        .route(PAGE_PATH, get(forms::home))
        .route(&format!("{PAGE_PATH}/register"), post(forms::register))
        .route(&format!("{PAGE_PATH}/import"), post(forms::import))
        .route(&format!("{PAGE_PATH}/deactivate"), post(forms::deactivate))
        .route(&format!("{PAGE_PATH}/download"), post(forms::download))
        .route(&format!("{PAGE_PATH}/style.css"), get(views::stylesheet))
        .layer(middleware::from_fn(only_this_machine));
    ren3_server::page_headers::add(router, CONTENT_SECURITY_POLICY)
}

/// Serves the page only to a connection from a loopback address. Another
/// peer, or a server that did not record the peer, gets 403 and a page that
/// says how to reach it (an SSH tunnel) or how to serve it.
async fn only_this_machine(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    match peer {
        Some(ip) if is_loopback(ip) => next.run(request).await,
        Some(ip) => {
            tracing::info!(peer = %ip, "license page refused: the caller is not on this machine");
            views::Problem::new(
                StatusCode::FORBIDDEN,
                "page_not_local",
                "This page is served only to this machine",
                format!(
                    "The license page answers only browsers on the ingestor's own machine, and \
                     this request came from {ip}. Open it there, or through an SSH tunnel: \
                     ssh -L 5000:localhost:{port} <ingestor host>, then \
                     http://localhost:5000{PAGE_PATH}. The JSON endpoints and ren3-client's \
                     commands are not limited this way.",
                    port = port_of(request.headers()),
                ),
            )
            .into_response()
        }
        None => {
            tracing::warn!(
                "license page refused: the server does not record the connection's peer \
                 address; serve the router with into_make_service_with_connect_info"
            );
            views::Problem::new(
                StatusCode::FORBIDDEN,
                "page_peer_unknown",
                "This page cannot tell where the request comes from",
                "The license page is served only to this machine, and this server does not \
                 record where a connection comes from, so it is never served. The ingestor \
                 must serve its router with into_make_service_with_connect_info::<SocketAddr>() \
                 (ren3_client::serve does); until then, use the JSON endpoints or ren3-client's \
                 commands.",
            )
            .into_response()
        }
    }
}

/// The port the caller addressed, for the tunnel's command; the default
/// port when the `Host` header does not say.
fn port_of(headers: &axum::http::HeaderMap) -> u16 {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(5000)
}

/// `127.0.0.0/8`, `::1`, and `::ffff:127.0.0.0/104` (a dual-stack socket's
/// view of an IPv4 loopback peer).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_what_the_page_calls_this_machine() {
        for local in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(local.parse().unwrap()), "{local}");
        }
        for remote in [
            "10.0.0.5",
            "0.0.0.0",
            "::",
            "::ffff:10.0.0.5",
            "fe80::1",
            "192.168.1.1",
        ] {
            assert!(!is_loopback(remote.parse().unwrap()), "{remote}");
        }
    }
}
