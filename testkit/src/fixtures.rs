//! The TEST-ONLY keys of `fixtures/`, whose seeds are public.

use std::path::{Path, PathBuf};

/// A path in `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// The TEST-ONLY issuer key of the golden vectors, for payloads the real
/// issuer would refuse to sign (an expired one, say).
pub fn test_only_issuer_key() -> ren3_shared::IssuerKey {
    ren3_shared::IssuerKey::from_seed(&fixture_seed("TEST-ONLY-issuer.key"))
}

/// The TEST-ONLY root key of the golden vectors: the root every client of
/// this workspace's builds is pinned to (`.cargo/config.toml`).
pub fn test_only_root_key() -> ren3_shared::RootKey {
    ren3_shared::RootKey::from_seed(&fixture_seed("TEST-ONLY-root.key"))
}

/// The seed in a TEST-ONLY key file of `fixtures/`.
fn fixture_seed(name: &str) -> [u8; 32] {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let seed_line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let seed: ren3_shared::binary::Bytes<32> = seed_line.trim().parse().unwrap();
    seed.0
}

/// The TEST-ONLY issuer key with the certificate and revocation list of
/// `fixtures/`: it signs payloads every test build of the client accepts.
pub fn test_only_signer() -> ren3_shared::PayloadSigner {
    let root = test_only_root_key().trust_root();
    let read = |name| std::fs::read_to_string(fixture(name)).unwrap();
    let certificate = ren3_shared::Certificate::open(&read("certificate.token"), &root).unwrap();
    let revocations = ren3_shared::RevocationList::open(&read("revocations.token"), &root).unwrap();
    ren3_shared::PayloadSigner::new(test_only_issuer_key(), certificate, revocations).unwrap()
}
