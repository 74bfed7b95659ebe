//! `VerifiedPayload::open_after`: a payload that carries the chain of one
//! verified before is opened without checking the chain's root signatures
//! again, and must come out exactly as `open` makes it, accepted or
//! refused, whatever was changed around that chain.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ed25519_dalek::Signer as _;
use ren3_shared::binary::{Bytes, decode, encode};
use ren3_shared::{
    ClockPolicy, DeviceId, DeviceKey, IssuerKey, License, PayloadSigner, RevocationListBody,
    RootKey, VerifiedPayload,
};
use sha2::{Digest as _, Sha256};

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

const ISSUER_SEED: [u8; 32] = [5; 32];

/// A signer whose certificate ends at `not_after`, carrying list `version`.
fn signer(root: &RootKey, not_after: i64, version: u64) -> PayloadSigner {
    let key = IssuerKey::from_seed(&ISSUER_SEED);
    let request = key.certification_request(0, not_after, 10).unwrap();
    let certificate = root.certify(&request, 20).unwrap();
    let list = root
        .sign_revocations(RevocationListBody {
            version,
            issued_at: 50,
            revoked: vec![],
        })
        .unwrap();
    PayloadSigner::new(key, certificate, list).unwrap()
}

/// `token` with its signed message changed by `edit`, signed again with
/// `seed`, and its checksum made to match.
fn resigned(token: &str, seed: &[u8; 32], edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let mut message = decode(rest.split('.').next().unwrap()).unwrap();
    edit(&mut message);
    let signature = ed25519_dalek::SigningKey::from_bytes(seed).sign(&message);
    let signed = format!(
        "{prefix}{}.{}",
        encode(&message),
        encode(&signature.to_bytes())
    );
    let check = encode(&Sha256::digest(signed.as_bytes())[..6]);
    format!("{signed}.{check}")
}

/// Both ways of opening `token` give the same verdict: the same payload,
/// or the same refusal.
fn same_either_way(token: &str, root: &RootKey, known: &ren3_shared::VerifiedChain) -> String {
    let trust = root.trust_root();
    let plain = VerifiedPayload::open(token, &trust);
    let after = VerifiedPayload::open_after(token, &trust, Some(known));
    match (&plain, &after) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            "ok".into()
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            a.code().to_owned()
        }
        _ => panic!("open gave {plain:?}, open_after gave {after:?}"),
    }
}

#[test]
fn a_payload_with_the_known_chain_opens_as_open_opens_it() {
    let root = RootKey::from_seed(&[3; 32]);
    let signer = signer(&root, 1_000, 1);
    let first = signer.sign_payload(&terms(3)).unwrap();
    let known = VerifiedPayload::open(&first.token(), &root.trust_root())
        .unwrap()
        .chain();
    let second = signer.sign_payload(&terms(4)).unwrap();
    assert_eq!(same_either_way(&second.token(), &root, &known), "ok");
    // The first payload's own chain, too.
    assert_eq!(same_either_way(&first.token(), &root, &known), "ok");
}

#[test]
fn another_certificate_or_list_is_read_and_checked_not_taken_from_the_known_chain() {
    let root = RootKey::from_seed(&[3; 32]);
    let known = signer(&root, 1_000, 1)
        .sign_payload(&terms(3))
        .unwrap()
        .chain();
    // The same key certified for longer, and a newer list: other lines.
    for other in [signer(&root, 2_000, 1), signer(&root, 1_000, 2)] {
        let token = other.sign_payload(&terms(4)).unwrap().token();
        assert_eq!(same_either_way(&token, &root, &known), "ok");
        let opened = VerifiedPayload::open_after(&token, &root.trust_root(), Some(&known)).unwrap();
        assert_eq!(opened.certificate, other.certificate().clone());
        assert_eq!(opened.revocations, other.revocations().clone());
    }
}

#[test]
fn the_known_chain_lets_in_nothing_open_refuses() {
    let root = RootKey::from_seed(&[3; 32]);
    let signer = signer(&root, 1_000, 1);
    let known = signer.sign_payload(&terms(3)).unwrap().chain();
    let genuine = signer.sign_payload(&terms(4)).unwrap().token();

    // The genuine chain lines, the payload signed by another key.
    let rogue = resigned(&genuine, &[6; 32], |_| {});
    assert_eq!(same_either_way(&rogue, &root, &known), "signature_invalid");
    // The genuine chain lines, the license edited after signing.
    let edited = resigned(&genuine, &[6; 32], |message| {
        let at = message.len() - 2;
        message[at] ^= 1;
    });
    assert_ne!(same_either_way(&edited, &root, &known), "ok");
    // Every single byte of the certificate and list lines changed in turn,
    // the payload signed again by its genuine key: the lines are no longer
    // the known ones, so they are read and checked, and refused as open
    // refuses them.
    let message = decode(genuine.split('.').nth(1).unwrap()).unwrap();
    let start = message.iter().position(|&b| b == b'\n').unwrap() + 1;
    let start = start + message[start..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let lines_end = {
        let first = start + message[start..].iter().position(|&b| b == b'\n').unwrap() + 1;
        first + message[first..].iter().position(|&b| b == b'\n').unwrap()
    };
    let mut accepted = 0;
    for at in (start..lines_end).filter(|&at| message[at] != b'\n') {
        let token = resigned(&genuine, &ISSUER_SEED, |message| {
            message[at] = if message[at] == b'A' { b'B' } else { b'A' };
        });
        if same_either_way(&token, &root, &known) == "ok" {
            accepted += 1;
        }
    }
    // A change inside a line's checksum or prefix never verifies; only a
    // change the base64 decoding ignores could, and none does here.
    assert_eq!(accepted, 0);
}

#[test]
fn a_chain_known_under_another_root_is_not_used() {
    let root = RootKey::from_seed(&[3; 32]);
    let other_root = RootKey::from_seed(&[4; 32]);
    let known = signer(&root, 1_000, 1)
        .sign_payload(&terms(3))
        .unwrap()
        .chain();
    let token = signer(&root, 1_000, 1)
        .sign_payload(&terms(4))
        .unwrap()
        .token();
    let err =
        VerifiedPayload::open_after(&token, &other_root.trust_root(), Some(&known)).unwrap_err();
    assert_eq!(err.code(), "untrusted_root", "{err}");
}
