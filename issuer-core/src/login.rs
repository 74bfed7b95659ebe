//! The console's login rules: throttling, the password check and the
//! session a good password opens, each outcome audited. The console only
//! carries the form here and the answer back.
//!
//! A login runs in three steps so that the slow password hash never holds
//! the store: [`attempt`] reads the throttle and the user's credentials,
//! [`LoginAttempt::check_password`] runs Argon2 without the store, and
//! [`conclude`] records the outcome and, for a good password, opens the
//! session.

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::sessions::{self, NewSession, SessionError};
use crate::store::{Store, StoreError};
use crate::users::{self, Credentials, User};

/// A login read from the store, its password not yet checked.
#[derive(Debug)]
pub struct LoginAttempt {
    name: String,
    throttle_keys: Vec<String>,
    throttled: bool,
    credentials: Option<Credentials>,
}

/// A login whose password was checked (or, throttled, was not).
#[derive(Debug)]
pub struct CheckedLogin {
    name: String,
    throttle_keys: Vec<String>,
    throttled: bool,
    user: Option<User>,
}

/// How a login ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Too many failed logins for this name or from this address: the
    /// password was not checked. Try again after
    /// [`sessions::THROTTLE_WINDOW_SECS`].
    Throttled,
    /// The name is unknown or the password wrong; which one is not said.
    WrongCredentials,
    /// A new session; its id goes to the browser, once.
    LoggedIn(NewSession),
}

/// Reads what a login of `name` (trimmed) from `client_address` needs:
/// whether either is throttled, and the user's stored credentials.
pub fn attempt(
    store: &Store,
    name: &str,
    client_address: Option<&str>,
    now: i64,
) -> Result<LoginAttempt, StoreError> {
    let name = name.trim().to_owned();
    let mut throttle_keys = vec![format!("user:{name}")];
    if let Some(address) = client_address {
        throttle_keys.push(format!("addr:{address}"));
    }
    Ok(LoginAttempt {
        throttled: sessions::is_throttled(store, &throttle_keys, now)?,
        credentials: users::credentials(store, &name)?,
        name,
        throttle_keys,
    })
}

impl LoginAttempt {
    /// The user name, trimmed, as the attempt reads it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks `password` (slow: Argon2, without the store). A throttled
    /// attempt is not checked at all.
    pub fn check_password(self, password: &str) -> CheckedLogin {
        let user = if self.throttled {
            None
        } else {
            users::verify_password(self.credentials.as_ref(), password)
        };
        CheckedLogin {
            name: self.name,
            throttle_keys: self.throttle_keys,
            throttled: self.throttled,
            user,
        }
    }
}

/// Records how `login` ended in the audit log and the failure counts and,
/// for a good password, opens a session (clearing the user's failures).
pub fn conclude(
    store: &mut Store,
    login: CheckedLogin,
    now: i64,
) -> Result<LoginOutcome, SessionError> {
    let actor = Actor::console(&login.name);
    let entry = |outcome, detail: String| NewEntry {
        actor: &actor,
        action: Action::Login,
        subject: login.name.clone(),
        outcome,
        detail,
    };
    if login.throttled {
        let detail = format!(
            "refused without checking the password: {} failed logins within {} minutes",
            sessions::MAX_FAILURES,
            sessions::THROTTLE_WINDOW_SECS / 60
        );
        audit::record(store, &entry(Outcome::Throttled, detail), now)?;
        return Ok(LoginOutcome::Throttled);
    }
    let Some(user) = login.user else {
        sessions::record_failure(store, &login.throttle_keys, now)?;
        let detail = "wrong user name or password".to_owned();
        audit::record(store, &entry(Outcome::Refused, detail), now)?;
        return Ok(LoginOutcome::WrongCredentials);
    };
    sessions::clear_failures(store, &format!("user:{}", user.name))?;
    let session = sessions::create(store, user.id, now)?;
    audit::record(store, &entry(Outcome::Ok, "new session".to_owned()), now)?;
    Ok(LoginOutcome::LoggedIn(session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW, TestStore, actor};

    const PASSWORD: &str = "correct horse battery";

    fn login(t: &mut TestStore, name: &str, password: &str, from: &str) -> LoginOutcome {
        let attempt = attempt(&t.store, name, Some(from), NOW).unwrap();
        conclude(&mut t.store, attempt.check_password(password), NOW).unwrap()
    }

    #[test]
    fn a_good_password_opens_a_session_and_wrong_ones_are_throttled() {
        let mut t = TestStore::new();
        users::add(&mut t.store, &actor(), "alice", PASSWORD, NOW).unwrap();
        assert!(matches!(
            login(&mut t, " alice ", PASSWORD, "192.0.2.1"),
            LoginOutcome::LoggedIn(_)
        ));
        for _ in 0..sessions::MAX_FAILURES {
            assert!(matches!(
                login(&mut t, "alice", "wrong", "192.0.2.1"),
                LoginOutcome::WrongCredentials
            ));
        }
        // Throttled now: even the right password is not checked.
        assert!(matches!(
            login(&mut t, "alice", PASSWORD, "192.0.2.2"),
            LoginOutcome::Throttled
        ));
        let page = audit::page(
            &t.store,
            &audit::Filter {
                action: Some("login".to_owned()),
                ..audit::Filter::default()
            },
            10,
        )
        .unwrap();
        let results: Vec<&str> = page.entries.iter().map(|e| e.result.as_str()).collect();
        assert_eq!(
            results,
            [
                "throttled",
                "refused",
                "refused",
                "refused",
                "refused",
                "refused",
                "ok"
            ]
        );
        assert_eq!(page.entries[6].subject, "alice");
    }
}
