//! Verification and issuance against the cryptographic floor (raw
//! ed25519-dalek over the same bytes: for a payload, the three
//! `verify_strict` calls its chain needs) and against jsonwebtoken's EdDSA,
//! in the same run. `bench/report.py` turns the results into ratios; the
//! `paired` bench measures the same calls in alternating rounds.
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo bench -p ren3-bench --bench crypto_paths
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "common/contenders.rs"]
mod contenders;

use contenders::Contenders;
use criterion::{Criterion, criterion_group, criterion_main};

fn payload_verification(c: &mut Criterion) {
    let contenders = Contenders::new();
    let mut group = c.benchmark_group("payload_verification");
    group.bench_function("floor_verify_strict_x3", |b| {
        b.iter(|| contenders.floor_verify())
    });
    group.bench_function("floor_decoding_key_verify_strict_x3", |b| {
        b.iter(|| contenders.floor_verify_decoding_key())
    });
    group.bench_function("ren3_open_and_check", |b| {
        b.iter(|| contenders.ren3_verify())
    });
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| contenders.jwt_verify())
    });
    group.finish();
}

fn issue_one(c: &mut Criterion) {
    let contenders = Contenders::new();
    let mut group = c.benchmark_group("issue_one");
    group.bench_function("floor_verify_strict_and_sign", |b| {
        b.iter(|| contenders.floor_issue())
    });
    group.bench_function("floor_decoding_key_verify_strict_and_sign", |b| {
        b.iter(|| contenders.floor_issue_decoding_key())
    });
    group.bench_function("ren3_verify_sign_encode", |b| {
        b.iter(|| contenders.ren3_issue())
    });
    group.bench_function("ren3_sign_encode", |b| {
        b.iter(|| contenders.ren3_sign_only())
    });
    group.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| contenders.jwt_sign_only())
    });
    group.bench_function("jsonwebtoken_decode_request_and_encode", |b| {
        b.iter(|| contenders.jwt_issue())
    });
    group.finish();
}

criterion_group!(benches, payload_verification, issue_one);
criterion_main!(benches);
