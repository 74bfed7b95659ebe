//! Reading any token for a person: its fields, and whether it verifies.
//!
//! A token that does not verify is still shown, decoded without its
//! signature check, next to the reason it failed: the vendor needs to see
//! what a customer sent to tell them what went wrong.

use std::collections::BTreeMap;

use ren3_shared::payload::{self, Window};
use ren3_shared::token::{self, Envelope, Kind};
use ren3_shared::{
    Digest, KeyId, License, LicenseRequest, Product, ReleaseReceipt, TokenError, TrustedKeys,
    VerifiedPayload, VerifiedReceipt, VerifiedRequest,
};
use serde::Serialize;

use crate::rfc3339;

/// What a payload's signature is checked against.
#[derive(Debug, Clone)]
pub enum TrustSource {
    /// Keys, and where they came from, in words ("the issuer store ...").
    Keys { keys: TrustedKeys, source: String },
    /// No keys: `why` says why, and how to give some.
    Unavailable { why: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error(
        "this is neither a license request, a license payload nor a release receipt: they \
         start with `{}`, `{}` and `{}` (an armoured block around any is fine)",
        Kind::Request.prefix(), Kind::Payload.prefix(), Kind::Receipt.prefix()
    )]
    UnknownKind,
}

/// Why a token does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable: the codes of [`TokenError::code`], or `no_trusted_keys`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// `request`, `payload` or `receipt`.
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
    Payload(PayloadFields),
    Receipt(ReceiptFields),
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
}

/// Inspects a request or a payload at time `now`.
pub fn inspect(input: &str, trust: &TrustSource, now: i64) -> Result<Inspection, InspectError> {
    match token::detect(input).ok_or(InspectError::UnknownKind)? {
        Kind::Request => Ok(inspect_request(input)),
        Kind::Payload => Ok(inspect_payload(input, trust, now)),
        Kind::Receipt => Ok(inspect_receipt(input)),
    }
}

fn inspect_receipt(input: &str) -> Inspection {
    let checked_against = Some("the device key it carries".to_owned());
    match VerifiedReceipt::open(input) {
        Ok(receipt) => Inspection {
            kind: "receipt",
            verified: true,
            checked_against,
            problem: None,
            fields: Some(Fields::Receipt(receipt_fields(
                &receipt.receipt,
                receipt.device_public_key.to_string(),
            ))),
        },
        Err(e) => Inspection {
            kind: "receipt",
            verified: false,
            checked_against,
            problem: Some(problem(&e)),
            fields: decode_unverified_receipt(input)
                .map(|(signer, receipt)| Fields::Receipt(receipt_fields(&receipt, signer))),
        },
    }
}

/// Reads a receipt's fields without checking its signature; `None` if the
/// envelope or the body cannot be read at all.
fn decode_unverified_receipt(input: &str) -> Option<(String, ReleaseReceipt)> {
    let envelope = Envelope::open(input, Kind::Receipt).ok()?;
    let receipt = serde_json::from_slice(envelope.body()).ok()?;
    Some((envelope.signer().to_owned(), receipt))
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

/// The verdict of [`crate::releases::check`] in the shape inspections use.
pub fn release_verdict(outcome: Result<(), crate::releases::ReleaseError>) -> ReleaseVerdict {
    match outcome {
        Ok(()) => ReleaseVerdict {
            would_release: true,
            problem: None,
        },
        Err(e) => ReleaseVerdict {
            would_release: false,
            problem: Some(Problem {
                code: e.code(),
                message: e.to_string(),
            }),
        },
    }
}

/// Reads `input` as a license request, whatever it holds: the fields of a
/// request that does not verify are still shown, next to the reason.
pub(crate) fn request(input: &str) -> Inspection {
    inspect_request(input)
}

fn inspect_request(input: &str) -> Inspection {
    let checked_against = Some("the device key it carries".to_owned());
    match VerifiedRequest::open(input) {
        Ok(request) => Inspection {
            kind: "request",
            verified: true,
            checked_against,
            problem: None,
            fields: Some(Fields::Request(request_fields(
                &request.request,
                request.device_public_key.to_string(),
                Some(request.hash()),
            ))),
        },
        Err(e) => Inspection {
            kind: "request",
            verified: false,
            checked_against,
            problem: Some(problem(&e)),
            fields: decode_unverified_request(input)
                .map(|(signer, request)| Fields::Request(request_fields(&request, signer, None))),
        },
    }
}

/// Reads a request's fields without checking its signature; `None` if the
/// envelope or the body cannot be read at all.
fn decode_unverified_request(input: &str) -> Option<(String, LicenseRequest)> {
    let envelope = Envelope::open(input, Kind::Request).ok()?;
    let request = serde_json::from_slice(envelope.body()).ok()?;
    Some((envelope.signer().to_owned(), request))
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
        device_public_key,
        request_hash,
    }
}

fn inspect_payload(input: &str, trust: &TrustSource, now: i64) -> Inspection {
    let unverified = |problem: Problem, checked_against: Option<String>| Inspection {
        kind: "payload",
        verified: false,
        checked_against,
        problem: Some(problem),
        fields: payload::decode_unverified(input)
            .ok()
            .map(|(key_id, license)| Fields::Payload(payload_fields(key_id, &license, now))),
    };
    match trust {
        TrustSource::Unavailable { why } => unverified(
            Problem {
                code: "no_trusted_keys",
                message: format!("there is no key to check its signature against: {why}"),
            },
            None,
        ),
        TrustSource::Keys { keys, source } => match VerifiedPayload::open(input, keys) {
            Ok(payload) => Inspection {
                kind: "payload",
                verified: true,
                checked_against: Some(format!("key `{}` of {source}", payload.key_id)),
                problem: None,
                fields: Some(Fields::Payload(payload_fields(
                    payload.key_id,
                    &payload.license,
                    now,
                ))),
            },
            Err(e) => unverified(problem(&e), Some(format!("the keys of {source}"))),
        },
    }
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
    use ren3_shared::{DeviceKey, IssuerKey};

    use super::*;
    use crate::issuance;
    use crate::signing_keys;
    use crate::testing::{NOW, TestStore, actor, request, tamper};

    fn store_trust(t: &TestStore) -> TrustSource {
        TrustSource::Keys {
            keys: signing_keys::trusted_keys(&t.store).unwrap(),
            source: "the test store".into(),
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
        assert_eq!(fields.serial, 1);
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
    fn inspect_reports_untrusted_keys_missing_keys_and_damage() {
        let (_, _, payload) = issued();
        let stranger = TrustSource::Keys {
            keys: TrustedKeys::new(vec![IssuerKey::from_seed(&[9; 32]).trusted_key(NOW, None)])
                .unwrap(),
            source: "another store".into(),
        };
        let cases = [
            (
                "1. untrusted key",
                payload.clone(),
                stranger,
                "unknown_key",
                true,
            ),
            (
                "2. no keys",
                payload.clone(),
                TrustSource::Unavailable {
                    why: "none given".into(),
                },
                "no_trusted_keys",
                true,
            ),
            (
                "3. damaged",
                payload[..payload.len() - 3].to_owned(),
                TrustSource::Unavailable {
                    why: "none given".into(),
                },
                "no_trusted_keys",
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
