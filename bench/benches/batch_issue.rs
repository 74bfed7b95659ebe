//! Batch issuance of 10,000 requests through the library (one call, one
//! transaction, every check and write of a single issuance) against the
//! cryptographic floor for the same 10,000: raw `verify_strict` of each
//! request and a raw `sign` of each payload's bytes. `bench/report.py`
//! shows the throughput ratio; the target is at least 0.7x the floor's.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer as _};
use ren3_bench::fill::{self, FillSpec};
use ren3_bench::{NOW, raw_parts, terms_for};
use ren3_issuer::audit::Actor;
use ren3_issuer::{StorePaths, issuance, setup};
use ren3_shared::VerifiedRequest;

const REQUESTS: usize = 10_000;
const LICENSES: usize = 100;

/// A copy of the filled store in a fresh directory, so every measured batch
/// binds unbound devices, as a first issuance does.
fn fresh_copy(template: &Path) -> (tempfile::TempDir, StorePaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = StorePaths::new(dir.path().join("issuer.db"), None);
    std::fs::copy(template.join("issuer.db"), &paths.db).unwrap();
    // The key directory must be private, as `init` makes it.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&paths.keys_dir)
        .unwrap();
    for entry in std::fs::read_dir(template.join("issuer.db.keys")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), paths.keys_dir.join(entry.file_name())).unwrap();
    }
    (dir, paths)
}

fn batch_issue(c: &mut Criterion) {
    let template = tempfile::tempdir().unwrap();
    let licenses = fill::fill(
        &template.path().join("issuer.db"),
        FillSpec {
            licenses: LICENSES,
            devices_per_license: REQUESTS / LICENSES,
            issue: false,
            varied: false,
            now: NOW,
        },
        true,
    )
    .unwrap();
    let requests = fill::first_requests(&licenses, NOW).unwrap();
    assert_eq!(requests.len(), REQUESTS);

    // The floor's inputs: each request's signed bytes, and the bytes of a
    // payload with the same terms' size, signed with the store's key.
    let paths = StorePaths::new(template.path().join("issuer.db"), None);
    let issuer = {
        let store = setup::open_store(&paths).unwrap();
        let keys = setup::open_keys(&paths).unwrap();
        let trusted = ren3_issuer::signing_keys::trusted_keys(&store).unwrap();
        let key_id = trusted.keys()[0].key_id;
        keys.load(&key_id).unwrap()
    };
    let floor_inputs: Vec<_> = requests
        .iter()
        .map(|token| {
            let (message, signature) = raw_parts(token);
            let request = VerifiedRequest::open(token).unwrap();
            let payload = issuer.sign_payload(&terms_for(&request, 1)).unwrap();
            let (payload_message, _) = raw_parts(&payload.token());
            (
                request.device_public_key,
                message,
                Signature::from_bytes(&signature),
                payload_message,
            )
        })
        .collect();
    let signing = ed25519_dalek::SigningKey::from_bytes(issuer.seed());

    let mut group = c.benchmark_group("batch_issue");
    group.sample_size(10);
    group.bench_function("floor_verify_strict_and_sign_10k", |b| {
        b.iter(|| {
            for (device_key, message, signature, payload) in &floor_inputs {
                device_key
                    .verifying_key()
                    .verify_strict(black_box(message), signature)
                    .unwrap();
                black_box(signing.sign(black_box(payload)));
            }
        })
    });
    group.bench_function("ren3_issue_batch_10k", |b| {
        b.iter_batched(
            || {
                let (dir, paths) = fresh_copy(template.path());
                let store = setup::open_store(&paths).unwrap();
                let keys = setup::open_keys(&paths).unwrap();
                (dir, store, keys)
            },
            |(dir, mut store, keys)| {
                let results =
                    issuance::issue_batch(&mut store, &keys, &Actor::cli(), &requests, NOW + 60)
                        .unwrap();
                assert!(results.iter().all(|r| matches!(r, Ok(i) if !i.repeated)));
                (dir, store, results)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, batch_issue);
criterion_main!(benches);
