//! The console's paste → check → confirm flow, shared by issuing a payload
//! and releasing a seat: a token is pasted or uploaded, every check runs
//! without writing and is shown, and only a confirmation acts, checking
//! everything again in its own transaction. What differs between the two
//! is a [`PasteFlow`].

use std::future::Future;

use axum::extract::Multipart;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::CurrentUser;
use super::upload::{self, PastedToken};
use super::view::Layout;
use super::{AppState, WebError};

/// One paste → check → confirm flow.
pub(crate) trait PasteFlow {
    /// The form field that carries the token, and what it is called in
    /// messages.
    const FIELD: &'static str;
    const WHAT: &'static str;
    /// Every check's outcome, as the page shows it.
    type Report: Send;
    /// The flow's page: the token, a problem with the input, the report.
    type Page: IntoResponse;

    /// Runs every check on `text`, writing nothing.
    fn report(
        state: &AppState,
        text: String,
    ) -> impl Future<Output = Result<Self::Report, WebError>> + Send;

    /// Whether the report says confirming would go ahead.
    fn passes(report: &Self::Report) -> bool;

    fn page(
        layout: Layout,
        text: String,
        input_error: Option<String>,
        report: Option<Self::Report>,
    ) -> Self::Page;
}

/// The check step: reads the pasted or uploaded token and shows every
/// check; 200 when confirming would go ahead, else 422.
pub(crate) async fn check<F: PasteFlow>(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let PastedToken {
        csrf,
        text,
        input_error,
    } = upload::read(multipart, F::FIELD, F::WHAT).await?;
    user.check_csrf(&csrf)?;
    let report = match input_error {
        None => Some(F::report(state, text.clone()).await?),
        Some(_) => None,
    };
    let status = match &report {
        Some(r) if F::passes(r) => StatusCode::OK,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((status, F::page(layout, text, input_error, report)).into_response())
}

/// The confirmation refused with `refusal`: the page again with a fresh
/// report, and the refusal itself when the checks pass now (the state
/// changed in between), since the report then does not explain it.
pub(crate) async fn refused<F: PasteFlow>(
    state: &AppState,
    layout: Layout,
    text: String,
    refusal: String,
) -> Result<Response, WebError> {
    let report = F::report(state, text.clone()).await?;
    let input_error = F::passes(&report).then_some(refusal);
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        F::page(layout, text, input_error, Some(report)),
    )
        .into_response())
}
