//! Issuer certificates: the root's statement that an issuer key may sign
//! license payloads for a product within a window (docs/FORMAT.md §7.2),
//! and the certification request a new issuer key sends to the offline
//! root to get one (§7.4).

use serde::{Deserialize, Serialize};

use crate::binary::{KeyId, PublicKey};
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError};
use crate::trust::{TrustRoot, key_id};

/// The product every certificate of this build names.
pub const PRODUCT: &str = "ren3-ingestor";
/// The one purpose a certificate grants today.
pub const PURPOSE_ISSUE_PAYLOADS: &str = "issue-payloads";

/// The signed content of an issuer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateBody {
    /// The key id of `public_key`: what a payload's signer line names.
    pub key_id: KeyId,
    /// The certified issuer key.
    pub public_key: PublicKey,
    /// What the key may do: `issue-payloads`.
    pub purpose: String,
    /// The product whose payloads it may sign: `ren3-ingestor`.
    pub product: String,
    /// The start of the window, in Unix seconds: a payload's `issuedAt`
    /// must lie in `[notBefore, notAfter)`.
    pub not_before: i64,
    /// The end of the window, excluded; later than `not_before`.
    pub not_after: i64,
    /// When the root signed it.
    pub issued_at: i64,
}

impl CertificateBody {
    /// The rules every certificate obeys (docs/FORMAT.md §7.2), checked
    /// when signing and when verifying: the key id is that of the public
    /// key, the purpose is [`PURPOSE_ISSUE_PAYLOADS`], the product is
    /// [`PRODUCT`], every time is in the wire range and `not_after` is later
    /// than `not_before`. The error names the broken rule, for people.
    pub fn validate(&self) -> Result<(), String> {
        if key_id(&self.public_key) != self.key_id {
            return Err(format!(
                "its key id `{}` is not that of its public key",
                self.key_id
            ));
        }
        if self.purpose != PURPOSE_ISSUE_PAYLOADS {
            return Err(format!(
                "its purpose is `{}`, not `{PURPOSE_ISSUE_PAYLOADS}`",
                self.purpose.escape_debug()
            ));
        }
        if self.product != PRODUCT {
            return Err(format!(
                "it is for product `{}`, not `{PRODUCT}`",
                self.product.escape_debug()
            ));
        }
        for (field, value) in [
            ("notBefore", self.not_before),
            ("notAfter", self.not_after),
            ("issuedAt", self.issued_at),
        ] {
            if !timestamp::is_in_range(value) {
                return Err(format!("{field} is out of range"));
            }
        }
        if self.not_after <= self.not_before {
            return Err("notAfter must be later than notBefore".into());
        }
        Ok(())
    }

    /// Whether a payload issued at `issued_at` lies in the window.
    pub fn covers(&self, issued_at: i64) -> bool {
        self.not_before <= issued_at && issued_at < self.not_after
    }
}

/// A certificate whose root signature verified against a [`TrustRoot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The signed content, parsed and checked after the signature verified.
    pub body: CertificateBody,
    envelope: Envelope,
}

impl Certificate {
    /// Decodes pasted text, checks that its signer is `root`, checks the
    /// root's signature over the exact bytes, then parses and checks the
    /// body.
    pub fn open(input: &str, root: &TrustRoot) -> Result<Self, TokenError> {
        Self::verified(Envelope::open(input, Kind::Certificate)?, root)
    }

    /// [`Certificate::open`] after the envelope is read: the root's
    /// signature, then the body.
    pub(crate) fn verified(envelope: Envelope, root: &TrustRoot) -> Result<Self, TokenError> {
        check_root_signature(&envelope, root)?;
        let body: CertificateBody = envelope.parse_body()?;
        body.validate()
            .map_err(|r| TokenError::invalid(Kind::Certificate, r))?;
        Ok(Self { body, envelope })
    }

    #[cfg(feature = "signing")]
    pub(crate) fn from_parts(body: CertificateBody, envelope: Envelope) -> Self {
        Self { body, envelope }
    }

    /// The key id of the certified issuer key.
    pub fn key_id(&self) -> KeyId {
        self.body.key_id
    }

    /// The id of the root that signed it, from its signer line, which
    /// [`Certificate::verified`] checked names the root it verified under.
    pub(crate) fn root_key_id(&self) -> Option<KeyId> {
        self.envelope.signer().parse().ok()
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }
}

/// Checks that `envelope` names `root` on its signer line and carries the
/// root's signature: the first check of everything a root signs.
pub(crate) fn check_root_signature(
    envelope: &Envelope,
    root: &TrustRoot,
) -> Result<(), TokenError> {
    let kind = envelope.kind();
    let signer: KeyId = envelope
        .signer()
        .parse()
        .map_err(|e| TokenError::invalid(kind, format!("the signer line is not a key id: {e}")))?;
    if signer != root.key_id() {
        return Err(TokenError::UntrustedRoot {
            expected: kind,
            found: signer.to_string(),
            pinned: root.key_id().to_string(),
        });
    }
    if !root
        .public_key()
        .verify_strict(envelope.message(), envelope.signature())
    {
        return Err(TokenError::BadSignature {
            expected: kind,
            signer: format!("the root key `{}`", root.key_id()),
        });
    }
    Ok(())
}

/// The signed content of a certification request: what a new issuer key
/// asks the root to certify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificationRequestBody {
    /// The key id of the key to certify, whose public key is the signer line.
    pub key_id: KeyId,
    /// The purpose asked for: `issue-payloads`.
    pub purpose: String,
    /// The product asked for: `ren3-ingestor`.
    pub product: String,
    /// The start of the window asked for, in Unix seconds.
    pub not_before: i64,
    /// The end of the window asked for, excluded; later than `not_before`.
    pub not_after: i64,
    /// When the issuer key wrote the request, in Unix seconds.
    pub created_at: i64,
}

/// A certification request whose signature verified under the key it
/// asks to certify (its signer line): proof that its sender holds that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificationRequest {
    /// The key to certify, from the signer line: the request's signature
    /// verified under it.
    pub public_key: PublicKey,
    /// The signed content, checked as the certificate it asks for would be.
    pub body: CertificationRequestBody,
    envelope: Envelope,
}

impl VerifiedCertificationRequest {
    /// Decodes pasted text, checks the signature with the public key on its
    /// signer line (`verify_strict` over the exact shipped bytes), then
    /// parses the body and checks it by the rules of
    /// [`CertificateBody::validate`], with `createdAt` in place of `issuedAt`.
    pub fn open(input: &str) -> Result<Self, TokenError> {
        let kind = Kind::CertificationRequest;
        let envelope = Envelope::open(input, kind)?;
        let public_key: PublicKey = envelope.signer().parse().map_err(|e| {
            TokenError::invalid(kind, format!("the signer line is not a usable key: {e}"))
        })?;
        if !public_key.verify_strict(envelope.message(), envelope.signature()) {
            return Err(TokenError::BadSignature {
                expected: kind,
                signer: "the key it asks to certify".into(),
            });
        }
        let body: CertificationRequestBody = envelope.parse_body()?;
        // The same rules as the certificate it asks for.
        CertificateBody {
            key_id: body.key_id,
            public_key,
            purpose: body.purpose.clone(),
            product: body.product.clone(),
            not_before: body.not_before,
            not_after: body.not_after,
            issued_at: body.created_at,
        }
        .validate()
        .map_err(|r| TokenError::invalid(kind, r))?;
        Ok(Self {
            public_key,
            body,
            envelope,
        })
    }

    #[cfg(feature = "signing")]
    pub(crate) fn from_parts(
        public_key: PublicKey,
        body: CertificationRequestBody,
        envelope: Envelope,
    ) -> Self {
        Self {
            public_key,
            body,
            envelope,
        }
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }
}
