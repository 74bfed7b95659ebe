//! Issues one batch of requests through the library, as `ren3-issuer
//! issue` does, for an instruction profile of batch issuance: by default
//! 10 licenses of 100 devices; the arguments set the devices per license
//! and the licenses (`100 100` is the `batch_issue` bench's 10,000).
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo build --release -p ren3-bench --example profile_batch
//! valgrind --tool=callgrind target/release/examples/profile_batch
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```
//!
//! It prints the batch's wall-clock time too, which is only indicative.

#![allow(clippy::expect_used)]

use ren3_bench::NOW;
use ren3_bench::fill::{self, FillSpec};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::{StorePaths, issuance, setup};

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let devices_per_license = std::env::args()
        .nth(1)
        .map(|arg| {
            arg.parse()
                .expect("the argument is a number of devices per license")
        })
        .unwrap_or(100);
    let licenses = std::env::args()
        .nth(2)
        .map(|arg| {
            arg.parse()
                .expect("the second argument is a number of licenses")
        })
        .unwrap_or(10);
    let spec = FillSpec {
        licenses,
        devices_per_license,
        issue: false,
        varied: false,
        now: NOW,
    };
    let licenses = fill::fill(&dir.path().join("issuer.db"), spec, true).expect("a filled store");
    let requests = fill::first_requests(&licenses, NOW).expect("signed requests");
    let paths = StorePaths::new(dir.path().join("issuer.db"), None);
    let mut store = setup::open_store(&paths).expect("the store opens");
    let keys = setup::open_keys(&paths).expect("the keys open");
    let started = std::time::Instant::now();
    let results = issuance::issue_batch(&mut store, &keys, &Actor::cli(), &requests, NOW + 60)
        .expect("the batch commits");
    eprintln!("{} issued in {:?}", results.len(), started.elapsed());
    assert!(results.iter().all(Result::is_ok), "every request is issued");
}
