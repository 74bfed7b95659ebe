//! The golden vectors in `fixtures/`: every artefact is rebuilt from the
//! TEST-ONLY seeds and fixed fields, and must equal the committed bytes.
//!
//! Regenerate after an intended format change (which must also change the
//! format version): `REN3_BLESS=1 cargo test -p ren3-shared --test golden`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use ren3_shared::binary::{Bytes, encode};
use ren3_shared::{
    ClockPolicy, DeviceId, DeviceKey, IssuerKey, Kind, License, LicenseKey, LicenseRequest,
    Product, ReleaseReceipt, TrustedKeys, VerifiedPayload, VerifiedReceipt, VerifiedRequest,
};
use sha2::{Digest as _, Sha256};

const ISSUER_SEED_PHRASE: &str = "ren3 TEST-ONLY issuer key: never trust it outside tests";
const DEVICE_SEED_PHRASE: &str = "ren3 TEST-ONLY device key: never use it outside tests";
const LICENSE_KEY: &str = "REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q";
const DEVICE_ID: &str = "REN3D1-TEST0-DEV1C-E0000-00002";
const KEY_CREATED_AT: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn seed(phrase: &str) -> [u8; 32] {
    Sha256::digest(phrase.as_bytes()).into()
}

fn seed_file(phrase: &str, what: &str) -> String {
    format!(
        "# TEST ONLY: the {what} of the golden vectors. Its seed is public (SHA-256 of\n\
         # \"{phrase}\"),\n\
         # so anything it signs is forgeable by anyone. Never trust it outside tests.\n\
         {}\n",
        encode(&seed(phrase))
    )
}

/// Every golden file, by name, as this build produces it.
fn golden_files() -> Vec<(&'static str, String)> {
    let issuer = IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE));
    let device = DeviceKey::from_seed(&seed(DEVICE_SEED_PHRASE));
    let key = LicenseKey::parse(LICENSE_KEY).unwrap();
    let device_id = DeviceId::parse(DEVICE_ID).unwrap();

    let request = LicenseRequest {
        request_id: Bytes(std::array::from_fn(|i| i as u8)),
        created_at: 1_800_000_000,
        client_device_id: device_id.clone(),
        license_key_fingerprint: key.fingerprint(),
        product: Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        },
    };
    let request = request.sign(&device).unwrap();

    let license = License {
        customer: "ACME Test-Only GmbH".into(),
        features: vec!["export".into(), "ingest".into()],
        limits: BTreeMap::from([("max-sources".into(), 25)]),
        issued_at: 1_800_000_100,
        not_before: 1_800_000_100,
        expires_at: Some(1_831_536_000),
        grace_seconds: 14 * 24 * 60 * 60,
        clock_policy: ClockPolicy::Enforcing,
        serial: 1,
        license_key_fingerprint: key.fingerprint(),
        client_device_id: device_id,
        device_public_key: device.public_key().into(),
        request_hash: request.hash(),
    };
    let payload = issuer.sign_payload(&license).unwrap();
    let receipt = ReleaseReceipt {
        released_at: 1_810_000_000,
        client_device_id: license.client_device_id.clone(),
        license_key_fingerprint: key.fingerprint(),
        serial: 1,
        counter: 1,
    }
    .sign(&device)
    .unwrap();
    let trust = TrustedKeys::new(vec![issuer.trusted_key(KEY_CREATED_AT, None)]).unwrap();

    vec![
        (
            "TEST-ONLY-issuer.key",
            seed_file(ISSUER_SEED_PHRASE, "issuer signing key"),
        ),
        (
            "TEST-ONLY-device.key",
            seed_file(DEVICE_SEED_PHRASE, "device key"),
        ),
        ("license-key.txt", format!("{LICENSE_KEY}\n")),
        (
            "license-key.fingerprint",
            format!("{}\n", key.fingerprint()),
        ),
        ("device-id.txt", format!("{DEVICE_ID}\n")),
        ("trusted-keys.json", trust.to_file()),
        ("request.token", format!("{}\n", request.token())),
        ("request.hash", format!("{}\n", request.hash())),
        ("payload.token", format!("{}\n", payload.token())),
        ("payload.armored", Kind::Payload.armor(&payload.token())),
        ("receipt.token", format!("{}\n", receipt.token())),
    ]
}

#[test]
fn golden_vectors_match_committed_bytes() {
    let bless = std::env::var_os("REN3_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, expected) in golden_files() {
        let path = fixtures().join(name);
        if bless {
            std::fs::write(&path, &expected).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with REN3_BLESS=1 to create it",
                path.display()
            )
        });
        if committed != expected {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "these golden vectors differ from what this build produces: {stale:?}. \
         A format change must change the format version; then regenerate with REN3_BLESS=1"
    );
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap()
}

#[test]
fn committed_vectors_verify_and_decode() {
    let trust = TrustedKeys::parse(&read("trusted-keys.json")).unwrap();
    let request = VerifiedRequest::open(&read("request.token")).unwrap();
    assert_eq!(request.hash().to_string(), read("request.hash").trim());
    let payload = VerifiedPayload::open(&read("payload.token"), &trust).unwrap();
    assert_eq!(payload.license.request_hash, request.hash());
    assert_eq!(payload.license.device_public_key, request.device_public_key);
    let armored = VerifiedPayload::open(&read("payload.armored"), &trust).unwrap();
    assert_eq!(armored, payload);
    let receipt = VerifiedReceipt::open(&read("receipt.token")).unwrap();
    assert_eq!(receipt.device_public_key, request.device_public_key);
    assert_eq!(receipt.receipt.serial, payload.license.serial);
    let key = LicenseKey::parse(read("license-key.txt").trim()).unwrap();
    assert_eq!(
        key.fingerprint().to_string(),
        read("license-key.fingerprint").trim()
    );
}

/// The signed message of the committed payload, split as FORMAT.md says.
#[test]
fn payload_message_layout_is_as_specified() {
    let token = read("payload.token");
    let token = token.trim();
    let rest = token.strip_prefix("ren3-payload-v2.").unwrap();
    let parts: Vec<&str> = rest.split('.').collect();
    assert_eq!(parts.len(), 3);
    let message = ren3_shared::binary::decode(parts[0]).unwrap();
    let message = String::from_utf8(message).unwrap();
    let mut lines = message.splitn(3, '\n');
    assert_eq!(lines.next(), Some("ren3/license-payload/v2"));
    let issuer = IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE));
    assert_eq!(lines.next(), Some(issuer.key_id().to_string().as_str()));
    let body: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(body["customer"], "ACME Test-Only GmbH");
    assert_eq!(body["clockPolicy"], "enforcing");
    assert_eq!(ren3_shared::binary::decode(parts[1]).unwrap().len(), 64);
    assert_eq!(parts[2].len(), 8);
}

/// Key rotation as the client sees it: an unknown key and a retired key
/// are refused with their own codes; a payload issued before retirement
/// stays valid.
#[test]
fn payloads_of_unknown_and_retired_keys_are_refused() {
    let payload = read("payload.token");
    let issuer = IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE));
    let other = IssuerKey::from_seed(&[42; 32]);
    let cases = [
        (
            vec![other.trusted_key(KEY_CREATED_AT, None)],
            Some("unknown_key"),
        ),
        (
            vec![issuer.trusted_key(KEY_CREATED_AT, Some(1_800_000_100))],
            Some("key_retired"),
        ),
        (
            vec![issuer.trusted_key(KEY_CREATED_AT, Some(1_800_000_101))],
            None,
        ),
        (
            vec![
                other.trusted_key(KEY_CREATED_AT, None),
                issuer.trusted_key(KEY_CREATED_AT, None),
            ],
            None,
        ),
    ];
    for (i, (keys, expected)) in cases.into_iter().enumerate() {
        let trust = TrustedKeys::new(keys).unwrap();
        let got = VerifiedPayload::open(&payload, &trust)
            .err()
            .map(|e| e.code());
        assert_eq!(got, expected, "case {i}");
    }
}
