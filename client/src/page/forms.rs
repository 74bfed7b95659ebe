//! The page's handlers: show the status and forms, and act on each form
//! with the same operations, and the same refusals, as the JSON endpoints.
//!
//! Every form is checked for its CSRF token ([`super::csrf`]) before
//! anything else reads it. Forms hold the license key, so none of their
//! types derives `Debug`, and no page shows the key back.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Multipart, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum_extra::extract::cookie::CookieJar;
use ren3_shared::receipt::VerifiedReceipt;
use ren3_shared::request::VerifiedRequest;
use serde::Deserialize;

use super::csrf;
use super::views::{Carried, Home, Problem, TokenPage};
use crate::http::ApiError;
use crate::registration::{Imported, LicensingError};
use crate::state::AppState;

/// What to do with a request shown on the page.
const REQUEST_SEND_TO: &str = "Send this license request to the ReN3 team: copy it, download \
     it as a file, or scan the QR code with a phone. They answer with a license payload; import \
     it on this page with the same license key.";

/// What to do with a receipt shown on the page.
const RECEIPT_SEND_TO: &str = "Send this release receipt to the ReN3 team: copy it, download \
     it as a file, or scan the QR code with a phone. It frees the seat, so that the license can \
     be registered on another machine. Keep it until they confirm.";

/// `GET /license/page`.
pub(super) async fn home(State(state): State<AppState>, jar: CookieJar) -> Response {
    match csrf::token(jar) {
        Ok((jar, token)) => home_page(&state, jar, token, StatusCode::OK, None, None).await,
        Err(problem) => problem.into_response(),
    }
}

/// The register and deactivate forms. No `Debug`: it holds the license key.
#[derive(Deserialize)]
pub(super) struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    license_key: String,
    /// The deactivate form's confirmation box.
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /license/page/register`: a request for the license key typed in.
pub(super) async fn register(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    form: Result<Form<KeyForm>, FormRejection>,
) -> Response {
    let form = match checked(&jar, &headers, form) {
        Ok(form) => form,
        Err(problem) => return problem.into_response(),
    };
    if state.offline().is_none() {
        let refusal = ApiError::from(LicensingError::OfflineDisabled);
        return refused(&state, jar, form.csrf, refusal).await;
    }
    match state.register(&form.license_key).await {
        Ok(registration) => {
            let shown = TokenShown {
                carried: Carried::Request,
                token: registration.request.token(),
                key_hint: Some(registration.license_key_hint),
                send_to: REQUEST_SEND_TO,
            };
            token_page(&state, jar, form.csrf, shown)
        }
        Err(e) => refused(&state, jar, form.csrf, ApiError::from(e)).await,
    }
}

/// `POST /license/page/deactivate`: releases the active license, once the
/// operator ticked the confirmation.
pub(super) async fn deactivate(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    form: Result<Form<KeyForm>, FormRejection>,
) -> Response {
    let form = match checked(&jar, &headers, form) {
        Ok(form) => form,
        Err(problem) => return problem.into_response(),
    };
    if form.confirm.as_deref() != Some("yes") {
        let refusal = ApiError::new(
            StatusCode::BAD_REQUEST,
            "confirmation_missing",
            "Deactivation was not confirmed",
            "Nothing was done. Deactivation stops licensed work on this machine at once; tick \
             the box that confirms it, then send the form again.",
        );
        return refused(&state, jar, form.csrf, refusal).await;
    }
    match state.deactivate(&form.license_key).await {
        Ok(deactivated) => {
            let shown = TokenShown {
                carried: Carried::Receipt,
                token: deactivated.receipt.token(),
                key_hint: None,
                send_to: RECEIPT_SEND_TO,
            };
            token_page(&state, jar, form.csrf, shown)
        }
        Err(e) => refused(&state, jar, form.csrf, ApiError::from(e)).await,
    }
}

/// `POST /license/page/import`: the payload pasted or uploaded, with the
/// license key, as multipart so that a file can come with it.
pub(super) async fn import(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let form = match ImportForm::read(multipart).await {
        Ok(form) => form,
        Err(problem) => return problem.into_response(),
    };
    if let Err(problem) = csrf::check(&jar, &headers, &form.csrf) {
        return problem.into_response();
    }
    let payload = match form.payload() {
        Ok(payload) => payload,
        Err(refusal) => return refused(&state, jar, form.csrf, refusal).await,
    };
    match state.import(&form.license_key, &payload).await {
        Ok(imported) => {
            let notice = match imported {
                Imported::Installed => "The license payload was imported.",
                Imported::AlreadyActive => {
                    "This payload already was the active license; nothing changed."
                }
            };
            let csrf = form.csrf.clone();
            home_page(&state, jar, csrf, StatusCode::OK, Some(notice.into()), None).await
        }
        Err(e) => refused(&state, jar, form.csrf, ApiError::from(e)).await,
    }
}

/// The download form: the token shown on the page, sent back to be
/// saved as a file.
#[derive(Deserialize)]
pub(super) struct DownloadForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    token: String,
}

/// `POST /license/page/download`: the request or receipt as a text file.
/// It only gives back a token that verifies as what it claims to be, in
/// its canonical form; it makes nothing new.
pub(super) async fn download(
    jar: CookieJar,
    headers: HeaderMap,
    form: Result<Form<DownloadForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return unreadable(&rejection).into_response(),
    };
    if let Err(problem) = csrf::check(&jar, &headers, &form.csrf) {
        return problem.into_response();
    }
    let (carried, token) = match form.kind.as_str() {
        "request" => (
            Carried::Request,
            VerifiedRequest::open(&form.token).map(|r| r.token()),
        ),
        "receipt" => (
            Carried::Receipt,
            VerifiedReceipt::open(&form.token).map(|r| r.token()),
        ),
        _ => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "download_kind_unknown",
                "Nothing to download",
                "The download form names neither a request nor a receipt. Reload the license \
                 page and use its download buttons.",
            )
            .into_response();
        }
    };
    let token = match token {
        Ok(token) => token,
        Err(e) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                e.code(),
                "This is not a token this page made",
                format!(
                    "The {} to download does not verify: {e}. Reload the license page and \
                     download it from there.",
                    carried.name()
                ),
            )
            .into_response();
        }
    };
    let disposition = format!("attachment; filename=\"{}\"", carried.file_name());
    let disposition = HeaderValue::from_str(&disposition)
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        format!("{token}\n"),
    )
        .into_response()
}

/// A form read and its CSRF token checked.
fn checked(
    jar: &CookieJar,
    headers: &HeaderMap,
    form: Result<Form<KeyForm>, FormRejection>,
) -> Result<KeyForm, Problem> {
    let Form(form) = form.map_err(|rejection| unreadable(&rejection))?;
    csrf::check(jar, headers, &form.csrf)?;
    Ok(form)
}

fn unreadable(rejection: &FormRejection) -> Problem {
    Problem::new(
        rejection.status(),
        "form_unreadable",
        "The form could not be read",
        "Nothing was done: the form was cut short, too large, or not sent by the license \
         page. Reload the license page and send the form again.",
    )
}

/// The import form. No `Debug`: it holds the license key.
struct ImportForm {
    csrf: String,
    license_key: String,
    pasted: String,
    uploaded: Option<Vec<u8>>,
}

impl ImportForm {
    /// Reads the fields `csrf`, `license_key`, `payload` (the text area)
    /// and `file` (the upload); others are ignored. A body cut short or
    /// over the limit is the sender's problem, said as such.
    async fn read(mut multipart: Multipart) -> Result<Self, Problem> {
        let unreadable = || {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "form_unreadable",
                "The form could not be read",
                "Nothing was imported: the form was cut short, malformed, or larger than any \
                 license payload (64 KiB). Paste or upload only the payload the ReN3 team sent, \
                 and send the form again.",
            )
        };
        let mut form = ImportForm {
            csrf: String::new(),
            license_key: String::new(),
            pasted: String::new(),
            uploaded: None,
        };
        while let Some(field) = multipart.next_field().await.map_err(|_| unreadable())? {
            let name = field.name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(|_| unreadable())?;
            let text = || String::from_utf8_lossy(&bytes).into_owned();
            match name.as_str() {
                "csrf" => form.csrf = text(),
                "license_key" => form.license_key = text(),
                "payload" => form.pasted = text(),
                "file" if !bytes.is_empty() => form.uploaded = Some(bytes.to_vec()),
                _ => {}
            }
        }
        Ok(form)
    }

    /// The uploaded file's text if a file was chosen, else the pasted text.
    fn payload(&self) -> Result<String, ApiError> {
        match &self.uploaded {
            Some(bytes) => String::from_utf8(bytes.clone()).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "payload_file_not_text",
                    "The uploaded file is not text",
                    "Nothing was imported. Upload the license payload file the ReN3 team \
                     sent (a text file), or paste its text.",
                )
            }),
            None if self.pasted.trim().is_empty() => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "payload_missing",
                "No license payload was given",
                "Nothing was imported. Paste the license payload the ReN3 team sent into the \
                 text area, or choose its file, then send the form again.",
            )),
            None => Ok(self.pasted.clone()),
        }
    }
}

/// The home page with the status now.
async fn home_page(
    state: &AppState,
    jar: CookieJar,
    csrf: String,
    code: StatusCode,
    notice: Option<String>,
    refused: Option<ApiError>,
) -> Response {
    match state.status().await {
        Ok(status) => {
            let page = Home {
                csrf,
                status,
                notice,
                refused,
            };
            (code, jar, page).into_response()
        }
        Err(e) => {
            tracing::error!("the license page cannot read the status: {e}");
            Problem::internal().into_response()
        }
    }
}

/// The home page with the refusal of the form just sent, under the
/// refusal's own status.
async fn refused(state: &AppState, jar: CookieJar, csrf: String, refusal: ApiError) -> Response {
    let status = refusal.status;
    home_page(state, jar, csrf, status, None, Some(refusal)).await
}

/// A token just made, as a [`TokenPage`] shows it.
struct TokenShown {
    carried: Carried,
    token: String,
    key_hint: Option<String>,
    send_to: &'static str,
}

fn token_page(state: &AppState, jar: CookieJar, csrf: String, shown: TokenShown) -> Response {
    // A request's code opens the vendor's portal when one is configured;
    // a receipt's carries the receipt alone.
    let portal = match shown.carried {
        Carried::Request => state.config().portal_url.clone(),
        Carried::Receipt => None,
    };
    let carried = ren3_qr::carried_text(&shown.token, portal.as_deref());
    let (qr_svg, qr_note) = match ren3_qr::Code::new(&carried) {
        Ok(code) => (
            Some(code.svg(&format!("QR code of the {}", shown.carried.name()))),
            format!(
                "QR code version {}, error correction level {} ({} characters).",
                code.version(),
                ren3_qr::LEVEL_NAME,
                carried.len()
            ),
        ),
        Err(e) => (
            None,
            format!("No QR code: {e}. Copy or download it instead."),
        ),
    };
    let page = TokenPage {
        csrf,
        carried: shown.carried,
        token: shown.token,
        qr_svg,
        qr_note,
        portal,
        key_hint: shown.key_hint,
        send_to: shown.send_to,
    };
    (jar, page).into_response()
}
