//! The license payload: made and signed by the vendor, verified and
//! enforced on the device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::binary::{Digest, KeyId, PublicKey};
use crate::device::DeviceId;
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError};
use crate::trust::TrustedKeys;

const MAX_CUSTOMER_CHARS: usize = 200;
/// At most this many features, and as many limits, in one payload.
pub const MAX_NAMES: usize = 64;
/// The longest feature or limit name.
pub const MAX_NAME_LEN: usize = 64;

/// The signed license fields. The signing key's id travels on the token's
/// signer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct License {
    pub customer: String,
    /// Feature names, sorted and unique.
    pub features: Vec<String>,
    /// Numeric limits by name.
    pub limits: BTreeMap<String, u64>,
    pub issued_at: i64,
    pub not_before: i64,
    /// `None`: the license does not expire.
    pub expires_at: Option<i64>,
    /// Increases with each issuance for this license and device.
    pub serial: u64,
    pub license_key_fingerprint: Digest,
    pub client_device_id: DeviceId,
    pub device_public_key: PublicKey,
    /// The hash of the exact request this payload answers.
    pub request_hash: Digest,
}

/// Whether `name` may name a feature or a limit:
/// 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Why a customer name is refused, if it is.
pub fn customer_problem(customer: &str) -> Option<String> {
    let chars = customer.chars().count();
    if customer.trim().is_empty() {
        Some("the customer name is empty".into())
    } else if chars > MAX_CUSTOMER_CHARS {
        Some(format!(
            "the customer name has {chars} characters; at most {MAX_CUSTOMER_CHARS} are allowed"
        ))
    } else if customer.chars().any(char::is_control) {
        Some("the customer name contains a control character".into())
    } else if customer.trim() != customer {
        Some("the customer name starts or ends with white space".into())
    } else {
        None
    }
}

/// Where a time lies relative to a license's validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotYetValid,
    Valid,
    Expired,
}

impl License {
    /// The rules every payload obeys, checked when signing and when verifying.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(problem) = customer_problem(&self.customer) {
            return Err(problem);
        }
        if self.features.len() > MAX_NAMES || self.limits.len() > MAX_NAMES {
            return Err(format!(
                "at most {MAX_NAMES} features and {MAX_NAMES} limits are allowed"
            ));
        }
        if let Some(bad) = self
            .features
            .iter()
            .chain(self.limits.keys())
            .find(|n| !is_valid_name(n))
        {
            return Err(format!(
                "`{}` is not a valid feature or limit name (1 to {MAX_NAME_LEN} of a-z, 0-9, `.`, `_`, `-`)",
                bad.escape_debug()
            ));
        }
        if !self.features.windows(2).all(|w| w[0] < w[1]) {
            return Err("features must be sorted and unique".into());
        }
        if self.serial == 0 {
            return Err("the serial starts at 1".into());
        }
        for (field, value) in [
            ("issuedAt", Some(self.issued_at)),
            ("notBefore", Some(self.not_before)),
            ("expiresAt", self.expires_at),
        ] {
            if value.is_some_and(|v| !timestamp::is_in_range(v)) {
                return Err(format!("{field} is out of range"));
            }
        }
        if self.expires_at.is_some_and(|e| e <= self.not_before) {
            return Err("expiresAt must be later than notBefore".into());
        }
        Ok(())
    }

    pub fn has_feature(&self, feature: &str) -> bool {
        self.features
            .binary_search_by(|f| f.as_str().cmp(feature))
            .is_ok()
    }

    /// Where `now` lies in `[notBefore, expiresAt)`.
    pub fn window_at(&self, now: i64) -> Window {
        if now < self.not_before {
            Window::NotYetValid
        } else if self.expires_at.is_some_and(|e| now >= e) {
            Window::Expired
        } else {
            Window::Valid
        }
    }
}

/// A payload whose signature verified against a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayload {
    pub key_id: KeyId,
    pub license: License,
    envelope: Envelope,
}

impl VerifiedPayload {
    /// Decodes pasted text, finds the signing key among `trust` by the key
    /// id on the signer line, checks the signature with `verify_strict` over
    /// the exact shipped bytes, and only then parses and checks the content.
    pub fn open(input: &str, trust: &TrustedKeys) -> Result<Self, TokenError> {
        let kind = Kind::Payload;
        let envelope = Envelope::open(input, kind)?;
        let key_id: KeyId = envelope.signer().parse().map_err(|e| {
            TokenError::invalid(kind, format!("the signer line is not a key id: {e}"))
        })?;
        let trusted = trust.get(&key_id).ok_or_else(|| TokenError::UntrustedKey {
            expected: kind,
            key_id: key_id.to_string(),
        })?;
        if !trusted
            .public_key
            .verify_strict(envelope.message(), envelope.signature())
        {
            return Err(TokenError::BadSignature {
                expected: kind,
                signer: format!("trusted key `{key_id}`"),
            });
        }
        let license = parse_license(&envelope)?;
        Ok(Self {
            key_id,
            license,
            envelope,
        })
    }

    #[cfg(feature = "signing")]
    pub(crate) fn from_parts(key_id: KeyId, license: License, envelope: Envelope) -> Self {
        Self {
            key_id,
            license,
            envelope,
        }
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }
}

fn parse_license(envelope: &Envelope) -> Result<License, TokenError> {
    let kind = Kind::Payload;
    let license: License = serde_json::from_slice(envelope.body())
        .map_err(|e| TokenError::invalid(kind, e.to_string()))?;
    license
        .validate()
        .map_err(|r| TokenError::invalid(kind, r))?;
    Ok(license)
}

/// Decodes a payload *without* checking its signature, for display only
/// (`ren3-issuer inspect`). Never act on what this returns.
pub fn decode_unverified(input: &str) -> Result<(KeyId, License), TokenError> {
    let kind = Kind::Payload;
    let envelope = Envelope::open(input, kind)?;
    let key_id: KeyId = envelope
        .signer()
        .parse()
        .map_err(|e| TokenError::invalid(kind, format!("the signer line is not a key id: {e}")))?;
    Ok((key_id, parse_license(&envelope)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "ingest", "max-sources", "v2.beta_1", "9lives"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "Ingest", "-x", "a b", "<script>", &"a".repeat(65)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn customer_names_refuse_control_characters_and_padding() {
        assert_eq!(customer_problem("ACME <script> GmbH"), None);
        assert!(customer_problem("a\u{7}b").is_some());
        assert!(customer_problem(" acme").is_some());
        assert!(customer_problem("").is_some());
        assert!(customer_problem(&"x".repeat(201)).is_some());
    }
}
