//! Prepares a `ren3-client` store for `bench/http.sh`, with payloads signed
//! under the BENCH-ONLY root of `bench/bench-root.pub` (its seed is public:
//! never trust it outside benchmarks), by an issuer key that root certified
//! in-process (`ren3_bench::bench_signer`).
//!
//! A client trusts only the root compiled into it, so this binary, and the
//! `ren3-client` it prepares the store for, must be built with
//! `REN3_TRUST_ROOT=$PWD/bench/bench-root.pub` (`bench/http.sh` does); it
//! checks the client library it links and stops with that explanation
//! otherwise.
//!
//! In `--dir`, it writes `license.db`, a client store with a license
//! active: it registers and imports through the client's own library
//! (`AppState::register`, `AppState::import`), as `POST /license/register`
//! and `POST /license/import` do.
//!
//! With `--pending N` it also records N more pending requests, signed with
//! the store's device key, and writes `import-bodies.txt`: N
//! `POST /license/import` bodies, one a line, answering them in order with
//! serials 2 to N+1. Importing them in that order makes every import a new
//! active license, that is a real durable write; out of order, a payload is
//! refused (its request was forgotten when a later one was imported).
//! The client forgets the oldest requests beyond 16 only when it records a
//! new one, so these are written straight into `pending_requests`, with the
//! same columns as `store::insert_pending_request`, in one transaction.
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub \
//!     cargo run --release -p ren3-bench --bin http-prepare -- --dir /tmp/h --pending 20000
//! ```

use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use ren3_bench::{Inputs, bench_signer, client_pinning_problem};
use ren3_client::store::{self, StoreError};
use ren3_client::{AppState, Config, Imported};
use ren3_shared::{
    ClockPolicy, DeviceId, IssuerKey, License, LicenseKey, LicenseRequest, PayloadSigner, Product,
    VerifiedRequest, timestamp,
};

#[derive(Debug, Parser)]
#[command(about = "Prepares a ren3-client store for bench/http.sh (BENCH-ONLY root)")]
struct Args {
    /// The directory for `license.db` and `import-bodies.txt`; created if
    /// missing, and must not hold a store.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// How many more pending requests to record, with one import body each.
    #[arg(long, default_value_t = 0)]
    pending: u64,
    /// The fixtures directory (the license key and device id).
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"))]
    fixtures: PathBuf,
}

/// The product a request names, as the client's `register` does (both
/// crates have the workspace's version).
fn product() -> Product {
    Product {
        name: ren3_client::registration::PRODUCT_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

fn read_fixture(fixtures: &Path, name: &str) -> Result<String> {
    let path = fixtures.join(name);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the fixture `{}`", path.display()))?;
    Ok(text.trim().to_owned())
}

/// The payload the vendor would send for `request`, as the end-to-end tests
/// make it (`tests/src/lib.rs`, `test_only_payload`).
fn payload_for(
    signer: &PayloadSigner,
    request: &VerifiedRequest,
    serial: u64,
    now: i64,
) -> Result<String> {
    let license = License {
        customer: "ReN3 HTTP bench (BENCH-ONLY root)".into(),
        features: vec!["export".into(), "ingest".into()],
        limits: [("max-sources".to_owned(), 25)].into_iter().collect(),
        issued_at: now - 60,
        not_before: now - 60,
        expires_at: Some(4_000_000_000),
        grace_seconds: 0,
        clock_policy: ClockPolicy::Advisory,
        serial,
        license_key_fingerprint: request.request.license_key_fingerprint,
        client_device_id: request.request.client_device_id.clone(),
        device_public_key: request.device_public_key.into(),
        request_hash: request.hash(),
    };
    Ok(signer
        .sign_payload(&license)
        .context("cannot sign a payload")?
        .token())
}

fn import_body(license_key: &str, payload: &str) -> String {
    serde_json::json!({ "licenseKey": license_key, "licensePayload": payload }).to_string()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create `{}`", args.dir.display()))?;
    let db = args.dir.join("license.db");
    if db.exists() {
        bail!("`{}` exists; give an empty directory", db.display());
    }
    // Payloads under a root the client does not trust would only fail at
    // the first import, as `untrusted_root`: say what to do instead.
    if let Some(problem) = client_pinning_problem() {
        bail!("{problem}");
    }
    let signer = bench_signer(IssuerKey::from_seed(&Inputs::ISSUER_SEED));
    let license_key_text = read_fixture(&args.fixtures, "license-key.txt")?;
    let device_id_text = read_fixture(&args.fixtures, "device-id.txt")?;
    let license_key = LicenseKey::parse(&license_key_text).context("license-key.txt")?;
    let device_id = DeviceId::parse(&device_id_text).context("device-id.txt")?;

    let vars = [
        ("enable_offline_license", "true".to_owned()),
        ("client_device_id", device_id_text.clone()),
        ("license_db_path", db.display().to_string()),
    ];
    let config = Config::from_lookup(|name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    })
    .context("the client configuration")?;
    let state = AppState::open(&config)
        .await
        .context("cannot open the client store")?;

    // A license active, through the client's own register and import.
    let now = timestamp::now();
    let registration = state
        .register(&license_key_text)
        .await
        .context("register")?;
    let first = payload_for(&signer, &registration.request, 1, now)?;
    let imported = state
        .import(&license_key_text, &first)
        .await
        .context("import of serial 1")?;
    if imported != Imported::Installed {
        bail!("the first import did not install a license");
    }

    if args.pending > 0 {
        let count = args.pending;
        let requests = state
            .store()
            .call(move |conn| {
                let device = store::load_or_create_device_key(conn, now)?;
                let mut requests = Vec::new();
                let tx = store::write_transaction(conn)?;
                for _ in 0..count {
                    let request =
                        LicenseRequest::new(device_id.clone(), &license_key, product(), now)?
                            .sign(&device)
                            .map_err(|e| {
                                StoreError::Damaged(format!("cannot sign a request: {e}"))
                            })?;
                    store::write_pending_request(&tx, &request, now)?;
                    requests.push(request);
                }
                tx.commit()?;
                Ok::<_, StoreError>(requests)
            })
            .await
            .context("cannot record the pending requests")?;

        let bodies_path = args.dir.join("import-bodies.txt");
        let file = std::fs::File::create(&bodies_path)
            .with_context(|| format!("cannot create `{}`", bodies_path.display()))?;
        let mut out = BufWriter::new(file);
        for (serial, request) in (2..).zip(&requests) {
            let payload = payload_for(&signer, request, serial, now)?;
            writeln!(out, "{}", import_body(&license_key_text, &payload))?;
        }
        out.flush()
            .with_context(|| format!("cannot write `{}`", bodies_path.display()))?;
    }
    eprintln!(
        "prepared {}: a license active (serial 1){}",
        args.dir.display(),
        if args.pending > 0 {
            format!(
                ", {} pending requests and as many import bodies",
                args.pending
            )
        } else {
            String::new()
        }
    );
    Ok(())
}
