//! Any text as a license payload, against the TEST-ONLY root of the golden
//! vectors: never a panic, and nothing but the golden payload (whose keys'
//! seeds are public, but which the fuzzer cannot sign with) verifies unless
//! it is that payload again.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ren3_shared::{TrustRoot, VerifiedPayload};

static ROOT: LazyLock<TrustRoot> = LazyLock::new(|| {
    TrustRoot::parse_public_file(include_str!("../../fixtures/TEST-ONLY-root.pub"))
        .expect("the fixture root file parses")
});
static GOLDEN: LazyLock<String> =
    LazyLock::new(|| include_str!("../../fixtures/payload.token").trim().to_owned());

fuzz_target!(|text: &str| {
    if let Ok(payload) = VerifiedPayload::open(text, &ROOT) {
        assert_eq!(payload.token(), *GOLDEN, "a payload the test keys never signed verified");
    }
});
