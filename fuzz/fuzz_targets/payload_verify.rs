//! Any text as a license payload, against the TEST-ONLY trusted key of the
//! golden vectors: never a panic, and nothing but the golden payload (whose
//! key's seed is public, but which the fuzzer cannot sign with) verifies
//! unless it is that payload again.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use ren3_shared::{TrustedKeys, VerifiedPayload};

static TRUST: LazyLock<TrustedKeys> = LazyLock::new(|| {
    TrustedKeys::parse(include_str!("../../fixtures/trusted-keys.json"))
        .expect("the fixture trust file parses")
});
static GOLDEN: LazyLock<String> =
    LazyLock::new(|| include_str!("../../fixtures/payload.token").trim().to_owned());

fuzz_target!(|text: &str| {
    if let Ok(payload) = VerifiedPayload::open(text, &TRUST) {
        assert_eq!(payload.token(), *GOLDEN, "a payload the test key never signed verified");
    }
});
