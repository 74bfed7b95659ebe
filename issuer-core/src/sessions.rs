//! Console sessions and login throttling, kept in the store so that they
//! can be invalidated server-side and survive nothing they should not.
//!
//! A session id is 256 random bits; the store keeps only its SHA-256, so a
//! copy of the store cannot be used to take over a session.

use ren3_shared::{RandomSourceError, binary};
use sha2::{Digest as _, Sha256};

use crate::error::{Coded, ErrorKind};
use crate::store::{self, Store, StoreError};

/// A session unused for this long ends.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// A session ends this long after login, used or not.
pub const MAX_AGE_SECS: i64 = 12 * 60 * 60;
/// Failed logins allowed per throttling key within [`THROTTLE_WINDOW_SECS`].
pub const MAX_FAILURES: u32 = 5;
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
    let session = NewSession {
        id: random_token()?,
        csrf_token: random_token()?,
    };
    store.write(|tx| {
        store::delete_stale_sessions(tx, now - IDLE_TIMEOUT_SECS, now - MAX_AGE_SECS)?;
        store::insert_session(tx, &hash_id(&session.id), user_id, &session.csrf_token, now)
    })?;
    Ok(session)
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
            csrf_token: row.csrf_token,
        }))
    })
}

/// Ends a session (logout). Unknown ids are ignored.
pub fn delete(store: &mut Store, id: &str) -> Result<(), StoreError> {
    store.write(|tx| store::delete_session(tx, &hash_id(id)))
}

/// Whether any of `keys` (a user name, a client address) failed to log in
/// [`MAX_FAILURES`] times within the window.
pub fn is_throttled(store: &Store, keys: &[String], now: i64) -> Result<bool, StoreError> {
    store.read(|conn| {
        for key in keys {
            let failures = store::login_failures_since(conn, key, now - THROTTLE_WINDOW_SECS)?;
            if failures >= MAX_FAILURES {
                return Ok(true);
            }
        }
        Ok(false)
    })
}

/// Counts a failed login against each of `keys`, forgetting old failures.
pub fn record_failure(store: &mut Store, keys: &[String], now: i64) -> Result<(), StoreError> {
    store.write(|tx| {
        store::delete_login_failures_before(tx, now - THROTTLE_WINDOW_SECS)?;
        for key in keys {
            store::insert_login_failure(tx, key, now)?;
        }
        Ok(())
    })
}

/// Forgets the failures of `key` after a successful login.
pub fn clear_failures(store: &mut Store, key: &str) -> Result<(), StoreError> {
    store.write(|tx| store::delete_login_failures_of(tx, key))
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
    fn throttling_starts_at_the_fifth_failure_and_ends_with_the_window() {
        let mut t = TestStore::new();
        let keys = ["user:alice".to_owned()];
        for _ in 0..MAX_FAILURES - 1 {
            record_failure(&mut t.store, &keys, NOW).unwrap();
        }
        assert!(!is_throttled(&t.store, &keys, NOW).unwrap());
        record_failure(&mut t.store, &keys, NOW).unwrap();
        assert!(is_throttled(&t.store, &keys, NOW).unwrap());
        assert!(!is_throttled(&t.store, &["user:bob".to_owned()], NOW).unwrap());
        assert!(!is_throttled(&t.store, &keys, NOW + THROTTLE_WINDOW_SECS).unwrap());
        clear_failures(&mut t.store, "user:alice").unwrap();
        assert!(!is_throttled(&t.store, &keys, NOW).unwrap());
    }
}
