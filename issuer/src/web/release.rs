//! Releasing a seat with a release receipt: paste or upload the receipt a
//! customer's installation signed when it deactivated, see what it says
//! and whether it would free its seat (`releases::check`, which writes
//! nothing), then confirm (`releases::release`, which checks everything
//! again in its own transaction).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::auth::CurrentUser;
use super::paste::{self, PasteFlow};
use super::view::{Layout, filters};
use super::{AppState, WebError};
use ren3_issuer_core::inspect::{self, Fields, ReceiptFields, ReleaseVerdict, TrustSource};
use ren3_issuer_core::releases::{self, ReleaseError, Released};
use ren3_issuer_core::store::LicenseRecord;
use ren3_issuer_core::{Coded as _, licenses};

/// Releasing as a [`PasteFlow`]: a receipt, checked by `releases::check`.
pub(crate) struct Release;

impl PasteFlow for Release {
    const FIELD: &'static str = "receipt";
    const WHAT: &'static str = "release receipt";
    type Report = ReceiptReport;
    type Page = ReleasePage;

    async fn report(state: &AppState, receipt: String) -> Result<ReceiptReport, WebError> {
        report(state, receipt).await
    }

    fn passes(report: &ReceiptReport) -> bool {
        report.verdict.would_release
    }

    fn page(
        layout: Layout,
        receipt: String,
        input_error: Option<String>,
        report: Option<ReceiptReport>,
    ) -> ReleasePage {
        ReleasePage {
            layout,
            receipt,
            input_error,
            report,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "release.html")]
pub(crate) struct ReleasePage {
    layout: Layout,
    /// The receipt as pasted or uploaded, kept for another try.
    receipt: String,
    /// A problem with the input itself, or a refusal at confirmation.
    input_error: Option<String>,
    report: Option<ReceiptReport>,
}

/// What a receipt says, and what releasing it now would do.
pub(crate) struct ReceiptReport {
    /// The fields, read without the signature check when it fails;
    /// absent when even that is impossible (damaged, not a receipt).
    fields: Option<ReceiptFields>,
    verdict: ReleaseVerdict,
    /// The license whose key the receipt names, if the store has it.
    license: Option<LicenseRecord>,
}

impl ReceiptReport {
    /// The refusal, as the CLI words it: the message and its code.
    fn failure(&self) -> Option<String> {
        self.verdict
            .problem
            .as_ref()
            .map(|p| format!("{} ({})", p.message, p.code))
    }
}

pub(crate) async fn form(layout: Layout) -> ReleasePage {
    ReleasePage {
        layout,
        receipt: String::new(),
        input_error: None,
        report: None,
    }
}

async fn report(state: &AppState, receipt: String) -> Result<ReceiptReport, WebError> {
    let now = state.now();
    let report = state
        .run(move |store, _| {
            let verdict = inspect::release_verdict(releases::check(store, &receipt))?;
            // A receipt is checked against the device key it carries, so
            // no trusted keys are needed to read it.
            let no_keys = TrustSource::Unavailable {
                why: "a release receipt needs no issuer key".to_owned(),
            };
            let fields = match inspect::inspect(&receipt, &no_keys, now) {
                Ok(inspection) => match inspection.fields {
                    Some(Fields::Receipt(fields)) => Some(fields),
                    _ => None,
                },
                Err(_) => None,
            };
            let license = match &fields {
                Some(f) => licenses::list(store, Some(&f.license_key_fingerprint.to_string()))?
                    .into_iter()
                    .map(|summary| summary.license)
                    .find(|l| l.key_fingerprint == f.license_key_fingerprint),
                None => None,
            };
            Ok::<_, ReleaseError>(ReceiptReport {
                fields,
                verdict,
                license,
            })
        })
        .await?;
    Ok(report)
}

/// The check step: reads the receipt and runs every check, writes nothing.
pub(crate) async fn check(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    multipart: Multipart,
) -> Result<Response, WebError> {
    paste::check::<Release>(&state, &user, layout, multipart).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    receipt: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "released.html")]
pub(crate) struct ReleasedPage {
    layout: Layout,
    released: Released,
}

/// The confirm step: the real release, which checks everything again.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let (now, actor, receipt) = (state.now(), user.actor(), form.receipt.clone());
    let result = state
        .call(move |store, _| releases::release(store, &actor, &receipt, now))
        .await?;
    match result {
        Ok(released) => Ok(ReleasedPage { layout, released }.into_response()),
        Err(e) => {
            let e = WebError::shown(e)?;
            // The check passing now means the seat changed in between;
            // say what the release itself was refused with.
            let refusal = format!("Not released: {e} ({})", e.code());
            paste::refused::<Release>(&state, layout, form.receipt, refusal).await
        }
    }
}
