//! The issuer's SQLite store: the one home of the core's SQL. Rules reach
//! the database only through the functions here, inside the transaction
//! [`Store::write`] or [`Store::read`] gives them.
//!
//! - this module: opening, migrations (`migrations/`, one `.sql` file a
//!   step), errors, transactions and savepoints; `private_files`: the
//!   files' owner-only modes, made and checked;
//! - `records`: the rows as the rules see them; `rows`: column codecs;
//! - one module a table or aggregate: `keys`, `chain` (root, certificates,
//!   revocation lists), `licenses` (with the search planner), `devices`,
//!   `issuances`, `releases`, `audit`, `users`, `sessions` (with failed
//!   logins);
//! - `backup`: copies of the whole store, their checks, and restoring one.
//!
//! License keys are never stored, only their fingerprints and hints, so a
//! leaked store leaks no key. The queries here carry no policy: the rules
//! live in `licenses`, `devices`, `issuance` and the other modules of the
//! core, which run them inside one transaction each.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use ren3_shared::{ClockPolicy, DeviceId, Digest, KeyId, LicenseKey, PublicKey, RequestId};
use rusqlite::types::Type;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension as _, Row, TransactionBehavior, params,
};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;

use crate::error::{Coded, ErrorKind};
use crate::monitoring::{self, Transaction};
use crate::rfc3339;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Append-only: a migration that has shipped is never edited, only followed.
/// Each is a `.sql` file; 0009 also has a step in Rust, run in the same
/// transaction after its SQL, since SQLite has no SHA-256 to chain the audit
/// rows written before it (`audit::chain_rows_from_before_the_chain`).
/// A step with a Rust part cannot be built in a constant, hence the lock.
static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_initial.sql")),
        M::up(include_str!("migrations/0002_console.sql")),
        M::up(include_str!("migrations/0003_lifecycle.sql")),
        M::up(include_str!("migrations/0004_search_indexes.sql")),
        M::up(include_str!("migrations/0005_seat_counts.sql")),
        M::up(include_str!("migrations/0006_trust_chain.sql")),
        M::up(include_str!("migrations/0007_sequence_numbers.sql")),
        M::up(include_str!("migrations/0008_user_roles.sql")),
        M::up_with_hook(
            include_str!("migrations/0009_audit_chain.sql"),
            audit::chain_rows_from_before_the_chain,
        ),
    ])
});
/// How many steps `MIGRATIONS` has (a test checks it).
const SCHEMA_VERSION: usize = 9;

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
    #[error(
        "{} has mode {mode:04o}, which lets group or others reach the issuer store (password \
         hashes, customers, payloads, the audit log); restrict it with `chmod 600 {}`",
        path.display(), path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
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
    #[error(
        "the issuer store is inconsistent: {what}; it was changed outside ren3-issuer, \
         restore it from a backup"
    )]
    Altered { what: String },
    #[error(
        "{what} {value} is above {}, the largest this issuer records; a genuine \
         installation, license or list never carries one",
        U64::SQL_ORDERED_MAX
    )]
    OutOfRange { what: &'static str, value: u64 },
    #[error("issuer store error: {0}")]
    Sqlite(Box<rusqlite::Error>),
}

impl Coded for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Missing { .. } => "store_missing",
            StoreError::NotAStore { .. } => "store_invalid",
            StoreError::TooNew { .. } => "store_too_new",
            StoreError::TooOpen { .. } => "store_too_open",
            StoreError::Busy => "store_busy",
            StoreError::Altered { .. } => "store_altered",
            StoreError::OutOfRange { .. } => "value_out_of_range",
            StoreError::Open { .. } | StoreError::Sqlite(_) => "store_error",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Missing { .. }
            | StoreError::NotAStore { .. }
            | StoreError::TooNew { .. }
            | StoreError::TooOpen { .. }
            | StoreError::OutOfRange { .. } => ErrorKind::Refused,
            StoreError::Busy => ErrorKind::Conflict,
            StoreError::Open { .. } | StoreError::Altered { .. } | StoreError::Sqlite(_) => {
                ErrorKind::Internal
            }
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
    /// Opens an existing store and brings its schema up to date; refuses
    /// one that group or others can reach (`private_files`).
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
        // The WAL and shared-memory files before SQLite opens them: it would
        // fold a WAL into the database and remove it when it closes, and the
        // fix named would name a file that is gone.
        private_files::check_beside(path)?;
        // The database's mode is reported once the file is known to be a
        // store, so that a mistyped --db is named as such, not as too open.
        let private = private_files::check_database(path);
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
        private?;
        MIGRATIONS
            .to_latest(&mut conn)
            .map_err(|e| open_error(e.into()))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            commits: 0,
        })
    }

    /// Creates a new store file, its owner's alone (`private_files`); fails
    /// with `io::ErrorKind::AlreadyExists` (inside [`StoreError::Open`]) if
    /// anything is at `path`.
    pub(crate) fn create_new(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source: OpenError| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        // create_new makes "is there a store already?" and "make one" a single
        // step; an empty file is a valid empty SQLite database.
        private_files::create(path).map_err(|e| open_error(e.into()))?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(e.into()))?;
        configure(&conn).map_err(|e| open_error(e.into()))?;
        MIGRATIONS
            .to_latest(&mut conn)
            .map_err(|e| open_error(e.into()))?;
        // SQLite has made the WAL and shared-memory files by now: a store
        // that `open` would refuse is never handed out.
        private_files::check(path)?;
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
        f: impl FnOnce(&Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let read: Result<T, E> = (|| {
            let tx = self
                .conn
                .unchecked_transaction()
                .map_err(StoreError::from)?;
            let value = f(&Db { conn: &tx })?;
            tx.finish().map_err(StoreError::from)?;
            Ok(value)
        })();
        monitoring::transaction_took(Transaction::Read, started.elapsed());
        read
    }

    /// Runs `f` in an immediate write transaction and commits if it succeeds.
    /// Taking the write lock up front means the checks `f` makes still hold
    /// when it writes.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let written: Result<T, E> = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(StoreError::from)?;
            let value = f(&Db { conn: &tx })?;
            tx.commit().map_err(StoreError::from)?;
            self.commits += 1;
            Ok(value)
        })();
        // Every transaction's time, its wait for the write lock included:
        // the store latency the console and the CLI see.
        monitoring::transaction_took(Transaction::Write, started.elapsed());
        written
    }

    /// How many write transactions ([`write`](Self::write)) this handle has
    /// committed: how a batch shows it took one transaction, not one a row.
    pub fn committed_writes(&self) -> u64 {
        self.commits
    }
}

/// The store inside one of its transactions ([`Store::read`],
/// [`Store::write`]), as the rules hold it: they hand it to this module's
/// functions, and no rule's signature names the database library, so
/// another store could stand behind these functions without touching a
/// rule.
pub struct Db<'c> {
    conn: &'c Connection,
}

/// For this module's functions, which take the connection itself.
impl Deref for Db<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Runs `f` inside a savepoint of the transaction `tx` and rolls back to it
/// if `f` fails, so one failed step of a larger transaction (a refused
/// request of a batch) leaves no trace of its own.
pub(crate) fn in_savepoint<T, E: From<StoreError>>(
    tx: &Db<'_>,
    f: impl FnOnce(&Db<'_>) -> Result<T, E>,
) -> Result<T, E> {
    execute_cached(tx, "SAVEPOINT step", []).map_err(StoreError::from)?;
    let result = f(tx);
    if result.is_err() {
        // ROLLBACK TO keeps the savepoint open; RELEASE below ends it.
        execute_cached(tx, "ROLLBACK TO step", []).map_err(StoreError::from)?;
    }
    execute_cached(tx, "RELEASE step", []).map_err(StoreError::from)?;
    result
}

/// The pragmas every connection needs (`ren3_sqlite::configure`).
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    ren3_sqlite::configure(conn, BUSY_TIMEOUT, STATEMENT_CACHE_CAPACITY)
}

/// Enough for every statement of the store's queries: an issuance runs about
/// a dozen, and preparing one costs as much as running it.
const STATEMENT_CACHE_CAPACITY: usize = 64;

pub(crate) use ren3_sqlite::{U64, execute_cached, query_row_cached};

mod audit;
mod backup;
mod chain;
mod devices;
mod issuances;
mod keys;
mod licenses;
mod private_files;
mod records;
mod releases;
mod rows;
mod sessions;
#[cfg(test)]
mod tests;
mod users;

pub use audit::AuditEntry;
pub(crate) use audit::*;
pub(crate) use backup::*;
pub(crate) use chain::*;
pub(crate) use devices::*;
pub(crate) use issuances::*;
pub(crate) use keys::*;
pub(crate) use licenses::*;
pub use records::*;
pub use releases::ReleaseRecord;
pub(crate) use releases::*;
pub(crate) use rows::ordered;
use rows::*;
pub(crate) use sessions::*;
pub(crate) use users::*;
