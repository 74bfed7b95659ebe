//! The audit log, filtered and paged.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::view::{self, Layout, filters};
use super::{AppState, WebError};
use ren3_issuer_core::audit::chain::{self, Verdict};
use ren3_issuer_core::audit::{self, Action, Entry, Filter, Outcome};

const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    q: String,
    before: Option<i64>,
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub(crate) struct AuditPage {
    layout: Layout,
    query: AuditQuery,
    entries: Vec<Entry>,
    actions: Vec<&'static str>,
    results: Vec<&'static str>,
    /// The query string of the next page, if there is one.
    next: Option<String>,
    chain: ChainLine,
}

/// Whether the hash chain verifies, for the line above the table.
pub(crate) struct ChainLine {
    verified: bool,
    text: String,
}

impl ChainLine {
    fn of(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Verified { rows: 0, .. } => Self {
                verified: true,
                text: "The audit log is empty.".to_owned(),
            },
            Verdict::Verified { rows, head } => Self {
                verified: true,
                text: format!(
                    "The hash chain verifies up to row {} ({rows} rows). Keep its head, \
                     {head}, away from this store (`ren3-issuer audit head`): \
                     `audit verify --head` then also catches deleted newest rows.",
                    head.id
                ),
            },
            Verdict::Broken(broken) => Self {
                verified: false,
                text: format!(
                    "The hash chain is broken: {broken}; {}. What to do: {}.",
                    broken.verified_before(),
                    broken.what_to_do()
                ),
            },
        }
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    layout: Layout,
    Query(query): Query<AuditQuery>,
) -> Result<AuditPage, WebError> {
    let filter = Filter {
        actor: non_empty(&query.actor),
        action: non_empty(&query.action),
        result: non_empty(&query.result),
        text: non_empty(&query.q),
        before: query.before,
        since: None,
    };
    // The whole chain at every view: a hash a row, done off the executor.
    let (page, verdict) = state
        .run(move |store, _| {
            let page = audit::page(store, &filter, PAGE_SIZE)?;
            Ok::<_, ren3_issuer_core::store::StoreError>((page, chain::verify(store, None)?))
        })
        .await?;
    let next = page.next_before.map(|before| {
        view::query_string(&[
            ("actor", &query.actor),
            ("action", &query.action),
            ("result", &query.result),
            ("q", &query.q),
            ("before", &before.to_string()),
        ])
    });
    Ok(AuditPage {
        layout,
        query,
        entries: page.entries,
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        results: Outcome::ALL.iter().map(|o| o.as_str()).collect(),
        next,
        chain: ChainLine::of(&verdict),
    })
}
