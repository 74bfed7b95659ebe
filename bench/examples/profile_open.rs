//! Opens the benchmark payload N times (default 200), its chain's three
//! signatures under the BENCH-ONLY root, for an instruction profile of
//! payload verification that does not depend on the machine's load; with
//! `floor` as the second argument, runs the floor it is judged against
//! instead (the chain's three raw `verify_strict` calls over the same
//! bytes, keys already decoded):
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
use ren3_shared::VerifiedPayload;

fn main() {
    let inputs = Inputs::new();
    let (rounds, floor) = ren3_bench::profile_args();
    if floor {
        let payload = VerifiedPayload::open(&inputs.payload_token, &inputs.root)
            .expect("the benchmark payload verifies");
        let signed = [
            (inputs.root.public_key(), payload.certificate.token()),
            (
                payload.certificate.body.public_key,
                inputs.payload_token.clone(),
            ),
            (inputs.root.public_key(), payload.revocations.token()),
        ]
        .map(|(key, token)| {
            let (message, signature) = raw_parts(&token);
            (key, message, signature)
        });
        for _ in 0..rounds {
            for (key, message, signature) in &signed {
                assert!(key.verify_strict(black_box(message), signature));
            }
        }
        return;
    }
    for _ in 0..rounds {
        let payload = VerifiedPayload::open(black_box(&inputs.payload_token), &inputs.root)
            .expect("the benchmark payload verifies");
        black_box(payload);
    }
}
