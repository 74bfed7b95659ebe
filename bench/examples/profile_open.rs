//! Opens the benchmark payload N times (default 200), its chain's three
//! signatures under the BENCH-ONLY root, for an instruction profile of
//! payload verification that does not depend on the machine's load; with
//! `floor` as the second argument, runs the floor it is judged against
//! instead (the chain's three raw `verify_strict` calls over the same
//! bytes, the issuer key decoded from the certificate's 32 bytes, the
//! root's already decoded):
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo build --release -p ren3-bench --example profile_open
//! valgrind --tool=callgrind target/release/examples/profile_open 200
//! valgrind --tool=callgrind target/release/examples/profile_open 200 floor
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```

#![allow(clippy::expect_used)]

use std::hint::black_box;

use ren3_bench::{Inputs, raw_parts};
use ren3_shared::{PublicKey, VerifiedPayload};

fn main() {
    let inputs = Inputs::new();
    let (rounds, floor) = ren3_bench::profile_args();
    if floor {
        let payload = VerifiedPayload::open(&inputs.payload_token, &inputs.root)
            .expect("the benchmark payload verifies");
        let root = inputs.root.public_key();
        let issuer = payload.certificate.body.public_key.to_bytes();
        let [certificate, signed, revocations] = [
            payload.certificate.token(),
            inputs.payload_token.clone(),
            payload.revocations.token(),
        ]
        .map(|token| raw_parts(&token));
        for _ in 0..rounds {
            assert!(root.verify_strict(black_box(&certificate.0), &certificate.1));
            let key = PublicKey::from_bytes(black_box(&issuer)).expect("the floor's key decodes");
            assert!(key.verify_strict(black_box(&signed.0), &signed.1));
            assert!(root.verify_strict(black_box(&revocations.0), &revocations.1));
        }
        return;
    }
    for _ in 0..rounds {
        let payload = VerifiedPayload::open(black_box(&inputs.payload_token), &inputs.root)
            .expect("the benchmark payload verifies");
        black_box(payload);
    }
}
