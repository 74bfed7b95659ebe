//! ren3-shared's Ed25519 checks against ed25519-dalek's `verify_strict`:
//! for any seed, message and signature (a valid one, one with bits
//! changed, or arbitrary bytes), the check with the key alone and the
//! check with the prepared key both give `verify_strict`'s answer.
#![no_main]

use ed25519_dalek::{Signer as _, SigningKey};
use libfuzzer_sys::fuzz_target;
use ren3_shared::PublicKey;
use ren3_shared::verify::PreparedKey;

fuzz_target!(|input: ([u8; 32], [u8; 64], bool, &[u8])| {
    let (seed, change, replace, message) = input;
    let signing = SigningKey::from_bytes(&seed);
    let mut signature = signing.sign(message).to_bytes();
    if replace {
        signature = change;
    } else {
        signature
            .iter_mut()
            .zip(change)
            .for_each(|(byte, bits)| *byte ^= bits);
    }
    let dalek = signing.verifying_key();
    let expected = dalek
        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_ok();
    let key = PublicKey::from_bytes(dalek.as_bytes()).expect("a signing key's public key is sound");
    assert_eq!(
        key.verify_strict(message, &signature),
        expected,
        "the key alone"
    );
    assert_eq!(
        PreparedKey::new(key).verify(message, &signature),
        expected,
        "the prepared key"
    );
});
