//! Batch issuance of 10,000 requests through the library against the
//! cryptographic floor for the same 10,000 (`common/batch.rs`).
//! `bench/report.py` shows the throughput ratio; the target is at least
//! 0.7x the floor's. The paired bench (`paired.rs`) measures the same two
//! in alternating rounds, which the machine's drift cannot skew.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "common/batch.rs"]
mod batch;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn batch_issue(c: &mut Criterion) {
    let batch = batch::Batch::new();
    let mut group = c.benchmark_group("batch_issue");
    group.sample_size(10);
    group.bench_function("floor_verify_strict_and_sign_10k", |b| {
        b.iter(|| batch.floor())
    });
    group.bench_function("ren3_issue_batch_10k", |b| {
        b.iter_batched_ref(
            || batch.fresh(),
            |fresh| batch.issue(fresh),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, batch_issue);
criterion_main!(benches);
