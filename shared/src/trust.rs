//! The trust root: the vendor's offline root key, whose public half is
//! compiled into every client (docs/FORMAT.md §7). The root certifies
//! issuer keys ([`crate::certificate`]) and signs revocation lists
//! ([`crate::revocation`]); a payload is trusted only through that chain.

use std::fmt;

use crate::binary::{Bytes, Digest, KeyId, PublicKey, tagged_hash};

const KEY_ID_TAG: &[u8] = b"ren3/key-id/v1\n";
const ROOT_FINGERPRINT_TAG: &[u8] = b"ren3/root-fingerprint/v1\n";
/// The one line of a root public-key file that is not a comment.
pub const ROOT_PUBLIC_FILE_LABEL: &str = "ren3-root-public-key-v1";

/// The public key of the TEST-ONLY root in `fixtures/`, whose seed is
/// public. A client built for release refuses to pin it (`client/build.rs`).
pub const TEST_ONLY_ROOT_PUBLIC_KEY: &str = "48qQvatcY_T7qnk0nANrYGpoyoWkVoyNwIOUMmDBW34";

/// The key id of an issuer or root public key: the first 8 bytes of a
/// tagged SHA-256 of the key. It is derived, so it can never name another
/// key.
pub fn key_id(public_key: &PublicKey) -> KeyId {
    let hash = tagged_hash(KEY_ID_TAG, &[&public_key.to_bytes()]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[..8]);
    Bytes(id)
}

/// Why a root public-key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The file has no key line.
    #[error(
        "it has no `{ROOT_PUBLIC_FILE_LABEL}: <key>` line; use the `root.pub` file that \
         `ren3-issuer init` or `ren3-issuer root init` wrote"
    )]
    Missing,
    /// A line that is neither blank, nor a comment, nor the key line.
    #[error("line {line} is not a comment and not `{ROOT_PUBLIC_FILE_LABEL}: <key>`")]
    UnexpectedLine {
        /// Its line number, counted from 1.
        line: usize,
    },
    /// The file has a second key line.
    #[error("it has more than one `{ROOT_PUBLIC_FILE_LABEL}` line")]
    Repeated,
    /// The key line's key is not base64url of 32 bytes, not a curve point,
    /// or of small order; the text says which.
    #[error("its key is not usable: {0}")]
    BadKey(String),
}

/// The vendor's root public key: the one key a client trusts directly.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrustRoot {
    public_key: PublicKey,
    key_id: KeyId,
}

impl TrustRoot {
    /// The root whose public key is `public_key`.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            key_id: key_id(&public_key),
        }
    }

    /// The root's public key, which verifies what the root signs.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The root's key id: the signer line of what it signs.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// `H("ren3/root-fingerprint/v1\n", public key)`: what `--version`,
    /// the client's status and its start-up log show, for a vendor to
    /// compare with the root they meant to pin.
    pub fn fingerprint(&self) -> Digest {
        Bytes(tagged_hash(
            ROOT_FINGERPRINT_TAG,
            &[&self.public_key.to_bytes()],
        ))
    }

    /// Whether this is the TEST-ONLY root of `fixtures/`.
    pub fn is_test_only(&self) -> bool {
        self.public_key.to_string() == TEST_ONLY_ROOT_PUBLIC_KEY
    }

    /// Reads a root public-key file: `#` comment lines, blank lines and
    /// one `ren3-root-public-key-v1: <base64url key>` line.
    pub fn parse_public_file(text: &str) -> Result<Self, TrustError> {
        let mut found = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(value) = line
                .strip_prefix(ROOT_PUBLIC_FILE_LABEL)
                .and_then(|rest| rest.strip_prefix(':'))
            else {
                return Err(TrustError::UnexpectedLine { line: index + 1 });
            };
            if found.is_some() {
                return Err(TrustError::Repeated);
            }
            let key: PublicKey = value
                .trim()
                .parse()
                .map_err(|e| TrustError::BadKey(format!("{e}")))?;
            found = Some(Self::new(key));
        }
        found.ok_or(TrustError::Missing)
    }

    /// The root public-key file, with comments that say what it is.
    pub fn to_public_file(&self) -> String {
        format!(
            "# The ReN3 trust root's public key. Clients are built pinned to it:\n\
             #   REN3_TRUST_ROOT=/path/to/this/file cargo build --release -p ren3-client-cli\n\
             # Fingerprint: {}\n\
             {ROOT_PUBLIC_FILE_LABEL}: {}\n",
            self.fingerprint(),
            self.public_key
        )
    }
}

impl fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustRoot({})", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceKey;

    fn root(seed: u8) -> TrustRoot {
        TrustRoot::new(DeviceKey::from_seed(&[seed; 32]).public_key())
    }

    #[test]
    fn public_file_round_trips_and_names_its_fingerprint() {
        let root = root(1);
        let file = root.to_public_file();
        assert!(file.contains(&root.fingerprint().to_string()));
        assert_eq!(TrustRoot::parse_public_file(&file).unwrap(), root);
        assert_ne!(root.fingerprint(), self::root(2).fingerprint());
        assert!(!root.is_test_only());
    }

    #[test]
    fn public_file_refusals_are_specific() {
        let line = root(1).to_public_file();
        assert_eq!(
            TrustRoot::parse_public_file("# nothing\n"),
            Err(TrustError::Missing)
        );
        assert_eq!(
            TrustRoot::parse_public_file(&format!("{line}{line}")),
            Err(TrustError::Repeated)
        );
        assert_eq!(
            TrustRoot::parse_public_file("hello\n"),
            Err(TrustError::UnexpectedLine { line: 1 })
        );
        let weak = format!("{ROOT_PUBLIC_FILE_LABEL}: {}\n", Bytes([0u8; 32]));
        assert!(matches!(
            TrustRoot::parse_public_file(&weak),
            Err(TrustError::BadKey(_))
        ));
    }
}
