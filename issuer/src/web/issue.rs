//! Issuing a payload: paste or upload a request, see every check
//! (`issuance::check`), confirm (`issuance::issue`, which checks again in
//! its own transaction), then copy or download the payload.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ren3_shared::Digest;
use serde::Deserialize;

use super::auth::CurrentUser;
use super::paste::{self, PasteFlow};
use super::view::{Layout, filters};
use super::{AppState, WebError};
use ren3_issuer_core::inspect::RequestFields;
use ren3_issuer_core::issuance::{self, IssueReport, Verdict};
use ren3_issuer_core::store::{IssuanceRecord, LicenseRecord};

/// Issuing as a [`PasteFlow`]: a request, checked by `issuance::check`.
pub(crate) struct Issue;

impl PasteFlow for Issue {
    const FIELD: &'static str = "request";
    const WHAT: &'static str = "request";
    type Report = ReportView;
    type Page = IssuePage;

    async fn report(state: &AppState, request: String) -> Result<ReportView, WebError> {
        let now = state.now();
        Ok(state
            .run(move |store, _| issuance::check(store, &request, now))
            .await?
            .into())
    }

    fn passes(report: &ReportView) -> bool {
        report.all_passed
    }

    fn page(
        layout: Layout,
        request: String,
        input_error: Option<String>,
        report: Option<ReportView>,
    ) -> IssuePage {
        IssuePage {
            layout,
            request,
            input_error,
            report,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "issue.html")]
pub(crate) struct IssuePage {
    layout: Layout,
    /// The request as pasted or uploaded, kept for another try.
    request: String,
    /// A problem with the input itself (an unreadable upload).
    input_error: Option<String>,
    report: Option<ReportView>,
}

/// A check report, flattened for the template.
pub(crate) struct ReportView {
    fields: Option<RequestFields>,
    rows: Vec<CheckRow>,
    all_passed: bool,
    answered_before: bool,
    /// The first failure: what issuing would refuse with.
    failure: Option<String>,
    license: Option<LicenseRecord>,
}

pub(crate) struct CheckRow {
    label: &'static str,
    /// `pass`, `fail` or `skipped`.
    state: &'static str,
    text: String,
}

impl From<IssueReport> for ReportView {
    fn from(report: IssueReport) -> Self {
        let failure = report
            .first_failure()
            .map(|(code, message)| format!("{message} ({code})"));
        ReportView {
            all_passed: report.all_passed(),
            answered_before: report.answered_before,
            failure,
            rows: report
                .checks
                .into_iter()
                .map(|line| {
                    let (state, text) = match line.verdict {
                        Verdict::Pass { reason } => ("pass", reason),
                        Verdict::Fail { message, .. } => ("fail", message),
                        Verdict::NotChecked { reason } => ("skipped", reason),
                    };
                    CheckRow {
                        label: line.check.label(),
                        state,
                        text,
                    }
                })
                .collect(),
            fields: report.request,
            license: report.license,
        }
    }
}

pub(crate) async fn form(layout: Layout) -> IssuePage {
    IssuePage {
        layout,
        request: String::new(),
        input_error: None,
        report: None,
    }
}

/// The check step: runs every check, writes nothing.
pub(crate) async fn check(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    multipart: Multipart,
) -> Result<Response, WebError> {
    paste::check::<Issue>(&state, &user, layout, multipart).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
}

/// The confirm step: the real issuance, which checks everything again.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let (now, actor, request) = (state.now(), user.actor(), form.request.clone());
    // An `IssueError` names what was refused for the person reading it
    // (hints, customers, device ids): large, and made once per refusal.
    #[allow(clippy::result_large_err)]
    let result = state
        .call(move |store, keys| issuance::issue(store, keys, &actor, &request, now))
        .await?;
    match result {
        Ok(issued) => Ok(Redirect::to(&format!(
            "/payloads/{}",
            issued.payload.license.request_hash
        ))
        .into_response()),
        Err(e) => {
            let e = WebError::shown(e)?;
            paste::refused::<Issue>(&state, layout, form.request, format!("Not issued: {e}")).await
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "payload.html")]
pub(crate) struct PayloadPage {
    layout: Layout,
    issuance: IssuanceRecord,
    license: LicenseRecord,
}

async fn find(
    state: &AppState,
    request_hash: &str,
) -> Result<(IssuanceRecord, LicenseRecord), WebError> {
    let hash: Digest = request_hash.parse().map_err(|_| WebError::NotFound)?;
    state
        .run(move |store, _| issuance::find(store, &hash))
        .await?
        .ok_or(WebError::NotFound)
}

pub(crate) async fn payload(
    State(state): State<AppState>,
    layout: Layout,
    Path(request_hash): Path<String>,
) -> Result<PayloadPage, WebError> {
    let (issuance, license) = find(&state, &request_hash).await?;
    Ok(PayloadPage {
        layout,
        issuance,
        license,
    })
}

/// The payload as a file, as `issue --out` writes it.
pub(crate) async fn download(
    State(state): State<AppState>,
    Path(request_hash): Path<String>,
) -> Result<Response, WebError> {
    let (issuance, _) = find(&state, &request_hash).await?;
    let disposition = format!(
        "attachment; filename=\"ren3-payload-{}-{}.txt\"",
        issuance.client_device_id, issuance.serial
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        format!("{}\n", issuance.payload),
    )
        .into_response())
}
