//! The trusted-keys file: the issuer public keys a client accepts
//! payloads from, as `ren3-issuer keys export-public` writes it.

use serde::{Deserialize, Serialize};

use crate::binary::{Bytes, KeyId, PublicKey, tagged_hash};
use crate::verify::PreparedKey;

/// The `format` field of a trusted-keys file.
pub const TRUST_FILE_FORMAT: &str = "ren3-trusted-keys-v2";
const KEY_ID_TAG: &[u8] = b"ren3/key-id/v1\n";

/// The key id of an issuer public key: the first 8 bytes of a tagged
/// SHA-256 of the key. It is derived, so it can never name another key.
pub fn key_id(public_key: &PublicKey) -> KeyId {
    let hash = tagged_hash(KEY_ID_TAG, &[&public_key.to_bytes()]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[..8]);
    Bytes(id)
}

/// One trusted issuer key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    /// When the vendor created the key, Unix seconds.
    pub created_at: i64,
    /// When the vendor retired the key, if it did: payloads it signed with
    /// an `issuedAt` from then on are refused (`key_retired`); earlier ones
    /// stay valid. A key that may have leaked is removed from the file
    /// instead, which refuses everything it signed (`unknown_key`).
    pub retired_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    format: String,
    keys: Vec<TrustedKey>,
}

/// Why a trusted-keys file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("the trusted-keys file is not valid: {0}")]
    Syntax(String),
    #[error("the trusted-keys file has format `{0}`, but this build reads `{TRUST_FILE_FORMAT}`")]
    WrongFormat(String),
    #[error("the trusted-keys file lists no key")]
    Empty,
    #[error(
        "key `{0}` in the trusted-keys file does not match its public key: the file was altered"
    )]
    KeyIdMismatch(String),
    #[error("key `{0}` is listed twice in the trusted-keys file")]
    Duplicate(String),
}

/// The set of issuer keys a client trusts. A key id maps to exactly one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
    /// Each key of `keys`, in the same order, prepared for checking many
    /// payloads: a client checks every payload against these.
    prepared: Vec<PreparedKey>,
}

impl TrustedKeys {
    pub fn new(keys: Vec<TrustedKey>) -> Result<Self, TrustError> {
        if keys.is_empty() {
            return Err(TrustError::Empty);
        }
        for (i, key) in keys.iter().enumerate() {
            if key_id(&key.public_key) != key.key_id {
                return Err(TrustError::KeyIdMismatch(key.key_id.to_string()));
            }
            if keys[..i].iter().any(|k| k.key_id == key.key_id) {
                return Err(TrustError::Duplicate(key.key_id.to_string()));
            }
        }
        let prepared = keys
            .iter()
            .map(|k| PreparedKey::new(k.public_key))
            .collect();
        Ok(Self { keys, prepared })
    }

    pub fn parse(text: &str) -> Result<Self, TrustError> {
        let file: TrustFile =
            serde_json::from_str(text).map_err(|e| TrustError::Syntax(e.to_string()))?;
        if file.format != TRUST_FILE_FORMAT {
            return Err(TrustError::WrongFormat(
                file.format.chars().take(64).collect(),
            ));
        }
        Self::new(file.keys)
    }

    /// The file text: pretty JSON with a final newline.
    pub fn to_file(&self) -> String {
        let file = TrustFile {
            format: TRUST_FILE_FORMAT.to_owned(),
            keys: self.keys.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file)
            .unwrap_or_else(|_| unreachable!("a TrustFile always serializes"));
        text.push('\n');
        text
    }

    pub fn get(&self, key_id: &KeyId) -> Option<&TrustedKey> {
        self.get_prepared(key_id).map(|(key, _)| key)
    }

    /// The key with `key_id`, and the same key prepared for checking.
    pub(crate) fn get_prepared(&self, key_id: &KeyId) -> Option<(&TrustedKey, &PreparedKey)> {
        let index = self.keys.iter().position(|k| &k.key_id == key_id)?;
        Some((&self.keys[index], &self.prepared[index]))
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceKey;

    fn key(seed: u8) -> TrustedKey {
        let public_key = DeviceKey::from_seed(&[seed; 32]).public_key();
        TrustedKey {
            key_id: key_id(&public_key),
            public_key,
            created_at: 1_800_000_000,
            retired_at: None,
        }
    }

    #[test]
    fn file_round_trips() {
        let trust = TrustedKeys::new(vec![key(1), key(2)]).unwrap();
        assert_eq!(TrustedKeys::parse(&trust.to_file()).unwrap(), trust);
    }

    #[test]
    fn refusals_are_specific() {
        let mut forged = key(1);
        forged.key_id = key(2).key_id;
        assert!(matches!(
            TrustedKeys::new(vec![forged]),
            Err(TrustError::KeyIdMismatch(_))
        ));
        assert!(matches!(
            TrustedKeys::new(vec![key(1), key(1)]),
            Err(TrustError::Duplicate(_))
        ));
        assert_eq!(TrustedKeys::new(vec![]), Err(TrustError::Empty));
        assert!(matches!(
            TrustedKeys::parse("{"),
            Err(TrustError::Syntax(_))
        ));
        assert!(matches!(
            TrustedKeys::parse(r#"{"format":"other","keys":[]}"#),
            Err(TrustError::WrongFormat(_))
        ));
    }
}
