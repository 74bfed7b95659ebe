//! What every page shares: the layout, the error page, the static assets
//! and the small formatting helpers the templates use.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use ren3_shared::timestamp;

/// The one stylesheet and the one script, embedded in the binary.
const STYLESHEET: &str = include_str!("../../static/style.css");
const SCRIPT: &str = include_str!("../../static/copy.js");

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
}

/// The signed-in user and the CSRF token of their session, for the
/// navigation bar and its logout form.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub user: String,
    pub csrf: String,
    /// Which navigation entry is current.
    pub section: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub status: StatusCode,
    pub message: String,
}

/// A time as people read it in the console: RFC 3339, UTC.
pub(crate) fn time(unix_seconds: i64) -> String {
    timestamp::format(unix_seconds)
}

/// An expiry, or "never".
pub(crate) fn expiry(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(|| "never".to_owned(), time)
}

/// `a=1&b=2`, percent-encoded, skipping empty values.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, value)| !value.is_empty()))
        .finish()
}
