//! The console's login rules: the throttle, the password check and the
//! session a good password opens, each attempt audited with the address it
//! came from. The console only carries the form here and the answer back.
//!
//! Two limits, so that guessing is slow and nobody can lock others out:
//!
//! - **The (name, address) pair.** [`sessions::MAX_FAILURES`] failures of a
//!   pair within the window refuse that pair, and only it, without checking
//!   the password. The same name from another address, or another name from
//!   the same address, is checked as usual, so knowing a name is not enough
//!   to lock its user out.
//! - **The address.** Past [`SPRAY_FREE_FAILURES`] failures from one address
//!   across any names (password spraying), each attempt from it waits a delay
//!   that doubles with every failure, up to [`SPRAY_MAX_DELAY`], and is then
//!   checked: slowed, never refused, because behind a proxy one address may
//!   be the whole team.
//!
//! A login runs in steps, so that concurrent guesses cannot outrun the
//! throttle and the slow hash never holds the store:
//!
//! 1. [`begin`], one immediate transaction, refuses a throttled pair, or
//!    counts the attempt as a failure *before* its password is hashed (a
//!    reservation) and reads the delay and the user's credentials;
//! 2. the front end waits [`LoginAttempt::delay`] and its turn to hash, then
//!    runs [`LoginAttempt::check_password`] without the store;
//! 3. [`conclude`] audits the outcome; a good password takes its reservation
//!    back, clears the pair's failures and opens the session, in one
//!    transaction. [`abandon`] takes back the reservation of an attempt whose
//!    password was never checked.
//!
//! An attempt that never concludes (a crash) stays counted as a failure
//! until the window passes.

use std::time::Duration;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::monitoring::{self, LoginResult};
use crate::sessions::{self, NewSession, SessionError};
use crate::store::{Store, StoreError};
use crate::users::{self, Credentials, PasswordMemory, User};

/// Failures from one address, across all names, before its logins slow down.
/// Above [`sessions::MAX_FAILURES`], so that a team behind one proxy can
/// mistype a few passwords without noticing.
pub const SPRAY_FREE_FAILURES: u32 = 2 * sessions::MAX_FAILURES;
/// The delay of the first attempt past [`SPRAY_FREE_FAILURES`]; each further
/// failure doubles it.
pub const SPRAY_FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest delay: a sprayer gains nothing from a longer one that a
/// colleague behind the same proxy would not pay too.
pub const SPRAY_MAX_DELAY: Duration = Duration::from_secs(5);

/// The address recorded when the front end knows none.
const UNKNOWN_ADDRESS: &str = "unknown";

/// The delay before checking a password from an address that has failed
/// `address_failures` times within the window.
pub fn spray_delay(address_failures: u32) -> Duration {
    let Some(past) = address_failures.checked_sub(SPRAY_FREE_FAILURES) else {
        return Duration::ZERO;
    };
    1u32.checked_shl(past)
        .and_then(|factor| SPRAY_FIRST_DELAY.checked_mul(factor))
        .map_or(SPRAY_MAX_DELAY, |delay| delay.min(SPRAY_MAX_DELAY))
}

/// How [`begin`] answered.
#[derive(Debug)]
pub enum Begun {
    /// Too many failures of this (name, address) pair: refused and audited,
    /// the password not checked. Try again after
    /// [`sessions::THROTTLE_WINDOW_SECS`].
    Throttled {
        /// The name as the attempt read it.
        name: String,
    },
    /// Counted as a failure until [`conclude`] or [`abandon`] says otherwise.
    Reserved(LoginAttempt),
}

/// A reserved login, its password not yet checked.
#[derive(Debug)]
pub struct LoginAttempt {
    name: String,
    address: String,
    pair_key: String,
    /// The failure rows this attempt added, to take back.
    reservation: Vec<i64>,
    address_failures: u32,
    delay: Duration,
    credentials: Option<Credentials>,
}

/// A login whose password was checked.
#[derive(Debug)]
pub struct CheckedLogin {
    attempt: LoginAttempt,
    user: Option<User>,
}

/// How a checked login ended.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The name is unknown or the password wrong; which one is not said.
    WrongCredentials,
    /// A new session; its id goes to the browser, once.
    LoggedIn(NewSession),
}

/// Why a reserved attempt ended without its password being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotChecked {
    /// It waited too long for its turn to hash (the console was busy).
    Busy,
    /// The browser went away before its turn came.
    ClientGone,
}

/// A name as long as any user's, plus a mark: longer names cannot be users,
/// and the throttle and the audit log need not store megabytes of one.
fn bounded(name: &str) -> String {
    match name.char_indices().nth(users::MAX_NAME_CHARS) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

/// Starts a login of `name` (trimmed) from `client_address`: refuses a
/// throttled pair, or reserves the attempt. See the module's steps.
pub fn begin(
    store: &mut Store,
    name: &str,
    client_address: Option<&str>,
    now: i64,
) -> Result<Begun, StoreError> {
    let name = bounded(name.trim());
    let address = client_address.unwrap_or(UNKNOWN_ADDRESS).to_owned();
    // An address holds no space, so the first one ends it.
    let pair_key = format!("pair:{address} {name}");
    let address_key = format!("addr:{address}");
    let begun = store.write(|tx| {
        if sessions::failures_in(tx, &pair_key, now)? >= sessions::MAX_FAILURES {
            let detail = format!(
                "refused without checking the password: {} failed logins of this name from \
                 {address} within {} minutes",
                sessions::MAX_FAILURES,
                sessions::THROTTLE_WINDOW_SECS / 60
            );
            let actor = Actor::console(&name);
            audit::record_in(tx, &entry(&actor, &name, Outcome::Throttled, detail), now)?;
            return Ok(Begun::Throttled { name });
        }
        let address_failures = sessions::failures_in(tx, &address_key, now)?;
        let reservation = sessions::reserve_in(tx, &[&pair_key, &address_key], now)?;
        let credentials = users::credentials_in(tx, &name)?;
        Ok(Begun::Reserved(LoginAttempt {
            delay: spray_delay(address_failures),
            name,
            address,
            pair_key,
            reservation,
            address_failures,
            credentials,
        }))
    });
    if let Ok(Begun::Throttled { .. }) = &begun {
        monitoring::login(LoginResult::Throttled);
    }
    begun
}

/// The audit row of a login attempt; `actor` is `console:<name>`.
fn entry<'a>(actor: &'a Actor, name: &str, outcome: Outcome, detail: String) -> NewEntry<'a> {
    NewEntry {
        actor,
        action: Action::Login,
        subject: name.to_owned(),
        outcome,
        detail,
    }
}

impl LoginAttempt {
    /// The user name, trimmed, as the attempt reads it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long to wait before checking the password: the spray delay of
    /// its address ([`spray_delay`]).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Checks `password` (slow: Argon2, in `memory`, without the store).
    pub fn check_password(self, password: &str, memory: &mut PasswordMemory) -> CheckedLogin {
        let user = users::verify_password(self.credentials.as_ref(), password, memory);
        CheckedLogin {
            attempt: self,
            user,
        }
    }

    /// Where the attempt came from, and its delay if it had one: the end of
    /// its audit row's detail.
    fn circumstances(&self) -> String {
        if self.delay.is_zero() {
            format!("from {}", self.address)
        } else {
            format!(
                "from {}, checked after a delay of {} ms: {} failed logins from that address \
                 within {} minutes",
                self.address,
                self.delay.as_millis(),
                self.address_failures,
                sessions::THROTTLE_WINDOW_SECS / 60
            )
        }
    }
}

/// Records how `login` ended in the audit log and, for a good password,
/// takes its reservation back, clears the pair's failures and opens a
/// session, all in one transaction. A wrong password stays counted.
pub fn conclude(
    store: &mut Store,
    login: CheckedLogin,
    now: i64,
) -> Result<LoginOutcome, SessionError> {
    let CheckedLogin { attempt, user } = login;
    let Some(user) = user else {
        let detail = format!("wrong user name or password, {}", attempt.circumstances());
        let actor = Actor::console(&attempt.name);
        let row = entry(&actor, &attempt.name, Outcome::Refused, detail);
        audit::record(store, &row, now)?;
        monitoring::login(LoginResult::WrongCredentials);
        return Ok(LoginOutcome::WrongCredentials);
    };
    let session = sessions::new_ids()?;
    store.write(|tx| {
        sessions::release_in(tx, &attempt.reservation)?;
        sessions::clear_in(tx, &attempt.pair_key)?;
        sessions::create_in(tx, &session, user.id, now)?;
        let detail = format!("new session, {}", attempt.circumstances());
        let actor = Actor::console_as(&user.name, user.role);
        audit::record_in(tx, &entry(&actor, &user.name, Outcome::Ok, detail), now)
    })?;
    monitoring::login(LoginResult::Ok);
    Ok(LoginOutcome::LoggedIn(session))
}

/// Takes back the reservation of an attempt whose password was never
/// checked, and audits why: it must not count against its pair.
pub fn abandon(
    store: &mut Store,
    attempt: LoginAttempt,
    why: NotChecked,
    now: i64,
) -> Result<(), StoreError> {
    let why = match why {
        NotChecked::Busy => "the console was busy checking other logins",
        NotChecked::ClientGone => "the browser went away first",
    };
    store.write(|tx| {
        sessions::release_in(tx, &attempt.reservation)?;
        let detail = format!(
            "not checked, {why}; not counted as a failure, {}",
            attempt.circumstances()
        );
        let actor = Actor::console(&attempt.name);
        audit::record_in(
            tx,
            &entry(&actor, &attempt.name, Outcome::Refused, detail),
            now,
        )
    })?;
    monitoring::login(LoginResult::NotChecked);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::{MAX_FAILURES, THROTTLE_WINDOW_SECS};
    use crate::testing::{NOW, TestStore, actor};

    const PASSWORD: &str = "correct horse battery";
    const BOB_PASSWORD: &str = "battery staple horse";
    const A: &str = "192.0.2.1";
    const B: &str = "198.51.100.7";

    fn with_users() -> TestStore {
        let mut t = TestStore::new();
        users::add(
            &mut t.store,
            &actor(),
            "alice",
            PASSWORD,
            users::Role::Admin,
            NOW,
        )
        .unwrap();
        users::add(
            &mut t.store,
            &actor(),
            "bob",
            BOB_PASSWORD,
            users::Role::Admin,
            NOW,
        )
        .unwrap();
        t
    }

    /// Reserves an attempt, or panics if the pair is throttled.
    fn reserve(t: &mut TestStore, name: &str, from: &str, at: i64) -> LoginAttempt {
        match begin(&mut t.store, name, Some(from), at).unwrap() {
            Begun::Reserved(attempt) => attempt,
            Begun::Throttled { .. } => panic!("{name} from {from} is throttled"),
        }
    }

    fn throttled(t: &mut TestStore, name: &str, from: &str, at: i64) -> bool {
        matches!(
            begin(&mut t.store, name, Some(from), at).unwrap(),
            Begun::Throttled { .. }
        )
    }

    fn check(attempt: LoginAttempt, password: &str) -> CheckedLogin {
        attempt.check_password(password, &mut PasswordMemory::default())
    }

    /// A whole login, as the console runs it (without the delay).
    fn login(t: &mut TestStore, name: &str, password: &str, from: &str, at: i64) -> Option<bool> {
        match begin(&mut t.store, name, Some(from), at).unwrap() {
            Begun::Throttled { .. } => None,
            Begun::Reserved(attempt) => Some(matches!(
                conclude(&mut t.store, check(attempt, password), at).unwrap(),
                LoginOutcome::LoggedIn(_)
            )),
        }
    }

    fn login_rows(t: &TestStore) -> Vec<(String, String, String)> {
        let filter = audit::Filter {
            action: Some("login".to_owned()),
            ..audit::Filter::default()
        };
        let mut rows: Vec<_> = audit::page(&t.store, &filter, 1000)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| (e.subject, e.result, e.detail))
            .collect();
        rows.reverse();
        rows
    }

    #[test]
    fn an_attempt_counts_before_its_password_is_checked() {
        let mut t = with_users();
        // Five attempts in flight at once, none checked yet: the sixth is
        // refused, as forty concurrent guesses would be after the fifth.
        let pending: Vec<_> = (0..MAX_FAILURES)
            .map(|_| reserve(&mut t, "alice", A, NOW))
            .collect();
        assert!(throttled(&mut t, "alice", A, NOW));
        for attempt in pending {
            let checked = check(attempt, "wrong horse battery");
            assert!(matches!(
                conclude(&mut t.store, checked, NOW).unwrap(),
                LoginOutcome::WrongCredentials
            ));
        }
        assert_eq!(
            login(&mut t, "alice", PASSWORD, A, NOW),
            None,
            "the right password is refused unchecked"
        );
        assert_eq!(
            login(&mut t, "alice", PASSWORD, A, NOW + THROTTLE_WINDOW_SECS),
            Some(true),
            "the window passed"
        );
    }

    #[test]
    fn the_limit_is_per_name_and_address_so_nobody_is_locked_out_by_name_or_address() {
        let mut t = with_users();
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                login(&mut t, "alice", "wrong horse battery", A, NOW),
                Some(false)
            );
        }
        let cases = [
            ("1. the same pair", "alice", PASSWORD, A, None),
            (
                "2. the same name elsewhere",
                "alice",
                PASSWORD,
                B,
                Some(true),
            ),
            (
                "3. another user, same address",
                "bob",
                BOB_PASSWORD,
                A,
                Some(true),
            ),
        ];
        for (case, name, password, from, expected) in cases {
            assert_eq!(login(&mut t, name, password, from, NOW), expected, "{case}");
        }
    }

    #[test]
    fn a_good_password_clears_its_pair_and_an_unchecked_attempt_does_not_count() {
        let mut t = with_users();
        for _ in 0..MAX_FAILURES - 1 {
            reserve(&mut t, "alice", A, NOW);
        }
        assert_eq!(login(&mut t, "alice", PASSWORD, A, NOW), Some(true));
        // Cleared: the pair has its whole allowance again.
        for _ in 0..MAX_FAILURES {
            let attempt = reserve(&mut t, "alice", A, NOW);
            abandon(&mut t.store, attempt, NotChecked::Busy, NOW).unwrap();
        }
        // Abandoned attempts were taken back: still not throttled.
        assert_eq!(login(&mut t, "alice", PASSWORD, A, NOW), Some(true));
        let rows = login_rows(&t);
        let not_checked = rows
            .iter()
            .filter(|(_, result, detail)| result == "refused" && detail.contains("not checked"))
            .count();
        assert_eq!(not_checked, MAX_FAILURES as usize);
        assert!(
            rows.iter().all(|(_, _, detail)| detail.contains(A)),
            "{rows:?}"
        );
    }

    #[test]
    fn spraying_slows_the_address_and_never_refuses_another_users_right_password() {
        let mut t = with_users();
        let delays: Vec<Duration> = (0..SPRAY_FREE_FAILURES + 8)
            .map(|i| reserve(&mut t, &format!("user{i}"), A, NOW).delay())
            .collect();
        let free = SPRAY_FREE_FAILURES as usize;
        assert!(delays[..free].iter().all(Duration::is_zero), "{delays:?}");
        assert!(
            delays[free..].windows(2).all(|w| w[0] <= w[1]),
            "growing: {delays:?}"
        );
        assert_eq!(delays[free], SPRAY_FIRST_DELAY);
        assert_eq!(*delays.last().unwrap(), SPRAY_MAX_DELAY, "capped");
        let bob = reserve(&mut t, "bob", A, NOW);
        assert_eq!(bob.delay(), SPRAY_MAX_DELAY, "slowed like the sprayer");
        assert!(matches!(
            conclude(&mut t.store, check(bob, BOB_PASSWORD), NOW).unwrap(),
            LoginOutcome::LoggedIn(_)
        ));
        assert!(
            reserve(&mut t, "alice", B, NOW).delay().is_zero(),
            "another address"
        );
        let (_, result, detail) = login_rows(&t).pop().unwrap();
        assert_eq!(result, "ok");
        assert!(detail.contains("delay of 5000 ms"), "{detail}");
    }

    #[test]
    fn the_spray_delay_doubles_from_its_first_step_up_to_its_cap() {
        let cases = [
            ("1. no failure", 0, Duration::ZERO),
            (
                "2. the last free one",
                SPRAY_FREE_FAILURES - 1,
                Duration::ZERO,
            ),
            ("3. first step", SPRAY_FREE_FAILURES, SPRAY_FIRST_DELAY),
            ("4. doubled", SPRAY_FREE_FAILURES + 1, SPRAY_FIRST_DELAY * 2),
            ("5. capped", SPRAY_FREE_FAILURES + 10, SPRAY_MAX_DELAY),
            ("6. no overflow", u32::MAX, SPRAY_MAX_DELAY),
        ];
        for (case, failures, expected) in cases {
            assert_eq!(spray_delay(failures), expected, "{case}");
        }
    }

    #[test]
    fn every_attempt_is_audited_with_its_address_and_an_overlong_name_is_cut() {
        let mut t = with_users();
        assert_eq!(login(&mut t, " alice ", PASSWORD, A, NOW), Some(true));
        for _ in 0..MAX_FAILURES {
            login(&mut t, "alice", "wrong horse battery", A, NOW);
        }
        assert_eq!(login(&mut t, "alice", PASSWORD, A, NOW), None);
        let long = "x".repeat(100_000);
        let attempt = reserve(&mut t, &long, B, NOW);
        assert_eq!(attempt.name().chars().count(), users::MAX_NAME_CHARS + 1);
        abandon(&mut t.store, attempt, NotChecked::ClientGone, NOW).unwrap();

        let rows = login_rows(&t);
        let results: Vec<&str> = rows.iter().map(|(_, r, _)| r.as_str()).collect();
        assert_eq!(
            results,
            [
                "ok",
                "refused",
                "refused",
                "refused",
                "refused",
                "refused",
                "throttled",
                "refused"
            ]
        );
        assert_eq!(rows[0].0, "alice");
        for (_, _, detail) in &rows[..7] {
            assert!(detail.contains("from 192.0.2.1"), "{detail}");
        }
        assert!(rows[7].2.contains("browser went away"), "{}", rows[7].2);
        assert!(rows[7].0.len() < 300, "the name is cut in the log");
    }
}
