//! Filling an issuer store with generated licenses, devices and issuances,
//! for the scale measurements and the batch-issuance benchmark.
//!
//! The store is made by the issuer's own `init` (schema migrations and a
//! real signing key); the rows then go in through direct, prepared inserts
//! in large transactions, because a million licenses created one command
//! at a time would take hours. Every payload is really signed, with the
//! store's signing key, on every core.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use ren3_issuer::StorePaths;
use ren3_issuer::setup;
use ren3_shared::binary::{Bytes, os_random};
use ren3_shared::{
    ClockPolicy, DeviceId, DeviceKey, IssuerKey, License, LicenseKey, LicenseRequest, Product,
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

/// Creates a store at `db` (which must not exist) with its signing key in
/// `<db>.keys`, and fills it as `spec` says. Returns the licenses with
/// their keys only when `keep_keys` (a million keys is memory for nothing).
pub fn fill(db: &Path, spec: FillSpec, keep_keys: bool) -> Result<Vec<FilledLicense>> {
    if spec.devices_per_license == 0 && spec.issue {
        bail!("issuances need devices: give at least one device per license");
    }
    let paths = StorePaths::new(db.to_path_buf(), None);
    let initialised = setup::init(&paths, spec.now - 400 * DAY)
        .with_context(|| format!("cannot create the issuer store at {}", db.display()))?;
    let keys = setup::open_keys(&paths)?;
    let issuer = keys.load(&initialised.key.key_id)?;
    let key_id = initialised.key.key_id.to_string();

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
        let rows = generate(start, count, spec, &issuer, threads)?;
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
    issuer: &IssuerKey,
    threads: usize,
) -> Result<Vec<Row>> {
    let per_thread = count.div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (start..start + count)
            .step_by(per_thread)
            .map(|from| {
                let to = (from + per_thread).min(start + count);
                scope.spawn(move || (from..to).map(|n| row(n, spec, issuer)).collect())
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

fn row(n: usize, spec: FillSpec, issuer: &IssuerKey) -> Result<Row> {
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
            let payload = issuer.sign_payload(&terms)?.token();
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
