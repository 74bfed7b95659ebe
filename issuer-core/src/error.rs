//! One protocol for the core's errors. Every error a rule returns has a
//! stable [`code`](Coded::code), which the CLI prints as `[code]` and
//! scripts match on, and a [`kind`](Coded::kind), from which each front end
//! chooses its answer: the console a 404, the form again with the message,
//! or a 500 whose details go to the log; the CLI its message and exit.
//!
//! A code never changes once released: it is part of the CLI's interface.
//! An error that wraps another (`IssueError::Chain`, say) answers with the
//! code and kind of the one it wraps, unless the wrapper knows better.

use std::error::Error;

use ren3_shared::{RandomSourceError, TokenError};

use crate::audit::chain::ChainBroken;
use crate::backup::BackupError;
use crate::chain::ChainError;
use crate::devices::DeviceError;
use crate::inspect::InspectError;
use crate::issuance::IssueError;
use crate::keystore::KeyStoreError;
use crate::licenses::LicenseError;
use crate::passphrase::PassphraseError;
use crate::releases::ReleaseError;
use crate::root::RootError;
use crate::sessions::SessionError;
use crate::setup::InitError;
use crate::signing_keys::SigningKeyError;
use crate::store::StoreError;
use crate::users::UserError;

/// What a failure is, for a front end choosing how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// What the caller named (by id, key or name) does not exist.
    NotFound,
    /// The input, or the state of what it names, forbids it; the message
    /// says what to do instead. Nothing changed.
    Refused,
    /// Another change got there first; the same action again may succeed.
    Conflict,
    /// The store, a file or the system failed. The message is for the log
    /// and the operator, not for the person at the console.
    Internal,
}

/// An error of the core: a stable code and a kind.
pub trait Coded: Error {
    /// A stable machine-readable code, such as `license_revoked`.
    fn code(&self) -> &'static str;
    /// What kind of failure it is.
    fn kind(&self) -> ErrorKind;
}

/// The first error in `error`'s chain (itself, then its sources) that is
/// one of the core's, for a front end that holds errors as `dyn Error`
/// (the CLI's `anyhow`): its code is what the CLI prints.
pub fn find_coded<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a dyn Coded> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(coded) = as_coded(e) {
            return Some(coded);
        }
        next = e.source();
    }
    None
}

/// `error` as one of the core's coded errors, if it is one.
fn as_coded<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a dyn Coded> {
    macro_rules! first_of {
        ($($error:ty),* $(,)?) => {
            $(if let Some(e) = error.downcast_ref::<$error>() {
                return Some(e);
            })*
        };
    }
    first_of!(
        ChainBroken,
        BackupError,
        IssueError,
        ReleaseError,
        LicenseError,
        DeviceError,
        SigningKeyError,
        ChainError,
        RootError,
        InitError,
        KeyStoreError,
        PassphraseError,
        UserError,
        SessionError,
        InspectError,
        StoreError,
        TokenError,
        RandomSourceError,
    );
    None
}

/// A token that does not open is the input's fault: its own codes say how.
impl Coded for TokenError {
    fn code(&self) -> &'static str {
        TokenError::code(self)
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Refused
    }
}

/// The operating system gave no random bytes: nothing the caller can fix.
impl Coded for RandomSourceError {
    fn code(&self) -> &'static str {
        "random_source_failed"
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_coded_error_of_a_chain_is_found_through_wrappers() {
        #[derive(Debug, thiserror::Error)]
        #[error("while doing something: {0}")]
        struct Wrapper(#[source] LicenseError);

        let wrapped = Wrapper(LicenseError::UnknownId(7));
        let found = find_coded(&wrapped).unwrap();
        assert_eq!(found.code(), "license_unknown");
        assert_eq!(found.kind(), ErrorKind::NotFound);

        let plain = std::io::Error::other("no code here");
        assert!(find_coded(&plain).is_none());
    }

    #[test]
    fn a_wrapper_answers_with_the_code_and_kind_of_what_it_wraps() {
        let busy = IssueError::Store(StoreError::Busy);
        assert_eq!(busy.code(), "store_busy");
        assert_eq!(busy.kind(), ErrorKind::Conflict);
        let unknown = DeviceError::License(LicenseError::UnknownId(3));
        assert_eq!(
            (unknown.code(), unknown.kind()),
            ("license_unknown", ErrorKind::NotFound)
        );
    }
}
