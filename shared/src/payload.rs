//! The license payload: made and signed by the vendor, verified and
//! enforced on the device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::binary::{Digest, KeyId, PublicKeyBytes};
use crate::certificate::Certificate;
use crate::device::DeviceId;
use crate::revocation::{Revocation, RevocationList};
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError, parse_json};
use crate::trust::TrustRoot;

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
    /// The licensee's name, for people: 1 to 200 characters, without
    /// control characters or surrounding white space.
    pub customer: String,
    /// Feature names, sorted and unique.
    pub features: Vec<String>,
    /// Numeric limits by name.
    pub limits: BTreeMap<String, u64>,
    /// When the vendor signed the payload, in Unix seconds. It must lie in
    /// the signing key's certificate window.
    pub issued_at: i64,
    /// When the license starts to work, in Unix seconds.
    pub not_before: i64,
    /// When the license expires, in Unix seconds; later than `not_before`.
    /// `None`: the license does not expire.
    pub expires_at: Option<i64>,
    /// How long after `expiresAt` the license keeps working, in seconds,
    /// while status warns that it is in grace. 0 without an expiry.
    pub grace_seconds: u64,
    /// What a client does when its clock looks wound back.
    pub clock_policy: ClockPolicy,
    /// Increases with each issuance for this license and device.
    pub serial: u64,
    /// The fingerprint of the license key the customer holds
    /// ([`LicenseKey::fingerprint`](crate::LicenseKey::fingerprint)).
    pub license_key_fingerprint: Digest,
    /// The device id the request came from: the seat the license takes.
    pub client_device_id: DeviceId,
    /// Compared with the installation's own key byte for byte; never
    /// decoded as a point (see [`PublicKeyBytes`]).
    pub device_public_key: PublicKeyBytes,
    /// The hash of the exact request this payload answers.
    pub request_hash: Digest,
}

/// The longest grace period a payload may carry: one year.
pub const MAX_GRACE_SECONDS: u64 = 366 * 24 * 60 * 60;

/// What a client does when its clock looks wound back (earlier than the
/// latest time it has seen, or than the payload's `issuedAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockPolicy {
    /// Report `clock_suspect` in status and the log, but keep working.
    Advisory,
    /// Report `clock_suspect` and refuse licensed work until the clock is
    /// right again.
    Enforcing,
}

impl ClockPolicy {
    /// The name on the wire and in configuration: `advisory` or `enforcing`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockPolicy::Advisory => "advisory",
            ClockPolicy::Enforcing => "enforcing",
        }
    }
}

impl std::str::FromStr for ClockPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "advisory" => Ok(ClockPolicy::Advisory),
            "enforcing" => Ok(ClockPolicy::Enforcing),
            other => Err(format!(
                "`{}` is not a clock policy: use `advisory` or `enforcing`",
                other.escape_debug()
            )),
        }
    }
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
    /// Before `notBefore`.
    NotYetValid,
    /// From `notBefore` until `expiresAt`, or from `notBefore` on when the
    /// license does not expire.
    Valid,
    /// Past `expiresAt` but within the grace period: still working.
    Grace,
    /// Past `expiresAt` and its grace period: no longer working.
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
        if self.grace_seconds > MAX_GRACE_SECONDS {
            return Err(format!(
                "graceSeconds is more than {MAX_GRACE_SECONDS} (a year)"
            ));
        }
        if self.expires_at.is_none() && self.grace_seconds != 0 {
            return Err("a license that never expires has no grace period".into());
        }
        Ok(())
    }

    /// Whether the license grants `feature`. It relies on `features` being
    /// sorted, which [`License::validate`] checks.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.features
            .binary_search_by(|f| f.as_str().cmp(feature))
            .is_ok()
    }

    /// When the grace period ends: the last moment the license works.
    pub fn grace_ends_at(&self) -> Option<i64> {
        let grace = i64::try_from(self.grace_seconds).unwrap_or(i64::MAX);
        self.expires_at.map(|e| e.saturating_add(grace))
    }

    /// Where `now` lies: before `notBefore`, in `[notBefore, expiresAt)`,
    /// in `[expiresAt, expiresAt + graceSeconds)`, or after.
    pub fn window_at(&self, now: i64) -> Window {
        match (self.expires_at, self.grace_ends_at()) {
            _ if now < self.not_before => Window::NotYetValid,
            (Some(expires), _) if now < expires => Window::Valid,
            (Some(_), Some(grace_end)) if now < grace_end => Window::Grace,
            (Some(_), _) => Window::Expired,
            (None, _) => Window::Valid,
        }
    }
}

/// A payload whose chain verified: its certificate under the root, its
/// signature under the certified key, its revocation list under the root,
/// and its `issuedAt` inside the certificate's window. Whether its key is
/// revoked is judged against the newest list the caller knows
/// ([`VerifiedPayload::revocation_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPayload {
    /// The id of the issuer key that signed it: its signer line, and the
    /// key its certificate certifies.
    pub key_id: KeyId,
    /// The signed license fields, checked by [`License::validate`].
    pub license: License,
    /// The signing key's certificate, verified under the root.
    pub certificate: Certificate,
    /// The revocation list it carries, verified under the root: the newest
    /// its issuer had, which may be older than one the caller knows.
    pub revocations: RevocationList,
    envelope: Envelope,
}

impl VerifiedPayload {
    /// Decodes pasted text and verifies the chain from `root` in this
    /// order, each signature over the exact shipped bytes before any JSON
    /// it covers is parsed: the certificate (signed by the root), the
    /// payload (signed by the certified key), the revocation list (signed
    /// by the root); then the license, and that its `issuedAt` lies in the
    /// certificate's window.
    pub fn open(input: &str, root: &TrustRoot) -> Result<Self, TokenError> {
        Self::open_after(input, root, None)
    }

    /// [`VerifiedPayload::open`], given the chain of a payload this
    /// process verified before under `root` ([`VerifiedPayload::chain`]).
    /// When this payload carries the same certificate and revocation list
    /// lines, byte for byte, their root signatures verified then and are
    /// not checked again: only the payload's own signature is, with the
    /// issuer key the certificate already gave. Any other payload is
    /// opened as [`VerifiedPayload::open`] opens it. The result is the
    /// same either way.
    pub fn open_after(
        input: &str,
        root: &TrustRoot,
        known: Option<&VerifiedChain>,
    ) -> Result<Self, TokenError> {
        let kind = Kind::Payload;
        let envelope = Envelope::open(input, kind)?;
        let key_id: KeyId = envelope.signer().parse().map_err(|e| {
            TokenError::invalid(kind, format!("the signer line is not a key id: {e}"))
        })?;
        let Some(([certificate_line, revocations_line], license)) = envelope.split_body::<2>()
        else {
            return Err(TokenError::invalid(
                kind,
                "the signed message has no certificate and revocation list lines",
            ));
        };
        let known =
            known.filter(|known| known.carried_by(root, certificate_line, revocations_line));
        let (certificate, revocations) = match known {
            Some(known) => (known.certificate.clone(), Chain::Known(&known.revocations)),
            None => {
                // Both inner envelopes are read first, then the three
                // signatures are checked with as little other work between
                // them as the order allows (the certificate's body names the
                // payload's key): the curve arithmetic's tables stay in the
                // cache.
                let certificate = Envelope::open(chain_text(certificate_line), Kind::Certificate)
                    .map_err(|e| chain_error("certificate", e))?;
                let revocations =
                    Envelope::open(chain_text(revocations_line), Kind::RevocationList)
                        .map_err(|e| chain_error("revocation list", e))?;
                let certificate = Certificate::verified(certificate, root)
                    .map_err(|e| chain_error("certificate", e))?;
                (certificate, Chain::Read(revocations))
            }
        };
        if certificate.key_id() != key_id {
            return Err(TokenError::BadChain {
                expected: kind,
                part: "certificate",
                reason: format!(
                    "it certifies key `{}`, but the payload is signed by key `{key_id}`",
                    certificate.key_id()
                ),
            });
        }
        if !certificate
            .body
            .public_key
            .verify_strict(envelope.message(), envelope.signature())
        {
            return Err(TokenError::BadSignature {
                expected: kind,
                signer: format!("its certified key `{key_id}`"),
            });
        }
        let revocations = match revocations {
            Chain::Known(list) => list.clone(),
            Chain::Read(list) => RevocationList::verified(list, root)
                .map_err(|e| chain_error("revocation list", e))?,
        };
        let license: License = parse_json(kind, license)?;
        license
            .validate()
            .map_err(|r| TokenError::invalid(kind, r))?;
        if !certificate.body.covers(license.issued_at) {
            return Err(TokenError::OutsideCertificate {
                expected: kind,
                key_id: key_id.to_string(),
                issued_at: timestamp::format(license.issued_at),
                not_before: timestamp::format(certificate.body.not_before),
                not_after: timestamp::format(certificate.body.not_after),
            });
        }
        Ok(Self {
            key_id,
            license,
            certificate,
            revocations,
            envelope,
        })
    }

    #[cfg(feature = "signing")]
    pub(crate) fn from_parts(
        license: License,
        certificate: Certificate,
        revocations: RevocationList,
        envelope: Envelope,
    ) -> Self {
        Self {
            key_id: certificate.key_id(),
            license,
            certificate,
            revocations,
            envelope,
        }
    }

    /// This payload's key's revocation in `newest`, if it is revoked
    /// there. `newest` is the newest list the caller knows, at least as
    /// new as the one this payload carries.
    pub fn revocation_in<'a>(&self, newest: &'a RevocationList) -> Option<&'a Revocation> {
        newest.find(&self.key_id)
    }

    /// The refusal (`key_revoked`) of this payload, given its key's
    /// `revocation` as [`VerifiedPayload::revocation_in`] found it.
    pub fn revoked_error(&self, revocation: &Revocation) -> TokenError {
        TokenError::KeyRevoked {
            expected: Kind::Payload,
            key_id: self.key_id.to_string(),
            revoked_at: timestamp::format(revocation.revoked_at),
        }
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }

    /// The certificate and revocation list this payload carries, verified,
    /// with the lines that carried them: for [`VerifiedPayload::open_after`].
    pub fn chain(&self) -> VerifiedChain {
        let (certificate_line, revocations_line) = match self.envelope.split_body::<2>() {
            Some(([certificate, revocations], _)) => (certificate.into(), revocations.into()),
            // Every payload has both lines: `open` refuses one without,
            // and a signer writes them. An empty line matches none.
            None => (Box::default(), Box::default()),
        };
        VerifiedChain {
            root: self.certificate.root_key_id(),
            certificate_line,
            revocations_line,
            certificate: self.certificate.clone(),
            revocations: self.revocations.clone(),
        }
    }
}

/// The certificate and revocation list of a payload this process verified,
/// with the exact lines that carried them and the root they verified
/// under. A later payload that carries the same two lines needs neither
/// root signature checked again ([`VerifiedPayload::open_after`]).
///
/// Made only by [`VerifiedPayload::chain`], from a payload whose chain
/// verified, and meant to live in memory: a verdict read back from a store
/// or a file would be whoever wrote it's to forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    root: Option<KeyId>,
    certificate_line: Box<[u8]>,
    revocations_line: Box<[u8]>,
    certificate: Certificate,
    revocations: RevocationList,
}

impl VerifiedChain {
    /// Whether a payload opened under `root` that carries these two lines
    /// carries this chain. A line that is not byte for byte the same, even
    /// one that would decode to the same token, is read and checked.
    fn carried_by(&self, root: &TrustRoot, certificate: &[u8], revocations: &[u8]) -> bool {
        !self.certificate_line.is_empty()
            && self.root == Some(root.key_id())
            && *self.certificate_line == *certificate
            && *self.revocations_line == *revocations
    }
}

/// The revocation list of a payload being opened: the known chain's, or
/// the envelope read from its line, whose root signature is still to check.
enum Chain<'a> {
    Known(&'a RevocationList),
    Read(Envelope),
}

/// A certificate or list line as text. Lines that are not ASCII fail
/// `Envelope::open` with a precise error, so this never hides one.
fn chain_text(line: &[u8]) -> &str {
    std::str::from_utf8(line).unwrap_or("\u{FFFD}")
}

/// A certificate's or list's own refusal, as a refusal of the payload.
fn chain_error(part: &'static str, error: TokenError) -> TokenError {
    match error {
        TokenError::UntrustedRoot { found, pinned, .. } => TokenError::UntrustedRoot {
            expected: Kind::Payload,
            found,
            pinned,
        },
        other => TokenError::BadChain {
            expected: Kind::Payload,
            part,
            reason: other.to_string(),
        },
    }
}

/// Decodes a payload *without* checking any signature, for display only
/// (`ren3-issuer inspect`): the license and the raw certificate and
/// revocation-list tokens. Never act on what this returns.
pub fn decode_unverified(input: &str) -> Result<(KeyId, License, String, String), TokenError> {
    let kind = Kind::Payload;
    let envelope = Envelope::open(input, kind)?;
    let key_id: KeyId = envelope
        .signer()
        .parse()
        .map_err(|e| TokenError::invalid(kind, format!("the signer line is not a key id: {e}")))?;
    let Some(([certificate, revocations], license)) = envelope.split_body::<2>() else {
        return Err(TokenError::invalid(
            kind,
            "the signed message has no certificate and revocation list lines",
        ));
    };
    let license: License = parse_json(kind, license)?;
    license
        .validate()
        .map_err(|r| TokenError::invalid(kind, r))?;
    Ok((
        key_id,
        license,
        chain_text(certificate).to_owned(),
        chain_text(revocations).to_owned(),
    ))
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

    fn license(expires_at: Option<i64>, grace_seconds: u64) -> License {
        License {
            customer: "c".into(),
            features: vec![],
            limits: BTreeMap::new(),
            issued_at: 100,
            not_before: 100,
            expires_at,
            grace_seconds,
            clock_policy: ClockPolicy::Advisory,
            serial: 1,
            license_key_fingerprint: crate::binary::Bytes([0; 32]),
            client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
            device_public_key: crate::DeviceKey::from_seed(&[1; 32]).public_key().into(),
            request_hash: crate::binary::Bytes([0; 32]),
        }
    }

    #[test]
    fn window_covers_not_yet_valid_valid_grace_and_expired() {
        let l = license(Some(1_000), 50);
        let cases = [
            (99, Window::NotYetValid),
            (100, Window::Valid),
            (999, Window::Valid),
            (1_000, Window::Grace),
            (1_049, Window::Grace),
            (1_050, Window::Expired),
        ];
        for (i, (now, expected)) in cases.into_iter().enumerate() {
            assert_eq!(l.window_at(now), expected, "case {i}: now = {now}");
        }
        assert_eq!(license(None, 0).window_at(i64::MAX), Window::Valid);
        assert_eq!(license(Some(1_000), 0).window_at(1_000), Window::Expired);
    }

    #[test]
    fn grace_needs_an_expiry_and_is_bounded() {
        assert!(license(None, 1).validate().is_err());
        assert!(
            license(Some(1_000), MAX_GRACE_SECONDS + 1)
                .validate()
                .is_err()
        );
        assert!(license(Some(1_000), MAX_GRACE_SECONDS).validate().is_ok());
    }

    #[test]
    fn clock_policy_reads_its_two_names() {
        assert_eq!("enforcing".parse(), Ok(ClockPolicy::Enforcing));
        assert_eq!("advisory".parse(), Ok(ClockPolicy::Advisory));
        assert!("strict".parse::<ClockPolicy>().is_err());
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
