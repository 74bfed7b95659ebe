//! The passphrase that protects private keys at rest, and where it comes
//! from: the environment variable `REN3_ISSUER_PASSPHRASE` for issuer
//! signing keys, `REN3_ROOT_PASSPHRASE` for the root key, or a prompt at
//! the terminal. The two variables differ so that a machine that issues
//! payloads never needs the root's passphrase.
//!
//! A passphrase is asked for only when an encrypted key is loaded or a key
//! is being encrypted, never up front, so a store with plaintext keys
//! works as it always did. **A passphrase is never logged, stored or shown**:
//! `Debug` hides it and its memory is wiped on drop.

use std::fmt;
use std::io::{self, IsTerminal as _};
use std::sync::Arc;

use ren3_shared::KeyId;
use zeroize::Zeroizing;

use crate::error::{Coded, ErrorKind};

/// The environment variable an issuer signing key's passphrase is read from.
pub const PASSPHRASE_ENV: &str = "REN3_ISSUER_PASSPHRASE";
/// The environment variable the root key's passphrase is read from.
pub const ROOT_PASSPHRASE_ENV: &str = "REN3_ROOT_PASSPHRASE";

/// A passphrase, wiped from memory when dropped.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Refuses an empty passphrase: it would encrypt nothing.
    pub fn new(text: String) -> Result<Self, PassphraseError> {
        let text = Zeroizing::new(text);
        if text.is_empty() {
            return Err(PassphraseError::Empty);
        }
        Ok(Self(text))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

/// What a passphrase is wanted for; a prompt says it, and a new one is
/// asked for twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To decrypt the private key of this signing key.
    Unlock(KeyId),
    /// To encrypt the private key of this signing key.
    Protect(KeyId),
    /// To decrypt the root key.
    UnlockRoot,
    /// To encrypt a new root key.
    ProtectRoot,
}

impl Purpose {
    /// The variable this passphrase is read from.
    fn variable(self) -> &'static str {
        match self {
            Purpose::Unlock(_) | Purpose::Protect(_) => PASSPHRASE_ENV,
            Purpose::UnlockRoot | Purpose::ProtectRoot => ROOT_PASSPHRASE_ENV,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    #[error(
        "signing key `{0}` is encrypted and no passphrase was given: set {PASSPHRASE_ENV}, \
         or run ren3-issuer at a terminal to be asked for it"
    )]
    NotGiven(KeyId),
    #[error(
        "a passphrase is needed to encrypt signing key `{0}`: set {PASSPHRASE_ENV}, or run \
         ren3-issuer at a terminal to be asked for it"
    )]
    NotGivenForNewKey(KeyId),
    #[error(
        "the root key is sealed and no passphrase was given: set {ROOT_PASSPHRASE_ENV}, or \
         run ren3-issuer at a terminal to be asked for it"
    )]
    RootNotGiven,
    #[error(
        "a passphrase is needed to seal the new root key: set {ROOT_PASSPHRASE_ENV}, or run \
         ren3-issuer at a terminal to be asked for it (or give --plain-root for a \
         throwaway root)"
    )]
    RootNotGivenForNewKey,
    #[error("the passphrase is empty; choose a long one")]
    Empty,
    #[error("the two passphrases differ; nothing was encrypted, try again")]
    Mismatch,
    #[error("cannot read the passphrase from the terminal: {0}")]
    Prompt(io::Error),
}

impl Coded for PassphraseError {
    fn code(&self) -> &'static str {
        match self {
            PassphraseError::Empty => "passphrase_empty",
            PassphraseError::Mismatch => "passphrase_mismatch",
            PassphraseError::Prompt(_) => "passphrase_prompt_failed",
            _ => "passphrase_missing",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            PassphraseError::Prompt(_) => ErrorKind::Internal,
            _ => ErrorKind::Refused,
        }
    }
}

type Ask = dyn Fn(Purpose) -> Result<Passphrase, PassphraseError> + Send + Sync;

/// Where a passphrase comes from when one is needed.
#[derive(Clone)]
pub struct PassphraseSource(Arc<Ask>);

impl PassphraseSource {
    /// The purpose's variable, and nothing else: for servers and scripts.
    pub fn environment() -> Self {
        Self(Arc::new(|purpose| {
            from_environment(purpose)?.ok_or_else(|| not_given(purpose))
        }))
    }

    /// The purpose's variable if it is set; otherwise, if standard input
    /// is a terminal, a prompt that does not echo (twice for a new one).
    pub fn environment_or_prompt() -> Self {
        Self(Arc::new(|purpose| {
            if let Some(passphrase) = from_environment(purpose)? {
                return Ok(passphrase);
            }
            if !io::stdin().is_terminal() {
                return Err(not_given(purpose));
            }
            prompt(purpose)
        }))
    }

    /// As [`environment_or_prompt`](Self::environment_or_prompt), with the
    /// signing keys' passphrase from a configuration file in between: the
    /// variable wins, then `configured`, then the prompt. The root's
    /// passphrase never comes from a configuration: the root lives on
    /// another machine.
    pub fn environment_configured_or_prompt(configured: Option<Passphrase>) -> Self {
        let Some(configured) = configured else {
            return Self::environment_or_prompt();
        };
        let otherwise = Self::environment_or_prompt();
        Self(Arc::new(move |purpose| match purpose {
            Purpose::Unlock(_) | Purpose::Protect(_) => {
                Ok(from_environment(purpose)?.unwrap_or_else(|| configured.clone()))
            }
            Purpose::UnlockRoot | Purpose::ProtectRoot => otherwise.get(purpose),
        }))
    }

    /// Always this passphrase: for tests, and for callers that asked already.
    pub fn fixed(passphrase: Passphrase) -> Self {
        Self(Arc::new(move |_| Ok(passphrase.clone())))
    }

    /// Never a passphrase: as if none was set and there is no terminal.
    #[cfg(any(test, feature = "testing"))]
    pub fn none() -> Self {
        Self(Arc::new(|purpose| Err(not_given(purpose))))
    }

    pub(crate) fn get(&self, purpose: Purpose) -> Result<Passphrase, PassphraseError> {
        (self.0)(purpose)
    }
}

impl fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassphraseSource")
    }
}

fn not_given(purpose: Purpose) -> PassphraseError {
    match purpose {
        Purpose::Unlock(key_id) => PassphraseError::NotGiven(key_id),
        Purpose::Protect(key_id) => PassphraseError::NotGivenForNewKey(key_id),
        Purpose::UnlockRoot => PassphraseError::RootNotGiven,
        Purpose::ProtectRoot => PassphraseError::RootNotGivenForNewKey,
    }
}

/// The variable's value; unset (or not Unicode) is `None`, set but empty
/// is an error rather than silently no passphrase.
fn from_environment(purpose: Purpose) -> Result<Option<Passphrase>, PassphraseError> {
    match std::env::var(purpose.variable()) {
        Ok(text) => Passphrase::new(text).map(Some),
        Err(_) => Ok(None),
    }
}

fn prompt(purpose: Purpose) -> Result<Passphrase, PassphraseError> {
    let read = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(PassphraseError::Prompt)
    };
    match purpose {
        Purpose::Unlock(key_id) => {
            let text = read(&format!("passphrase of signing key {key_id}: "))?;
            Passphrase::new(text.to_string())
        }
        Purpose::UnlockRoot => Passphrase::new(read("passphrase of the root key: ")?.to_string()),
        Purpose::Protect(key_id) => {
            prompt_new(&read, &format!("new passphrase for signing key {key_id}: "))
        }
        Purpose::ProtectRoot => prompt_new(&read, "new passphrase for the root key: "),
    }
}

/// A new passphrase, asked for twice.
fn prompt_new(
    read: &dyn Fn(&str) -> Result<Zeroizing<String>, PassphraseError>,
    text: &str,
) -> Result<Passphrase, PassphraseError> {
    let first = read(text)?;
    let second = read("the same passphrase again: ")?;
    if first != second {
        return Err(PassphraseError::Mismatch);
    }
    Passphrase::new(first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_is_never_shown_and_never_empty() {
        let passphrase = Passphrase::new("correct horse".into()).unwrap();
        assert_eq!(format!("{passphrase:?}"), "Passphrase(…)");
        assert!(matches!(
            Passphrase::new(String::new()),
            Err(PassphraseError::Empty)
        ));
    }

    #[test]
    fn fixed_source_gives_its_passphrase_for_any_purpose() {
        let source = PassphraseSource::fixed(Passphrase::new("pw".into()).unwrap());
        let key_id = ren3_shared::IssuerKey::from_seed(&[1; 32]).key_id();
        for purpose in [Purpose::Unlock(key_id), Purpose::Protect(key_id)] {
            assert_eq!(source.get(purpose).unwrap().as_bytes(), b"pw");
        }
    }
}
