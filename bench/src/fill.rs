//! Filling an issuer store with generated licenses, devices and issuances,
//! for the scale measurements and the batch-issuance benchmark.
//!
//! The store is made by the issuer's own `init` (schema migrations and a
//! real signing key), under the BENCH-ONLY root (`crate::bench_root_key`),
//! which `init` adopts from `<db>.root` and certifies the key with; the rows
//! then go in through direct, prepared inserts in large transactions,
//! because a million licenses created one command at a time would take
//! hours. Every payload is really signed, on every core, with the chain the
//! store's own issuance signs with: its current key, that key's certificate
//! and the store's revocation list ([`store_signer`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::{InitOptions, StorePaths, chain, setup, signing_keys};
use ren3_shared::binary::{Bytes, os_random};
use ren3_shared::{
    ClockPolicy, DeviceId, DeviceKey, License, LicenseKey, LicenseRequest, PayloadSigner, Product,
};
use rusqlite::{Connection, params};

/// Rows generated and inserted per transaction.
const CHUNK: usize = 20_000;

const DAY: i64 = 86_400;

const FIRST_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "Black Mesa",
    "Nakatomi",
    "Monarch",
    "Massive",
    "Dunder",
    "Pied Piper",
    "Prestige",
    "Sterling",
    "Bluth",
    "Nordwind",
    "Alpen",
    "Rhein",
    "Elbe",
    "Baltic",
    "Atlas",
    "Zenith",
    "Polaris",
    "Orion",
    "Vega",
    "Helios",
    "Boreal",
    "Granite",
    "Cedar",
    "Harbor",
    "Summit",
];
const SECOND_WORDS: &[&str] = &[
    "Logistics",
    "Freight",
    "Analytics",
    "Systems",
    "Dynamics",
    "Energy",
    "Foods",
    "Pharma",
    "Robotics",
    "Textiles",
    "Mining",
    "Shipping",
    "Telecom",
    "Insurance",
    "Media",
    "Labs",
    "Motors",
    "Aviation",
    "Chemicals",
    "Software",
    "Retail",
    "Capital",
    "Health",
    "Security",
    "Water",
];
const SUFFIXES: &[&str] = &["GmbH", "AG", "Ltd", "Inc.", "S.A.", "B.V.", "KG", "Oy"];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct FillSpec {
    pub licenses: usize,
    pub devices_per_license: usize,
    /// Bind every device and give it one signed issuance; otherwise the
    /// devices stay unbound, waiting for their first request.
    pub issue: bool,
    /// Spread the licenses' states and expiries as a real store has them
    /// (some suspended, revoked, expiring soon); otherwise every license is
    /// active and never expires, so every request for it can be issued.
    pub varied: bool,
    /// The time the rows are created at; expiries are spread around it.
    pub now: i64,
}

/// A generated license and its devices, for callers that make requests.
#[derive(Debug, Clone)]
pub struct FilledLicense {
    pub key: LicenseKey,
    pub devices: Vec<DeviceId>,
}

/// One signed license request for every device of `licenses`, in order,
/// each from its own installation key: a batch for `ren3-issuer issue`.
pub fn first_requests(licenses: &[FilledLicense], now: i64) -> Result<Vec<String>> {
    let product = Product {
        name: "ren3-ingestor".into(),
        version: "1.0.0".into(),
    };
    licenses
        .iter()
        .flat_map(|license| license.devices.iter().map(move |d| (&license.key, d)))
        .enumerate()
        .map(|(n, (key, device))| {
            let mut seed = [0; 32];
            seed[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
            let request = LicenseRequest::new(device.clone(), key, product.clone(), now)?
                .sign(&DeviceKey::from_seed(&seed))?;
            Ok(request.token())
        })
        .collect()
}

/// A small deterministic generator for the fields' spread (splitmix64).
struct Spread(u64);

impl Spread {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One license's generated rows.
struct Row {
    key: LicenseKey,
    customer: String,
    features: Vec<String>,
    limits: BTreeMap<String, u64>,
    expires_at: Option<i64>,
    max_devices: u32,
    status: &'static str,
    created_at: i64,
    grace_seconds: u64,
    clock_policy: ClockPolicy,
    devices: Vec<GeneratedDevice>,
}

struct GeneratedDevice {
    id: DeviceId,
    /// The installation key, and the signed payload, when bound.
    bound: Option<(String, Issued)>,
}

struct Issued {
    request_hash: String,
    request_id: String,
    payload: String,
}

/// The root directory [`fill`] gives a store at `db`: `<db>.root`.
pub fn root_dir_of(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(".root");
    PathBuf::from(name)
}

/// Places the BENCH-ONLY root key in `dir` (which must not exist), plain,
/// as a vendor brings an existing offline root for `init` to adopt: the
/// directory 0700, `root.key` 0600.
fn place_bench_root(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the root directory {}", dir.display()))?;
    let path = dir.join(ren3_issuer_core::root::ROOT_KEY_FILE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(
        file,
        "# BENCH-ONLY: the benchmarks' root (bench/bench-root.pub), whose seed is public
\
         ren3-root-key-seed-v1: {}",
        ren3_shared::binary::encode(crate::bench_root_key().seed())
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// What the store at `paths` signs new payloads with, through the issuer's
/// public API: its current key, loaded from the key directory, with that
/// key's stored certificate and the store's revocation list.
pub fn store_signer(paths: &StorePaths) -> Result<PayloadSigner> {
    let store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?;
    let current = signing_keys::list(&store)?
        .into_iter()
        .find(|entry| entry.signs_new_payloads)
        .context("the store has no key that signs new payloads")?
        .key
        .key_id;
    let trust = chain::overview(&store)?;
    let certificate = trust
        .certificate(&current)
        .cloned()
        .with_context(|| format!("the store has no certificate of its key {current}"))?;
    let revocations = trust
        .revocations
        .context("the store has no revocation list")?;
    Ok(PayloadSigner::new(
        keys.load(&current)?,
        certificate,
        revocations,
    )?)
}

/// Creates a store at `db` (which must not exist) with its signing key in
/// `<db>.keys`, rooted in the BENCH-ONLY root placed in `<db>.root`, and
/// fills it as `spec` says. Returns the licenses with their keys only when
/// `keep_keys` (a million keys is memory for nothing).
pub fn fill(db: &Path, spec: FillSpec, keep_keys: bool) -> Result<Vec<FilledLicense>> {
    if spec.devices_per_license == 0 && spec.issue {
        bail!("issuances need devices: give at least one device per license");
    }
    let paths = StorePaths::new(db.to_path_buf(), None);
    let root_dir = root_dir_of(db);
    place_bench_root(&root_dir)?;
    // Made 400 days back, so that the key's certificate (five years from
    // then) covers every generated issuance, a year deep at most, and now.
    setup::init(
        &paths,
        &InitOptions::new(root_dir),
        &Actor::cli(),
        spec.now - 400 * DAY,
    )
    .with_context(|| format!("cannot create the issuer store at {}", db.display()))?;
    let signer = store_signer(&paths)?;
    let key_id = signer.key_id().to_string();

    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // A generator that dies half-way is simply run again on a new path, so
    // it does not pay for a sync per transaction.
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;

    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut kept = Vec::new();
    let mut start = 0;
    while start < spec.licenses {
        let count = CHUNK.min(spec.licenses - start);
        let rows = generate(start, count, spec, &signer, threads)?;
        insert(&mut conn, &rows, &key_id, spec.now)?;
        if keep_keys {
            kept.extend(rows.into_iter().map(|row| FilledLicense {
                key: row.key,
                devices: row.devices.into_iter().map(|d| d.id).collect(),
            }));
        }
        start += count;
    }
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    conn.execute_batch("ANALYZE")?;
    Ok(kept)
}

/// Generates licenses `start..start + count`, split over `threads`.
fn generate(
    start: usize,
    count: usize,
    spec: FillSpec,
    signer: &PayloadSigner,
    threads: usize,
) -> Result<Vec<Row>> {
    let per_thread = count.div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (start..start + count)
            .step_by(per_thread)
            .map(|from| {
                let to = (from + per_thread).min(start + count);
                scope.spawn(move || (from..to).map(|n| row(n, spec, signer)).collect())
            })
            .collect();
        let mut rows = Vec::with_capacity(count);
        for handle in handles {
            let part: Result<Vec<Row>> = match handle.join() {
                Ok(part) => part,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            rows.extend(part?);
        }
        Ok(rows)
    })
}

fn row(n: usize, spec: FillSpec, signer: &PayloadSigner) -> Result<Row> {
    let mut spread = Spread(n as u64);
    let customer = format!(
        "{} {} {}",
        FIRST_WORDS[spread.below(FIRST_WORDS.len())],
        SECOND_WORDS[spread.below(SECOND_WORDS.len())],
        SUFFIXES[spread.below(SUFFIXES.len())]
    );
    let features: Vec<String> = match spread.below(3) {
        0 => vec!["ingest".into()],
        1 => vec!["export".into(), "ingest".into()],
        _ => vec!["export".into(), "ingest".into(), "reports".into()],
    };
    let limits = BTreeMap::from([
        ("max-sources".to_owned(), 5 + spread.below(50) as u64),
        ("max-users".to_owned(), 10 + spread.below(500) as u64),
    ]);
    let now = spec.now;
    // A tenth expire within 30 days, a third never, the rest within years.
    let expires_at = match spread.below(10) {
        0 => Some(now + 1 + spread.below(30 * DAY as usize) as i64),
        1..=3 => None,
        _ => Some(now + 31 * DAY + spread.below(3 * 365 * DAY as usize) as i64),
    };
    let status = match spread.below(100) {
        0..=2 => "suspended",
        3..=4 => "revoked",
        _ => "active",
    };
    let (expires_at, status) = if spec.varied {
        (expires_at, status)
    } else {
        (None, "active")
    };
    let grace_seconds = if expires_at.is_some() {
        7 * DAY as u64
    } else {
        0
    };
    let clock_policy = if spread.below(4) == 0 {
        ClockPolicy::Enforcing
    } else {
        ClockPolicy::Advisory
    };
    let created_at = now - 365 * DAY + (n as i64 % (364 * DAY));
    let key = LicenseKey::generate()?;
    let mut row = Row {
        customer,
        features,
        limits,
        expires_at,
        max_devices: (spec.devices_per_license as u32).max(1 + spread.below(5) as u32),
        status,
        created_at,
        grace_seconds,
        clock_policy,
        devices: Vec::with_capacity(spec.devices_per_license),
        key,
    };
    for _ in 0..spec.devices_per_license {
        let id = DeviceId::generate()?;
        let bound = if spec.issue {
            let installation = DeviceKey::from_seed(&os_random::<32>()?);
            let request_hash = Bytes(os_random::<32>()?);
            let terms = License {
                customer: row.customer.clone(),
                features: row.features.clone(),
                limits: row.limits.clone(),
                issued_at: created_at + 60,
                not_before: created_at + 60,
                expires_at: row.expires_at,
                grace_seconds: row.grace_seconds,
                clock_policy: row.clock_policy,
                serial: 1,
                license_key_fingerprint: row.key.fingerprint(),
                client_device_id: id.clone(),
                device_public_key: installation.public_key().into(),
                request_hash,
            };
            let payload = signer.sign_payload(&terms)?.token();
            Some((
                installation.public_key().to_string(),
                Issued {
                    request_hash: request_hash.to_string(),
                    request_id: Bytes(os_random::<16>()?).to_string(),
                    payload,
                },
            ))
        } else {
            None
        };
        row.devices.push(GeneratedDevice { id, bound });
    }
    Ok(row)
}

fn insert(conn: &mut Connection, rows: &[Row], key_id: &str, now: i64) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut license = tx.prepare(
            "INSERT INTO licenses (key_fingerprint, key_hint, customer, features, limits,
                                   expires_at, max_devices, status, created_at,
                                   grace_seconds, clock_policy)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut device = tx.prepare(
            "INSERT INTO devices (license_id, client_device_id, label, public_key,
                                  created_at, bound_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut issuance = tx.prepare(
            "INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                    key_id, payload, issued_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7)",
        )?;
        for row in rows {
            let license_id = license.insert(params![
                row.key.fingerprint().to_string(),
                row.key.hint(),
                row.customer,
                serde_json::to_string(&row.features)?,
                serde_json::to_string(&row.limits)?,
                row.expires_at,
                row.max_devices,
                row.status,
                row.created_at,
                row.grace_seconds as i64,
                row.clock_policy.as_str(),
            ])?;
            for (n, generated) in row.devices.iter().enumerate() {
                let label = format!("workstation-{}", n + 1);
                let (public_key, bound_at) = match &generated.bound {
                    Some((key, _)) => (Some(key.as_str()), Some(row.created_at + 60)),
                    None => (None, None),
                };
                let device_id = device.insert(params![
                    license_id,
                    generated.id.as_str(),
                    label,
                    public_key,
                    row.created_at.min(now),
                    bound_at,
                ])?;
                if let Some((_, issued)) = &generated.bound {
                    issuance.execute(params![
                        license_id,
                        device_id,
                        issued.request_hash,
                        issued.request_id,
                        key_id,
                        issued.payload,
                        row.created_at + 60,
                    ])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ren3_issuer_core::issuance;
    use ren3_shared::VerifiedPayload;

    use super::*;

    const NOW: i64 = crate::NOW;

    /// The stored payload of the first issuance, as text.
    fn first_payload(db: &Path) -> String {
        Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT payload FROM issuances ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn filled_payloads_carry_the_chain_the_store_itself_issues_with() {
        let dir = tempfile::tempdir().unwrap();
        let spec = FillSpec {
            licenses: 3,
            devices_per_license: 2,
            issue: true,
            varied: false,
            now: NOW,
        };
        fill(&dir.path().join("filled.db"), spec, false).unwrap();
        let filled = VerifiedPayload::open(
            &first_payload(&dir.path().join("filled.db")),
            &crate::bench_root(),
        )
        .unwrap();

        // A store whose devices wait for their first request, answered by
        // the issuer's own issuance.
        let db = dir.path().join("issuing.db");
        let unbound = FillSpec {
            issue: false,
            ..spec
        };
        let licenses = fill(&db, unbound, true).unwrap();
        let requests = first_requests(&licenses[..1], NOW).unwrap();
        let paths = StorePaths::new(db.clone(), None);
        let mut store = setup::open_store(&paths).unwrap();
        let keys = setup::open_keys(&paths).unwrap();
        let issued =
            issuance::issue(&mut store, &keys, &Actor::cli(), &requests[0], NOW + 60).unwrap();
        let issued = VerifiedPayload::open(&issued.payload.token(), &crate::bench_root()).unwrap();
        let signer = store_signer(&paths).unwrap();
        assert_eq!(issued.certificate, *signer.certificate());
        assert_eq!(issued.revocations, *signer.revocations());

        // Both stores were made alike: the same root, list and window, each
        // with a key of its own.
        assert_eq!(filled.revocations.version(), issued.revocations.version());
        assert_eq!(
            filled.certificate.body.not_after - filled.certificate.body.not_before,
            issued.certificate.body.not_after - issued.certificate.body.not_before
        );
    }
}
