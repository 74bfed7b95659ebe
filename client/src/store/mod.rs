//! The local SQLite store: the device key, the sequence number it signs
//! with, pending license requests, every imported license and every
//! release receipt.
//!
//! One connection, behind a mutex, used only from blocking threads through
//! [`Store::call`]: the async executor never waits on SQLite, and a
//! connection is never held across an `.await`.
//!
//! This file holds the handle and what every table's queries share; each
//! concern has a module of its own: opening and migrations (`schema`),
//! the device key, the pending requests, the licenses, the clock's mark,
//! the sequence number, the release receipts and the revocation list. Their
//! functions are all re-exported here, so callers name `store::…` only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ren3_shared::RandomSourceError;
use rusqlite::{Connection, Transaction, TransactionBehavior};

// The two SQL fragments the tables' modules share. A `macro_rules!` is in
// scope only after it, so they come before the modules.

/// SQL for the newest time the store records besides the mark, or
/// `i64::MIN` when it records none: every column written in the same
/// transaction as a mark at least as late. (Not `revocation_list.stored_at`
/// or `device_key.created_at`, which are written alone.) The device writes
/// these, so they only tell that the mark was lowered; they are never a
/// time the license is judged at. A macro, so that the statements using it
/// are literals.
macro_rules! newest_recorded_time {
    () => {
        "max(
            coalesce((SELECT max(imported_at) FROM licenses), -9223372036854775808),
            coalesce((SELECT max(replaced_at) FROM licenses), -9223372036854775808),
            coalesce((SELECT max(deactivated_at) FROM licenses), -9223372036854775808),
            coalesce((SELECT max(released_at) FROM release_receipts), -9223372036854775808),
            coalesce((SELECT max(created_at) FROM pending_requests), -9223372036854775808))"
    };
}

/// SQL for the mark at and below which pending requests are forgotten: the
/// newest license's `answered_seq`, or 0 before any import under migration
/// 3. Imports only answer requests above the mark, so it only grows. A
/// macro, so that the statements using it are literals.
macro_rules! forgotten_through {
    () => {
        "coalesce((SELECT answered_seq FROM licenses ORDER BY id DESC LIMIT 1), 0)"
    };
}

mod clock;
mod device_key;
mod licenses;
mod pending_requests;
mod receipts;
mod revocation_list;
mod schema;
mod sequence;

pub use clock::{high_water_mark, raise_high_water_mark, recorded_times};
pub use device_key::load_or_create_device_key;
pub use licenses::{
    ActiveLicenseRow, active_license, deactivated_at, install_license, license_tokens,
};
pub use pending_requests::{
    MAX_PENDING_REQUESTS, PendingOutcome, insert_pending_request, pending_request_count,
    pending_request_hashes, pending_request_seq, write_pending_request,
};
pub use receipts::deactivate_license;
pub use revocation_list::{store_revocation_list, stored_revocation_list};
pub use sequence::{last_sequence_number, take_sequence_number};

/// Why the store failed. Shown in the log, never in an HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be created, or its permissions cannot be
    /// restricted to its owner.
    #[error("cannot create the license store `{path}`: {source}")]
    Create {
        /// The store's path.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A statement failed, for instance on a full disk, a damaged file or
    /// a lock held past the busy timeout.
    #[error("SQLite failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema cannot be migrated, for instance because a newer version
    /// wrote it.
    #[error(
        "the license store's schema cannot be brought up to date: {0}; if a newer \
         ingestor wrote it, run that version"
    )]
    Migration(#[from] rusqlite_migration::Error),
    /// A row breaks the store's own rules (a device key of the wrong size,
    /// a negative count): the file was edited or corrupted.
    #[error("the license store is damaged: {0}")]
    Damaged(String),
    /// The operating system's secure random source failed while creating
    /// the device key.
    #[error(transparent)]
    RandomSource(#[from] RandomSourceError),
    /// The blocking task that ran a closure panicked or was cancelled.
    #[error("a database task did not finish: {0}")]
    TaskFailed(String),
}

/// A handle to the store; cloning it shares the one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    /// What every status answer reads from the store, kept in memory.
    /// `None` when it must be read again (at open, or after a failed read).
    summary: Arc<Mutex<Option<Summary>>>,
    path: Arc<Path>,
}

/// The two values of the store that `GET /license` reports besides the
/// license itself. [`Store::call`] reads them again after every closure
/// that changed a row, before the next closure can run, so a status never
/// needs the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many requests are pending ([`pending_request_count`]).
    pub pending_requests: u64,
    /// See [`deactivated_at`].
    pub deactivated_at: Option<i64>,
}

impl Summary {
    fn read(conn: &Connection) -> Result<Self, StoreError> {
        Ok(Self {
            pending_requests: pending_request_count(conn)?,
            deactivated_at: deactivated_at(conn)?,
        })
    }
}

impl Store {
    /// Opens or creates the store at `path` (owner-only permissions, since
    /// it holds the device private key) and brings its schema up to date.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path: PathBuf = path.into();
        let task_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || schema::open_connection(&task_path))
            .await
            .map_err(|e| StoreError::TaskFailed(e.to_string()))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            summary: Arc::new(Mutex::new(None)),
            path: path.into(),
        })
    }

    /// The path the store was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.call_summarized(move |conn, _| f(conn).map(|value| (value, None)))
            .await
    }

    /// Runs `f` like [`Store::call`], for a closure that can tell the
    /// [`Summary`] it leaves behind: it gets the summary from before (when
    /// it is known) and returns, with its value, the summary after, which
    /// the store then keeps instead of reading it again. Returning `None`
    /// has the store read it, as after any closure that changed a row.
    pub async fn call_summarized<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection, Option<Summary>) -> Result<(T, Option<Summary>), E>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let summary = Arc::clone(&self.summary);
        tokio::task::spawn_blocking(move || {
            // A panic in an earlier `f` dropped its transaction, which rolled
            // back, so the connection behind a poisoned lock is still sound.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            // Read under the connection's lock, which every write holds: no
            // other closure can change the store between this and `f`.
            let before = *summary.lock().unwrap_or_else(PoisonError::into_inner);
            let changes = conn.total_changes();
            let (result, told) = match f(&mut conn, before) {
                Ok((value, told)) => (Ok(value), told),
                Err(e) => (Err(e), None),
            };
            // `f` has committed or rolled back by now; a rolled-back change
            // counts too, which only costs a read that finds no difference.
            // After a failure the store may be in trouble: the next status
            // reads it again, and reports the trouble if it is still there.
            let fresh = if result.is_err() {
                Some(None)
            } else if conn.total_changes() != changes {
                // Every test build checks what a closure told against the
                // store itself.
                debug_assert!(
                    told.is_none() || told == Summary::read(&conn).ok(),
                    "the summary told ({told:?}) is not the store's"
                );
                Some(told.or_else(|| Summary::read(&conn).ok()))
            } else {
                None
            };
            if let Some(fresh) = fresh {
                *summary.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
            }
            result
        })
        .await
        .map_err(|e| E::from(StoreError::TaskFailed(e.to_string())))?
    }

    /// The [`Summary`], from memory when it is known.
    pub async fn summary(&self) -> Result<Summary, StoreError> {
        let known = *self.summary.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(summary) = known {
            return Ok(summary);
        }
        let cache = Arc::clone(&self.summary);
        self.call(move |conn| {
            let summary = Summary::read(conn)?;
            *cache.lock().unwrap_or_else(PoisonError::into_inner) = Some(summary);
            Ok(summary)
        })
        .await
    }
}

impl Store {
    /// Reads from the database itself, never from memory, the rows a
    /// status reports besides the license: whether the store is usable,
    /// for a readiness check.
    ///
    /// # Errors
    ///
    /// What SQLite or the blocking task said.
    pub async fn check_readable(&self) -> Result<(), StoreError> {
        self.call(|conn| Summary::read(conn).map(|_| ())).await
    }
}

/// Every write goes through this: `BEGIN IMMEDIATE` takes the write lock up
/// front, so a transaction never fails half-way on a lock upgrade.
pub fn write_transaction(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

use ren3_sqlite::{U64, execute_cached, query_row_cached};

/// Requests signed the way a register signs them, for the tests of every
/// table that holds or counts them.
#[cfg(test)]
mod test_requests {
    use ren3_shared::{DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product, VerifiedRequest};

    pub(super) fn request(device: &DeviceKey, created_at: i64) -> VerifiedRequest {
        request_numbered(device, created_at, 1)
    }

    pub(super) fn request_numbered(
        device: &DeviceKey,
        created_at: i64,
        counter: u64,
    ) -> VerifiedRequest {
        let key = LicenseKey::parse("REN3K1-00000-00000-00000-00000-00000").unwrap();
        let id = DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap();
        let product = Product {
            name: "ren3-ingestor".into(),
            version: "0.1.0".into(),
        };
        LicenseRequest::new(id, &key, product, created_at)
            .unwrap()
            .with_counter(counter)
            .sign(device)
            .unwrap()
    }
}
