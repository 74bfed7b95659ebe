//! Every error response is RFC 9457 `application/problem+json` with a
//! stable `code`, including axum's own rejections.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::registration::LicensingError;

/// The `Content-Type` of every error response (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

const ENDPOINTS: &str = "the licensing endpoints are POST /license/register, \
     POST /license/import, POST /license/deactivate and GET /license";

/// An HTTP error. `detail` is for the operator; internal causes go to the
/// log and never into it.
///
/// As a response it is `application/problem+json` with the members `type`
/// (`urn:ren3:problem:<code>`), `title`, `status`, `detail` and `code`.
/// The guard's refusals, [`LicensingError`] and axum's JSON rejections
/// convert into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The response's status.
    pub status: StatusCode,
    /// A stable machine-readable code, such as `unlicensed` or
    /// `invalid_license_key` (the README lists them).
    pub code: &'static str,
    /// A short summary of the kind of problem, the same for every
    /// occurrence of a code.
    pub title: &'static str,
    /// What went wrong this time and what to do next, for the operator.
    pub detail: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl ApiError {
    /// An error with these members. `code` should be stable: clients and
    /// monitoring match on it.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
        }
    }

    /// 400 `online_activation_unavailable`: a register without
    /// `"export": true`. Only offline activation exists.
    pub fn online_activation_unavailable() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "online_activation_unavailable",
            "Online activation is not available",
            "online activation is not available in this build; send {\"export\": true} to get \
             a request for the ReN3 team",
        )
    }

    /// 404 `not_found` for `path`, listing the licensing endpoints.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("there is nothing at `{}`; {ENDPOINTS}", path.escape_debug()),
        )
    }

    /// 405 `method_not_allowed` for `method` on `path`, listing the
    /// licensing endpoints.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            format!(
                "`{}` does not accept {}; {ENDPOINTS}",
                path.escape_debug(),
                method.escape_debug()
            ),
        )
    }

    fn internal(code: &'static str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            "Internal error",
            "the ingestor's licensing failed internally; its log has the details",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Refusals are the operator's business, so they are logged by code
        // only: details can carry what the caller sent. Server errors were
        // logged with their cause where they arose.
        if self.status.is_client_error() {
            tracing::info!(
                code = self.code,
                status = self.status.as_u16(),
                "request refused"
            );
        }
        let problem = Problem {
            kind: format!("urn:ren3:problem:{}", self.code),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let mut response = (self.status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        response
    }
}

impl From<LicensingError> for ApiError {
    fn from(error: LicensingError) -> Self {
        use LicensingError as E;

        let code = error.code();
        let (status, title) = match &error {
            E::OfflineDisabled => (StatusCode::CONFLICT, "Offline licensing is disabled"),
            E::InvalidLicenseKey(_) => (StatusCode::BAD_REQUEST, "Invalid license key"),
            E::Payload(_) => (StatusCode::BAD_REQUEST, "License payload refused"),
            E::LicenseKeyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "License payload is for another license key",
            ),
            E::NotTheActiveLicenseKey => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "License key is not the active license's",
            ),
            E::DeviceIdMismatch { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "License payload is for another device",
            ),
            E::DeviceKeyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "License payload is for another installation",
            ),
            E::UnknownRequest => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "License payload answers an unknown request",
            ),
            E::NotYetValid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "License is not yet valid"),
            E::Expired { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "License has expired"),
            E::Downgrade { .. } => (StatusCode::CONFLICT, "License downgrade refused"),
            E::NoActiveLicense => (StatusCode::CONFLICT, "No active license"),
            E::TooManyPendingRequests { .. } => {
                (StatusCode::CONFLICT, "Too many pending license requests")
            }
            E::Store(_) | E::RandomSource(_) | E::Signing(_) => {
                tracing::error!(code, "{error}");
                return Self::internal(code);
            }
        };
        Self::new(status, code, title, error.to_string())
    }
}

impl ApiError {
    /// A body over [`super::BODY_LIMIT`], read or only declared.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Request body too large",
            format!(
                "the request body is larger than {} KiB; send only the license key and \
                 the payload",
                super::BODY_LIMIT / 1024
            ),
        )
    }
}

impl ApiError {
    /// A request addressed to a name the licensing endpoints do not answer
    /// to. 421 Misdirected Request (RFC 9110 §15.5.20), not 403: the
    /// request reached a server that does not serve that name, and no
    /// credential would change that.
    pub fn host_not_allowed(host: &str) -> Self {
        let shown: String = host.chars().take(64).flat_map(char::escape_debug).collect();
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "Host not allowed",
            format!(
                "this ingestor's licensing endpoints answer only requests addressed to \
                 localhost, a loopback address, the address in listen_addr, or a name in \
                 license_allowed_hosts, and `{shown}` is none of them (the check keeps web \
                 pages from reaching these endpoints through DNS rebinding); call them as \
                 http://localhost:<port>/license, or add `{shown}` to license_allowed_hosts \
                 (names or addresses separated by commas, without ports) in the ingestor's \
                 environment or .env file and restart it"
            ),
        )
    }

    /// A request without exactly one valid `Host` (and no absolute-form
    /// target): 400, as RFC 9112 §3.2 requires.
    pub fn host_invalid() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "host_invalid",
            "Missing or invalid Host header",
            "the request has no Host header, more than one, or one that is not a host and \
             port; send exactly one, such as `Host: localhost:5000` (every HTTP client does \
             this by itself when given a URL such as http://localhost:5000/license)",
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let detail = rejection.body_text();
        match rejection {
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "Invalid JSON",
                detail,
            ),
            JsonRejection::JsonDataError(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "Invalid request body",
                detail,
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as JSON with the header `Content-Type: application/json`",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::body_too_large(),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "Unreadable request body",
                other.body_text(),
            ),
        }
    }
}

/// [`axum::Json`] as an extractor whose rejections are problem+json
/// ([`ApiError`]: `invalid_json`, `invalid_body`,
/// `unsupported_media_type`, `body_too_large`, `unreadable_body`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);
