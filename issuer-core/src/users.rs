//! The web console's users: created and removed with the CLI, each with a
//! password stored only as an Argon2id hash.

use std::sync::OnceLock;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ren3_shared::{RandomSourceError, binary};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::error::{Coded, ErrorKind};
use crate::rfc3339;
use crate::store::{self, Db, Store, StoreError};

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted: Argon2 takes any length, but a
/// megabyte-long "password" is an attack on the hashing time.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// The longest user name: a login with a longer one cannot succeed.
pub const MAX_NAME_CHARS: usize = 64;

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
    store.read(|tx| credentials_in(tx, name))
}

/// [`credentials`] inside the caller's transaction: a login reads them in
/// the transaction that reserves its attempt.
pub(crate) fn credentials_in(tx: &Db<'_>, name: &str) -> Result<Option<Credentials>, StoreError> {
    Ok(store::user_by_name(tx, name)?.map(|row| Credentials {
        user: User {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
        },
        password_hash: row.password_hash,
    }))
}

/// Argon2's working memory (19 MiB for the hashes this module makes), kept
/// and reused from one password check to the next.
///
/// Argon2's own `verify_password` allocates it afresh for every check, with
/// the 64-byte alignment of its blocks; glibc's allocator seldom reuses such
/// a freed block for the next one, so a console grew by about 19 MiB a login
/// (400 MiB after 40 logins, one at a time). Whoever checks passwords keeps
/// one of these per check that may run at once, so the memory is allocated
/// once and bounded.
#[derive(Default)]
pub struct PasswordMemory {
    blocks: Vec<Block>,
}

impl std::fmt::Debug for PasswordMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordMemory({} blocks)", self.blocks.len())
    }
}

impl PasswordMemory {
    /// The first `count` blocks, growing the memory if it has fewer.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks = vec![Block::default(); count];
        }
        &mut self.blocks[..count]
    }
}

/// The user if `password` is theirs, checked in `memory`. An unknown user
/// costs the same hash as a known one, so timing does not tell which names
/// exist.
pub fn verify_password(
    credentials: Option<&Credentials>,
    password: &str,
    memory: &mut PasswordMemory,
) -> Option<User> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return None;
    }
    let stored = match credentials {
        Some(c) => Some(c.password_hash.as_str()),
        None => DECOY
            .get_or_init(|| hash_password("decoy password, never valid").ok())
            .as_deref(),
    }?;
    let matches = hash_matches(stored, password.as_bytes(), memory);
    match credentials {
        Some(c) if matches => Some(c.user.clone()),
        _ => None,
    }
}

/// What `PasswordVerifier::verify_password` does for Argon2 (the stored
/// hash's algorithm, version, parameters and salt; the constant-time
/// comparison of `password_hash::Output`), with the working memory given
/// instead of allocated: `Argon2::hash_password_into_with_memory`, the
/// crate's documented way to do that.
fn hash_matches(stored: &str, password: &[u8], memory: &mut PasswordMemory) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm),
        hash.version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let mut salt_bytes = [0; Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = memory.blocks(params.block_count());
    let mut computed = vec![0; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut computed, blocks)
        .is_ok()
        && Output::new(&computed).is_ok_and(|computed| computed == expected)
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
        let memory = &mut PasswordMemory::default();
        assert_eq!(
            verify_password(Some(&creds), PASSWORD, memory).map(|u| u.name),
            Some("alice".to_owned())
        );
        assert_eq!(
            verify_password(Some(&creds), "wrong horse battery", memory),
            None
        );
        assert_eq!(verify_password(None, PASSWORD, memory), None);
    }

    #[test]
    fn a_password_check_in_reused_memory_agrees_with_argon2s_own_verify() {
        use argon2::password_hash::PasswordVerifier as _;
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let made_with = |algorithm, version, m_cost, t_cost, lanes| {
            let params = Params::new(m_cost, t_cost, lanes, None).unwrap();
            Argon2::new(algorithm, version, params)
                .hash_password(PASSWORD.as_bytes(), &salt)
                .unwrap()
                .to_string()
        };
        let ours = hash_password(PASSWORD).unwrap();
        let cases = [
            ("1. this module's own hash", ours.clone()),
            (
                "2. Argon2i, 3 lanes",
                made_with(Algorithm::Argon2i, Version::V0x13, 64, 2, 3),
            ),
            (
                "3. Argon2d, version 0x10",
                made_with(Algorithm::Argon2d, Version::V0x10, 32, 1, 1),
            ),
            (
                "4. more memory than case 2",
                made_with(Algorithm::Argon2id, Version::V0x13, 256, 1, 2),
            ),
            (
                "5. less memory again",
                made_with(Algorithm::Argon2id, Version::V0x13, 8, 1, 1),
            ),
            ("6. no output", ours.rsplit_once('$').unwrap().0.to_owned()),
            (
                "7. a flipped output",
                ours.replace(&ours[ours.len() - 4..], "AAAA"),
            ),
            ("8. an unknown parameter", ours.replace("p=1", "p=1,x=2")),
            ("9. not a hash", "$argon2id$garbage".to_owned()),
        ];
        let memory = &mut PasswordMemory::default();
        for (case, stored) in cases {
            for password in [PASSWORD, "wrong horse battery", ""] {
                let theirs = PasswordHash::new(&stored).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                });
                assert_eq!(
                    hash_matches(&stored, password.as_bytes(), memory),
                    theirs,
                    "{case}, password {password:?}"
                );
            }
        }
        assert!(
            hash_matches(&ours, PASSWORD.as_bytes(), memory),
            "the right one"
        );
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
