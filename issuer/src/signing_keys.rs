//! The issuer's signing keys as the rest of the tool sees them: the list,
//! the trusted-keys file for clients, and the key that signs new payloads.

use ren3_shared::{IssuerKey, TrustedKey, TrustedKeys};
use rusqlite::Connection;
use serde::Serialize;

use crate::keystore::{KeyStore, KeyStoreError};
use crate::store::{self, SigningKeyRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("the issuer store has no signing key; it was not made by `ren3-issuer init`")]
    NoKey,
    #[error(
        "the private key file of signing key `{key_id}` does not match the public key the \
         store records for it; restore the key directory from your backup"
    )]
    Mismatch { key_id: String },
    #[error("the store's signing keys do not form a valid trusted-keys file: {0}")]
    Trust(#[from] ren3_shared::TrustError),
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signing key as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyEntry {
    #[serde(flatten)]
    pub key: SigningKeyRecord,
    /// Whether new payloads are signed with this key.
    pub signs_new_payloads: bool,
}

/// All signing keys, oldest first.
pub fn list(store: &Store) -> Result<Vec<SigningKeyEntry>, StoreError> {
    store.read(|conn| {
        let current = store::current_signing_key(conn)?.map(|k| k.key_id);
        Ok(store::signing_keys(conn)?
            .into_iter()
            .map(|key| SigningKeyEntry {
                signs_new_payloads: Some(key.key_id) == current,
                key,
            })
            .collect())
    })
}

/// The trusted-keys file content clients need: every key of the store.
/// Retired keys stay in it, so payloads they signed keep verifying.
pub fn trusted_keys(store: &Store) -> Result<TrustedKeys, SigningKeyError> {
    trusted_keys_of(&store.read(store::signing_keys)?)
}

pub(crate) fn trusted_keys_of(keys: &[SigningKeyRecord]) -> Result<TrustedKeys, SigningKeyError> {
    if keys.is_empty() {
        return Err(SigningKeyError::NoKey);
    }
    Ok(TrustedKeys::new(
        keys.iter()
            .map(|k| TrustedKey {
                key_id: k.key_id,
                public_key: k.public_key,
                created_at: k.created_at,
            })
            .collect(),
    )?)
}

/// The private key that signs new payloads: the newest one not retired,
/// checked against the public key the store recorded for it.
pub(crate) fn current(conn: &Connection, keys: &KeyStore) -> Result<IssuerKey, SigningKeyError> {
    let record = store::current_signing_key(conn)?.ok_or(SigningKeyError::NoKey)?;
    let key = keys.load(&record.key_id)?;
    if key.public_key() != record.public_key {
        return Err(SigningKeyError::Mismatch {
            key_id: record.key_id.to_string(),
        });
    }
    Ok(key)
}
