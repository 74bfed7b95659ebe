//! The page's templates (`client/templates/page/`), its stylesheet, and
//! the problem page every refusal of the page itself is shown on.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::http::ApiError;
use crate::status::StatusReport;

const STYLESHEET: &str = include_str!("../../static/page.css");

pub(super) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// The page itself: the explained status, the forms, and what the last
/// form did.
#[derive(Template, WebTemplate)]
#[template(path = "page/home.html")]
pub(super) struct Home {
    pub csrf: String,
    pub status: StatusReport,
    /// What the last form did, when it succeeded.
    pub notice: Option<String>,
    /// Why the last form was refused: the licensing endpoints' own
    /// refusal, code, title and detail.
    pub refused: Option<ApiError>,
}

impl Home {
    /// The state as the JSON endpoints spell it (`active`, `pending`, ...).
    fn state(&self) -> String {
        serde_json::to_value(self.status.state)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Whether the forms that need offline licensing are offered.
    fn offline(&self) -> bool {
        self.status.offline_licensing
    }

    /// Whether a license is installed, which deactivation needs.
    fn has_license(&self) -> bool {
        self.status.license.is_some()
    }

    fn limits(&self) -> String {
        self.status
            .license
            .as_ref()
            .map_or_else(String::new, |license| {
                license
                    .limits
                    .iter()
                    .map(|(name, value)| format!("{name} = {value}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
    }

    fn features(&self) -> String {
        self.status
            .license
            .as_ref()
            .map_or_else(String::new, |license| license.features.join(", "))
    }
}

/// Which token a [`TokenPage`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carried {
    /// A license request, for the ReN3 team to answer with a payload.
    Request,
    /// A release receipt, for the ReN3 team to free the seat.
    Receipt,
}

impl Carried {
    pub(super) fn name(self) -> &'static str {
        match self {
            Carried::Request => "license request",
            Carried::Receipt => "release receipt",
        }
    }

    /// The form field value and the downloaded file's name.
    pub(super) fn slug(self) -> &'static str {
        match self {
            Carried::Request => "request",
            Carried::Receipt => "receipt",
        }
    }

    pub(super) fn file_name(self) -> &'static str {
        match self {
            Carried::Request => "ren3-license-request.txt",
            Carried::Receipt => "ren3-release-receipt.txt",
        }
    }
}

/// A request or receipt just made: to copy, to download, and as a QR code.
#[derive(Template, WebTemplate)]
#[template(path = "page/token.html")]
pub(super) struct TokenPage {
    pub csrf: String,
    pub carried: Carried,
    pub token: String,
    /// The code as inline SVG, made by this program from the token.
    pub qr_svg: Option<String>,
    /// How the code is made (version and level), or why there is none.
    pub qr_note: String,
    /// The portal the code opens, when one is configured.
    pub portal: Option<String>,
    /// The license key, masked.
    pub key_hint: Option<String>,
    pub send_to: &'static str,
}

impl TokenPage {
    fn name(&self) -> &'static str {
        self.carried.name()
    }

    fn slug(&self) -> &'static str {
        self.carried.slug()
    }

    fn is_request(&self) -> bool {
        self.carried == Carried::Request
    }
}

/// A refusal of the page itself (not this machine, an out-of-date form),
/// as a page with the status, a stable code and what to do: an
/// [`ApiError`], shown as HTML instead of problem+json.
#[derive(Debug, Template)]
#[template(path = "page/problem.html")]
pub(super) struct Problem {
    error: ApiError,
}

impl Problem {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            error: ApiError::new(status, code, title, detail),
        }
    }

    /// 500: the cause went to the log.
    pub(super) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The license page failed",
            "The ingestor's licensing failed internally; its log has the details.",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.error.status;
        match self.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!("cannot render the license page's problem page: {e}");
                (status, self.error.detail).into_response()
            }
        }
    }
}
