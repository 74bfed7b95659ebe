//! Properties of the formats: encoding then decoding is the identity, and
//! no single-byte change to a signed token is ever accepted.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use ren3_shared::binary::{self, Bytes};
use ren3_shared::{
    Certificate, ClockPolicy, DeviceId, DeviceKey, IssuerKey, Kind, License, LicenseKey,
    LicenseRequest, PayloadSigner, Product, ReleaseReceipt, RevocationList, RevocationListBody,
    RootKey, TrustRoot, VerifiedPayload, VerifiedReceipt, VerifiedRequest,
};
use sha2::{Digest as _, Sha256};

const DEVICE_ID: &str = "REN3D1-TEST0-DEV1C-E0000-00002";

fn root() -> RootKey {
    RootKey::from_seed(&[10; 32])
}

/// An issuer key certified by [`root`] for every representable time.
fn signer() -> PayloadSigner {
    let issuer = IssuerKey::from_seed(&[11; 32]);
    let request = issuer
        .certification_request(0, ren3_shared::timestamp::MAX, 0)
        .unwrap();
    let certificate = root().certify(&request, 0).unwrap();
    let revocations = root()
        .sign_revocations(RevocationListBody {
            version: 1,
            issued_at: 0,
            revoked: vec![],
        })
        .unwrap();
    PayloadSigner::new(issuer, certificate, revocations).unwrap()
}

fn trust() -> TrustRoot {
    root().trust_root()
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._-]{0,20}"
}

prop_compose! {
    fn license()(
        customer in "[A-Za-z0-9<>&\"'äöü€]([A-Za-z0-9<>&\"' äöü€-]{0,40}[A-Za-z0-9])?",
        features in prop::collection::btree_set(name(), 0..8),
        limits in prop::collection::btree_map(name(), any::<u64>(), 0..8),
        not_before in 0i64..4_000_000_000,
        lifetime in prop::option::of(1i64..1_000_000_000),
        grace in 0u64..=ren3_shared::payload::MAX_GRACE_SECONDS,
        enforcing in any::<bool>(),
        serial in 1u64..,
        fingerprint in any::<[u8; 32]>(),
        request_hash in any::<[u8; 32]>(),
        device_seed in any::<[u8; 32]>(),
    ) -> License {
        let expires_at = lifetime.map(|l| not_before + l);
        License {
            customer,
            features: features.into_iter().collect::<BTreeSet<_>>().into_iter().collect(),
            limits: limits.into_iter().collect::<BTreeMap<_, _>>(),
            issued_at: not_before,
            not_before,
            expires_at,
            grace_seconds: if expires_at.is_some() { grace } else { 0 },
            clock_policy: if enforcing { ClockPolicy::Enforcing } else { ClockPolicy::Advisory },
            serial,
            license_key_fingerprint: Bytes(fingerprint),
            client_device_id: DeviceId::parse(DEVICE_ID).unwrap(),
            device_public_key: DeviceKey::from_seed(&device_seed).public_key().into(),
            request_hash: Bytes(request_hash),
        }
    }
}

fn wrap(token: &str, width: usize) -> String {
    token
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

proptest! {
    #[test]
    fn payload_encode_then_decode_is_the_identity(license in license(), width in 1usize..100) {
        let token = signer().sign_payload(&license).unwrap().token();
        for text in [token.clone(), wrap(&token, width), Kind::Payload.armor(&token)] {
            let opened = VerifiedPayload::open(&text, &trust()).unwrap();
            prop_assert_eq!(&opened.license, &license);
            prop_assert_eq!(opened.token(), token.clone());
        }
    }

    #[test]
    fn request_and_receipt_encode_then_decode_is_the_identity(
        device_seed in any::<[u8; 32]>(),
        created_at in 0i64..4_000_000_000,
        version in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        serial in 1u64..,
        counter in 1u64..,
    ) {
        let device = DeviceKey::from_seed(&device_seed);
        let key = LicenseKey::parse("REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q").unwrap();
        let id = DeviceId::parse(DEVICE_ID).unwrap();
        let product = Product { name: "ren3-ingestor".into(), version };
        let request = LicenseRequest::new(id.clone(), &key, product, created_at).unwrap();
        let signed = request.sign(&device).unwrap();
        let opened = VerifiedRequest::open(&signed.token()).unwrap();
        prop_assert_eq!(&opened.request, &request);
        prop_assert_eq!(opened.hash(), signed.hash());

        let receipt = ReleaseReceipt {
            released_at: created_at,
            client_device_id: id,
            license_key_fingerprint: key.fingerprint(),
            serial,
            counter,
        };
        let opened = VerifiedReceipt::open(&receipt.sign(&device).unwrap().token()).unwrap();
        prop_assert_eq!(opened.receipt, receipt);
        prop_assert_eq!(opened.device_public_key, device.public_key());
    }
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Read once: the exhaustive test opens some hundred thousand tokens.
fn fixture_trust() -> &'static TrustRoot {
    static ROOT: std::sync::OnceLock<TrustRoot> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| TrustRoot::parse_public_file(&fixture("TEST-ONLY-root.pub")).unwrap())
}

/// Opens `text` as the kind of the golden token it was made from.
fn accepted(kind: Kind, text: &str) -> bool {
    match kind {
        Kind::Request => VerifiedRequest::open(text).is_ok(),
        Kind::Payload => VerifiedPayload::open(text, fixture_trust()).is_ok(),
        Kind::Receipt => VerifiedReceipt::open(text).is_ok(),
        Kind::Certificate => Certificate::open(text, fixture_trust()).is_ok(),
        Kind::RevocationList => RevocationList::open(text, fixture_trust()).is_ok(),
        Kind::CertificationRequest => ren3_shared::VerifiedCertificationRequest::open(text).is_ok(),
    }
}

const GOLDEN: [(Kind, &str); 6] = [
    (Kind::Request, "request.token"),
    (Kind::Payload, "payload.token"),
    (Kind::Receipt, "receipt.token"),
    (Kind::Certificate, "certificate.token"),
    (Kind::RevocationList, "revocations.token"),
    (Kind::CertificationRequest, "certification-request.token"),
];

/// Every position of every golden token, replaced by every other byte
/// value: none is accepted (the checksum or the structure catches it).
#[test]
fn every_single_byte_change_to_a_token_is_refused() {
    for (kind, file) in GOLDEN {
        let token = fixture(file);
        assert!(accepted(kind, &token), "the golden {file} must verify");
        let bytes = token.as_bytes();
        let mut tried = 0;
        for position in 0..bytes.len() {
            for value in 0..=255u8 {
                if value == bytes[position] {
                    continue;
                }
                let mut mutated = bytes.to_vec();
                mutated[position] = value;
                let Ok(text) = String::from_utf8(mutated) else {
                    continue; // not text: cannot even reach the parser as &str
                };
                assert!(
                    !accepted(kind, &text),
                    "{file}: byte {position} set to {value:#04x} was accepted"
                );
                tried += 1;
            }
        }
        assert!(
            tried > bytes.len() * 100,
            "{file}: only {tried} mutations tried"
        );
    }
}

/// Every bit of every golden token's signed message and signature,
/// flipped, with the checksum recomputed so that only the signature check
/// stands in the way: none is accepted.
#[test]
fn every_bit_flip_of_the_signed_bytes_fails_verification() {
    for (kind, file) in GOLDEN {
        let token = fixture(file);
        let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
        let parts: Vec<&str> = rest.split('.').collect();
        let message = binary::decode(parts[0]).unwrap();
        let signature = binary::decode(parts[1]).unwrap();
        let reseal = |message: &[u8], signature: &[u8]| {
            let signed = format!(
                "{prefix}{}.{}",
                binary::encode(message),
                binary::encode(signature)
            );
            let check = binary::encode(&Sha256::digest(signed.as_bytes())[..6]);
            format!("{signed}.{check}")
        };
        assert!(
            accepted(kind, &reseal(&message, &signature)),
            "{file}: resealing changed it"
        );
        for bit in 0..message.len() * 8 {
            let mut flipped = message.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !accepted(kind, &reseal(&flipped, &signature)),
                "{file}: message bit {bit}"
            );
        }
        for bit in 0..signature.len() * 8 {
            let mut flipped = signature.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !accepted(kind, &reseal(&message, &flipped)),
                "{file}: signature bit {bit}"
            );
        }
    }
}
