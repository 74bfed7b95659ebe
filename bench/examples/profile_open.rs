//! Opens the benchmark payload N times (default 200), its chain's three
//! signatures under the BENCH-ONLY root, for an instruction profile of
//! payload verification that does not depend on the machine's load:
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo build --release -p ren3-bench --example profile_open
//! valgrind --tool=callgrind target/release/examples/profile_open 200
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```

#![allow(clippy::expect_used)]

use ren3_bench::Inputs;
use ren3_shared::VerifiedPayload;

fn main() {
    let inputs = Inputs::new();
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("the argument is a number of rounds"))
        .unwrap_or(200);
    for _ in 0..rounds {
        let payload =
            VerifiedPayload::open(std::hint::black_box(&inputs.payload_token), &inputs.root)
                .expect("the benchmark payload verifies");
        std::hint::black_box(payload);
    }
}
