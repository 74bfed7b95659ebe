//! Helpers for the end-to-end tests: the real `ren3-issuer` and
//! `ren3-client` binaries, each with its own temporary store, on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binaries;
mod client;
mod console;
mod issuer;
mod stores;
mod tokens;

pub use binaries::{client_bin, dev_client_bin, feed, issuer_bin, issuer_command};
pub use client::{Answer, Client};
pub use console::{Console, ConsoleSession, console_agent, csrf_of};
pub use issuer::Issuer;
pub use stores::{ClientStoreSnapshot, StoredLicense, StoredReceipt, sqlite_integrity};
pub use tokens::{
    payload_signed_by, replace_bytes, request_hash, reseal_with_edited_message,
    reseal_with_edited_signature, resign_with_edited_message, test_only_payload,
    test_only_payload_with, wrap_like_a_mail_client,
};

pub use ren3_testkit::{
    assert_is_this_checkouts_commit, chain, client_in, dump_sqlite, dump_sqlite_except, fixture,
    free_port, hostile, qr, test_only_issuer_key, test_only_root_key, test_only_signer,
};

/// A seeded random generator for a randomised test: the seed comes from
/// `REN3_TEST_SEED` if set (to replay a failure) and is always printed.
pub fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    use rand::SeedableRng as _;
    let seed = std::env::var("REN3_TEST_SEED")
        .ok()
        .map(|s| s.parse().expect("REN3_TEST_SEED is a u64"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with REN3_TEST_SEED={seed})");
    rand::rngs::StdRng::seed_from_u64(seed)
}
