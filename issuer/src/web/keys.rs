//! The signing keys, and the trusted-keys file clients need.

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::auth::CurrentUser;
use super::view::{self, Layout};
use super::{AppState, WebError};
use crate::signing_keys::{self, SigningKeyEntry};

#[derive(Template, WebTemplate)]
#[template(path = "keys.html")]
pub(crate) struct KeysPage {
    layout: Layout,
    keys: Vec<SigningKeyEntry>,
}

impl KeysPage {
    fn time(&self, at: &i64) -> String {
        view::time(*at)
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
) -> Result<KeysPage, WebError> {
    let keys = state.call(|store, _| signing_keys::list(store)).await??;
    Ok(KeysPage {
        layout: Layout {
            user: user.name,
            csrf: user.csrf_token,
            section: "keys",
        },
        keys,
    })
}

/// The same file as `ren3-issuer keys export-public`.
pub(crate) async fn trust_file(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, WebError> {
    let trust = state
        .call(|store, _| signing_keys::trusted_keys(store))
        .await??;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"trusted-keys.json\"",
            ),
        ],
        trust.to_file(),
    ))
}
