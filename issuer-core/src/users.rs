//! The web console's users: created and removed with the CLI, each with a
//! password stored only as an Argon2id hash.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use ren3_shared::{RandomSourceError, binary};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::error::{Coded, ErrorKind};
use crate::rfc3339;
use crate::store::{self, Store, StoreError};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted: Argon2 takes any length, but a
/// megabyte-long "password" is an attack on the hashing time.
pub const MAX_PASSWORD_CHARS: usize = 1024;
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "`{0}` is not a valid user name: use 1 to {MAX_NAME_CHARS} of a-z, A-Z, 0-9, `.`, `_`, \
         `-`, `@`"
    )]
    Name(String),
    #[error(
        "the password has {0} characters; use at least {MIN_PASSWORD_CHARS} (a passphrase of \
         a few words is easiest)"
    )]
    PasswordTooShort(usize),
    #[error("the password has more than {MAX_PASSWORD_CHARS} characters")]
    PasswordTooLong,
    #[error("there is already a user `{0}`; remove it first to replace its password")]
    Exists(String),
    #[error("there is no user `{0}`; `ren3-issuer user list` shows the users")]
    Unknown(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for UserError {
    fn code(&self) -> &'static str {
        match self {
            UserError::Name(_) => "user_name_invalid",
            UserError::PasswordTooShort(_) => "password_too_short",
            UserError::PasswordTooLong => "password_too_long",
            UserError::Exists(_) => "user_exists",
            UserError::Unknown(_) => "user_unknown",
            UserError::Hash(_) => "password_hash_failed",
            UserError::Random(_) => "random_source_failed",
            UserError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            UserError::Unknown(_) => ErrorKind::NotFound,
            UserError::Hash(_) | UserError::Random(_) => ErrorKind::Internal,
            UserError::Store(e) => e.kind(),
            _ => ErrorKind::Refused,
        }
    }
}

/// A console user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
}

/// A user with the stored hash, to check a password against.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    password_hash: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

fn hash_password(password: &str) -> Result<String, UserError> {
    let salt = SaltString::encode_b64(&binary::os_random::<16>()?)
        .map_err(|e| UserError::Hash(e.to_string()))?;
    // Argon2::default() is Argon2id, version 0x13, with the parameters
    // OWASP recommends (19 MiB, 2 passes, 1 lane).
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Creates a user. The password is hashed with Argon2id; it is not kept.
pub fn add(
    store: &mut Store,
    actor: &Actor,
    name: &str,
    password: &str,
    now: i64,
) -> Result<User, UserError> {
    if !valid_name(name) {
        return Err(UserError::Name(name.escape_debug().to_string()));
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(UserError::PasswordTooShort(chars));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(UserError::PasswordTooLong);
    }
    let password_hash = hash_password(password)?;
    store.write(|tx| {
        if store::user_exists(tx, name)? {
            return Err(UserError::Exists(name.to_owned()));
        }
        let id = store::insert_user(tx, name, &password_hash, now)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::UserAdd,
                subject: name.to_owned(),
                outcome: Outcome::Ok,
                detail: "console user created".to_owned(),
            },
            now,
        )?;
        Ok(User {
            id,
            name: name.to_owned(),
            created_at: now,
        })
    })
}

/// Removes a user and ends all their sessions.
pub fn remove(store: &mut Store, actor: &Actor, name: &str, now: i64) -> Result<(), UserError> {
    store.write(|tx| {
        // Sessions go with the user (ON DELETE CASCADE).
        if !store::delete_user(tx, name)? {
            return Err(UserError::Unknown(name.to_owned()));
        }
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::UserRemove,
                subject: name.to_owned(),
                outcome: Outcome::Ok,
                detail: "console user removed; their sessions ended".to_owned(),
            },
            now,
        )?;
        Ok(())
    })
}

/// All users, by name.
pub fn list(store: &Store) -> Result<Vec<User>, StoreError> {
    Ok(store
        .read(|db| store::users(db))?
        .into_iter()
        .map(|(id, name, created_at)| User {
            id,
            name,
            created_at,
        })
        .collect())
}

/// The stored credentials of `name`, if there is such a user. Separate
/// from [`verify_password`] so that the slow hash runs without the store.
pub fn credentials(store: &Store, name: &str) -> Result<Option<Credentials>, StoreError> {
    Ok(store
        .read(|conn| store::user_by_name(conn, name))?
        .map(|row| Credentials {
            user: User {
                id: row.id,
                name: row.name,
                created_at: row.created_at,
            },
            password_hash: row.password_hash,
        }))
}

/// The user if `password` is theirs. An unknown user costs the same hash
/// as a known one, so timing does not tell which names exist.
pub fn verify_password(credentials: Option<&Credentials>, password: &str) -> Option<User> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return None;
    }
    let stored = match credentials {
        Some(c) => Some(c.password_hash.clone()),
        None => DECOY
            .get_or_init(|| hash_password("decoy password, never valid").ok())
            .clone(),
    }?;
    let hash = PasswordHash::new(&stored).ok()?;
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok();
    match credentials {
        Some(c) if matches => Some(c.user.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NOW, TestStore, actor};

    const PASSWORD: &str = "correct horse battery";

    #[test]
    fn add_stores_an_argon2id_hash_and_never_the_password() {
        let mut t = TestStore::new();
        add(&mut t.store, &actor(), "alice", PASSWORD, NOW).unwrap();
        let creds = credentials(&t.store, "alice").unwrap().unwrap();
        assert!(creds.password_hash.starts_with("$argon2id$v=19$"));
        assert!(!creds.password_hash.contains(PASSWORD));
        assert_eq!(
            verify_password(Some(&creds), PASSWORD).map(|u| u.name),
            Some("alice".to_owned())
        );
        assert_eq!(verify_password(Some(&creds), "wrong horse battery"), None);
        assert_eq!(verify_password(None, PASSWORD), None);
    }

    #[test]
    fn add_refuses_bad_names_short_passwords_and_duplicates() {
        let mut t = TestStore::new();
        add(&mut t.store, &actor(), "alice", PASSWORD, NOW).unwrap();
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            fn(&UserError) -> bool,
        );
        let cases: [Case; 4] = [
            ("1. empty name", "", PASSWORD, |e| {
                matches!(e, UserError::Name(_))
            }),
            ("2. name with a space", "a b", PASSWORD, |e| {
                matches!(e, UserError::Name(_))
            }),
            ("3. eleven characters", "bob", "12345678901", |e| {
                matches!(e, UserError::PasswordTooShort(11))
            }),
            ("4. existing user", "alice", PASSWORD, |e| {
                matches!(e, UserError::Exists(_))
            }),
        ];
        for (name, user, password, expected) in cases {
            let err = add(&mut t.store, &actor(), user, password, NOW).unwrap_err();
            assert!(expected(&err), "{name}: {err}");
        }
        assert_eq!(list(&t.store).unwrap().len(), 1);
    }

    #[test]
    fn remove_deletes_the_user_and_refuses_unknown_names() {
        let mut t = TestStore::new();
        add(&mut t.store, &actor(), "alice", PASSWORD, NOW).unwrap();
        remove(&mut t.store, &actor(), "alice", NOW).unwrap();
        assert!(list(&t.store).unwrap().is_empty());
        assert!(matches!(
            remove(&mut t.store, &actor(), "alice", NOW),
            Err(UserError::Unknown(_))
        ));
    }
}
