//! The dashboard: counts, licenses that expire soon, the latest issuances.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::view::{Layout, filters};
use super::{AppState, WebError};
use ren3_issuer_core::licenses::{self, Overview};

const LIST_LENGTH: u32 = 10;

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    layout: Layout,
    overview: Overview,
    expiring_within_days: i64,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    layout: Layout,
) -> Result<DashboardPage, WebError> {
    let now = state.now();
    let overview = state
        .run(move |store, _| licenses::overview(store, now, LIST_LENGTH))
        .await?;
    Ok(DashboardPage {
        layout,
        overview,
        expiring_within_days: licenses::EXPIRING_WITHIN_SECS / 86_400,
    })
}
