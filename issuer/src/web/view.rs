//! What every page shares: the layout, the error page, the static assets
//! and the small formatting helpers the templates use.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::auth::CurrentUser;

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

impl Layout {
    /// The layout of `user`'s pages in `section` (`dashboard`, `licenses`,
    /// `issue`, `release`, `keys`, `audit`).
    pub(crate) fn of(user: &CurrentUser, section: &'static str) -> Self {
        Layout {
            user: user.name.clone(),
            csrf: user.csrf_token.clone(),
            section,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub status: StatusCode,
    pub message: String,
}

/// The console's template filters: the texts of `crate::present`, the
/// same the CLI prints. A page's module brings them in scope with
/// `use super::view::filters;`.
pub(crate) mod filters {
    use std::collections::BTreeMap;

    use askama::{Result, Values};

    use crate::present;

    /// `{{ at|time }}`: RFC 3339, UTC.
    #[askama::filter_fn]
    pub(crate) fn time(at: &i64, _: &dyn Values) -> Result<String> {
        Ok(present::time(*at))
    }

    /// `{{ expires_at|expiry }}`: a time, or "never".
    #[askama::filter_fn]
    pub(crate) fn expiry(at: &Option<i64>, _: &dyn Values) -> Result<String> {
        Ok(present::expiry(*at))
    }

    /// `{{ seconds|grace }}`: "none", whole days, or seconds.
    #[askama::filter_fn]
    pub(crate) fn grace(seconds: &u64, _: &dyn Values) -> Result<String> {
        Ok(present::grace(*seconds))
    }

    /// `{{ limits|limits }}`: `name=value, …`, or "none".
    #[askama::filter_fn]
    pub(crate) fn limits(limits: &BTreeMap<String, u64>, _: &dyn Values) -> Result<String> {
        Ok(present::limits(limits, ", "))
    }
}

/// `a=1&b=2`, percent-encoded, skipping empty values.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, value)| !value.is_empty()))
        .finish()
}
