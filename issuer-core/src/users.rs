//! The web console's users: created and removed with the CLI, each with a
//! password stored only as an Argon2id hash, a role, and the password
//! rules a new password must meet.
//!
//! One piece, at about the usual size: a user's role, password rules and
//! password check are read and written together, in one transaction each.

use std::sync::OnceLock;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ren3_shared::{RandomSourceError, binary};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::error::{Coded, ErrorKind};
use crate::rfc3339;
use crate::store::{self, Db, Store, StoreError};

/// The shortest password accepted (OWASP ASVS V2.1.1).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted: Argon2 takes any length, but a
/// megabyte-long "password" is an attack on the hashing time.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// The longest user name: a login with a longer one cannot succeed.
pub const MAX_NAME_CHARS: usize = 64;
/// The lowest zxcvbn score accepted, of 0 to 4: 3 means about 10^10
/// guesses or more, out of reach of an online attack and costly offline
/// against Argon2id.
pub const MIN_PASSWORD_SCORE: u8 = 3;
/// zxcvbn's running time grows quickly with the length, so it judges the
/// first this many characters (its authors' own advice); any password that
/// long and strong at the start is strong.
const SCORED_CHARS: usize = 100;

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
    #[error("the password has more than {MAX_PASSWORD_CHARS} characters; use a shorter passphrase")]
    PasswordTooLong,
    #[error("the password is only spaces; use a passphrase of a few uncommon words")]
    PasswordBlank,
    #[error(
        "the password is too easy to guess (strength {score} of 4, {MIN_PASSWORD_SCORE} needed). \
         {feedback}Use a passphrase of four or more uncommon words, unrelated to the user name"
    )]
    PasswordWeak {
        score: u8,
        /// zxcvbn's own warning and suggestions, each a sentence, or empty.
        feedback: String,
    },
    #[error("`{0}` is not a role; use admin, issuer or viewer")]
    Role(String),
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
            UserError::PasswordBlank => "password_blank",
            UserError::PasswordWeak { .. } => "password_weak",
            UserError::Role(_) => "role_invalid",
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

/// What a console user may do. Each role may do everything the ones
/// below it may (`Viewer < Issuer < Admin`), so one comparison answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads every page; changes nothing.
    Viewer,
    /// Licenses, devices, issuing, releasing seats (also by force).
    Issuer,
    /// Everything: also the signing keys.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Issuer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Issuer => "issuer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }

    /// The role a stored column names. `NULL` is a user from before roles:
    /// `admin`, what every user could do then. The column's CHECK allows
    /// nothing else; anything else would read as the least, `viewer`.
    pub(crate) fn stored(column: Option<&str>) -> Role {
        match column {
            None => Role::Admin,
            Some(name) => name.parse().unwrap_or(Role::Viewer),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UserError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| UserError::Role(name.escape_debug().to_string()))
    }
}

/// A console user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The role came with the migration that added roles (`admin`), and no
    /// one has set it since: the console warns at start-up.
    pub role_from_migration: bool,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
}

impl User {
    fn from_row(id: i64, name: String, created_at: i64, role: Option<&str>) -> Self {
        User {
            id,
            name,
            role: Role::stored(role),
            role_from_migration: role.is_none(),
            created_at,
        }
    }
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

/// Whether `password` may be `name`'s new password, after OWASP ASVS
/// V2.1: at least 12 characters, not only spaces, and not easy to guess by
/// zxcvbn's estimate (common passwords, words, keyboard patterns,
/// repeats, and the user's own name), with no composition rules. A refusal
/// carries zxcvbn's advice. Passwords set before this check keep working:
/// it runs when a password is set, never at login.
pub fn check_password(name: &str, password: &str) -> Result<(), UserError> {
    let chars = password.chars().count();
    if chars > MAX_PASSWORD_CHARS {
        return Err(UserError::PasswordTooLong);
    }
    if password.chars().all(char::is_whitespace) && chars > 0 {
        return Err(UserError::PasswordBlank);
    }
    if chars < MIN_PASSWORD_CHARS {
        return Err(UserError::PasswordTooShort(chars));
    }
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    // zxcvbn puts a floor of about 10^8 guesses under any password of
    // three parts, so a separator lifts two weak words (`alice-password`)
    // to score 3; guessing tools try separators between words for free, so
    // the password is also judged without them, and the weaker counts.
    let joined: String = scored.chars().filter(|c| c.is_alphanumeric()).collect();
    let estimate = [scored.as_str(), joined.as_str()]
        .into_iter()
        .filter(|text| !text.is_empty())
        .map(|text| zxcvbn::zxcvbn(text, &[name]))
        .min_by_key(|estimate| u8::from(estimate.score()))
        .ok_or(UserError::PasswordBlank)?;
    let score = u8::from(estimate.score());
    if score >= MIN_PASSWORD_SCORE {
        return Ok(());
    }
    let feedback = estimate.feedback().map_or_else(String::new, |feedback| {
        feedback
            .warning()
            .map(|warning| warning.to_string())
            .into_iter()
            .chain(feedback.suggestions().iter().map(ToString::to_string))
            .filter(|sentence| !sentence.is_empty())
            .map(|sentence| format!("{}. ", sentence.trim_end_matches('.')))
            .collect()
    });
    Err(UserError::PasswordWeak { score, feedback })
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

/// Creates a user with `role`. The password must pass [`check_password`];
/// it is hashed with Argon2id and not kept.
pub fn add(
    store: &mut Store,
    actor: &Actor,
    name: &str,
    password: &str,
    role: Role,
    now: i64,
) -> Result<User, UserError> {
    if !valid_name(name) {
        return Err(UserError::Name(name.escape_debug().to_string()));
    }
    check_password(name, password)?;
    let password_hash = hash_password(password)?;
    store.write(|tx| {
        if store::user_exists(tx, name)? {
            return Err(UserError::Exists(name.to_owned()));
        }
        let id = store::insert_user(tx, name, &password_hash, role.as_str(), now)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::UserAdd,
                subject: name.to_owned(),
                outcome: Outcome::Ok,
                detail: format!("console user created with role {role}"),
            },
            now,
        )?;
        Ok(User {
            id,
            name: name.to_owned(),
            role,
            role_from_migration: false,
            created_at: now,
        })
    })
}

/// Sets the role of `name`. It applies to their next request: a session
/// reads its user's role each time.
pub fn set_role(
    store: &mut Store,
    actor: &Actor,
    name: &str,
    role: Role,
    now: i64,
) -> Result<(), UserError> {
    store.write(|tx| {
        let before = store::user_by_name(tx, name)?
            .ok_or_else(|| UserError::Unknown(name.to_owned()))?
            .role;
        store::set_user_role(tx, name, role.as_str())?;
        let was = match before.as_deref() {
            None => "admin, from the migration".to_owned(),
            Some(role) => role.to_owned(),
        };
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::UserRole,
                subject: name.to_owned(),
                outcome: Outcome::Ok,
                detail: format!("role set to {role} (was {was})"),
            },
            now,
        )?;
        Ok(())
    })
}

/// Replaces the password of `name` (it must pass [`check_password`]) and
/// ends their sessions, so whoever knew the old one is signed out.
pub fn set_password(
    store: &mut Store,
    actor: &Actor,
    name: &str,
    password: &str,
    now: i64,
) -> Result<(), UserError> {
    check_password(name, password)?;
    let password_hash = hash_password(password)?;
    store.write(|tx| {
        if !store::set_user_password(tx, name, &password_hash)? {
            return Err(UserError::Unknown(name.to_owned()));
        }
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::UserPassword,
                subject: name.to_owned(),
                outcome: Outcome::Ok,
                detail: "password replaced; their sessions ended".to_owned(),
            },
            now,
        )?;
        Ok(())
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
        .map(|row| User::from_row(row.id, row.name, row.created_at, row.role.as_deref()))
        .collect())
}

/// The names of the users whose role is still the `admin` the roles'
/// migration gave them: the console warns at start-up until each has a
/// role someone chose (`user role`).
pub fn roles_from_migration(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(list(store)?
        .into_iter()
        .filter(|user| user.role_from_migration)
        .map(|user| user.name)
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
        user: User::from_row(row.id, row.name, row.created_at, row.role.as_deref()),
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
        add(&mut t.store, &actor(), "alice", PASSWORD, Role::Admin, NOW).unwrap();
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
        add(&mut t.store, &actor(), "alice", PASSWORD, Role::Admin, NOW).unwrap();
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
            let err = add(&mut t.store, &actor(), user, password, Role::Viewer, NOW).unwrap_err();
            assert!(expected(&err), "{name}: {err}");
        }
        assert_eq!(list(&t.store).unwrap().len(), 1);
    }

    #[test]
    fn remove_deletes_the_user_and_refuses_unknown_names() {
        let mut t = TestStore::new();
        add(&mut t.store, &actor(), "alice", PASSWORD, Role::Admin, NOW).unwrap();
        remove(&mut t.store, &actor(), "alice", NOW).unwrap();
        assert!(list(&t.store).unwrap().is_empty());
        assert!(matches!(
            remove(&mut t.store, &actor(), "alice", NOW),
            Err(UserError::Unknown(_))
        ));
    }

    /// `subject: detail` of each audit row of `action`, newest first.
    fn details(t: &TestStore, action: &str) -> Vec<String> {
        let filter = crate::audit::Filter {
            action: Some(action.into()),
            ..crate::audit::Filter::default()
        };
        crate::audit::page(&t.store, &filter, 100)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| format!("{}: {}", e.subject, e.detail))
            .collect()
    }

    /// OWASP ASVS V2.1 through zxcvbn: the table of what `user add` and
    /// `user passwd` refuse, and what they take.
    #[test]
    fn weak_passwords_are_refused_with_advice_and_passphrases_pass() {
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>);
        let long_weak = "a".repeat(MAX_PASSWORD_CHARS);
        let too_long = "a".repeat(MAX_PASSWORD_CHARS + 1);
        let cases: [Case; 15] = [
            (
                "1. twelve spaces",
                "alice",
                "            ",
                Some("password_blank"),
            ),
            (
                "2. spaces and a tab",
                "alice",
                "     \t       ",
                Some("password_blank"),
            ),
            ("3. empty", "alice", "", Some("password_too_short")),
            (
                "4. eleven characters",
                "alice",
                "x7#Kq!2pLm9",
                Some("password_too_short"),
            ),
            (
                "5. twelve a",
                "alice",
                "aaaaaaaaaaaa",
                Some("password_weak"),
            ),
            (
                "6. password1234",
                "alice",
                "password1234",
                Some("password_weak"),
            ),
            (
                "7. a keyboard walk",
                "alice",
                "qwertyuiop123",
                Some("password_weak"),
            ),
            (
                "8. the user's name",
                "alice",
                "alice-password",
                Some("password_weak"),
            ),
            (
                "9. the name and a year",
                "margarethe",
                "margarethe2024!",
                Some("password_weak"),
            ),
            (
                "10. a long repeat",
                "alice",
                &long_weak,
                Some("password_weak"),
            ),
            (
                "11. too long",
                "alice",
                &too_long,
                Some("password_too_long"),
            ),
            (
                "12. two words and a separator",
                "alice",
                "password-password",
                Some("password_weak"),
            ),
            ("13. a passphrase", "alice", "correct horse battery", None),
            ("14. another", "bob", "plum kettle orbit sonnet", None),
            ("15. random symbols", "alice", "}{:>?<~|]-`^", None),
        ];
        for (name, user, password, expected) in cases {
            let got = check_password(user, password).err();
            assert_eq!(got.as_ref().map(Coded::code), expected, "{name}: {got:?}");
            if let Some(err) = got {
                let text = err.to_string();
                assert!(
                    text.contains("use") || text.contains("Use"),
                    "{name}: says how to fix it: {text}"
                );
                assert!(
                    !text.contains(password.trim()) || password.trim().is_empty(),
                    "{name}: {text}"
                );
            }
        }
        // zxcvbn's own advice is in the message.
        let weak = check_password("alice", "password1234").unwrap_err();
        let UserError::PasswordWeak { score, feedback } = &weak else {
            panic!("{weak:?}")
        };
        assert!(*score < MIN_PASSWORD_SCORE);
        assert!(
            !feedback.is_empty() && weak.to_string().contains(feedback.as_str()),
            "{weak}"
        );
    }

    #[test]
    fn add_and_set_password_refuse_a_weak_password_and_change_nothing() {
        let mut t = TestStore::new();
        add(&mut t.store, &actor(), "alice", PASSWORD, Role::Admin, NOW).unwrap();
        let before = t.snapshot();
        for password in ["aaaaaaaaaaaa", "bob-password", "            "] {
            assert!(add(&mut t.store, &actor(), "bob", password, Role::Viewer, NOW).is_err());
            assert!(set_password(&mut t.store, &actor(), "alice", password, NOW).is_err());
        }
        assert_eq!(t.snapshot(), before);
    }

    #[test]
    fn set_password_replaces_the_hash_ends_sessions_and_is_audited() {
        let mut t = TestStore::new();
        let alice = add(&mut t.store, &actor(), "alice", PASSWORD, Role::Admin, NOW).unwrap();
        let session = crate::sessions::create(&mut t.store, alice.id, NOW).unwrap();
        set_password(
            &mut t.store,
            &actor(),
            "alice",
            "plum kettle orbit sonnet",
            NOW,
        )
        .unwrap();
        let creds = credentials(&t.store, "alice").unwrap().unwrap();
        let memory = &mut PasswordMemory::default();
        assert!(verify_password(Some(&creds), PASSWORD, memory).is_none());
        assert!(verify_password(Some(&creds), "plum kettle orbit sonnet", memory).is_some());
        assert_eq!(
            crate::sessions::find(&mut t.store, &session.id, NOW).unwrap(),
            None
        );
        assert!(matches!(
            set_password(
                &mut t.store,
                &actor(),
                "nobody",
                "plum kettle orbit sonnet",
                NOW
            ),
            Err(UserError::Unknown(_))
        ));
        assert_eq!(
            details(&t, "user.passwd"),
            ["alice: password replaced; their sessions ended"]
        );
    }

    #[test]
    fn roles_order_parse_and_are_stored_and_audited() {
        assert!(Role::Admin.allows(Role::Issuer) && Role::Issuer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Issuer) && !Role::Issuer.allows(Role::Admin));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert_eq!(err.code(), "role_invalid");
        assert!(err.to_string().contains("admin, issuer or viewer"), "{err}");

        let mut t = TestStore::new();
        add(&mut t.store, &actor(), "vera", PASSWORD, Role::Viewer, NOW).unwrap();
        set_role(&mut t.store, &actor(), "vera", Role::Issuer, NOW).unwrap();
        let vera = &list(&t.store).unwrap()[0];
        assert_eq!((vera.role, vera.role_from_migration), (Role::Issuer, false));
        assert!(matches!(
            set_role(&mut t.store, &actor(), "nobody", Role::Admin, NOW),
            Err(UserError::Unknown(_))
        ));
        assert_eq!(
            details(&t, "user.add"),
            ["vera: console user created with role viewer"]
        );
        assert_eq!(
            details(&t, "user.role"),
            ["vera: role set to issuer (was viewer)"]
        );
    }

    /// A user from before roles (a NULL role) is an admin, and is named at
    /// start-up until someone sets their role.
    #[test]
    fn a_user_from_before_roles_is_an_admin_until_their_role_is_set() {
        let mut t = TestStore::new();
        let old = add(&mut t.store, &actor(), "olga", PASSWORD, Role::Viewer, NOW).unwrap();
        add(&mut t.store, &actor(), "nina", PASSWORD, Role::Viewer, NOW).unwrap();
        t.store
            .write(|tx| {
                tx.execute("UPDATE users SET role = NULL WHERE name = 'olga'", [])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(roles_from_migration(&t.store).unwrap(), ["olga"]);
        let olga = credentials(&t.store, "olga").unwrap().unwrap().user;
        assert_eq!((olga.role, olga.role_from_migration), (Role::Admin, true));
        let session = crate::sessions::create(&mut t.store, old.id, NOW).unwrap();
        let found = crate::sessions::find(&mut t.store, &session.id, NOW).unwrap();
        assert_eq!(found.map(|s| s.role), Some(Role::Admin));

        set_role(&mut t.store, &actor(), "olga", Role::Admin, NOW).unwrap();
        assert!(roles_from_migration(&t.store).unwrap().is_empty());
        assert_eq!(
            details(&t, "user.role"),
            ["olga: role set to admin (was admin, from the migration)"]
        );
    }

    /// The rules apply when a password is set, never at login: a user
    /// whose password was accepted before them is not locked out.
    #[test]
    fn a_weak_password_set_before_the_rules_still_logs_in() {
        let mut t = TestStore::new();
        let hash = hash_password("aaaaaaaaaaaa").unwrap();
        t.store
            .write(|tx| store::insert_user(tx, "old", &hash, "admin", NOW))
            .unwrap();
        let creds = credentials(&t.store, "old").unwrap();
        let memory = &mut PasswordMemory::default();
        assert_eq!(
            verify_password(creds.as_ref(), "aaaaaaaaaaaa", memory).map(|u| u.name),
            Some("old".to_owned())
        );
        assert!(
            check_password("old", "aaaaaaaaaaaa").is_err(),
            "but not set again"
        );
    }
}
