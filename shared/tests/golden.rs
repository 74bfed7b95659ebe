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
    Certificate, ClockPolicy, DeviceId, DeviceKey, IssuerKey, Kind, License, LicenseKey,
    LicenseRequest, PayloadSigner, Product, ReleaseReceipt, Revocation, RevocationList,
    RevocationListBody, RootKey, TrustRoot, VerifiedCertificationRequest, VerifiedPayload,
    VerifiedReceipt, VerifiedRequest,
};
use sha2::{Digest as _, Sha256};

const ROOT_SEED_PHRASE: &str = "ren3 TEST-ONLY root key: never trust it outside tests";
const ISSUER_SEED_PHRASE: &str = "ren3 TEST-ONLY issuer key: never trust it outside tests";
const DEVICE_SEED_PHRASE: &str = "ren3 TEST-ONLY device key: never use it outside tests";
const LICENSE_KEY: &str = "REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q";
const DEVICE_ID: &str = "REN3D1-TEST0-DEV1C-E0000-00002";
const KEY_CREATED_AT: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z
/// The TEST-ONLY certificate's window starts well before today, so that
/// tests may sign payloads at the real time.
const KEY_NOT_BEFORE: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z
const KEY_NOT_AFTER: i64 = 2_114_380_800; // 2037-01-01T00:00:00Z

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
    let root = RootKey::from_seed(&seed(ROOT_SEED_PHRASE));
    let issuer = IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE));
    let certification_request = issuer
        .certification_request(KEY_NOT_BEFORE, KEY_NOT_AFTER, KEY_CREATED_AT)
        .unwrap();
    let certificate = root
        .certify(&certification_request, KEY_CREATED_AT)
        .unwrap();
    let revocations = root
        .sign_revocations(RevocationListBody {
            version: 1,
            issued_at: KEY_CREATED_AT,
            revoked: vec![],
        })
        .unwrap();
    let signer = PayloadSigner::new(
        IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE)),
        certificate.clone(),
        revocations.clone(),
    )
    .unwrap();
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
        counter: 1,
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
    let payload = signer.sign_payload(&license).unwrap();
    let receipt = ReleaseReceipt {
        released_at: 1_810_000_000,
        client_device_id: license.client_device_id.clone(),
        license_key_fingerprint: key.fingerprint(),
        serial: 1,
        counter: 2,
    }
    .sign(&device)
    .unwrap();
    vec![
        (
            "TEST-ONLY-root.key",
            seed_file(ROOT_SEED_PHRASE, "root key"),
        ),
        ("TEST-ONLY-root.pub", root.trust_root().to_public_file()),
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
        (
            "certification-request.token",
            format!("{}\n", certification_request.token()),
        ),
        ("certificate.token", format!("{}\n", certificate.token())),
        ("revocations.token", format!("{}\n", revocations.token())),
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

fn test_only_root() -> TrustRoot {
    TrustRoot::parse_public_file(&read("TEST-ONLY-root.pub")).unwrap()
}

#[test]
fn the_test_only_root_is_the_one_builds_refuse_in_release() {
    let root = test_only_root();
    assert!(root.is_test_only());
    assert_eq!(
        root,
        RootKey::from_seed(&seed(ROOT_SEED_PHRASE)).trust_root()
    );
}

#[test]
fn committed_vectors_verify_and_decode() {
    let root = test_only_root();
    let request = VerifiedRequest::open(&read("request.token")).unwrap();
    assert_eq!(request.hash().to_string(), read("request.hash").trim());
    let payload = VerifiedPayload::open(&read("payload.token"), &root).unwrap();
    assert_eq!(payload.license.request_hash, request.hash());
    assert_eq!(payload.license.device_public_key, request.device_public_key);
    let armored = VerifiedPayload::open(&read("payload.armored"), &root).unwrap();
    assert_eq!(armored, payload);
    let certificate = Certificate::open(&read("certificate.token"), &root).unwrap();
    assert_eq!(payload.certificate, certificate);
    let revocations = RevocationList::open(&read("revocations.token"), &root).unwrap();
    assert_eq!(payload.revocations, revocations);
    let request_to_certify =
        VerifiedCertificationRequest::open(&read("certification-request.token")).unwrap();
    assert_eq!(request_to_certify.public_key, certificate.body.public_key);
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
    let rest = token.strip_prefix("ren3-payload-v3.").unwrap();
    let parts: Vec<&str> = rest.split('.').collect();
    assert_eq!(parts.len(), 3);
    let message = ren3_shared::binary::decode(parts[0]).unwrap();
    let message = String::from_utf8(message).unwrap();
    let mut lines = message.splitn(5, '\n');
    assert_eq!(lines.next(), Some("ren3/license-payload/v3"));
    let issuer = IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE));
    assert_eq!(lines.next(), Some(issuer.key_id().to_string().as_str()));
    assert_eq!(lines.next(), Some(read("certificate.token").trim()));
    assert_eq!(lines.next(), Some(read("revocations.token").trim()));
    let body: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(body["customer"], "ACME Test-Only GmbH");
    assert_eq!(body["clockPolicy"], "enforcing");
    assert_eq!(ren3_shared::binary::decode(parts[1]).unwrap().len(), 64);
    assert_eq!(parts[2].len(), 8);
}

/// The signed messages of a certificate and a revocation list: the root's
/// key id on the signer line, each in its own signing domain.
#[test]
fn root_signed_messages_have_their_own_domains() {
    let root = test_only_root();
    for (file, prefix, domain) in [
        (
            "certificate.token",
            "ren3-certificate-v1.",
            "ren3/issuer-certificate/v1",
        ),
        (
            "revocations.token",
            "ren3-revocations-v1.",
            "ren3/revocation-list/v1",
        ),
    ] {
        let token = read(file);
        let rest = token.trim().strip_prefix(prefix).unwrap();
        let message = ren3_shared::binary::decode(rest.split('.').next().unwrap()).unwrap();
        let message = String::from_utf8(message).unwrap();
        let mut lines = message.splitn(3, '\n');
        assert_eq!(lines.next(), Some(domain), "{file}");
        assert_eq!(
            lines.next(),
            Some(root.key_id().to_string().as_str()),
            "{file}"
        );
    }
    let domains: std::collections::BTreeSet<&str> = Kind::ALL.iter().map(|k| k.domain()).collect();
    assert_eq!(
        domains.len(),
        Kind::ALL.len(),
        "every kind has its own domain"
    );
}

/// What the chain refuses, each with its own code: a payload under
/// another root, a certificate whose window does not cover `issuedAt`, a
/// payload whose key a newer list revokes, and a signature that is not the
/// certified key's.
#[test]
fn payloads_outside_the_chain_are_refused_with_their_own_codes() {
    let root_key = RootKey::from_seed(&seed(ROOT_SEED_PHRASE));
    let root = root_key.trust_root();
    let issuer = || IssuerKey::from_seed(&seed(ISSUER_SEED_PHRASE));
    let list = |version, revoked| {
        root_key
            .sign_revocations(RevocationListBody {
                version,
                issued_at: KEY_CREATED_AT,
                revoked,
            })
            .unwrap()
    };
    let payload = VerifiedPayload::open(&read("payload.token"), &root).unwrap();
    let license = payload.license.clone();

    // Another root: every step of the chain is refused at the first.
    let stranger = RootKey::from_seed(&[42; 32]).trust_root();
    let err = VerifiedPayload::open(&read("payload.token"), &stranger).unwrap_err();
    assert_eq!(err.code(), "untrusted_root", "{err}");

    // A window that ends at issuedAt.
    let short = root_key
        .certify(
            &issuer()
                .certification_request(KEY_NOT_BEFORE, license.issued_at, KEY_CREATED_AT)
                .unwrap(),
            KEY_CREATED_AT,
        )
        .unwrap();
    let signer = PayloadSigner::new(issuer(), short.clone(), list(1, vec![])).unwrap();
    assert_eq!(
        signer.terms(license.clone()).unwrap_err().code(),
        "outside_certificate"
    );

    // A certificate for another key in place of ours: found before the
    // signature is checked. A swapped or stripped revocation list breaks
    // the issuer's signature, which covers it.
    let other = IssuerKey::from_seed(&[43; 32]);
    let other_certificate = root_key
        .certify(
            &other
                .certification_request(KEY_NOT_BEFORE, KEY_NOT_AFTER, KEY_CREATED_AT)
                .unwrap(),
            KEY_CREATED_AT,
        )
        .unwrap();
    let token = read("payload.token");
    let certificate = read("certificate.token");
    let revocations = read("revocations.token");
    let cases = [
        (
            certificate.trim(),
            other_certificate.token(),
            "certificate_invalid",
        ),
        (
            revocations.trim(),
            list(2, vec![]).token(),
            "signature_invalid",
        ),
        (
            &format!("{}\n", revocations.trim()),
            String::new(),
            "token_invalid",
        ),
    ];
    for (i, (from, to, code)) in cases.into_iter().enumerate() {
        let edited = reseal_payload(&token, |message| message.replacen(from, &to, 1));
        let err = VerifiedPayload::open(&edited, &root).unwrap_err();
        assert_eq!(err.code(), code, "case {i}: {err}");
    }

    // A newer list that revokes the key: the payload's own chain still
    // verifies, and the caller's newest list names the revocation.
    let revocation = Revocation {
        key_id: payload.key_id,
        revoked_at: 1_800_000_200,
        grace_until: 1_800_000_200,
    };
    let newer = list(2, vec![revocation.clone()]);
    assert_eq!(payload.revocations.newest(&newer), &newer);
    assert_eq!(payload.revocation_in(&newer), Some(&revocation));
    assert_eq!(payload.revoked_error(&revocation).code(), "key_revoked");
    assert_eq!(payload.revocation_in(&payload.revocations), None);
}

/// The payload token with its signed message edited and its checksum
/// made right again, so that only the signature can refuse it.
fn reseal_payload(token: &str, edit: impl FnOnce(String) -> String) -> String {
    let rest = token.trim().strip_prefix("ren3-payload-v3.").unwrap();
    let mut parts = rest.split('.');
    let message = ren3_shared::binary::decode(parts.next().unwrap()).unwrap();
    let message = edit(String::from_utf8(message).unwrap());
    let signed = format!(
        "ren3-payload-v3.{}.{}",
        encode(message.as_bytes()),
        parts.next().unwrap()
    );
    let check = &Sha256::digest(signed.as_bytes())[..6];
    format!("{signed}.{}", encode(check))
}
