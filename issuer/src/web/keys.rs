//! The signing keys with their certificates, the store's root and the
//! installed revocation list, each downloadable; rotating to a new key and
//! retiring old ones (`signing_keys::rotate` and `retire`, as
//! `ren3-issuer keys rotate` and `keys retire`). The console never holds
//! the root key: a rotated key is certified on the root's machine.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ren3_shared::KeyId;
use serde::Deserialize;

use super::auth::CurrentUser;
use super::view::{Layout, filters};
use super::{AppState, WebError};
use ren3_issuer_core::chain;
use ren3_issuer_core::keystore::{AtRest, KeyStoreError};
use ren3_issuer_core::signing_keys::{self, SigningKeyEntry};
use ren3_issuer_core::{Coded as _, ErrorKind};

/// The store's root as the page shows it.
pub(crate) struct RootView {
    key_id: String,
    fingerprint: String,
}

/// The installed revocation list as the page shows it.
pub(crate) struct RevocationsView {
    version: u64,
    revoked: usize,
}

/// A key as the page shows it: with how its private half is kept.
pub(crate) struct KeyRow {
    entry: SigningKeyEntry,
    /// `plain`, `encrypted`, or why it cannot be told (`missing`,
    /// `unreadable`); read from the file, never decrypted to find out.
    at_rest: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "keys.html")]
pub(crate) struct KeysPage {
    layout: Layout,
    root: Option<RootView>,
    revocations: Option<RevocationsView>,
    keys: Vec<KeyRow>,
    /// What the last change did.
    done: Option<String>,
    /// Why the last change was refused.
    notice: Option<String>,
}

impl KeysPage {
    /// Whether more than one key is unretired, so one of them may retire
    /// (the library still refuses to retire the only certified one).
    fn can_retire(&self) -> bool {
        self.keys
            .iter()
            .filter(|k| k.entry.key.retired_at.is_none())
            .count()
            > 1
    }
}

/// Which change just succeeded, after the redirect that follows it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DoneQuery {
    rotated: Option<String>,
    retired: Option<String>,
}

async fn page(state: &AppState, layout: Layout) -> Result<KeysPage, WebError> {
    let (keys, trust) = state
        .run(|store, keys| {
            let rows = signing_keys::list(store).map(|entries| {
                entries
                    .into_iter()
                    .map(|entry| {
                        let at_rest = match keys.at_rest(&entry.key.key_id) {
                            Ok(AtRest::Plain) => "plain",
                            Ok(AtRest::Encrypted) => "encrypted",
                            Err(KeyStoreError::KeyFileMissing { .. }) => "missing",
                            Err(_) => "unreadable",
                        };
                        KeyRow { entry, at_rest }
                    })
                    .collect::<Vec<_>>()
            })?;
            Ok::<_, ren3_issuer_core::store::StoreError>((rows, chain::overview(store)?))
        })
        .await?;
    Ok(KeysPage {
        layout,
        root: trust.root.map(|root| RootView {
            key_id: root.key_id().to_string(),
            fingerprint: root.fingerprint().to_string(),
        }),
        revocations: trust.revocations.map(|list| RevocationsView {
            version: list.version(),
            revoked: list.body.revoked.len(),
        }),
        keys,
        done: None,
        notice: None,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    layout: Layout,
    Query(query): Query<DoneQuery>,
) -> Result<KeysPage, WebError> {
    let mut page = page(&state, layout).await?;
    // Only say what the store confirms: a made-up link says nothing.
    let find = |text: &Option<String>| {
        let id = text.as_deref()?.parse::<KeyId>().ok()?;
        page.keys.iter().find(|k| k.entry.key.key_id == id)
    };
    page.done = if let Some(key) = find(&query.rotated) {
        Some(format!(
            "Signing key {id} was created. It signs nothing until the root certifies it: run \
             `ren3-issuer keys certification-request {id} --out req.token`, certify it on the \
             root's machine (`ren3-issuer root certify`), then `ren3-issuer keys \
             install-certificate cert.token`. Until then the current key keeps signing.",
            id = key.entry.key.key_id
        ))
    } else if let Some(key) = find(&query.retired) {
        key.entry.key.retired_at.map(|at| {
            format!(
                "Signing key {} was retired at {}: it signs nothing more, and the payloads it \
                 signed before stay valid. To stop clients trusting it, revoke it on the \
                 root's machine (`ren3-issuer root revoke`).",
                key.entry.key.key_id,
                crate::present::time(at)
            )
        })
    } else {
        None
    };
    Ok(page)
}

#[derive(Debug, Deserialize)]
pub(crate) struct RotateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    encrypt: String,
}

/// Creates a new signing key, which signs once its certificate is
/// installed; encrypted at rest with the passphrase the console was
/// started with, if asked.
pub(crate) async fn rotate(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Form(form): Form<RotateForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let at_rest = if form.encrypt == "yes" {
        AtRest::Encrypted
    } else {
        AtRest::Plain
    };
    let (now, actor) = (state.now(), user.actor());
    let result = state
        .call(move |store, keys| signing_keys::rotate(store, keys, &actor, at_rest, now))
        .await?;
    match result {
        Ok(key) => Ok(Redirect::to(&format!("/keys?rotated={}", key.key_id)).into_response()),
        Err(e) => {
            let e = WebError::shown(e)?;
            refused(&state, layout, format!("No key was created: {e}")).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RetireForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// Retires a signing key: it signs nothing more.
pub(crate) async fn retire(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Path(key_id): Path<String>,
    Form(form): Form<RetireForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let key_id: KeyId = key_id.parse().map_err(|_| WebError::NotFound)?;
    if form.confirm != "yes" {
        return refused(
            &state,
            layout,
            format!(
                "Signing key {key_id} was not retired: tick \"I understand\" next to its Retire \
                 button to confirm."
            ),
        )
        .await;
    }
    let (now, actor) = (state.now(), user.actor());
    let result = state
        .call(move |store, _| signing_keys::retire(store, &actor, &key_id, now))
        .await?;
    match result {
        Ok(key) => Ok(Redirect::to(&format!("/keys?retired={}", key.key_id)).into_response()),
        // An unknown key id, too, is told on the keys page, beside the
        // list of the keys there are.
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => refused(&state, layout, format!("Not retired: {e}")).await,
    }
}

async fn refused(state: &AppState, layout: Layout, notice: String) -> Result<Response, WebError> {
    let mut page = page(state, layout).await?;
    page.notice = Some(notice);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// A download of public trust material.
fn download(content_type: &'static str, name: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The same file as `ren3-issuer trust export-root`: what clients are
/// built pinned to.
pub(crate) async fn root_file(State(state): State<AppState>) -> Result<Response, WebError> {
    let root = state
        .run(|store, _| chain::stored_root(store))
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(download(
        "text/plain; charset=utf-8",
        "root.pub",
        root.to_public_file(),
    ))
}

/// The certificate of one signing key, as installed.
pub(crate) async fn certificate(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
) -> Result<Response, WebError> {
    let key_id: KeyId = key_id.parse().map_err(|_| WebError::NotFound)?;
    let trust = state.run(|store, _| chain::overview(store)).await?;
    let certificate = trust.certificate(&key_id).ok_or(WebError::NotFound)?;
    Ok(download(
        "text/plain; charset=utf-8",
        &format!("certificate-{key_id}.token"),
        format!("{}\n", certificate.token()),
    ))
}

/// The installed revocation list: the one every payload carries.
pub(crate) async fn revocations_file(State(state): State<AppState>) -> Result<Response, WebError> {
    let trust = state.run(|store, _| chain::overview(store)).await?;
    let list = trust.revocations.ok_or(WebError::NotFound)?;
    Ok(download(
        "text/plain; charset=utf-8",
        &format!("revocations-v{}.token", list.version()),
        format!("{}\n", list.token()),
    ))
}
