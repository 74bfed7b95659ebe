//! The audit log: every change to licenses, devices and users, every
//! issuance and every console login attempt, whoever made it (the console
//! or the CLI): who, what, when, and the result.
//!
//! Rows name things by key hint, fingerprint, device id or request id.
//! **A password, a token or a license key never reaches an audit row**: the
//! callers pass only those, and refusal messages of the library name keys
//! by their hint.
//!
//! Each row is chained to the one before it by a hash (`chain`), so that
//! a change made to the log outside the tool shows.

pub mod chain;

use std::fmt;
use std::ops::ControlFlow;

use crate::store::Db;

use crate::error::Coded;
use crate::store::{self, Store, StoreError};
use crate::users::Role;

/// Who made a change: `console:<user> (<role>)`, `console:<user>` for a
/// login attempt (no role acts yet), or `cli:<OS user>` (whoever holds the
/// store file can do anything, so the CLI has no role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// Someone trying to log in as `user`: not yet acting with a role.
    pub fn console(user: &str) -> Self {
        Self(format!("console:{user}"))
    }

    /// A signed-in console user, named with the role they acted with, so
    /// that the log says what they were allowed to do at the time. The
    /// audit page's actor filter matches a part of it, so `alice` still
    /// finds all of alice's rows.
    pub fn console_as(user: &str, role: Role) -> Self {
        Self(format!("console:{user} ({role})"))
    }

    /// The person at the terminal, as the environment names them.
    pub fn cli() -> Self {
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        Self(format!("cli:{user}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was done; the stable names the audit page filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    Logout,
    LicenseCreate,
    LicenseUpdate,
    LicenseStatus,
    DeviceAdd,
    Issue,
    UserAdd,
    UserRemove,
    /// A user's role set (`user role`).
    UserRole,
    /// A user's password replaced (`user passwd`).
    UserPassword,
    /// A seat freed with the installation's release receipt.
    DeviceRelease,
    /// A seat freed by the vendor without a receipt (a lost machine).
    DeviceForceRelease,
    KeyRotate,
    KeyRetire,
    KeyEncrypt,
    /// `init` made a new root key in its root directory.
    RootCreate,
    /// `init` took the root key already in its root directory.
    RootAdopt,
    /// A certificate installed for a signing key.
    KeyCertify,
    /// A revocation list installed.
    RevocationsInstall,
    /// The store replaced by a backup (`restore`); recorded in the
    /// restored store.
    StoreRestore,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::Login,
        Action::Logout,
        Action::LicenseCreate,
        Action::LicenseUpdate,
        Action::LicenseStatus,
        Action::DeviceAdd,
        Action::Issue,
        Action::UserAdd,
        Action::UserRemove,
        Action::UserRole,
        Action::UserPassword,
        Action::DeviceRelease,
        Action::DeviceForceRelease,
        Action::KeyRotate,
        Action::KeyRetire,
        Action::KeyEncrypt,
        Action::RootCreate,
        Action::RootAdopt,
        Action::KeyCertify,
        Action::RevocationsInstall,
        Action::StoreRestore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::LicenseCreate => "license.create",
            Action::LicenseUpdate => "license.update",
            Action::LicenseStatus => "license.status",
            Action::DeviceAdd => "device.add",
            Action::Issue => "issue",
            Action::UserAdd => "user.add",
            Action::UserRemove => "user.remove",
            Action::UserRole => "user.role",
            Action::UserPassword => "user.passwd",
            Action::DeviceRelease => "device.release",
            Action::DeviceForceRelease => "device.force-release",
            Action::KeyRotate => "key.rotate",
            Action::KeyRetire => "key.retire",
            Action::KeyEncrypt => "key.encrypt",
            Action::RootCreate => "root.create",
            Action::RootAdopt => "root.adopt",
            Action::KeyCertify => "key.certify",
            Action::RevocationsInstall => "revocations.install",
            Action::StoreRestore => "store.restore",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A rule refused it; nothing changed.
    Refused,
    /// Refused before any check: too many failed logins.
    Throttled,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::Refused, Outcome::Throttled];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Throttled => "throttled",
        }
    }
}

/// A row to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub actor: &'a Actor,
    pub action: Action,
    /// What it was done to: a key hint, a device id, a user name.
    pub subject: String,
    pub outcome: Outcome,
    /// What changed, or why it was refused.
    pub detail: String,
}

/// A row of the log.
pub use crate::store::AuditEntry as Entry;

/// Appends a row inside the caller's transaction.
pub fn record_in(conn: &Db<'_>, entry: &NewEntry<'_>, now: i64) -> Result<(), StoreError> {
    store::insert_audit(
        conn,
        &store::NewAuditRow {
            actor: entry.actor.as_str(),
            action: entry.action.as_str(),
            subject: &entry.subject,
            result: entry.outcome.as_str(),
            detail: &entry.detail,
        },
        now,
    )
}

/// Appends a row in a transaction of its own.
pub fn record(store: &mut Store, entry: &NewEntry<'_>, now: i64) -> Result<(), StoreError> {
    store.write(|tx| record_in(tx, entry, now))
}

/// The detail of a refusal: `code: message`.
pub(crate) fn coded(error: &impl Coded) -> String {
    format!("{}: {error}", error.code())
}

/// Refuse and record: returns `result` as it is, after recording it in the
/// audit log if it is a refusal (its transaction rolled back by then), with
/// `subject()` and `code: message` as the detail, and counting it in the
/// metrics ([`crate::monitoring::REFUSALS`]). Every change of the core
/// that can be refused goes through here. The refusal is what the caller
/// reports; a failure to audit it is only logged.
pub(crate) fn audited<T, E: Coded>(
    store: &mut Store,
    actor: &Actor,
    action: Action,
    subject: impl FnOnce() -> String,
    now: i64,
    result: Result<T, E>,
) -> Result<T, E> {
    if let Err(e) = &result {
        crate::monitoring::refused(action, e.code());
        let entry = NewEntry {
            actor,
            action,
            subject: subject(),
            outcome: Outcome::Refused,
            detail: coded(e),
        };
        if let Err(e) = record(store, &entry, now) {
            tracing::warn!("cannot audit a refused {}: {e}", action.as_str());
        }
    }
    result
}

/// Which rows to show; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Part of the actor, ignoring case.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    /// Part of the subject or the detail, ignoring case.
    pub text: Option<String>,
    /// Only rows older than this id (the next page).
    pub before: Option<i64>,
    /// Only rows at or after this time (Unix seconds).
    pub since: Option<i64>,
}

/// A page of rows, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// The `before` of the next page, if there is one.
    pub next_before: Option<i64>,
}

pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A page of at most `limit` rows matching `filter`, newest first.
pub fn page(store: &Store, filter: &Filter, limit: u32) -> Result<Page, StoreError> {
    let actor = filter.actor.as_deref().map(like_pattern);
    let text = filter.text.as_deref().map(like_pattern);
    let query = store::AuditQuery {
        actor_pattern: actor.as_deref(),
        action: filter.action.as_deref(),
        result: filter.result.as_deref(),
        text_pattern: text.as_deref(),
        before: filter.before,
        since: filter.since,
        limit: limit.saturating_add(1),
    };
    let mut entries = store.read(|conn| store::audit_entries(conn, &query))?;
    let next_before = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page {
        entries,
        next_before,
    })
}

/// Calls `each` with every row, oldest first: an export.
pub fn oldest_first(store: &Store, mut each: impl FnMut(Entry)) -> Result<(), StoreError> {
    let flow = store.read(|conn| {
        store::visit_audit_rows(conn, |entry| {
            each(entry);
            ControlFlow::<()>::Continue(())
        })
    })?;
    debug_assert!(flow.is_continue(), "`each` never breaks");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW, TestStore};

    fn entry<'a>(
        actor: &'a Actor,
        action: Action,
        outcome: Outcome,
        subject: &str,
    ) -> NewEntry<'a> {
        NewEntry {
            actor,
            action,
            subject: subject.to_owned(),
            outcome,
            detail: format!("detail of {subject}"),
        }
    }

    /// Starts from an empty log: `init` audited the root and the first key.
    fn empty_the_log(t: &mut TestStore) {
        assert_eq!(
            page(&t.store, &Filter::default(), 10)
                .unwrap()
                .entries
                .len(),
            3,
            "root, certificate, revocation list"
        );
        t.store
            .write(|tx| {
                tx.execute("DELETE FROM audit", [])
                    .map_err(StoreError::from)
            })
            .unwrap();
    }

    #[test]
    fn page_filters_by_actor_action_result_and_text_newest_first() {
        let mut t = TestStore::new();
        empty_the_log(&mut t);
        let alice = Actor::console("alice");
        let cli = Actor("cli:ops".to_owned());
        let rows = [
            entry(&alice, Action::Login, Outcome::Ok, "alice"),
            entry(&cli, Action::LicenseCreate, Outcome::Ok, "REN3K1-AAAAA-…"),
            entry(&alice, Action::Issue, Outcome::Refused, "REN3D1-BBBBB"),
            entry(&alice, Action::Issue, Outcome::Ok, "REN3D1-CCCCC"),
        ];
        for (i, row) in rows.iter().enumerate() {
            record(&mut t.store, row, NOW + i as i64).unwrap();
        }
        let subjects = |filter: Filter| -> Vec<String> {
            page(&t.store, &filter, 10)
                .unwrap()
                .entries
                .into_iter()
                .map(|e| e.subject)
                .collect()
        };
        let cases: [(&str, Filter, &[&str]); 5] = [
            (
                "1. everything, newest first",
                Filter::default(),
                &["REN3D1-CCCCC", "REN3D1-BBBBB", "REN3K1-AAAAA-…", "alice"],
            ),
            (
                "2. by actor, ignoring case",
                Filter {
                    actor: Some("CLI".into()),
                    ..Filter::default()
                },
                &["REN3K1-AAAAA-…"],
            ),
            (
                "3. by action and result",
                Filter {
                    action: Some("issue".into()),
                    result: Some("refused".into()),
                    ..Filter::default()
                },
                &["REN3D1-BBBBB"],
            ),
            (
                "4. by text in the detail",
                Filter {
                    text: Some("of alice".into()),
                    ..Filter::default()
                },
                &["alice"],
            ),
            (
                "5. a LIKE wildcard is taken literally",
                Filter {
                    text: Some("%".into()),
                    ..Filter::default()
                },
                &[],
            ),
        ];
        for (name, filter, expected) in cases {
            assert_eq!(subjects(filter), expected, "{name}");
        }
    }

    #[test]
    fn page_links_to_the_next_page_only_when_there_is_one() {
        let mut t = TestStore::new();
        empty_the_log(&mut t);
        let alice = Actor::console("alice");
        for i in 0..5 {
            record(
                &mut t.store,
                &entry(&alice, Action::Login, Outcome::Ok, &format!("s{i}")),
                NOW,
            )
            .unwrap();
        }
        let first = page(&t.store, &Filter::default(), 3).unwrap();
        assert_eq!(first.entries.len(), 3);
        let before = first.next_before.unwrap();
        let second = page(
            &t.store,
            &Filter {
                before: Some(before),
                ..Filter::default()
            },
            3,
        )
        .unwrap();
        let subjects: Vec<_> = second.entries.iter().map(|e| e.subject.as_str()).collect();
        assert_eq!(subjects, ["s1", "s0"]);
        assert_eq!(second.next_before, None);
    }

    /// A deep page seeks to its bound: the planner is told the id range,
    /// rather than walking every newer row to find it.
    #[test]
    fn a_page_seeks_to_its_bound() {
        let t = TestStore::new();
        let query = store::AuditQuery {
            actor_pattern: None,
            action: None,
            result: None,
            text_pattern: None,
            before: Some(1_000),
            since: None,
            limit: 26,
        };
        let steps = t
            .store
            .read(|conn| store::audit_page_plan(conn, &query))
            .unwrap();
        assert!(
            steps
                .iter()
                .any(|s| s.contains("SEARCH audit USING INTEGER PRIMARY KEY (rowid<?)")),
            "{steps:?}"
        );
    }
}
