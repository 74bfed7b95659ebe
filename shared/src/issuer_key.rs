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
        let key_id = key_id(&PublicKey::of_signing_key(&key));
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
        PublicKey::of_signing_key(&self.key)
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
        Ok(self.sign_terms(PayloadTerms::new(license.clone())?))
    }

    /// Signs terms already checked: this cannot fail, so an issuer may sign
    /// on another thread after it has committed to the terms.
    pub fn sign_terms(&self, terms: PayloadTerms) -> VerifiedPayload {
        let envelope = Envelope::seal(Kind::Payload, &self.key_id.to_string(), &terms.body, |m| {
            self.key.sign(m).to_bytes()
        });
        VerifiedPayload::from_parts(self.key_id, terms.license, envelope)
    }
}

/// License terms that passed every check a payload's terms must pass, and
/// their encoding: the part of signing a payload that can fail.
#[derive(Debug, Clone)]
pub struct PayloadTerms {
    license: License,
    body: Vec<u8>,
}

impl PayloadTerms {
    /// Checks the license fields and encodes them.
    pub fn new(license: License) -> Result<Self, TokenError> {
        let kind = Kind::Payload;
        license
            .validate()
            .map_err(|r| TokenError::invalid(kind, r))?;
        let body =
            serde_json::to_vec(&license).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
        Ok(Self { license, body })
    }

    pub fn license(&self) -> &License {
        &self.license
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerKey({})", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::binary::Bytes;
    use crate::payload::ClockPolicy;
    use crate::trust::TrustedKeys;
    use crate::{DeviceId, DeviceKey};

    fn terms(serial: u64) -> License {
        License {
            customer: "ACME GmbH".into(),
            features: vec!["ingest".into()],
            limits: BTreeMap::new(),
            issued_at: 100,
            not_before: 100,
            expires_at: None,
            grace_seconds: 0,
            clock_policy: ClockPolicy::Advisory,
            serial,
            license_key_fingerprint: Bytes([7; 32]),
            client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
            device_public_key: DeviceKey::from_seed(&[1; 32]).public_key().into(),
            request_hash: Bytes([9; 32]),
        }
    }

    #[test]
    fn signing_checked_terms_is_signing_the_license() {
        let key = IssuerKey::from_seed(&[5; 32]);
        let direct = key.sign_payload(&terms(3)).unwrap();
        let checked = PayloadTerms::new(terms(3)).unwrap();
        assert_eq!(checked.license(), &terms(3));
        let via_terms = key.sign_terms(checked);
        assert_eq!(via_terms.token(), direct.token());
        let trust = TrustedKeys::new(vec![key.trusted_key(0, None)]).unwrap();
        assert_eq!(
            VerifiedPayload::open(&via_terms.token(), &trust)
                .unwrap()
                .license,
            terms(3)
        );
    }

    #[test]
    fn terms_that_fail_a_check_are_refused_before_any_signing() {
        let refused = PayloadTerms::new(terms(0)).unwrap_err();
        assert!(refused.to_string().contains("serial"), "{refused}");
        let key = IssuerKey::from_seed(&[5; 32]);
        assert_eq!(
            key.sign_payload(&terms(0)).unwrap_err().to_string(),
            refused.to_string()
        );
    }
}
