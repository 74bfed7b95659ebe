//! Revocation lists: the root's versioned, cumulative list of the issuer
//! keys it revoked (docs/FORMAT.md §7). Every payload carries one, and a
//! client keeps the newest it has seen.

use serde::{Deserialize, Serialize};

use crate::binary::KeyId;
use crate::certificate::check_root_signature;
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError};
use crate::trust::TrustRoot;

/// The most keys one list may name.
pub const MAX_REVOKED: usize = 1024;
/// The longest grace period a revocation may give: 90 days.
pub const MAX_REVOCATION_GRACE_SECONDS: i64 = 90 * 24 * 60 * 60;

/// One revoked issuer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revocation {
    /// The id of the revoked issuer key.
    pub key_id: KeyId,
    /// When the root revoked it.
    pub revoked_at: i64,
    /// An installed license signed by this key keeps working until then,
    /// reported as revoked; no new payload of the key is imported.
    pub grace_until: i64,
}

/// The signed content of a revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevocationListBody {
    /// Rises with every list the root signs; the highest one seen wins.
    pub version: u64,
    /// When the root signed it, in Unix seconds.
    pub issued_at: i64,
    /// Sorted by key id, each key once. A list repeats every earlier
    /// revocation: it is the whole list, not a change.
    pub revoked: Vec<Revocation>,
}

impl RevocationListBody {
    /// The rules every list obeys (docs/FORMAT.md §7.3), checked when
    /// signing and when verifying: the version is at least 1, every time is
    /// in the wire range, at most [`MAX_REVOKED`] keys are named, sorted by
    /// key id and each once, and each `graceUntil` lies within
    /// [`MAX_REVOCATION_GRACE_SECONDS`] after its `revokedAt`. The error
    /// names the broken rule, for people.
    pub fn validate(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err("the version starts at 1".into());
        }
        if !timestamp::is_in_range(self.issued_at) {
            return Err("issuedAt is out of range".into());
        }
        if self.revoked.len() > MAX_REVOKED {
            return Err(format!("it names more than {MAX_REVOKED} keys"));
        }
        if !self.revoked.windows(2).all(|w| w[0].key_id < w[1].key_id) {
            return Err("its keys must be sorted by key id, each once".into());
        }
        for r in &self.revoked {
            if !timestamp::is_in_range(r.revoked_at) || !timestamp::is_in_range(r.grace_until) {
                return Err(format!("key `{}`: a time is out of range", r.key_id));
            }
            let grace = r.grace_until - r.revoked_at;
            if !(0..=MAX_REVOCATION_GRACE_SECONDS).contains(&grace) {
                return Err(format!(
                    "key `{}`: graceUntil must lie within 90 days after revokedAt",
                    r.key_id
                ));
            }
        }
        Ok(())
    }

    /// The revocation of `key_id`, if the list names it. It relies on the
    /// order [`RevocationListBody::validate`] checks.
    pub fn find(&self, key_id: &KeyId) -> Option<&Revocation> {
        self.revoked
            .binary_search_by(|r| r.key_id.cmp(key_id))
            .ok()
            .map(|i| &self.revoked[i])
    }
}

/// A revocation list whose root signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// The signed content, parsed and checked after the signature verified.
    pub body: RevocationListBody,
    envelope: Envelope,
}

impl RevocationList {
    /// Decodes pasted text, checks that its signer is `root`, checks the
    /// root's signature over the exact bytes, then parses and checks the
    /// body.
    pub fn open(input: &str, root: &TrustRoot) -> Result<Self, TokenError> {
        Self::verified(Envelope::open(input, Kind::RevocationList)?, root)
    }

    /// [`RevocationList::open`] after the envelope is read: the root's
    /// signature, then the body.
    pub(crate) fn verified(envelope: Envelope, root: &TrustRoot) -> Result<Self, TokenError> {
        check_root_signature(&envelope, root)?;
        let body: RevocationListBody = envelope.parse_body()?;
        body.validate()
            .map_err(|r| TokenError::invalid(Kind::RevocationList, r))?;
        Ok(Self { body, envelope })
    }

    #[cfg(feature = "signing")]
    pub(crate) fn from_parts(body: RevocationListBody, envelope: Envelope) -> Self {
        Self { body, envelope }
    }

    /// The list's version: of two lists, the higher is the newer.
    pub fn version(&self) -> u64 {
        self.body.version
    }

    /// The revocation of `key_id`, if this list names it.
    pub fn find(&self, key_id: &KeyId) -> Option<&Revocation> {
        self.body.find(key_id)
    }

    /// The newer of two lists: the higher version; `self` on a tie.
    pub fn newest<'a>(&'a self, other: &'a RevocationList) -> &'a RevocationList {
        if other.version() > self.version() {
            other
        } else {
            self
        }
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::Bytes;

    fn body(revoked: Vec<Revocation>) -> RevocationListBody {
        RevocationListBody {
            version: 2,
            issued_at: 1_800_000_000,
            revoked,
        }
    }

    fn revoked(id: u8, grace: i64) -> Revocation {
        Revocation {
            key_id: Bytes([id; 8]),
            revoked_at: 1_800_000_000,
            grace_until: 1_800_000_000 + grace,
        }
    }

    #[test]
    fn lists_must_be_sorted_unique_and_bounded() {
        assert!(body(vec![revoked(1, 0), revoked(2, 60)]).validate().is_ok());
        assert!(body(vec![revoked(2, 0), revoked(1, 0)]).validate().is_err());
        assert!(body(vec![revoked(1, 0), revoked(1, 0)]).validate().is_err());
        assert!(body(vec![revoked(1, -1)]).validate().is_err());
        assert!(
            body(vec![revoked(1, MAX_REVOCATION_GRACE_SECONDS + 1)])
                .validate()
                .is_err()
        );
        let mut zero = body(vec![]);
        zero.version = 0;
        assert!(zero.validate().is_err());
    }

    #[test]
    fn find_names_only_listed_keys() {
        let list = body(vec![revoked(1, 0), revoked(3, 0), revoked(5, 0)]);
        assert!(list.find(&Bytes([3; 8])).is_some());
        assert!(list.find(&Bytes([4; 8])).is_none());
    }
}
