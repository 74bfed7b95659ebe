//! Issues the benchmark payload N times (default 200) as `ren3_issue`
//! does (open the request, check the terms, sign, encode), and, with
//! `floor` as the second argument, runs the floor it is judged against
//! instead (the request's device key decoded from its 32 bytes, raw
//! `verify_strict` of the request and `sign` of the same payload message),
//! for instruction profiles that do not depend on the machine's load:
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo build --release -p ren3-bench --example profile_issue
//! valgrind --tool=callgrind target/release/examples/profile_issue 200
//! valgrind --tool=callgrind target/release/examples/profile_issue 200 floor
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```

#![allow(clippy::expect_used)]

use std::hint::black_box;

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use ren3_bench::{Inputs, raw_parts, terms_for};
use ren3_shared::{PublicKey, VerifiedRequest};

fn main() {
    let inputs = Inputs::new();
    let (rounds, floor) = ren3_bench::profile_args();
    if floor {
        let request = VerifiedRequest::open(&inputs.request_token).expect("the request verifies");
        let (request_message, request_signature) = raw_parts(&inputs.request_token);
        let request_signature = Signature::from_bytes(&request_signature);
        let (payload_message, _) = raw_parts(&inputs.payload_token);
        let signing = SigningKey::from_bytes(&Inputs::ISSUER_SEED);
        let device = request.device_public_key.to_bytes();
        for _ in 0..rounds {
            PublicKey::from_bytes(black_box(&device))
                .expect("the floor's key decodes")
                .verifying_key()
                .verify_strict(black_box(&request_message), &request_signature)
                .expect("the floor verifies");
            black_box(signing.sign(black_box(&payload_message)));
        }
        return;
    }
    for _ in 0..rounds {
        let request =
            VerifiedRequest::open(black_box(&inputs.request_token)).expect("the request verifies");
        let terms = inputs
            .signer
            .terms(terms_for(&request, 1))
            .expect("the terms are valid");
        black_box(inputs.signer.sign_terms(terms).token());
    }
}
