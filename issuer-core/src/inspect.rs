//! Reading any token for a person: its fields, and whether it verifies.
//!
//! A token that does not verify is still shown, decoded without its
//! signature check, next to the reason it failed: the vendor needs to see
//! what a customer sent to tell them what went wrong.
//!
//! One piece, over the usual size: the six kinds' fields are read the same
//! way (decode, verify, describe), so the kinds stay side by side.

use std::collections::BTreeMap;

use ren3_shared::certificate::CertificationRequestBody;
use ren3_shared::payload::{self, Window};
use ren3_shared::token::{self, Envelope, Kind};
use ren3_shared::{
    Certificate, CertificateBody, Digest, KeyId, License, LicenseRequest, Product, ReleaseReceipt,
    RevocationList, RevocationListBody, TokenError, TrustRoot, VerifiedCertificationRequest,
    VerifiedPayload, VerifiedReceipt, VerifiedRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Coded, ErrorKind};
use crate::rfc3339;

/// What the root-signed tokens (payloads, certificates, revocation lists)
/// are checked against.
#[derive(Debug, Clone)]
pub enum TrustSource {
    /// A root, and where it came from, in words ("the issuer store ...").
    Root { root: TrustRoot, source: String },
    /// No root: `why` says why, and how to give one.
    Unavailable { why: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error(
        "this is not a token this tool reads: a license request, license payload, release \
         receipt, issuer certificate, revocation list or certification request starts with \
         `{}`, `{}`, `{}`, `{}`, `{}` or `{}` (an armoured block around any is fine)",
        Kind::Request.prefix(), Kind::Payload.prefix(), Kind::Receipt.prefix(),
        Kind::Certificate.prefix(), Kind::RevocationList.prefix(),
        Kind::CertificationRequest.prefix()
    )]
    UnknownKind,
}

impl Coded for InspectError {
    fn code(&self) -> &'static str {
        match self {
            InspectError::UnknownKind => "token_unknown_kind",
        }
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Refused
    }
}

/// Why a token does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable: the codes of [`TokenError::code`], or `no_trust_root`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// `request`, `payload`, `receipt`, `certificate`, `revocations` or
    /// `certification-request`.
    pub kind: &'static str,
    pub verified: bool,
    /// What the signature was checked against, in words.
    pub checked_against: Option<String>,
    /// Set exactly when `verified` is false.
    pub problem: Option<Problem>,
    /// The fields; for a token that does not verify, decoded without the
    /// signature check, and absent if even that failed (damaged in transit).
    pub fields: Option<Fields>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Fields {
    Request(RequestFields),
    Payload(Box<PayloadFields>),
    Receipt(ReceiptFields),
    Certificate(CertificateFields),
    Revocations(RevocationFields),
    CertificationRequest(CertificationRequestFields),
}

/// An issuer certificate's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateFields {
    pub key_id: KeyId,
    pub public_key: String,
    pub purpose: String,
    pub product: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_before: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_after: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub issued_at: i64,
    /// The signer line: the key id of the root that signed it.
    pub root_key_id: String,
}

/// A revocation list's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationFields {
    pub version: u64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub issued_at: i64,
    pub revoked: Vec<RevokedKeyFields>,
    /// The signer line: the key id of the root that signed it.
    pub root_key_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedKeyFields {
    pub key_id: KeyId,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub revoked_at: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub grace_until: i64,
}

/// A certification request's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificationRequestFields {
    pub key_id: KeyId,
    /// The signer line: the key it asks to certify.
    pub public_key: String,
    pub purpose: String,
    pub product: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_before: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_after: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptFields {
    #[serde(serialize_with = "rfc3339::serialize")]
    pub released_at: i64,
    pub client_device_id: String,
    pub license_key_fingerprint: Digest,
    pub serial: u64,
    pub counter: u64,
    /// The signer line: the installation's public key.
    pub device_public_key: String,
    /// Whether releasing it now would free its seat, and if not why: set
    /// by callers that have a store (`releases::check`).
    pub release: Option<ReleaseVerdict>,
}

/// What [`crate::releases::release`] would do with a receipt now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseVerdict {
    pub would_release: bool,
    /// Set exactly when `would_release` is false: why it would be refused.
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestFields {
    pub request_id: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    pub client_device_id: String,
    pub license_key_fingerprint: Digest,
    pub product: Product,
    /// The installation's sequence number (FORMAT.md §6).
    pub counter: u64,
    /// The signer line: the installation's public key.
    pub device_public_key: String,
    /// Known only for a request that verifies.
    pub request_hash: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadFields {
    pub key_id: KeyId,
    pub customer: String,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, u64>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub issued_at: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_before: i64,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub expires_at: Option<i64>,
    pub grace_seconds: u64,
    pub clock_policy: ren3_shared::ClockPolicy,
    pub serial: u64,
    pub license_key_fingerprint: Digest,
    pub client_device_id: String,
    pub device_public_key: String,
    pub request_hash: Digest,
    /// Where the inspection time lies in the payload's validity window:
    /// `valid`, `not yet valid` or `expired`.
    pub window_now: &'static str,
    /// The certificate it carries; absent if it cannot be read at all.
    pub certificate: Option<CertificateFields>,
    /// The revocation list it carries; absent if it cannot be read at all.
    pub revocations: Option<RevocationFields>,
}

/// Inspects any token this tool reads at time `now`; payloads,
/// certificates and revocation lists are checked against `trust`.
pub fn inspect(input: &str, trust: &TrustSource, now: i64) -> Result<Inspection, InspectError> {
    match token::detect(input).ok_or(InspectError::UnknownKind)? {
        Kind::Request => Ok(inspect_request(input)),
        Kind::Payload => Ok(inspect_payload(input, trust, now)),
        Kind::Receipt => Ok(inspect_receipt(input)),
        Kind::Certificate => Ok(inspect_certificate(input, trust)),
        Kind::RevocationList => Ok(inspect_revocations(input, trust)),
        Kind::CertificationRequest => Ok(inspect_certification_request(input)),
    }
}

/// A root-signed token checked against `trust`: `open` verifies it, and
/// `fields` reads what it can without verifying.
fn inspect_rooted<T>(
    kind: &'static str,
    input: &str,
    trust: &TrustSource,
    open: impl FnOnce(&str, &TrustRoot) -> Result<T, TokenError>,
    verified_fields: impl FnOnce(&T) -> Fields,
    unverified_fields: impl FnOnce(&str) -> Option<Fields>,
) -> Inspection {
    let (result, checked_against) = match trust {
        TrustSource::Unavailable { why } => (
            Err(Problem {
                code: "no_trust_root",
                message: format!("there is no root to check its signature against: {why}"),
            }),
            None,
        ),
        TrustSource::Root { root, source } => (
            open(input, root).map_err(|e| problem(&e)),
            Some(root_text(root, source)),
        ),
    };
    inspection(
        kind,
        checked_against,
        result.map(|value| verified_fields(&value)),
        || unverified_fields(input),
    )
}

/// The inspection of a token of `kind`: its verified fields, or why it
/// does not verify and what `unverified` reads without the signature check.
fn inspection(
    kind: &'static str,
    checked_against: Option<String>,
    verified: Result<Fields, Problem>,
    unverified: impl FnOnce() -> Option<Fields>,
) -> Inspection {
    match verified {
        Ok(fields) => Inspection {
            kind,
            verified: true,
            checked_against,
            problem: None,
            fields: Some(fields),
        },
        Err(problem) => Inspection {
            kind,
            verified: false,
            checked_against,
            problem: Some(problem),
            fields: unverified(),
        },
    }
}

/// A token's signer line and body, read without checking its signature;
/// `None` if the envelope or the body cannot be read at all.
fn decode_unverified<B: DeserializeOwned>(input: &str, kind: Kind) -> Option<(String, B)> {
    let envelope = Envelope::open(input, kind).ok()?;
    let body = serde_json::from_slice(envelope.body()).ok()?;
    Some((envelope.signer().to_owned(), body))
}

fn root_text(root: &TrustRoot, source: &str) -> String {
    format!(
        "the root `{}` (fingerprint {}) of {source}",
        root.key_id(),
        root.fingerprint()
    )
}

fn inspect_certificate(input: &str, trust: &TrustSource) -> Inspection {
    inspect_rooted(
        "certificate",
        input,
        trust,
        Certificate::open,
        |c| Fields::Certificate(certificate_fields(&c.body, c.token().as_str())),
        |input| unverified_certificate(input).map(Fields::Certificate),
    )
}

fn inspect_revocations(input: &str, trust: &TrustSource) -> Inspection {
    inspect_rooted(
        "revocations",
        input,
        trust,
        RevocationList::open,
        |l| Fields::Revocations(revocation_fields(&l.body, l.token().as_str())),
        |input| unverified_revocations(input).map(Fields::Revocations),
    )
}

fn inspect_certification_request(input: &str) -> Inspection {
    inspect_self_signed(
        "certification-request",
        Kind::CertificationRequest,
        "the key it asks to certify",
        input,
        VerifiedCertificationRequest::open,
        |r| {
            Fields::CertificationRequest(certification_request_fields(
                &r.body,
                r.public_key.to_string(),
            ))
        },
        |signer, body| Fields::CertificationRequest(certification_request_fields(&body, signer)),
    )
}

/// A token that carries the key it is signed with: `open` verifies it,
/// `verified_fields` reads a verified one and `unverified_fields` the signer
/// line and body of one that does not verify.
fn inspect_self_signed<T, B: DeserializeOwned>(
    kind: &'static str,
    token_kind: Kind,
    checked_against: &str,
    input: &str,
    open: impl FnOnce(&str) -> Result<T, TokenError>,
    verified_fields: impl FnOnce(T) -> Fields,
    unverified_fields: impl FnOnce(String, B) -> Fields,
) -> Inspection {
    inspection(
        kind,
        Some(checked_against.to_owned()),
        open(input).map(verified_fields).map_err(|e| problem(&e)),
        || {
            decode_unverified(input, token_kind)
                .map(|(signer, body)| unverified_fields(signer, body))
        },
    )
}

fn certification_request_fields(
    body: &CertificationRequestBody,
    public_key: String,
) -> CertificationRequestFields {
    CertificationRequestFields {
        key_id: body.key_id,
        public_key,
        purpose: body.purpose.clone(),
        product: body.product.clone(),
        not_before: body.not_before,
        not_after: body.not_after,
        created_at: body.created_at,
    }
}

/// The signer line of a token, for display; empty if it cannot be read.
fn signer_of(token: &str, kind: Kind) -> String {
    Envelope::open(token, kind)
        .map(|e| e.signer().to_owned())
        .unwrap_or_default()
}

fn certificate_fields(body: &CertificateBody, token: &str) -> CertificateFields {
    CertificateFields {
        key_id: body.key_id,
        public_key: body.public_key.to_string(),
        purpose: body.purpose.clone(),
        product: body.product.clone(),
        not_before: body.not_before,
        not_after: body.not_after,
        issued_at: body.issued_at,
        root_key_id: signer_of(token, Kind::Certificate),
    }
}

fn revocation_fields(body: &RevocationListBody, token: &str) -> RevocationFields {
    RevocationFields {
        version: body.version,
        issued_at: body.issued_at,
        revoked: body
            .revoked
            .iter()
            .map(|r| RevokedKeyFields {
                key_id: r.key_id,
                revoked_at: r.revoked_at,
                grace_until: r.grace_until,
            })
            .collect(),
        root_key_id: signer_of(token, Kind::RevocationList),
    }
}

/// A certificate's fields without checking its signature.
fn unverified_certificate(token: &str) -> Option<CertificateFields> {
    decode_unverified(token, Kind::Certificate).map(|(_, body)| certificate_fields(&body, token))
}

/// A revocation list's fields without checking its signature.
fn unverified_revocations(token: &str) -> Option<RevocationFields> {
    decode_unverified(token, Kind::RevocationList).map(|(_, body)| revocation_fields(&body, token))
}

fn inspect_receipt(input: &str) -> Inspection {
    inspect_self_signed(
        "receipt",
        Kind::Receipt,
        "the device key it carries",
        input,
        VerifiedReceipt::open,
        |r| Fields::Receipt(receipt_fields(&r.receipt, r.device_public_key.to_string())),
        |signer, receipt| Fields::Receipt(receipt_fields(&receipt, signer)),
    )
}

fn receipt_fields(receipt: &ReleaseReceipt, device_public_key: String) -> ReceiptFields {
    ReceiptFields {
        released_at: receipt.released_at,
        client_device_id: receipt.client_device_id.to_string(),
        license_key_fingerprint: receipt.license_key_fingerprint,
        serial: receipt.serial,
        counter: receipt.counter,
        device_public_key,
        release: None,
    }
}

/// The verdict of [`crate::releases::check`] in the shape inspections use:
/// a refusal is a verdict; an error that stopped the check (the store's)
/// stays an error.
pub fn release_verdict(
    outcome: Result<(), crate::releases::ReleaseError>,
) -> Result<ReleaseVerdict, crate::releases::ReleaseError> {
    match outcome {
        Ok(()) => Ok(ReleaseVerdict {
            would_release: true,
            problem: None,
        }),
        Err(e) if e.kind() == crate::error::ErrorKind::Internal => Err(e),
        Err(e) => Ok(ReleaseVerdict {
            would_release: false,
            problem: Some(Problem {
                code: e.code(),
                message: e.to_string(),
            }),
        }),
    }
}

/// Reads `input` as a license request, whatever it holds: the fields of a
/// request that does not verify are still shown, next to the reason.
pub(crate) fn request(input: &str) -> Inspection {
    inspect_request(input)
}

fn inspect_request(input: &str) -> Inspection {
    inspect_self_signed(
        "request",
        Kind::Request,
        "the device key it carries",
        input,
        VerifiedRequest::open,
        |r| {
            let public_key = r.device_public_key.to_string();
            Fields::Request(request_fields(&r.request, public_key, Some(r.hash())))
        },
        |signer, request| Fields::Request(request_fields(&request, signer, None)),
    )
}

fn request_fields(
    request: &LicenseRequest,
    device_public_key: String,
    request_hash: Option<Digest>,
) -> RequestFields {
    RequestFields {
        request_id: request.request_id.to_string(),
        created_at: request.created_at,
        client_device_id: request.client_device_id.to_string(),
        license_key_fingerprint: request.license_key_fingerprint,
        product: request.product.clone(),
        counter: request.counter,
        device_public_key,
        request_hash,
    }
}

fn inspect_payload(input: &str, trust: &TrustSource, now: i64) -> Inspection {
    inspect_rooted(
        "payload",
        input,
        trust,
        VerifiedPayload::open,
        |p| {
            let mut fields = payload_fields(p.key_id, &p.license, now);
            fields.certificate = Some(certificate_fields(
                &p.certificate.body,
                p.certificate.token().as_str(),
            ));
            fields.revocations = Some(revocation_fields(
                &p.revocations.body,
                p.revocations.token().as_str(),
            ));
            Fields::Payload(Box::new(fields))
        },
        |input| {
            let (key_id, license, certificate, revocations) =
                payload::decode_unverified(input).ok()?;
            let mut fields = payload_fields(key_id, &license, now);
            fields.certificate = unverified_certificate(&certificate);
            fields.revocations = unverified_revocations(&revocations);
            Some(Fields::Payload(Box::new(fields)))
        },
    )
}

fn payload_fields(key_id: KeyId, license: &License, now: i64) -> PayloadFields {
    PayloadFields {
        key_id,
        customer: license.customer.clone(),
        features: license.features.clone(),
        limits: license.limits.clone(),
        issued_at: license.issued_at,
        not_before: license.not_before,
        expires_at: license.expires_at,
        grace_seconds: license.grace_seconds,
        clock_policy: license.clock_policy,
        serial: license.serial,
        license_key_fingerprint: license.license_key_fingerprint,
        client_device_id: license.client_device_id.to_string(),
        device_public_key: license.device_public_key.to_string(),
        request_hash: license.request_hash,
        window_now: match license.window_at(now) {
            Window::NotYetValid => "not yet valid",
            Window::Valid => "valid",
            Window::Grace => "expired, in its grace period",
            Window::Expired => "expired",
        },
        certificate: None,
        revocations: None,
    }
}

fn problem(e: &TokenError) -> Problem {
    Problem {
        code: e.code(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use ren3_shared::{DeviceKey, IssuerKey, RootKey};

    use super::*;
    use crate::issuance;
    use crate::testing::{NOW, TestStore, actor, request, tamper};

    fn store_trust(t: &TestStore) -> TrustSource {
        TrustSource::Root {
            root: t.trust_root(),
            source: "the test store".into(),
        }
    }

    fn other_root() -> TrustSource {
        TrustSource::Root {
            root: RootKey::from_seed(&[9; 32]).trust_root(),
            source: "another store".into(),
        }
    }

    /// A store, a request and the payload issued for it.
    fn issued() -> (TestStore, String, String) {
        let mut t = TestStore::new();
        let key = t.license(1);
        let device = t.device(&key);
        let text = request(&key, &device, &DeviceKey::from_seed(&[1; 32]));
        let payload = issuance::issue(&mut t.store, &t.keys, &actor(), &text, NOW)
            .unwrap()
            .payload
            .token();
        (t, text, payload)
    }

    fn payload_fields(inspection: &Inspection) -> &PayloadFields {
        match &inspection.fields {
            Some(Fields::Payload(p)) => p,
            other => panic!("not payload fields: {other:?}"),
        }
    }

    #[test]
    fn inspect_verifies_a_request_and_shows_its_hash() {
        let (t, text, _) = issued();
        let inspection = inspect(&text, &store_trust(&t), NOW).unwrap();
        assert_eq!(inspection.kind, "request");
        assert!(inspection.verified);
        let Some(Fields::Request(fields)) = &inspection.fields else {
            panic!("{inspection:?}");
        };
        let opened = VerifiedRequest::open(&text).unwrap();
        assert_eq!(fields.request_hash, Some(opened.hash()));
        assert_eq!(fields.product.name, "ren3-ingestor");
    }

    #[test]
    fn inspect_verifies_a_payload_against_the_store_keys() {
        let (t, _, payload) = issued();
        let inspection = inspect(&payload, &store_trust(&t), NOW).unwrap();
        assert!(inspection.verified, "{inspection:?}");
        assert_eq!(inspection.problem, None);
        let fields = payload_fields(&inspection);
        assert_eq!(fields.customer, "ACME GmbH");
        // The first serial of a device: the issuance time in microseconds.
        assert_eq!(
            fields.serial,
            NOW as u64 * crate::issuance::SERIALS_PER_SECOND
        );
        assert_eq!(fields.window_now, "valid");
    }

    #[test]
    fn inspect_shows_a_forged_payload_but_says_it_does_not_verify() {
        let (t, _, payload) = issued();
        let forged = tamper(&payload, |m| m.replace("ACME GmbH", "EVIL GmbH"));
        let inspection = inspect(&forged, &store_trust(&t), NOW).unwrap();
        assert!(!inspection.verified);
        assert_eq!(
            inspection.problem.as_ref().unwrap().code,
            "signature_invalid"
        );
        assert_eq!(payload_fields(&inspection).customer, "EVIL GmbH");
    }

    #[test]
    fn inspect_shows_a_forged_request_but_says_it_does_not_verify() {
        let (t, text, _) = issued();
        let forged = tamper(&text, |m| m.replace("ren3-ingestor", "ren3-forgery"));
        let inspection = inspect(&forged, &store_trust(&t), NOW).unwrap();
        assert!(!inspection.verified);
        assert_eq!(
            inspection.problem.as_ref().unwrap().code,
            "signature_invalid"
        );
        let Some(Fields::Request(fields)) = &inspection.fields else {
            panic!("{inspection:?}");
        };
        assert_eq!(fields.product.name, "ren3-forgery");
        assert_eq!(fields.request_hash, None);
    }

    #[test]
    fn inspect_shows_a_payloads_chain_certificate_window_and_list_version() {
        let (t, _, payload) = issued();
        let inspection = inspect(&payload, &store_trust(&t), NOW).unwrap();
        assert!(inspection.verified, "{inspection:?}");
        assert!(
            inspection
                .checked_against
                .as_deref()
                .unwrap()
                .contains(&t.trust_root().fingerprint().to_string()),
            "{inspection:?}"
        );
        let fields = payload_fields(&inspection);
        let certificate = fields.certificate.as_ref().unwrap();
        assert_eq!(certificate.key_id, fields.key_id);
        assert_eq!(certificate.root_key_id, t.trust_root().key_id().to_string());
        assert!(certificate.not_before < NOW && NOW < certificate.not_after);
        assert_eq!(fields.revocations.as_ref().unwrap().version, 1);
        // The same chain read under another root: shown, but not verified.
        let elsewhere = inspect(&payload, &other_root(), NOW).unwrap();
        assert!(!elsewhere.verified);
        assert_eq!(elsewhere.problem.as_ref().unwrap().code, "untrusted_root");
        let fields = payload_fields(&elsewhere);
        assert_eq!(fields.revocations.as_ref().unwrap().version, 1);
        assert!(fields.certificate.is_some());
    }

    #[test]
    fn inspect_reads_certificates_lists_and_certification_requests() {
        let t = TestStore::new();
        let key = IssuerKey::from_seed(&[5; 32]);
        let request = key
            .certification_request(NOW - 10, NOW + 1_000, NOW)
            .unwrap();
        let certificate = t.root.certify(&request, NOW).unwrap();
        let list = t.revocations(2, &[key.key_id()]);
        let trust = store_trust(&t);

        // 1. a certificate: verified under its root, refused under another
        let inspection = inspect(&certificate.token(), &trust, NOW).unwrap();
        assert_eq!(inspection.kind, "certificate", "1.");
        assert!(inspection.verified, "1. {inspection:?}");
        let Some(Fields::Certificate(fields)) = &inspection.fields else {
            panic!("1. {inspection:?}");
        };
        assert_eq!(fields.key_id, key.key_id(), "1.");
        assert_eq!(
            (fields.not_before, fields.not_after),
            (NOW - 10, NOW + 1_000)
        );
        let elsewhere = inspect(&certificate.token(), &other_root(), NOW).unwrap();
        assert!(!elsewhere.verified, "1.");
        assert_eq!(elsewhere.problem.unwrap().code, "untrusted_root", "1.");
        assert!(elsewhere.fields.is_some(), "1. fields shown unverified");

        // 2. a revocation list
        let inspection = inspect(&list.token(), &trust, NOW).unwrap();
        assert_eq!(inspection.kind, "revocations", "2.");
        assert!(inspection.verified, "2. {inspection:?}");
        let Some(Fields::Revocations(fields)) = &inspection.fields else {
            panic!("2. {inspection:?}");
        };
        assert_eq!(fields.version, 2, "2.");
        assert_eq!(fields.revoked[0].key_id, key.key_id(), "2.");
        let forged = tamper(&list.token(), |m| {
            m.replace("\"version\":2", "\"version\":9")
        });
        let inspection = inspect(&forged, &trust, NOW).unwrap();
        assert!(!inspection.verified, "2. forged");
        assert_eq!(inspection.problem.unwrap().code, "signature_invalid", "2.");

        // 3. a certification request: verified under the key it names
        let inspection = inspect(&request.token(), &trust, NOW).unwrap();
        assert_eq!(inspection.kind, "certification-request", "3.");
        assert!(inspection.verified, "3. {inspection:?}");
        let Some(Fields::CertificationRequest(fields)) = &inspection.fields else {
            panic!("3. {inspection:?}");
        };
        assert_eq!(fields.key_id, key.key_id(), "3.");
        assert_eq!(fields.public_key, key.public_key().to_string(), "3.");
        let forged = tamper(&request.token(), |m| {
            m.replace("issue-payloads", "issue-anything")
        });
        let inspection = inspect(
            &forged,
            &TrustSource::Unavailable { why: "none".into() },
            NOW,
        )
        .unwrap();
        assert!(!inspection.verified, "3. forged");
        assert_eq!(inspection.problem.unwrap().code, "signature_invalid", "3.");
    }

    #[test]
    fn inspect_reports_untrusted_roots_missing_roots_and_damage() {
        let (_, _, payload) = issued();
        let cases = [
            (
                "1. another root",
                payload.clone(),
                other_root(),
                "untrusted_root",
                true,
            ),
            (
                "2. no root",
                payload.clone(),
                TrustSource::Unavailable {
                    why: "none given".into(),
                },
                "no_trust_root",
                true,
            ),
            (
                "3. damaged",
                payload[..payload.len() - 3].to_owned(),
                TrustSource::Unavailable {
                    why: "none given".into(),
                },
                "no_trust_root",
                false,
            ),
        ];
        for (name, token, trust, code, has_fields) in cases {
            let inspection = inspect(&token, &trust, NOW).unwrap();
            assert!(!inspection.verified, "{name}");
            assert_eq!(inspection.problem.unwrap().code, code, "{name}");
            assert_eq!(inspection.fields.is_some(), has_fields, "{name}");
        }
    }

    #[test]
    fn inspect_reads_a_receipt_and_says_whether_its_signature_holds() {
        let device = ren3_shared::DeviceId::generate().unwrap();
        let receipt = ren3_shared::ReleaseReceipt {
            released_at: NOW,
            client_device_id: device.clone(),
            license_key_fingerprint: ren3_shared::binary::Bytes([3; 32]),
            serial: 2,
            counter: 7,
        };
        let installation = DeviceKey::from_seed(&[4; 32]);
        let token = receipt.sign(&installation).unwrap().token();
        let trust = TrustSource::Unavailable { why: "none".into() };
        let cases = [
            ("1. as signed", token.clone(), true),
            (
                "2. counter changed after signing",
                tamper(&token, |m| m.replace("\"counter\":7", "\"counter\":8")),
                false,
            ),
        ];
        for (name, text, verified) in cases {
            let inspection = inspect(&text, &trust, NOW).unwrap();
            assert_eq!(inspection.kind, "receipt", "{name}");
            assert_eq!(inspection.verified, verified, "{name}");
            let Some(Fields::Receipt(fields)) = &inspection.fields else {
                panic!("{name}: {inspection:?}");
            };
            assert_eq!(fields.client_device_id, device.to_string(), "{name}");
            assert_eq!(
                fields.device_public_key,
                installation.public_key().to_string(),
                "{name}"
            );
        }
    }

    #[test]
    fn inspect_refuses_what_is_not_a_token() {
        let trust = TrustSource::Unavailable { why: "none".into() };
        for input in ["", "hello", "REN3K1-00000-00000-00000-00000-00000"] {
            assert_eq!(
                inspect(input, &trust, NOW),
                Err(InspectError::UnknownKind),
                "{input}"
            );
        }
    }

    #[test]
    fn inspect_tells_an_expired_payload_by_the_time_given() {
        let (mut t, _, payload) = issued();
        let key = t.license_with(crate::licenses::NewLicense {
            customer: "Short".into(),
            expires_at: Some(NOW + 10),
            max_devices: 1,
            ..Default::default()
        });
        let device = t.device(&key);
        let text = request(&key, &device, &DeviceKey::from_seed(&[2; 32]));
        let short = issuance::issue(&mut t.store, &t.keys, &actor(), &text, NOW)
            .unwrap()
            .payload
            .token();
        let trust = store_trust(&t);
        let later = inspect(&short, &trust, NOW + 10).unwrap();
        assert!(later.verified);
        assert_eq!(payload_fields(&later).window_now, "expired");
        assert_eq!(
            payload_fields(&inspect(&payload, &trust, NOW - 1).unwrap()).window_now,
            "not yet valid"
        );
    }
}
