//! Revocation on the client: the effective revocation list, which only
//! rises.
//!
//! The effective list is the newest of three (docs/FORMAT.md §7): the floor
//! compiled into the build, the list stored in `revocation_list`, and the
//! list inside every stored payload, active or not. It is computed at
//! start-up from all three, so deleting the stored row cannot lower it,
//! and it rises when an import brings a newer one, before any other check
//! of that import.

use std::sync::Arc;

use ren3_shared::RevocationList;
use rusqlite::Connection;

use crate::licensing::Licensing;
use crate::store::{self, StoreError};
use crate::trust::Trust;

/// The newest list this installation knows, read at start-up on the store's
/// thread; `carried` are the distinct lists of the stored payloads (each
/// payload's list line, unverified). When it is newer than the stored row (or that
/// row does not verify), it is stored, so that the row again holds the
/// newest list.
pub(crate) fn effective_at_start<'a>(
    conn: &Connection,
    trust: &Trust,
    now: i64,
    carried: impl IntoIterator<Item = &'a str>,
) -> Result<Option<RevocationList>, StoreError> {
    let mut newest = trust.floor().cloned();
    let mut consider = |list: RevocationList| {
        if newest.as_ref().is_none_or(|n| list.version() > n.version()) {
            newest = Some(list);
        }
    };
    let stored = match store::stored_revocation_list(conn)? {
        None => None,
        Some(token) => match RevocationList::open(&token, trust.root()) {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "the stored revocation list does not verify under this build's root ({e}); \
                     it is replaced by the newest list that does"
                );
                None
            }
        },
    };
    let stored_version = stored.as_ref().map(RevocationList::version);
    if let Some(list) = stored {
        consider(list);
    }
    // A payload that no longer verifies as a whole (its key revoked, say)
    // still carries a list the root signed.
    for list in carried {
        if let Ok(list) = RevocationList::open(list, trust.root()) {
            consider(list);
        }
    }
    if let Some(list) = &newest
        && stored_version.is_none_or(|stored| list.version() > stored)
    {
        store::store_revocation_list(conn, list, now)?;
    }
    Ok(newest)
}

impl Licensing {
    /// The effective revocation list; `None` while none is known (version 0).
    pub fn revocation_list(&self) -> Option<Arc<RevocationList>> {
        self.mirror().revocation_list()
    }

    /// The effective list's version; 0 while none is known.
    pub fn revocation_list_version(&self) -> u64 {
        self.mirror().revocation_list_version()
    }

    /// Makes `list` (from a payload whose chain verified) the effective
    /// list if it is newer: stored and committed on its own, then published,
    /// and the installed license judged against it. This is the one write a
    /// refused import may leave behind: a newer list the root signed is
    /// never worth forgetting. Returns whether the list was newer.
    pub(crate) async fn apply_newer_revocations(
        &self,
        list: &RevocationList,
    ) -> Result<bool, StoreError> {
        if list.version() <= self.revocation_list_version() {
            return Ok(false);
        }
        let mirror = Arc::clone(self.mirror());
        let list = list.clone();
        let now = self.now();
        let applied = self
            .store()
            .call(move |conn| {
                // Decided again under the connection's lock, which every
                // change of the effective list holds: it only rises.
                if list.version() <= mirror.revocation_list_version() {
                    return Ok::<_, StoreError>(None);
                }
                store::store_revocation_list(conn, &list, now)?;
                let version = list.version();
                mirror.license.apply_revocations(&list);
                mirror.replace_revocations(list);
                Ok(Some(version))
            })
            .await?;
        if let Some(version) = applied {
            tracing::info!(version, "stored a newer revocation list");
        }
        Ok(applied.is_some())
    }
}
