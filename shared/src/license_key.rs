//! License keys: the secret the vendor hands to a customer.
//!
//! A key never travels in a request or a payload; only its [fingerprint]
//! does, so an intercepted e-mail does not leak it.
//!
//! [fingerprint]: LicenseKey::fingerprint

use std::fmt;

use crate::binary::{Bytes, Digest, tagged_hash};
use crate::crockford::{CodeError, CodeShape};

const SHAPE: CodeShape = CodeShape {
    what: "license key",
    prefix: "REN3K1",
    // 24 characters of 5 bits: 120 bits from the OS's CSPRNG.
    data_len: 24,
};

/// Domain-separation tag of the fingerprint hash.
const FINGERPRINT_TAG: &[u8] = b"ren3/license-key-fingerprint/v1\n";

/// A well-formed license key in canonical form, e.g.
/// `REN3K1-XXXXX-XXXXX-XXXXX-XXXXX-XXXXC`.
///
/// `Debug` shows only the first group, so a key cannot reach a log by
/// accident; [`LicenseKey::reveal`] is the one way to the full text.
#[derive(Clone, PartialEq, Eq)]
pub struct LicenseKey(String);

impl LicenseKey {
    /// Parses a typed key. Case, hyphens and spaces do not matter; a wrong
    /// check character is reported as a typo.
    ///
    /// ```
    /// use ren3_shared::{CodeError, LicenseKey};
    ///
    /// // Lower case, spaces, and `O` typed for `0`: the same key.
    /// let key = LicenseKey::parse("ren3k1 testk eyode m0abc defgh 2345q")?;
    /// assert_eq!(key.reveal(), "REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q");
    /// assert_eq!(key.hint(), "REN3K1-TESTK-…");
    ///
    /// // One character off: caught before anything is sent.
    /// let typo = LicenseKey::parse("REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2346Q");
    /// assert!(matches!(typo, Err(CodeError::CheckFailed { .. })));
    /// # Ok::<(), CodeError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        SHAPE.parse(input).map(Self)
    }

    /// A new key with 120 bits from the operating system's secure random source.
    #[cfg(feature = "signing")]
    pub fn generate() -> Result<Self, crate::RandomSourceError> {
        SHAPE.generate::<24>().map(Self)
    }

    /// The full key text, for handing to the customer. Never log it.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// The key with all but its first group masked, for display and search.
    pub fn hint(&self) -> String {
        hint_of(&self.0)
    }

    /// SHA-256 of the canonical key under a domain tag (see docs/FORMAT.md).
    pub fn fingerprint(&self) -> Digest {
        Bytes(tagged_hash(FINGERPRINT_TAG, &[self.0.as_bytes()]))
    }
}

/// `REN3K1-ABCDE-…` from a canonical key.
fn hint_of(canonical: &str) -> String {
    let visible = SHAPE.prefix.len() + 6;
    format!("{}-…", &canonical[..visible.min(canonical.len())])
}

impl fmt::Debug for LicenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenseKey({})", self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_canonicalises_and_fingerprint_ignores_spelling() {
        let key = LicenseKey::parse("REN3K1-00000-00000-00000-00000-00000").unwrap();
        let sloppy = LicenseKey::parse("ren3k1 ooooo ooooo ooooo ooooo ooooo").unwrap();
        assert_eq!(key, sloppy);
        assert_eq!(key.fingerprint(), sloppy.fingerprint());
        assert_eq!(key.hint(), "REN3K1-00000-…");
    }

    #[test]
    fn debug_never_shows_the_whole_key() {
        let key =
            LicenseKey::parse("REN3K1-ABCDE-FGHJK-MNPQR-STVWX-YZ01Q").map_err(|e| e.to_string());
        if let Ok(key) = key {
            assert!(!format!("{key:?}").contains("FGHJK"));
        }
    }

    #[cfg(feature = "signing")]
    #[test]
    fn generated_keys_parse_and_differ() {
        let a = LicenseKey::generate().unwrap();
        let b = LicenseKey::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(LicenseKey::parse(a.reveal()).unwrap(), a);
        assert_eq!(a.reveal().len(), "REN3K1-".len() + 29);
    }
}
