//! The vendor's signing key (feature `signing`).

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};

use crate::binary::{KeyId, PublicKey, RandomSourceError, os_random};
use crate::payload::{License, VerifiedPayload};
use crate::token::{Envelope, Kind, TokenError};
use crate::trust::{TrustedKey, key_id};

/// An issuer signing key. `Debug` shows only its key id.
pub struct IssuerKey {
    key: SigningKey,
    key_id: KeyId,
}

impl IssuerKey {
    /// A new key from the operating system's secure random source.
    pub fn generate() -> Result<Self, RandomSourceError> {
        Ok(Self::from_seed(&os_random::<32>()?))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(&PublicKey::from(key.verifying_key()));
        Self { key, key_id }
    }

    /// The secret seed, for the issuer's key store only.
    pub fn seed(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(self.key.verifying_key())
    }

    /// This key's entry in a trusted-keys file.
    pub fn trusted_key(&self, created_at: i64, retired_at: Option<i64>) -> TrustedKey {
        TrustedKey {
            key_id: self.key_id,
            public_key: self.public_key(),
            created_at,
            retired_at,
        }
    }

    /// Checks the license fields and signs them into a payload.
    pub fn sign_payload(&self, license: &License) -> Result<VerifiedPayload, TokenError> {
        let kind = Kind::Payload;
        license
            .validate()
            .map_err(|r| TokenError::invalid(kind, r))?;
        let body =
            serde_json::to_vec(license).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
        let envelope = Envelope::seal(kind, &self.key_id.to_string(), &body, |m| {
            self.key.sign(m).to_bytes()
        });
        Ok(VerifiedPayload::from_parts(
            self.key_id,
            license.clone(),
            envelope,
        ))
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerKey({})", self.key_id)
    }
}
