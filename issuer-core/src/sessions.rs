//! Console sessions and login throttling, kept in the store so that they
//! can be invalidated server-side and survive nothing they should not.
//!
//! A session id is 256 random bits; the store keeps only its SHA-256, so a
//! copy of the store cannot be used to take over a session.

use ren3_shared::{RandomSourceError, binary};
use sha2::{Digest as _, Sha256};

use crate::error::{Coded, ErrorKind};
use crate::store::{self, Db, Store, StoreError};
use crate::users::Role;

/// A session unused for this long ends.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// A session ends this long after login, used or not.
pub const MAX_AGE_SECS: i64 = 12 * 60 * 60;
/// Failed logins allowed per (user name, client address) pair within
/// [`THROTTLE_WINDOW_SECS`]; a login still being checked counts as one.
pub const MAX_FAILURES: u32 = 5;
/// How long a failed login counts.
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// `last_seen` is written at most this often, not on every request.
const TOUCH_EVERY_SECS: i64 = 60;

/// A session just opened: the id goes to the browser, once.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    pub user_name: String,
    /// The user's role now: read at every request, so a changed role
    /// applies at once.
    pub role: Role,
    /// The token every state-changing form of this session carries.
    pub csrf_token: String,
}

fn hash_id(id: &str) -> String {
    binary::encode(&Sha256::digest(id.as_bytes()))
}

/// A new random secret, base64url: 256 bits.
pub fn random_token() -> Result<String, RandomSourceError> {
    Ok(binary::encode(&binary::os_random::<32>()?))
}

/// Opens a new session for a user: a fresh id at every login.
pub fn create(store: &mut Store, user_id: i64, now: i64) -> Result<NewSession, SessionError> {
    let session = new_ids()?;
    store.write(|tx| create_in(tx, &session, user_id, now))?;
    Ok(session)
}

/// A fresh session id and CSRF token, not yet stored.
pub(crate) fn new_ids() -> Result<NewSession, RandomSourceError> {
    Ok(NewSession {
        id: random_token()?,
        csrf_token: random_token()?,
    })
}

/// Stores `session` for a user inside the caller's transaction, so that a
/// login's session, its cleared failures and its audit row commit together.
pub(crate) fn create_in(
    tx: &Db<'_>,
    session: &NewSession,
    user_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    store::delete_stale_sessions(tx, now - IDLE_TIMEOUT_SECS, now - MAX_AGE_SECS)?;
    store::insert_session(tx, &hash_id(&session.id), user_id, &session.csrf_token, now)
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for SessionError {
    fn code(&self) -> &'static str {
        match self {
            SessionError::Random(_) => "random_source_failed",
            SessionError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            SessionError::Random(_) => ErrorKind::Internal,
            SessionError::Store(e) => e.kind(),
        }
    }
}

/// The live session of `id`, if any; an idle or too old one is deleted.
pub fn find(store: &mut Store, id: &str, now: i64) -> Result<Option<Session>, StoreError> {
    let id_hash = hash_id(id);
    store.write(|tx| {
        let Some(row) = store::session_by_hash(tx, &id_hash)? else {
            return Ok(None);
        };
        if now - row.last_seen >= IDLE_TIMEOUT_SECS || now - row.created_at >= MAX_AGE_SECS {
            store::delete_session(tx, &id_hash)?;
            return Ok(None);
        }
        if now - row.last_seen >= TOUCH_EVERY_SECS {
            store::touch_session(tx, &id_hash, now)?;
        }
        Ok(Some(Session {
            user_id: row.user_id,
            user_name: row.user_name,
            role: Role::stored(row.user_role.as_deref()),
            csrf_token: row.csrf_token,
        }))
    })
}

/// Ends a session (logout). Unknown ids are ignored.
pub fn delete(store: &mut Store, id: &str) -> Result<(), StoreError> {
    store.write(|tx| store::delete_session(tx, &hash_id(id)))
}

/// The failed (or not yet concluded) logins of `key` within the window.
pub(crate) fn failures_in(tx: &Db<'_>, key: &str, now: i64) -> Result<u32, StoreError> {
    store::login_failures_since(tx, key, now - THROTTLE_WINDOW_SECS)
}

/// Counts a login against each of `keys` as failed, forgetting failures
/// older than the window; the rows' ids, to take the count back with
/// [`release_in`] if the password turns out right or is never checked.
pub(crate) fn reserve_in(tx: &Db<'_>, keys: &[&str], now: i64) -> Result<Vec<i64>, StoreError> {
    store::delete_login_failures_before(tx, now - THROTTLE_WINDOW_SECS)?;
    keys.iter()
        .map(|key| store::insert_login_failure(tx, key, now))
        .collect()
}

/// Takes back the counts [`reserve_in`] made.
pub(crate) fn release_in(tx: &Db<'_>, ids: &[i64]) -> Result<(), StoreError> {
    ids.iter()
        .try_for_each(|id| store::delete_login_failure(tx, *id))
}

/// Forgets every failure of `key` (a successful login clears its pair).
pub(crate) fn clear_in(tx: &Db<'_>, key: &str) -> Result<(), StoreError> {
    store::delete_login_failures_of(tx, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW, TestStore, actor};
    use crate::users;

    fn with_user() -> (TestStore, i64) {
        let mut t = TestStore::new();
        let user = users::add(
            &mut t.store,
            &actor(),
            "alice",
            "correct horse battery",
            users::Role::Admin,
            NOW,
        )
        .unwrap();
        (t, user.id)
    }

    #[test]
    fn a_session_is_found_by_its_id_and_stored_only_as_a_hash() {
        let (mut t, user_id) = with_user();
        let new = create(&mut t.store, user_id, NOW).unwrap();
        assert!(new.id.len() >= 43, "at least 256 bits");
        let found = find(&mut t.store, &new.id, NOW + 10).unwrap().unwrap();
        assert_eq!(found.user_name, "alice");
        assert_eq!(found.csrf_token, new.csrf_token);
        let stored: String = t
            .store
            .read(|c| {
                Ok::<_, StoreError>(c.query_row("SELECT id_hash FROM sessions", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_ne!(stored, new.id);
        assert_eq!(find(&mut t.store, "not-a-session", NOW).unwrap(), None);
    }

    #[test]
    fn sessions_end_at_logout_after_idle_time_and_at_max_age() {
        let (mut t, user_id) = with_user();
        let logged_out = create(&mut t.store, user_id, NOW).unwrap();
        delete(&mut t.store, &logged_out.id).unwrap();
        assert_eq!(find(&mut t.store, &logged_out.id, NOW).unwrap(), None);

        let idle = create(&mut t.store, user_id, NOW).unwrap();
        assert_eq!(
            find(&mut t.store, &idle.id, NOW + IDLE_TIMEOUT_SECS).unwrap(),
            None
        );
        // Gone for good, not only hidden.
        assert_eq!(find(&mut t.store, &idle.id, NOW).unwrap(), None);

        let busy = create(&mut t.store, user_id, NOW).unwrap();
        let mut at = NOW;
        while at + IDLE_TIMEOUT_SECS / 2 < NOW + MAX_AGE_SECS {
            at += IDLE_TIMEOUT_SECS / 2;
            assert!(find(&mut t.store, &busy.id, at).unwrap().is_some(), "{at}");
        }
        assert_eq!(
            find(&mut t.store, &busy.id, NOW + MAX_AGE_SECS).unwrap(),
            None
        );
    }

    #[test]
    fn removing_a_user_ends_their_sessions() {
        let (mut t, user_id) = with_user();
        let session = create(&mut t.store, user_id, NOW).unwrap();
        users::remove(&mut t.store, &actor(), "alice", NOW).unwrap();
        assert_eq!(find(&mut t.store, &session.id, NOW).unwrap(), None);
    }

    #[test]
    fn failures_count_within_the_window_and_are_taken_back_or_cleared() {
        let mut t = TestStore::new();
        let count = |t: &TestStore, key: &str, at: i64| {
            t.store.read(|tx| failures_in(tx, key, at)).unwrap()
        };
        let ids = t
            .store
            .write(|tx| reserve_in(tx, &["pair:a", "addr:a"], NOW))
            .unwrap();
        assert_eq!((count(&t, "pair:a", NOW), count(&t, "addr:a", NOW)), (1, 1));
        assert_eq!(count(&t, "pair:b", NOW), 0, "1. another key is not counted");
        assert_eq!(
            count(&t, "pair:a", NOW + THROTTLE_WINDOW_SECS),
            0,
            "2. a failure counts for the window only"
        );
        t.store.write(|tx| release_in(tx, &ids)).unwrap();
        assert_eq!(
            count(&t, "addr:a", NOW),
            0,
            "3. a reservation is taken back"
        );
        for _ in 0..3 {
            t.store
                .write(|tx| reserve_in(tx, &["pair:a"], NOW))
                .unwrap();
        }
        t.store.write(|tx| clear_in(tx, "pair:a")).unwrap();
        assert_eq!(count(&t, "pair:a", NOW), 0, "4. a clear forgets them all");
        t.store
            .write(|tx| reserve_in(tx, &["pair:c"], NOW))
            .unwrap();
        t.store
            .write(|tx| reserve_in(tx, &["pair:d"], NOW + THROTTLE_WINDOW_SECS))
            .unwrap();
        let rows: i64 = t
            .store
            .read(|c| {
                Ok::<_, StoreError>(c.query_row(
                    "SELECT COUNT(*) FROM login_failures",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(rows, 1, "5. rows older than the window are deleted");
    }
}
