//! The vendor's keys (feature `signing`): the offline root key that
//! certifies issuer keys and signs revocation lists, and the issuer keys
//! that sign payloads, each with the certificate and revocation list its
//! payloads carry.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use ren3_shared::{
//!     ClockPolicy, IssuerKey, License, PayloadSigner, RevocationListBody, RootKey,
//!     VerifiedCertificationRequest, VerifiedPayload, VerifiedRequest,
//! };
//!
//! const DAY: i64 = 24 * 60 * 60;
//! let now = 1_800_000_100; // 2027-01-15T08:01:40Z
//!
//! // Once, offline: the root. Its `trust_root()` is what clients pin.
//! let root = RootKey::generate()?;
//! // A new issuer key asks the root to certify it, as a token carried to
//! // the offline root and back.
//! let issuer = IssuerKey::generate()?;
//! let asked = issuer.certification_request(now, now + 365 * DAY, now)?;
//! let asked = VerifiedCertificationRequest::open(&asked.token())?;
//! let certificate = root.certify(&asked, now)?;
//! let revocations = root.sign_revocations(RevocationListBody {
//!     version: 1,
//!     issued_at: now,
//!     revoked: vec![],
//! })?;
//! let signer = PayloadSigner::new(issuer, certificate, revocations)?;
//!
//! // Answering a request: the payload binds to its device key and hash.
//! let request = VerifiedRequest::open(include_str!("../../fixtures/request.token"))?;
//! let license = License {
//!     customer: "ACME Test-Only GmbH".into(),
//!     features: vec!["export".into(), "ingest".into()],
//!     limits: BTreeMap::from([("max-sources".into(), 25)]),
//!     issued_at: now,
//!     not_before: now,
//!     expires_at: Some(now + 365 * DAY),
//!     grace_seconds: 14 * DAY as u64,
//!     clock_policy: ClockPolicy::Enforcing,
//!     serial: 1,
//!     license_key_fingerprint: request.request.license_key_fingerprint,
//!     client_device_id: request.request.client_device_id.clone(),
//!     device_public_key: request.device_public_key.into(),
//!     request_hash: request.hash(),
//! };
//! let payload = signer.sign_payload(&license)?;
//!
//! // What the client does with the token it receives.
//! let opened = VerifiedPayload::open(&payload.token(), &root.trust_root())?;
//! assert_eq!(opened.license, license);
//! assert_eq!(opened.key_id, signer.key_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};

use crate::binary::{KeyId, PublicKey, RandomSourceError, os_random};
use crate::certificate::{
    Certificate, CertificateBody, CertificationRequestBody, PRODUCT, PURPOSE_ISSUE_PAYLOADS,
    VerifiedCertificationRequest,
};
use crate::payload::{License, VerifiedPayload};
use crate::revocation::{RevocationList, RevocationListBody};
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError};
use crate::trust::{TrustRoot, key_id};

/// An Ed25519 signing key with its key id. `Debug` shows only the id.
struct Keypair {
    key: SigningKey,
    key_id: KeyId,
}

impl Keypair {
    fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(&PublicKey::of_signing_key(&key));
        Self { key, key_id }
    }

    fn public_key(&self) -> PublicKey {
        PublicKey::of_signing_key(&self.key)
    }

    fn seal(&self, kind: Kind, signer: &str, body: &[u8]) -> Envelope {
        Envelope::seal(kind, signer, body, |m| self.key.sign(m).to_bytes())
    }
}

/// What both kinds of vendor key share: each is an Ed25519 key pair under
/// a type of its own, so that neither can stand in for the other.
macro_rules! vendor_key {
    ($name:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("A new ", $what, " from the operating system's secure random source.")]
            pub fn generate() -> Result<Self, RandomSourceError> {
                Ok(Self::from_seed(&os_random::<32>()?))
            }

            #[doc = concat!("The ", $what, " whose secret seed is `seed`, as its key file holds it.")]
            pub fn from_seed(seed: &[u8; 32]) -> Self {
                Self(Keypair::from_seed(seed))
            }

            #[doc = concat!("The secret seed, for the ", $what, "'s key file only.")]
            pub fn seed(&self) -> &[u8; 32] {
                self.0.key.as_bytes()
            }
        }

        /// Shows only the key id.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.key_id)
            }
        }
    };
}

/// The vendor's root key. It lives offline, in a directory of its own,
/// and signs only certificates and revocation lists.
pub struct RootKey(Keypair);
vendor_key!(RootKey, "root key");

impl RootKey {
    /// The public half, as clients pin it.
    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot::new(self.0.public_key())
    }

    /// Certifies the key a verified certification request names, for the
    /// window it asks for, at `issued_at`.
    pub fn certify(
        &self,
        request: &VerifiedCertificationRequest,
        issued_at: i64,
    ) -> Result<Certificate, TokenError> {
        let body = CertificateBody {
            key_id: request.body.key_id,
            public_key: request.public_key,
            purpose: request.body.purpose.clone(),
            product: request.body.product.clone(),
            not_before: request.body.not_before,
            not_after: request.body.not_after,
            issued_at,
        };
        self.sign_certificate(body)
    }

    /// Signs a certificate body after checking it.
    pub fn sign_certificate(&self, body: CertificateBody) -> Result<Certificate, TokenError> {
        let kind = Kind::Certificate;
        body.validate().map_err(|r| TokenError::invalid(kind, r))?;
        let json =
            serde_json::to_vec(&body).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
        let envelope = self.0.seal(kind, &self.0.key_id.to_string(), &json);
        Ok(Certificate::from_parts(body, envelope))
    }

    /// Signs a revocation list after checking it.
    pub fn sign_revocations(&self, body: RevocationListBody) -> Result<RevocationList, TokenError> {
        let kind = Kind::RevocationList;
        body.validate().map_err(|r| TokenError::invalid(kind, r))?;
        let json =
            serde_json::to_vec(&body).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
        let envelope = self.0.seal(kind, &self.0.key_id.to_string(), &json);
        Ok(RevocationList::from_parts(body, envelope))
    }
}

/// An issuer signing key.
pub struct IssuerKey(Keypair);
vendor_key!(IssuerKey, "issuer key");

impl IssuerKey {
    /// The key id: the signer line of every payload this key signs.
    pub fn key_id(&self) -> KeyId {
        self.0.key_id
    }

    /// The public half, which the key's certificate names.
    pub fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }

    /// Asks the root to certify this key for payloads of this product in
    /// `[not_before, not_after)`, signed with this key as proof of holding it.
    pub fn certification_request(
        &self,
        not_before: i64,
        not_after: i64,
        created_at: i64,
    ) -> Result<VerifiedCertificationRequest, TokenError> {
        let kind = Kind::CertificationRequest;
        let body = CertificationRequestBody {
            key_id: self.key_id(),
            purpose: PURPOSE_ISSUE_PAYLOADS.into(),
            product: PRODUCT.into(),
            not_before,
            not_after,
            created_at,
        };
        let json =
            serde_json::to_vec(&body).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
        let envelope = self.0.seal(kind, &self.public_key().to_string(), &json);
        VerifiedCertificationRequest::open(&envelope.token())
            .map(|_| VerifiedCertificationRequest::from_parts(self.public_key(), body, envelope))
    }
}

/// Why an issuer key, a certificate and a revocation list cannot sign
/// payloads together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    /// The certificate certifies another key.
    #[error("the certificate is for key `{certified}`, not for key `{key}`")]
    NotThisKey {
        /// The issuer key's id.
        key: String,
        /// The key id the certificate names.
        certified: String,
    },
    /// The revocation list revokes the issuer key itself, so clients would
    /// refuse its payloads.
    #[error("the revocation list (version {version}) revokes key `{key}`")]
    Revoked {
        /// The issuer key's id.
        key: String,
        /// The revocation list's version.
        version: u64,
    },
}

/// An issuer key with the certificate and revocation list its payloads
/// carry: everything needed to sign a payload a client will accept.
pub struct PayloadSigner {
    key: IssuerKey,
    certificate: Certificate,
    revocations: RevocationList,
    /// `<certificate>\n<revocation list>\n`: the start of every body.
    chain_lines: Vec<u8>,
}

impl PayloadSigner {
    /// Puts an issuer key together with its certificate and the revocation
    /// list its payloads will carry. Refuses a certificate for another key
    /// ([`SignerError::NotThisKey`]) and a list that revokes this key
    /// ([`SignerError::Revoked`]); the certificate's window is checked for
    /// each payload, by [`PayloadSigner::terms`].
    pub fn new(
        key: IssuerKey,
        certificate: Certificate,
        revocations: RevocationList,
    ) -> Result<Self, SignerError> {
        if certificate.key_id() != key.key_id() {
            return Err(SignerError::NotThisKey {
                key: key.key_id().to_string(),
                certified: certificate.key_id().to_string(),
            });
        }
        if revocations.find(&key.key_id()).is_some() {
            return Err(SignerError::Revoked {
                key: key.key_id().to_string(),
                version: revocations.version(),
            });
        }
        let mut chain_lines = certificate.token().into_bytes();
        chain_lines.push(b'\n');
        chain_lines.extend_from_slice(revocations.token().as_bytes());
        chain_lines.push(b'\n');
        Ok(Self {
            key,
            certificate,
            revocations,
            chain_lines,
        })
    }

    /// The issuer key's id: the signer line of every payload it signs.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// The issuer key's certificate, which every payload carries.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The revocation list every payload carries.
    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    /// Checks the license fields and signs them into a payload.
    pub fn sign_payload(&self, license: &License) -> Result<VerifiedPayload, TokenError> {
        Ok(self.sign_terms(self.terms(license.clone())?))
    }

    /// Checks the license fields against the payload rules and this
    /// signer's certificate window, and encodes them: the part of signing
    /// that can fail.
    pub fn terms(&self, license: License) -> Result<PayloadTerms, TokenError> {
        let kind = Kind::Payload;
        license
            .validate()
            .map_err(|r| TokenError::invalid(kind, r))?;
        let window = &self.certificate.body;
        if !window.covers(license.issued_at) {
            return Err(TokenError::OutsideCertificate {
                expected: kind,
                key_id: self.key_id().to_string(),
                issued_at: timestamp::format(license.issued_at),
                not_before: timestamp::format(window.not_before),
                not_after: timestamp::format(window.not_after),
            });
        }
        let json =
            serde_json::to_vec(&license).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
        Ok(PayloadTerms {
            license,
            json,
            key_id: self.key_id(),
        })
    }

    /// Signs terms this signer checked: this cannot fail, so an issuer may
    /// sign on another thread after it has committed to the terms.
    pub fn sign_terms(&self, terms: PayloadTerms) -> VerifiedPayload {
        debug_assert_eq!(
            terms.key_id,
            self.key_id(),
            "terms checked by another signer"
        );
        let mut body = Vec::with_capacity(self.chain_lines.len() + terms.json.len());
        body.extend_from_slice(&self.chain_lines);
        body.extend_from_slice(&terms.json);
        let envelope = self
            .key
            .0
            .seal(Kind::Payload, &self.key_id().to_string(), &body);
        VerifiedPayload::from_parts(
            terms.license,
            self.certificate.clone(),
            self.revocations.clone(),
            envelope,
        )
    }
}

impl fmt::Debug for PayloadSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PayloadSigner({}, revocations v{})",
            self.key_id(),
            self.revocations.version()
        )
    }
}

/// License terms that passed every check a payload's terms must pass, and
/// their encoding, bound to the signer that checked them.
#[derive(Debug, Clone)]
pub struct PayloadTerms {
    license: License,
    json: Vec<u8>,
    key_id: KeyId,
}

impl PayloadTerms {
    /// The checked license fields.
    pub fn license(&self) -> &License {
        &self.license
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::binary::Bytes;
    use crate::payload::ClockPolicy;
    use crate::revocation::Revocation;
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

    fn list(root: &RootKey, version: u64, revoked: Vec<Revocation>) -> RevocationList {
        root.sign_revocations(RevocationListBody {
            version,
            issued_at: 50,
            revoked,
        })
        .unwrap()
    }

    fn signer(root: &RootKey, seed: u8, not_after: i64) -> PayloadSigner {
        let key = IssuerKey::from_seed(&[seed; 32]);
        let request = key.certification_request(0, not_after, 10).unwrap();
        let certificate = root.certify(&request, 20).unwrap();
        PayloadSigner::new(key, certificate, list(root, 1, vec![])).unwrap()
    }

    #[test]
    fn a_payload_verifies_through_its_chain_and_only_under_its_root() {
        let root = RootKey::from_seed(&[3; 32]);
        let signer = signer(&root, 5, 1_000);
        let direct = signer.sign_payload(&terms(3)).unwrap();
        let via_terms = signer.sign_terms(signer.terms(terms(3)).unwrap());
        assert_eq!(via_terms.token(), direct.token());
        let opened = VerifiedPayload::open(&direct.token(), &root.trust_root()).unwrap();
        assert_eq!(opened.license, terms(3));
        assert_eq!(opened.key_id, signer.key_id());
        assert_eq!(opened.revocations.version(), 1);

        let other = RootKey::from_seed(&[4; 32]);
        let err = VerifiedPayload::open(&direct.token(), &other.trust_root()).unwrap_err();
        assert_eq!(err.code(), "untrusted_root", "{err}");
    }

    #[test]
    fn terms_outside_the_certificate_or_failing_a_check_are_refused_before_signing() {
        let root = RootKey::from_seed(&[3; 32]);
        let signer = signer(&root, 5, 100);
        let err = signer.terms(terms(1)).unwrap_err();
        assert_eq!(err.code(), "outside_certificate", "{err}");
        let refused = signer.terms(terms(0)).unwrap_err();
        assert!(refused.to_string().contains("serial"), "{refused}");
    }

    #[test]
    fn a_signer_needs_its_own_unrevoked_certificate() {
        let root = RootKey::from_seed(&[3; 32]);
        let key = IssuerKey::from_seed(&[5; 32]);
        let other = IssuerKey::from_seed(&[6; 32]);
        let certificate = root
            .certify(&other.certification_request(0, 1_000, 10).unwrap(), 20)
            .unwrap();
        assert!(matches!(
            PayloadSigner::new(key, certificate, list(&root, 1, vec![])),
            Err(SignerError::NotThisKey { .. })
        ));
        let key = IssuerKey::from_seed(&[5; 32]);
        let certificate = root
            .certify(&key.certification_request(0, 1_000, 10).unwrap(), 20)
            .unwrap();
        let revoked = list(
            &root,
            2,
            vec![Revocation {
                key_id: key.key_id(),
                revoked_at: 30,
                grace_until: 30,
            }],
        );
        assert!(matches!(
            PayloadSigner::new(key, certificate, revoked),
            Err(SignerError::Revoked { .. })
        ));
    }

    #[test]
    fn a_certification_request_proves_the_key_and_a_tampered_one_fails() {
        let key = IssuerKey::from_seed(&[5; 32]);
        let request = key.certification_request(0, 1_000, 10).unwrap();
        let opened = VerifiedCertificationRequest::open(&request.token()).unwrap();
        assert_eq!(opened.public_key, key.public_key());
        assert_eq!(opened.body.key_id, key.key_id());
        let err = key.certification_request(1_000, 0, 10).unwrap_err();
        assert_eq!(err.code(), "token_invalid", "{err}");
    }
}
