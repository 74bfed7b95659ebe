//! The issuer's SQLite store: signing keys (public halves only), licenses,
//! devices and issuances.
//!
//! License keys are never stored, only their fingerprints and hints, so a
//! leaked store leaks no key. The queries here carry no policy: the rules
//! live in `licenses`, `devices` and `issuance`, which run them inside one
//! transaction each.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ren3_shared::{ClockPolicy, DeviceId, Digest, KeyId, LicenseKey, PublicKey, RequestId};
use rusqlite::types::Type;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension as _, Row, Transaction,
    TransactionBehavior, params,
};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use crate::error::{Coded, ErrorKind};
use crate::rfc3339;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Append-only: a migration that has shipped is never edited, only followed.
const MIGRATION_STEPS: &[M<'static>] = &[
    M::up(include_str!("migrations/0001_initial.sql")),
    M::up(include_str!("migrations/0002_console.sql")),
    M::up(include_str!("migrations/0003_lifecycle.sql")),
    M::up(include_str!("migrations/0004_search_indexes.sql")),
    M::up(include_str!("migrations/0005_seat_counts.sql")),
    M::up(include_str!("migrations/0006_trust_chain.sql")),
    M::up(include_str!("migrations/0007_sequence_numbers.sql")),
];
const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_STEPS);
const SCHEMA_VERSION: usize = MIGRATION_STEPS.len();

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no issuer store at {}; run `ren3-issuer init` first", path.display())]
    Missing { path: PathBuf },
    #[error(
        "{} is not a ReN3 issuer store; check --db (or REN3_ISSUER_DB)",
        path.display()
    )]
    NotAStore { path: PathBuf },
    #[error(
        "the issuer store at {} has schema version {found}, newer than this build \
         knows ({SCHEMA_VERSION}); use a newer ren3-issuer",
        path.display()
    )]
    TooNew { path: PathBuf, found: usize },
    #[error("cannot open the issuer store at {}: {source}", path.display())]
    Open {
        path: PathBuf,
        /// Boxed, as is `Sqlite`'s: SQLite's errors are large, and every
        /// error of the core carries a `StoreError`.
        source: Box<OpenError>,
    },
    #[error(
        "the issuer store is busy: another ren3-issuer has held it for more than \
         {} s; try again", BUSY_TIMEOUT.as_secs()
    )]
    Busy,
    #[error("issuer store error: {0}")]
    Sqlite(Box<rusqlite::Error>),
}

impl Coded for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Missing { .. } => "store_missing",
            StoreError::NotAStore { .. } => "store_invalid",
            StoreError::TooNew { .. } => "store_too_new",
            StoreError::Busy => "store_busy",
            StoreError::Open { .. } | StoreError::Sqlite(_) => "store_error",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Missing { .. }
            | StoreError::NotAStore { .. }
            | StoreError::TooNew { .. } => ErrorKind::Refused,
            StoreError::Busy => ErrorKind::Conflict,
            StoreError::Open { .. } | StoreError::Sqlite(_) => ErrorKind::Internal,
        }
    }
}

/// What failed while opening or upgrading a store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Migration(#[from] rusqlite_migration::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(Box::new(e)),
        }
    }
}

/// An open issuer store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Write transactions committed through this handle.
    commits: u64,
}

impl Store {
    /// Opens an existing store and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_error = |source: OpenError| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        // No CREATE flag: a mistyped --db must not leave an empty file behind.
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(e.into()))?;
        // SQLite reads the file lazily: a file that is not a database shows
        // up at the first statement.
        configure(&conn).map_err(|e| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotAStore {
                path: path.to_path_buf(),
            },
            _ => open_error(e.into()),
        })?;
        let version: usize = MIGRATIONS
            .current_version(&conn)
            .map_err(|e| open_error(e.into()))?
            .into();
        if version == 0 {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
            });
        }
        MIGRATIONS
            .to_latest(&mut conn)
            .map_err(|e| open_error(e.into()))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            commits: 0,
        })
    }

    /// Creates a new store file; fails with `io::ErrorKind::AlreadyExists`
    /// (inside [`StoreError::Open`]) if anything is at `path`.
    pub(crate) fn create_new(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source: OpenError| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        // create_new makes "is there a store already?" and "make one" a single
        // step; an empty file is a valid empty SQLite database.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| open_error(e.into()))?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(e.into()))?;
        configure(&conn).map_err(|e| open_error(e.into()))?;
        MIGRATIONS
            .to_latest(&mut conn)
            .map_err(|e| open_error(e.into()))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            commits: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in a read transaction, so that it sees one consistent state.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(StoreError::from)?;
        let value = f(&tx)?;
        tx.finish().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Runs `f` in an immediate write transaction and commits if it succeeds.
    /// Taking the write lock up front means the checks `f` makes still hold
    /// when it writes.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        self.commits += 1;
        Ok(value)
    }

    /// How many write transactions ([`write`](Self::write)) this handle has
    /// committed: how a batch shows it took one transaction, not one a row.
    pub fn committed_writes(&self) -> u64 {
        self.commits
    }
}

/// The pragmas every connection needs; they are per connection, so they
/// cannot live in a migration.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed `{mode}`: the store needs WAL"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Enough for every statement of the store's queries: an issuance runs about
/// a dozen, and preparing one costs as much as running it.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// [`Connection::execute`] through the connection's statement cache.
pub(crate) fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`Connection::query_row`] through the connection's statement cache.
pub(crate) fn query_row_cached<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The state of a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseStatus {
    Active,
    Suspended,
    /// Final: a revoked license never becomes active again.
    Revoked,
}

impl LicenseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseStatus::Active => "active",
            LicenseStatus::Suspended => "suspended",
            LicenseStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a license status (active, suspended or revoked)")]
pub struct UnknownStatus(String);

impl FromStr for LicenseStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(LicenseStatus::Active),
            "suspended" => Ok(LicenseStatus::Suspended),
            "revoked" => Ok(LicenseStatus::Revoked),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// A row of `signing_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyRecord {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub retired_at: Option<i64>,
}

/// A row of `licenses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseRecord {
    #[serde(skip)]
    pub id: i64,
    pub key_fingerprint: Digest,
    pub key_hint: String,
    pub customer: String,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, u64>,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub expires_at: Option<i64>,
    pub max_devices: u32,
    pub status: LicenseStatus,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    /// How long payloads keep working after `expires_at`, in seconds.
    pub grace_seconds: u64,
    /// What a client does when its clock looks wound back.
    pub clock_policy: ClockPolicy,
}

/// A license with its seat counts, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSummary {
    #[serde(flatten)]
    pub license: LicenseRecord,
    /// Devices registered for the license, bound or not.
    pub devices: u32,
    /// Devices bound to an installation: the seats in use.
    pub bound_devices: u32,
}

/// A row of `devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRecord {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub license_id: i64,
    pub client_device_id: DeviceId,
    pub label: Option<String>,
    /// The installation key the device id is bound to, once issued for.
    pub public_key: Option<PublicKey>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub bound_at: Option<i64>,
}

impl DeviceRecord {
    pub fn is_bound(&self) -> bool {
        self.public_key.is_some()
    }
}

/// A row of `issuances`, with its device's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuanceRecord {
    #[serde(skip)]
    pub license_id: i64,
    #[serde(skip)]
    pub device_id: i64,
    pub client_device_id: DeviceId,
    pub request_hash: Digest,
    pub request_id: RequestId,
    pub serial: u64,
    pub key_id: KeyId,
    /// The payload token exactly as issued.
    pub payload: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub issued_at: i64,
    /// The installation key the payload is bound to, and the counter of the
    /// request it answers (the installation's sequence number, FORMAT.md
    /// §6). `None` for an issuance made before migration 0007: a version 1
    /// request had no counter.
    pub public_key: Option<PublicKey>,
    pub request_counter: Option<u64>,
}

/// Reads a text column with `parse`, reporting a bad value as a conversion
/// error of that column.
fn text_as<T, E>(
    row: &Row<'_>,
    idx: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(idx)?;
    parse(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn parsed<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text_as(row, idx, str::parse)
}

/// Serials are u64 on the wire and INTEGER (i64) in SQLite; a serial never
/// comes near 2^63, and one that did would be refused, not wrapped.
fn serial_from(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

fn optional_serial(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u64>> {
    row.get::<_, Option<i64>>(idx)?
        .map(|value| {
            u64::try_from(value).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e))
            })
        })
        .transpose()
}

fn serial_to(serial: u64) -> rusqlite::Result<i64> {
    i64::try_from(serial).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn parsed_opt<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        t.parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
    })
    .transpose()
}

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn to_json<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

// ---- signing keys

const SIGNING_KEY_COLUMNS: &str = "key_id, public_key, created_at, retired_at";

fn signing_key_from_row(row: &Row<'_>) -> rusqlite::Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        key_id: parsed(row, 0)?,
        public_key: parsed(row, 1)?,
        created_at: row.get(2)?,
        retired_at: row.get(3)?,
    })
}

pub(crate) fn insert_signing_key(
    conn: &Connection,
    key: &SigningKeyRecord,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO signing_keys (key_id, public_key, created_at, retired_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            key.key_id.to_string(),
            key.public_key.to_string(),
            key.created_at,
            key.retired_at
        ],
    )?;
    Ok(())
}

/// All signing keys, oldest first.
pub(crate) fn signing_keys(conn: &Connection) -> Result<Vec<SigningKeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([], signing_key_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The key new payloads are signed with: the newest one that is not
/// retired and has a certificate. A key made by rotation signs only once
/// its certificate is installed.
pub(crate) fn current_signing_key(
    conn: &Connection,
) -> Result<Option<SigningKeyRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT k.key_id, k.public_key, k.created_at, k.retired_at
           FROM signing_keys k JOIN certificates c ON c.key_id = k.key_id
          WHERE k.retired_at IS NULL
          ORDER BY k.created_at DESC, k.rowid DESC LIMIT 1",
        [],
        signing_key_from_row,
    )
    .optional()?)
}

// ---- the trust chain

/// The root public key this store's payloads chain to, if one is installed.
pub(crate) fn trust_root(conn: &Connection) -> Result<Option<PublicKey>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT public_key FROM trust_root WHERE id = 1",
        [],
        |row| parsed(row, 0),
    )
    .optional()?)
}

pub(crate) fn insert_trust_root(
    conn: &Connection,
    public_key: &PublicKey,
    at: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO trust_root (id, public_key, installed_at) VALUES (1, ?1, ?2)",
        params![public_key.to_string(), at],
    )?;
    Ok(())
}

/// A stored certificate token, as installed; verify it before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateRow {
    pub key_id: KeyId,
    pub token: String,
}

/// Installs (or replaces) the certificate of a signing key.
pub(crate) fn upsert_certificate(
    conn: &Connection,
    body: &ren3_shared::CertificateBody,
    token: &str,
    at: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO certificates (key_id, token, not_before, not_after, issued_at, installed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (key_id) DO UPDATE SET token = excluded.token,
             not_before = excluded.not_before, not_after = excluded.not_after,
             issued_at = excluded.issued_at, installed_at = excluded.installed_at",
        params![
            body.key_id.to_string(),
            token,
            body.not_before,
            body.not_after,
            body.issued_at,
            at
        ],
    )?;
    Ok(())
}

/// Every stored certificate, by key.
pub(crate) fn certificates(conn: &Connection) -> Result<Vec<CertificateRow>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT key_id, token FROM certificates ORDER BY rowid")?;
    let rows = stmt.query_map([], |row| {
        Ok(CertificateRow {
            key_id: parsed(row, 0)?,
            token: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn certificate_of(
    conn: &Connection,
    key_id: &KeyId,
) -> Result<Option<String>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT token FROM certificates WHERE key_id = ?1",
        [key_id.to_string()],
        |row| row.get(0),
    )
    .optional()?)
}

/// The newest installed revocation list: its version and token.
pub(crate) fn newest_revocation_list(
    conn: &Connection,
) -> Result<Option<(u64, String)>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT version, token FROM revocation_lists ORDER BY version DESC LIMIT 1",
        [],
        |row| Ok((serial_from(row, 0)?, row.get(1)?)),
    )
    .optional()?)
}

pub(crate) fn insert_revocation_list(
    conn: &Connection,
    version: u64,
    token: &str,
    at: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO revocation_lists (version, token, installed_at) VALUES (?1, ?2, ?3)",
        params![serial_to(version)?, token, at],
    )?;
    Ok(())
}

// ---- licenses

const LICENSE_COLUMNS: &str = "l.id, l.key_fingerprint, l.key_hint, l.customer, l.features, \
     l.limits, l.expires_at, l.max_devices, l.status, l.created_at, l.grace_seconds, \
     l.clock_policy";
/// How many columns [`LICENSE_COLUMNS`] selects.
const LICENSE_COLUMN_COUNT: usize = 12;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadClockPolicy(String);

fn license_from_row(row: &Row<'_>) -> rusqlite::Result<LicenseRecord> {
    Ok(LicenseRecord {
        id: row.get(0)?,
        key_fingerprint: parsed(row, 1)?,
        key_hint: row.get(2)?,
        customer: row.get(3)?,
        features: json(row, 4)?,
        limits: json(row, 5)?,
        expires_at: row.get(6)?,
        max_devices: row.get(7)?,
        status: parsed(row, 8)?,
        created_at: row.get(9)?,
        grace_seconds: serial_from(row, 10)?,
        clock_policy: text_as(row, 11, |s| s.parse().map_err(BadClockPolicy))?,
    })
}

/// The fields of a license to insert; `id` is assigned by the store.
pub(crate) fn insert_license(
    conn: &Connection,
    license: &LicenseRecord,
) -> Result<LicenseRecord, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO licenses (key_fingerprint, key_hint, customer, features, limits,
                               expires_at, max_devices, status, created_at, grace_seconds,
                               clock_policy)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            license.key_fingerprint.to_string(),
            license.key_hint,
            license.customer,
            to_json(&license.features)?,
            to_json(&license.limits)?,
            license.expires_at,
            license.max_devices,
            license.status.as_str(),
            license.created_at,
            serial_to(license.grace_seconds)?,
            license.clock_policy.as_str(),
        ],
    )?;
    Ok(LicenseRecord {
        id: conn.last_insert_rowid(),
        ..license.clone()
    })
}

pub(crate) fn license_by_fingerprint(
    conn: &Connection,
    fingerprint: &Digest,
) -> Result<Option<LicenseRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {LICENSE_COLUMNS} FROM licenses l WHERE l.key_fingerprint = ?1"),
        [fingerprint.to_string()],
        license_from_row,
    )
    .optional()?)
}

pub(crate) fn license_by_id(conn: &Connection, id: i64) -> Result<LicenseRecord, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {LICENSE_COLUMNS} FROM licenses l WHERE l.id = ?1"),
        [id],
        license_from_row,
    )?)
}

/// The ids of the licenses the CLI's and the console's search finds,
/// ignoring case: the start of the customer name (`?1`), the start of the
/// key hint (`?2`), or the exact key fingerprint (`?3`). Prefixes, not
/// substrings, and a union of three index lookups (see migration 0004), so
/// that a search reads only what it finds, even among a million licenses.
pub(crate) const LICENSE_SEARCH: &str = "SELECT id FROM licenses WHERE customer LIKE ?1 ESCAPE '\\'
     UNION SELECT id FROM licenses WHERE key_hint LIKE ?2 ESCAPE '\\'
     UNION SELECT id FROM licenses WHERE key_fingerprint = ?3";

/// What [`LICENSE_SEARCH`] binds for the text a person typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchTerms {
    customer_prefix: String,
    hint_prefix: String,
    fingerprint: String,
}

impl SearchTerms {
    /// `None` for no search (nothing but spaces typed). A whole license key
    /// is searched by its fingerprint. A key prefix may be typed with or
    /// without `REN3K1-`, and longer than the hint a license keeps.
    pub(crate) fn new(search: Option<&str>) -> Option<Self> {
        let text = search.map(str::trim).filter(|s| !s.is_empty())?;
        let fingerprint = match LicenseKey::parse(text) {
            Ok(key) => key.fingerprint().to_string(),
            Err(_) => text.to_owned(),
        };
        const KEY_PREFIX: &str = "REN3K1-";
        // "REN3K1-" and the first group: what a stored hint shows.
        const HINT_LEN: usize = KEY_PREFIX.len() + 5;
        let key_text = match text.get(..KEY_PREFIX.len()) {
            Some(start) if start.eq_ignore_ascii_case(KEY_PREFIX) => text.to_owned(),
            _ => format!("{KEY_PREFIX}{text}"),
        };
        let hint_text: String = key_text.chars().take(HINT_LEN).collect();
        Some(Self {
            customer_prefix: prefix_pattern(text),
            hint_prefix: prefix_pattern(&hint_text),
            fingerprint,
        })
    }

    /// `?1` to `?3` of [`LICENSE_SEARCH`].
    fn params(self) -> [String; 3] {
        [self.customer_prefix, self.hint_prefix, self.fingerprint]
    }
}

/// A LIKE pattern matching text that starts with `text`, taken literally.
fn prefix_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

/// The two seat counts of a [`LicenseSummary`], after the license columns.
const SEAT_COUNTS: &str = "(SELECT COUNT(*) FROM devices d WHERE d.license_id = l.id),
                l.bound_devices";

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<LicenseSummary> {
    Ok(LicenseSummary {
        license: license_from_row(row)?,
        devices: row.get(LICENSE_COLUMN_COUNT)?,
        bound_devices: row.get(LICENSE_COLUMN_COUNT + 1)?,
    })
}

/// Licenses with their seat counts, oldest first, matching `search` (see
/// [`LICENSE_SEARCH`]).
pub(crate) fn license_summaries(
    conn: &Connection,
    search: Option<&str>,
) -> Result<Vec<LicenseSummary>, StoreError> {
    let select = format!("SELECT {LICENSE_COLUMNS}, {SEAT_COUNTS} FROM licenses l");
    let order = "ORDER BY l.created_at, l.id";
    let rows = match SearchTerms::new(search) {
        Some(terms) => conn
            .prepare_cached(&format!(
                "{select} WHERE l.id IN ({LICENSE_SEARCH}) {order}"
            ))?
            .query_map(terms.params(), summary_from_row)?
            .collect::<rusqlite::Result<_>>()?,
        None => conn
            .prepare_cached(&format!("{select} {order}"))?
            .query_map([], summary_from_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

/// At most `limit` licenses matching `search`, newest first, with ids below
/// `before`: keyset pagination on the rowid, so a page costs the same at
/// the first license as at the millionth.
pub(crate) fn license_summaries_page(
    conn: &Connection,
    search: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LicenseSummary>, StoreError> {
    let (plan, terms) = page_plan(conn, search)?;
    let mut stmt = conn.prepare_cached(&license_page_sql(plan))?;
    let rows = match terms {
        Some(terms) => {
            let [customer, hint, fingerprint] = terms.params();
            stmt.query_map(
                params![customer, hint, fingerprint, before, limit],
                summary_from_row,
            )?
            .collect::<rusqlite::Result<_>>()?
        }
        None => stmt
            .query_map(params![before, limit], summary_from_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

/// How a page of the license list finds its licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PagePlan {
    /// No search: walk the rowid down from `before`.
    Browse,
    /// Few matches: take them all from the indexes of [`LICENSE_SEARCH`]
    /// and sort their ids.
    SortMatches,
    /// Many matches: walk the rowid down, testing each license, since a
    /// page of them turns up within a few thousand rows.
    WalkMatches,
}

/// From this many matches on, a search page walks the rowid rather than
/// sorting the matches. Sorting costs about one step per match; walking,
/// about `page size × licenses / matches` rows. At 5,000 neither passes a
/// few thousand steps for a store of a million licenses.
const WALK_FROM_MATCHES: u32 = 5_000;

/// Which [`PagePlan`] suits `search`, counting its matches in the indexes
/// only up to [`WALK_FROM_MATCHES`].
pub(crate) fn page_plan(
    conn: &Connection,
    search: Option<&str>,
) -> Result<(PagePlan, Option<SearchTerms>), StoreError> {
    let Some(terms) = SearchTerms::new(search) else {
        return Ok((PagePlan::Browse, None));
    };
    let matches: u32 = query_row_cached(
        conn,
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM licenses
                  WHERE customer LIKE ?1 ESCAPE '\\' LIMIT ?3))
              + (SELECT COUNT(*) FROM (SELECT 1 FROM licenses
                  WHERE key_hint LIKE ?2 ESCAPE '\\' LIMIT ?3))",
        params![terms.customer_prefix, terms.hint_prefix, WALK_FROM_MATCHES],
        |row| row.get(0),
    )?;
    let plan = if matches >= WALK_FROM_MATCHES {
        PagePlan::WalkMatches
    } else {
        PagePlan::SortMatches
    };
    Ok((plan, Some(terms)))
}

/// The query of [`license_summaries_page`] for each [`PagePlan`]. Browsing
/// binds `before` as `?1` and the limit as `?2`; a search binds its three
/// terms, then `before` and the limit. Sorting takes the page's ids first
/// and only then reads those licenses and counts their seats; its `+id`
/// keeps the bound on the ids out of the union's arms, where SQLite could
/// walk the rowid for an arm instead of using its index (300 ms for some
/// key prefixes at a million licenses). Walking tests the terms on
/// `+column`, which keeps the planner off the indexes.
fn license_page_sql(plan: PagePlan) -> String {
    // `l.id < COALESCE(..)`, not `?1 IS NULL OR l.id < ?1`: the OR hid the
    // bound from the planner, so a deep page scanned every newer row.
    const NO_BOUND: &str = "9223372036854775807";
    let columns = format!("{LICENSE_COLUMNS}, {SEAT_COUNTS}");
    match plan {
        PagePlan::Browse => format!(
            "SELECT {columns} FROM licenses l
             WHERE l.id < COALESCE(?1, {NO_BOUND}) ORDER BY l.id DESC LIMIT ?2"
        ),
        PagePlan::SortMatches => format!(
            "WITH page (id) AS MATERIALIZED (
                 SELECT id FROM ({LICENSE_SEARCH})
                 WHERE +id < COALESCE(?4, {NO_BOUND}) ORDER BY id DESC LIMIT ?5)
             SELECT {columns} FROM page JOIN licenses l ON l.id = page.id
             ORDER BY l.id DESC"
        ),
        PagePlan::WalkMatches => format!(
            "SELECT {columns} FROM licenses l
             WHERE (+l.customer LIKE ?1 ESCAPE '\\'
                    OR +l.key_hint LIKE ?2 ESCAPE '\\'
                    OR +l.key_fingerprint = ?3)
               AND l.id < COALESCE(?4, {NO_BOUND})
             ORDER BY l.id DESC LIMIT ?5"
        ),
    }
}

/// How SQLite runs [`license_summaries_page`]: the plan chosen and the
/// steps of its query plan.
#[cfg(test)]
pub(crate) fn license_page_plan(
    conn: &Connection,
    search: Option<&str>,
    before: Option<i64>,
) -> Result<(PagePlan, Vec<String>), StoreError> {
    let (plan, terms) = page_plan(conn, search)?;
    let sql = format!("EXPLAIN QUERY PLAN {}", license_page_sql(plan));
    let mut stmt = conn.prepare(&sql)?;
    let step = |row: &Row<'_>| row.get::<_, String>(3);
    let steps = match terms {
        Some(terms) => {
            let [customer, hint, fingerprint] = terms.params();
            stmt.query_map(params![customer, hint, fingerprint, before, 26], step)?
                .collect::<rusqlite::Result<_>>()?
        }
        None => stmt
            .query_map(params![before, 26], step)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok((plan, steps))
}

pub(crate) fn find_license_by_id(
    conn: &Connection,
    id: i64,
) -> Result<Option<LicenseRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {LICENSE_COLUMNS} FROM licenses l WHERE l.id = ?1"),
        [id],
        license_from_row,
    )
    .optional()?)
}

/// Active licenses that expire after `from` and up to `until`, soonest first.
pub(crate) fn licenses_expiring(
    conn: &Connection,
    from: i64,
    until: i64,
    limit: u32,
) -> Result<Vec<LicenseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LICENSE_COLUMNS} FROM licenses l
         WHERE l.expires_at > ?1 AND l.expires_at <= ?2 AND l.status = 'active'
         ORDER BY l.expires_at, l.id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![from, until, limit], license_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces the terms a vendor may edit after creation.
pub(crate) fn update_license_terms(
    conn: &Connection,
    license: &LicenseRecord,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "UPDATE licenses SET features = ?1, limits = ?2, expires_at = ?3, grace_seconds = ?4,
                             clock_policy = ?5
         WHERE id = ?6",
        params![
            to_json(&license.features)?,
            to_json(&license.limits)?,
            license.expires_at,
            serial_to(license.grace_seconds)?,
            license.clock_policy.as_str(),
            license.id,
        ],
    )?;
    Ok(())
}

/// Rows of a table; `table` is one of this module's own table names.
pub(crate) fn count_rows(conn: &Connection, table: &'static str) -> Result<u64, StoreError> {
    let count: i64 = query_row_cached(conn, &format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) fn set_license_status(
    conn: &Connection,
    license_id: i64,
    status: LicenseStatus,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "UPDATE licenses SET status = ?1 WHERE id = ?2",
        params![status.as_str(), license_id],
    )?;
    Ok(())
}

// ---- devices

const DEVICE_COLUMNS: &str =
    "d.id, d.license_id, d.client_device_id, d.label, d.public_key, d.created_at, d.bound_at";

fn device_from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get(0)?,
        license_id: row.get(1)?,
        client_device_id: text_as(row, 2, DeviceId::parse)?,
        label: row.get(3)?,
        public_key: parsed_opt(row, 4)?,
        created_at: row.get(5)?,
        bound_at: row.get(6)?,
    })
}

pub(crate) fn insert_device(
    conn: &Connection,
    license_id: i64,
    client_device_id: &DeviceId,
    label: Option<&str>,
    now: i64,
) -> Result<DeviceRecord, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO devices (license_id, client_device_id, label, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![license_id, client_device_id.as_str(), label, now],
    )?;
    Ok(DeviceRecord {
        id: conn.last_insert_rowid(),
        license_id,
        client_device_id: client_device_id.clone(),
        label: label.map(str::to_owned),
        public_key: None,
        created_at: now,
        bound_at: None,
    })
}

pub(crate) fn device_by_client_id(
    conn: &Connection,
    client_device_id: &DeviceId,
) -> Result<Option<DeviceRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.client_device_id = ?1"),
        [client_device_id.as_str()],
        device_from_row,
    )
    .optional()?)
}

pub(crate) fn devices_of_license(
    conn: &Connection,
    license_id: i64,
) -> Result<Vec<DeviceRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.license_id = ?1
         ORDER BY d.created_at, d.id"
    ))?;
    let rows = stmt.query_map([license_id], device_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn bound_device_count(conn: &Connection, license_id: i64) -> Result<u32, StoreError> {
    Ok(query_row_cached(
        conn,
        // Kept by the triggers of migration 0005.
        "SELECT bound_devices FROM licenses WHERE id = ?1",
        [license_id],
        |row| row.get(0),
    )?)
}

/// Binds an unbound device to an installation key. Returns false if the
/// device was already bound, in which case nothing changed.
pub(crate) fn bind_device(
    conn: &Connection,
    device_id: i64,
    public_key: &PublicKey,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE devices SET public_key = ?1, bound_at = ?2
         WHERE id = ?3 AND public_key IS NULL",
        params![public_key.to_string(), now, device_id],
    )?;
    Ok(changed == 1)
}

// ---- issuances

const ISSUANCE_COLUMNS: &str = "i.license_id, i.device_id, d.client_device_id, i.request_hash, \
     i.request_id, i.serial, i.key_id, i.payload, i.issued_at, i.public_key, i.request_counter";

fn issuance_from_row(row: &Row<'_>) -> rusqlite::Result<IssuanceRecord> {
    Ok(IssuanceRecord {
        license_id: row.get(0)?,
        device_id: row.get(1)?,
        client_device_id: text_as(row, 2, DeviceId::parse)?,
        request_hash: parsed(row, 3)?,
        request_id: parsed(row, 4)?,
        serial: serial_from(row, 5)?,
        key_id: parsed(row, 6)?,
        payload: row.get(7)?,
        issued_at: row.get(8)?,
        public_key: parsed_opt(row, 9)?,
        request_counter: optional_serial(row, 10)?,
    })
}

pub(crate) fn insert_issuance(
    conn: &Connection,
    issuance: &IssuanceRecord,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                key_id, payload, issued_at, public_key, request_counter)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            issuance.license_id,
            issuance.device_id,
            issuance.request_hash.to_string(),
            issuance.request_id.to_string(),
            serial_to(issuance.serial)?,
            issuance.key_id.to_string(),
            issuance.payload,
            issuance.issued_at,
            issuance.public_key.as_ref().map(ToString::to_string),
            issuance.request_counter.map(serial_to).transpose()?,
        ],
    )?;
    Ok(())
}

pub(crate) fn issuance_by_request_hash(
    conn: &Connection,
    request_hash: &Digest,
) -> Result<Option<IssuanceRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!(
            "SELECT {ISSUANCE_COLUMNS} FROM issuances i JOIN devices d ON d.id = i.device_id
                 WHERE i.request_hash = ?1"
        ),
        [request_hash.to_string()],
        issuance_from_row,
    )
    .optional()?)
}

/// The issuances of a license, oldest first.
pub(crate) fn issuances_of_license(
    conn: &Connection,
    license_id: i64,
) -> Result<Vec<IssuanceRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ISSUANCE_COLUMNS} FROM issuances i JOIN devices d ON d.id = i.device_id
         WHERE i.license_id = ?1 ORDER BY i.issued_at, i.id"
    ))?;
    let rows = stmt.query_map([license_id], issuance_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest issuances of all licenses, newest first, with the customer.
pub(crate) fn latest_issuances(
    conn: &Connection,
    limit: u32,
) -> Result<Vec<(IssuanceRecord, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ISSUANCE_COLUMNS}, l.customer FROM issuances i
         JOIN devices d ON d.id = i.device_id JOIN licenses l ON l.id = i.license_id
         ORDER BY i.id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], |row| Ok((issuance_from_row(row)?, row.get(11)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The highest serial issued for a device, 0 if none.
pub(crate) fn max_serial(conn: &Connection, device_id: i64) -> Result<u64, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT COALESCE(MAX(serial), 0) FROM issuances WHERE device_id = ?1",
        [device_id],
        |row| serial_from(row, 0),
    )?)
}

// ---- releases

/// A row of `releases`: a seat given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    #[serde(skip)]
    pub license_id: i64,
    #[serde(skip)]
    pub device_id: i64,
    pub client_device_id: DeviceId,
    /// The installation that held the seat.
    pub public_key: PublicKey,
    /// Freed by the vendor without a receipt.
    pub forced: bool,
    /// The receipt token as received; `None` when forced.
    pub receipt: Option<String>,
    pub serial: Option<u64>,
    pub counter: Option<u64>,
    /// The device's clock when it released, per its receipt.
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub receipt_released_at: Option<i64>,
    pub reason: Option<String>,
    pub actor: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub released_at: i64,
}

const RELEASE_COLUMNS: &str = "r.license_id, r.device_id, d.client_device_id, r.public_key, \
     r.forced, r.receipt, r.serial, r.counter, r.receipt_released_at, r.reason, r.actor, \
     r.released_at";

fn release_from_row(row: &Row<'_>) -> rusqlite::Result<ReleaseRecord> {
    Ok(ReleaseRecord {
        license_id: row.get(0)?,
        device_id: row.get(1)?,
        client_device_id: text_as(row, 2, DeviceId::parse)?,
        public_key: parsed(row, 3)?,
        forced: row.get(4)?,
        receipt: row.get(5)?,
        serial: optional_serial(row, 6)?,
        counter: optional_serial(row, 7)?,
        receipt_released_at: row.get(8)?,
        reason: row.get(9)?,
        actor: row.get(10)?,
        released_at: row.get(11)?,
    })
}

pub(crate) fn insert_release(conn: &Connection, release: &ReleaseRecord) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO releases (license_id, device_id, public_key, forced, receipt, serial,
                               counter, receipt_released_at, reason, actor, released_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            release.license_id,
            release.device_id,
            release.public_key.to_string(),
            release.forced,
            release.receipt,
            release.serial.map(serial_to).transpose()?,
            release.counter.map(serial_to).transpose()?,
            release.receipt_released_at,
            release.reason,
            release.actor,
            release.released_at,
        ],
    )?;
    Ok(())
}

/// The highest receipt counter accepted from an installation, 0 if none.
pub(crate) fn last_receipt_counter(
    conn: &Connection,
    public_key: &PublicKey,
) -> Result<u64, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT COALESCE(MAX(counter), 0) FROM releases WHERE public_key = ?1",
        [public_key.to_string()],
        |row| serial_from(row, 0),
    )?)
}

/// The request with the highest counter among those answered with a
/// payload for `device_id` bound to the installation `public_key`, as
/// `(counter, serial)`; `None` if no such issuance recorded a counter.
pub(crate) fn last_answered_request(
    conn: &Connection,
    device_id: i64,
    public_key: &PublicKey,
) -> Result<Option<(u64, u64)>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT request_counter, serial FROM issuances
         WHERE device_id = ?1 AND public_key = ?2 AND request_counter IS NOT NULL
         ORDER BY request_counter DESC, serial DESC LIMIT 1",
        params![device_id, public_key.to_string()],
        |row| Ok((serial_from(row, 0)?, serial_from(row, 1)?)),
    )
    .optional()?)
}

/// The releases of a license, oldest first.
pub(crate) fn releases_of_license(
    conn: &Connection,
    license_id: i64,
) -> Result<Vec<ReleaseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases r JOIN devices d ON d.id = r.device_id
         WHERE r.license_id = ?1 ORDER BY r.released_at, r.id"
    ))?;
    let rows = stmt.query_map([license_id], release_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Frees a device's seat: it is unbound, so a new installation can bind it
/// or another device can take the seat. Returns false if the device was
/// not bound to `public_key`, in which case nothing changed.
pub(crate) fn unbind_device(
    conn: &Connection,
    device_id: i64,
    public_key: &PublicKey,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE devices SET public_key = NULL, bound_at = NULL
         WHERE id = ?1 AND public_key = ?2",
        params![device_id, public_key.to_string()],
    )?;
    Ok(changed == 1)
}

/// The issuance of `serial` for a device, if there is one.
pub(crate) fn issuance_by_serial(
    conn: &Connection,
    device_id: i64,
    serial: u64,
) -> Result<Option<IssuanceRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!(
            "SELECT {ISSUANCE_COLUMNS} FROM issuances i JOIN devices d ON d.id = i.device_id
                 WHERE i.device_id = ?1 AND i.serial = ?2"
        ),
        params![device_id, serial_to(serial)?],
        issuance_from_row,
    )
    .optional()?)
}

// ---- signing key lifecycle

/// Marks a key retired at `at`. Returns false if it was not an unretired
/// key, in which case nothing changed.
pub(crate) fn retire_signing_key(
    conn: &Connection,
    key_id: &KeyId,
    at: i64,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE signing_keys SET retired_at = ?1 WHERE key_id = ?2 AND retired_at IS NULL",
        params![at, key_id.to_string()],
    )?;
    Ok(changed == 1)
}

/// The latest `issued_at` of the payloads a key signed, if it signed any.
pub(crate) fn last_issued_with_key(
    conn: &Connection,
    key_id: &KeyId,
) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT MAX(issued_at) FROM issuances WHERE key_id = ?1",
        [key_id.to_string()],
        |row| row.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn pragma(store: &Store, name: &str) -> String {
        store
            .conn
            .query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| format!("{v:?}"))
            .unwrap()
    }

    #[test]
    fn every_connection_gets_wal_full_sync_foreign_keys_and_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        drop(Store::create_new(&path).unwrap());
        let store = Store::open(&path).unwrap();
        assert_eq!(pragma(&store, "journal_mode"), "Text(\"wal\")");
        // FULL is 2.
        assert_eq!(pragma(&store, "synchronous"), "Integer(2)");
        assert_eq!(pragma(&store, "foreign_keys"), "Integer(1)");
        assert_eq!(pragma(&store, "busy_timeout"), "Integer(5000)");
    }

    #[test]
    fn triggers_keep_each_licenses_bound_device_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        drop(Store::create_new(&path).unwrap());
        let mut store = Store::open(&path).unwrap();
        let kept_and_counted = |store: &Store| -> Vec<(i64, i64)> {
            store
                .read(|conn| {
                    let mut stmt = conn.prepare(
                        "SELECT l.bound_devices,
                                (SELECT COUNT(*) FROM devices d
                                 WHERE d.license_id = l.id AND d.public_key IS NOT NULL)
                         FROM licenses l ORDER BY l.id",
                    )?;
                    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    Ok::<_, StoreError>(rows.collect::<rusqlite::Result<_>>()?)
                })
                .unwrap()
        };
        let steps = [
            "INSERT INTO licenses (key_fingerprint, key_hint, customer, features, limits,
                                   max_devices, created_at)
             VALUES ('f1', 'REN3K1-AAAAA-…', 'A', '[]', '{}', 9, 0),
                    ('f2', 'REN3K1-BBBBB-…', 'B', '[]', '{}', 9, 0)",
            // Inserted unbound, then bound; inserted bound (as fill-issuer does).
            "INSERT INTO devices (license_id, client_device_id, created_at) VALUES (1, 'd1', 0)",
            "UPDATE devices SET public_key = 'k1', bound_at = 1 WHERE client_device_id = 'd1'",
            "INSERT INTO devices (license_id, client_device_id, public_key, created_at, bound_at)
             VALUES (1, 'd2', 'k2', 0, 0), (2, 'd3', 'k3', 0, 0)",
            // Rebinding a bound device to another key changes no count.
            "UPDATE devices SET public_key = 'k1b' WHERE client_device_id = 'd1'",
            // A release, then a device moved to the other license.
            "UPDATE devices SET public_key = NULL, bound_at = NULL WHERE client_device_id = 'd2'",
            "UPDATE devices SET license_id = 2 WHERE client_device_id = 'd1'",
            "DELETE FROM devices WHERE client_device_id = 'd3'",
        ];
        let expected = [
            [(0, 0), (0, 0)],
            [(0, 0), (0, 0)],
            [(1, 1), (0, 0)],
            [(2, 2), (1, 1)],
            [(2, 2), (1, 1)],
            [(1, 1), (1, 1)],
            [(0, 0), (2, 2)],
            [(0, 0), (1, 1)],
        ];
        for (step, want) in steps.iter().zip(expected) {
            store
                .write(|tx| Ok::<_, StoreError>(tx.execute_batch(step)?))
                .unwrap();
            assert_eq!(kept_and_counted(&store), want, "after {step}");
        }
    }

    #[test]
    fn open_names_a_missing_store_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        let err = Store::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no issuer store at {}; run `ren3-issuer init` first",
                path.display()
            )
        );
        assert!(!path.exists());
    }

    #[test]
    fn open_refuses_files_that_are_not_issuer_stores() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "x".repeat(4096)).unwrap();
        assert!(matches!(
            Store::open(&text),
            Err(StoreError::NotAStore { .. })
        ));
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        assert!(matches!(
            Store::open(&other),
            Err(StoreError::NotAStore { .. })
        ));
    }

    #[test]
    fn open_refuses_a_store_from_a_newer_build() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        let store = Store::create_new(&path).unwrap();
        store
            .conn
            .pragma_update(
                None,
                "user_version",
                i64::try_from(SCHEMA_VERSION).unwrap() + 1,
            )
            .unwrap();
        drop(store);
        assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
    }

    #[test]
    fn create_new_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Store::create_new(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::Open { source, .. }
                if matches!(&**source, OpenError::Io(e) if e.kind() == io::ErrorKind::AlreadyExists)),
            "{err}"
        );
    }

    #[test]
    fn issuances_from_before_sequence_numbers_migrate_without_a_counter() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_version(&mut conn, 6).unwrap();
        conn.execute_batch(
            "INSERT INTO signing_keys (key_id, public_key, created_at) VALUES ('k', 'kp', 0);
             INSERT INTO licenses (id, key_fingerprint, key_hint, customer, features, limits,
                                   max_devices, created_at)
                 VALUES (1, 'f', 'h', 'c', '[]', '{}', 1, 0);
             INSERT INTO devices (id, license_id, client_device_id, public_key, created_at,
                                  bound_at)
                 VALUES (1, 1, 'd', 'p', 0, 0);
             INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                    key_id, payload, issued_at)
                 VALUES (1, 1, 'h1', 'r1', 1, 'k', 'token', 0);",
        )
        .unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let migrated: (Option<String>, Option<i64>) = conn
            .query_row(
                "SELECT public_key, request_counter FROM issuances",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(migrated, (None, None));

        let cases = [
            (
                "1. a counter with its installation",
                Some("p"),
                Some(1),
                true,
            ),
            ("2. neither, as before", None, None, true),
            ("3. a counter of 0", Some("p"), Some(0), false),
            ("4. a counter without an installation", None, Some(1), false),
        ];
        for (serial, (name, key, counter, allowed)) in (2..).zip(cases) {
            let inserted = conn.execute(
                "INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                        key_id, payload, issued_at, public_key,
                                        request_counter)
                 VALUES (1, 1, ?1, 'r', ?2, 'k', 'token', 0, ?3, ?4)",
                params![format!("h{serial}"), serial, key, counter],
            );
            assert_eq!(inserted.is_ok(), allowed, "{name}: {inserted:?}");
        }
    }

    #[test]
    fn migrations_apply_and_schema_version_counts_them() {
        MIGRATIONS.validate().unwrap();
        let empty = Connection::open_in_memory().unwrap();
        let pending = MIGRATIONS.pending_migrations(&empty).unwrap();
        assert_eq!(usize::try_from(pending).unwrap(), SCHEMA_VERSION);
    }
}
