//! The ingestor's per-request license check through the library API,
//! against an empty function call in the same run, and a count of the
//! allocations it makes (there must be none).
//!
//! The license is a BENCH-ONLY payload imported through the client, which
//! trusts only the root compiled into it, so the client must be built
//! pinned to the BENCH-ONLY root; the bench says so and stops otherwise:
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo bench -p ren3-bench --bench hot_path
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ren3_bench::{Inputs, require_client_pinned_to_bench_root, terms_for};
use ren3_client::{AppState, Config, LicenseHandle};
use ren3_shared::{LicenseKey, VerifiedRequest};

/// dhat counts every allocation of the process (and needs no unsafe code
/// here, which the workspace forbids).
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// A client store with an imported license, opened through the public API.
fn licensed_handle() -> (LicenseHandle, tempfile::TempDir) {
    require_client_pinned_to_bench_root();
    let dir = tempfile::tempdir().unwrap();
    let inputs = Inputs::new();
    let db = dir.path().join("license.db");
    let config = Config::from_lookup(|name| match name {
        "enable_offline_license" => Some("true".into()),
        "client_device_id" => Some("REN3D1-TEST0-DEV1C-E0000-00002".into()),
        "license_db_path" => Some(db.to_string_lossy().into_owned()),
        _ => None,
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = LicenseKey::parse("REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q").unwrap();
    let handle = runtime.block_on(async {
        let state = AppState::open(&config).await.unwrap();
        let registration = state.register(key.reveal()).await.unwrap();
        let request = VerifiedRequest::open(&registration.request.token()).unwrap();
        let mut terms = terms_for(&request, 1);
        let now = ren3_shared::timestamp::now();
        terms.issued_at = now - 60;
        terms.not_before = now - 60;
        terms.expires_at = Some(now + 365 * 86_400);
        let payload = inputs.signer.sign_payload(&terms).unwrap().token();
        state.import(key.reveal(), &payload).await.unwrap();
        state.license()
    });
    assert!(
        handle.is_licensed(),
        "the benchmark needs a licensed handle"
    );
    (handle, dir)
}

#[inline(never)]
fn empty_call(x: u64) -> u64 {
    x
}

fn hot_path(c: &mut Criterion) {
    let (handle, _dir) = licensed_handle();

    // No allocation on the hot path: counted over many calls.
    let allocations = {
        let _profiler = dhat::Profiler::builder().testing().build();
        let before = dhat::HeapStats::get().total_blocks;
        for _ in 0..10_000 {
            black_box(handle.is_licensed());
            black_box(handle.has_feature(black_box("ingest")));
            black_box(handle.limit(black_box("max-sources")));
        }
        dhat::HeapStats::get().total_blocks - before
    };
    println!("hot_path: {allocations} allocations in 30,000 checks");
    assert_eq!(allocations, 0, "the license check allocates");

    let mut group = c.benchmark_group("hot_path");
    group.bench_function("empty_call", |b| b.iter(|| empty_call(black_box(7))));
    group.bench_function("license_check", |b| {
        // One check answers both questions: licensed, and for this feature.
        b.iter(|| handle.has_feature(black_box("ingest")))
    });
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
