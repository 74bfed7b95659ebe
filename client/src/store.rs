//! The local SQLite store: the device key, the sequence number it signs
//! with, pending license requests, every imported license and every
//! release receipt.
//!
//! One connection, behind a mutex, used only from blocking threads through
//! [`Store::call`]: the async executor never waits on SQLite, and a
//! connection is never held across an `.await`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ren3_shared::{
    DeviceKey, KeyId, RandomSourceError, RevocationList, VerifiedPayload, VerifiedReceipt,
    VerifiedRequest,
};
use rusqlite::{Connection, OptionalExtension as _, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};

/// How long a statement waits for another connection's lock (an operator's
/// `sqlite3` shell, a second process) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many requests are kept pending: an operator who registers
/// again and again must not grow the store without bound. Beyond it the
/// oldest request that is not its license key's newest is forgotten, and a
/// register that could only make room by forgetting some key's newest
/// request is refused ([`insert_pending_request`]).
pub const MAX_PENDING_REQUESTS: i64 = 16;

/// Append-only: never edit a migration that has shipped, add a new one.
const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
    -- The installation's Ed25519 key pair. One row, created on first start.
    CREATE TABLE device_key (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        seed        BLOB    NOT NULL CHECK (length(seed) = 32),
        public_key  TEXT    NOT NULL,
        created_at  INTEGER NOT NULL
    ) STRICT;

    -- Requests exported and not yet answered. `seq` orders them: clocks can
    -- repeat or go back, insertion order cannot.
    CREATE TABLE pending_requests (
        seq                      INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id               TEXT    NOT NULL UNIQUE,
        token                    TEXT    NOT NULL,
        request_hash             TEXT    NOT NULL UNIQUE,
        license_key_fingerprint  TEXT    NOT NULL,
        created_at               INTEGER NOT NULL
    ) STRICT;

    -- Every imported payload. The active license is the one row whose
    -- replaced_at is NULL. `serial` holds the u64 serial's bit pattern.
    CREATE TABLE licenses (
        id                       INTEGER PRIMARY KEY AUTOINCREMENT,
        token                    TEXT    NOT NULL,
        serial                   INTEGER NOT NULL,
        license_key_fingerprint  TEXT    NOT NULL,
        key_id                   TEXT    NOT NULL,
        expires_at               INTEGER,
        imported_at              INTEGER NOT NULL,
        replaced_at              INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX licenses_one_active ON licenses ((replaced_at IS NULL))
        WHERE replaced_at IS NULL;
    "#,
    ),
    M::up(
        r#"
    -- When a license stopped being used because the operator deactivated it
    -- (POST /license/deactivate); replaced_at is set at the same time.
    ALTER TABLE licenses ADD COLUMN deactivated_at INTEGER;

    -- The latest time this installation has seen, so that a clock wound
    -- back while it was stopped is noticed at the next start. One row.
    CREATE TABLE clock (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        high_water_mark  INTEGER NOT NULL
    ) STRICT;

    -- Every release receipt this installation signed. `counter` only grows:
    -- the vendor refuses a receipt it has seen, or an older one.
    CREATE TABLE release_receipts (
        counter                  INTEGER PRIMARY KEY CHECK (counter >= 1),
        license_id               INTEGER NOT NULL REFERENCES licenses (id),
        token                    TEXT    NOT NULL,
        serial                   INTEGER NOT NULL,
        license_key_fingerprint  TEXT    NOT NULL,
        released_at              INTEGER NOT NULL
    ) STRICT;
    "#,
    ),
    M::up(
        r#"
    -- The seq of the pending request each imported license answered. That
    -- request and every one before it are forgotten from then on: the
    -- newest license's answered_seq is the mark, and rows at or below it
    -- are no longer pending even while they are still stored (they are
    -- deleted in batches, see FORGOTTEN_BATCH). NULL on licenses imported
    -- before this migration, whose forgotten requests were deleted at once.
    ALTER TABLE licenses ADD COLUMN answered_seq INTEGER;
    "#,
    ),
    M::up(
        r#"
    -- The newest revocation list this installation has seen, signed by the
    -- build's root. One row; `version` holds the u64 version's bit pattern
    -- and only rises. It is one of three sources of the effective list (with
    -- the build's floor and the lists inside stored payloads), so deleting
    -- it does not lower the effective version.
    CREATE TABLE revocation_list (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        version     INTEGER NOT NULL,
        token       TEXT    NOT NULL,
        stored_at   INTEGER NOT NULL
    ) STRICT;
    "#,
    ),
    M::up(
        r#"
    -- From now on the clock's high-water mark is written in the same
    -- transaction as every time column of newest_recorded_time!, so a mark below
    -- one of them means the mark was lowered. Registers did not record it
    -- before, so a pending request can be a little newer than the mark:
    -- raise the mark to every recorded time once. A missing mark stays
    -- missing: this store had one (see `open_connection`).
    UPDATE clock SET high_water_mark = max(high_water_mark,
        coalesce((SELECT max(imported_at) FROM licenses), high_water_mark),
        coalesce((SELECT max(replaced_at) FROM licenses), high_water_mark),
        coalesce((SELECT max(deactivated_at) FROM licenses), high_water_mark),
        coalesce((SELECT max(released_at) FROM release_receipts), high_water_mark),
        coalesce((SELECT max(created_at) FROM pending_requests), high_water_mark));
    "#,
    ),
    M::up(
        r#"
    -- The installation's sequence number (docs/FORMAT.md §6): every license
    -- request and every release receipt the device key signs takes the next
    -- value, in the transaction that records it, so the vendor can tell a
    -- receipt signed after a request from one kept back since. One row;
    -- `last_counter` is the value taken last. Receipts were counted alone
    -- before, and requests (ren3-request-v1) carried no counter, so the
    -- sequence goes on above the last receipt.
    CREATE TABLE signing_sequence (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        last_counter  INTEGER NOT NULL CHECK (last_counter >= 0)
    ) STRICT;
    INSERT INTO signing_sequence (id, last_counter)
        SELECT 1, coalesce(max(counter), 0) FROM release_receipts;

    -- The sequence number each request took; NULL on requests made before
    -- this migration, which carried none.
    ALTER TABLE pending_requests ADD COLUMN counter INTEGER CHECK (counter >= 1);
    "#,
    ),
];

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

/// Forgotten pending requests are deleted once this many may have piled
/// up, by the import that forgets them, or by the next register.
const FORGOTTEN_BATCH: i64 = 32;

/// SQL for the mark at and below which pending requests are forgotten: the
/// newest license's `answered_seq`, or 0 before any import under migration
/// 3. Imports only answer requests above the mark, so it only grows. A
/// macro, so that the statements using it are literals.
macro_rules! forgotten_through {
    () => {
        "coalesce((SELECT answered_seq FROM licenses ORDER BY id DESC LIMIT 1), 0)"
    };
}

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
    /// SQLite would not use write-ahead logging, which the store needs; it
    /// reports the journal mode it kept.
    #[error("SQLite did not switch the license store to WAL mode (it reports `{0}`)")]
    NotWal(String),
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
        let conn = tokio::task::spawn_blocking(move || open_connection(&task_path))
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

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
    // A store of the first schema never had a mark (migration 2 made the
    // table): its first one is the newest time it records, so that an
    // upgrade is not taken for a deleted mark.
    if version == 1 {
        execute_cached(
            &conn,
            concat!(
                "INSERT INTO clock (id, high_water_mark)
                 SELECT 1, t FROM (SELECT ",
                newest_recorded_time!(),
                " AS t) WHERE t > -9223372036854775808
                 ON CONFLICT (id) DO NOTHING"
            ),
            [],
        )?;
    }
    Ok(conn)
}

/// Pragmas are per connection, so they are set at every open and not in a
/// migration.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Room for every statement of this module (about twenty).
    conn.set_prepared_statement_cache_capacity(32);
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal(mode));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates the database file readable by its owner only, and takes group
/// and other access away from an existing one. SQLite gives the `-wal` and
/// `-shm` files it creates the database file's permissions.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let error = |source| StoreError::Create {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(error)?;
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the license store was readable by others; restricting it to its owner"
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(error)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> Result<(), StoreError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::Create {
            path: path.to_owned(),
            source,
        })
}

/// Every write goes through this: `BEGIN IMMEDIATE` takes the write lock up
/// front, so a transaction never fails half-way on a lock upgrade.
pub fn write_transaction(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// The installation's key, created with the OS's secure random source on
/// first start.
pub fn load_or_create_device_key(conn: &mut Connection, now: i64) -> Result<DeviceKey, StoreError> {
    if let Some(key) = load_device_key(conn)? {
        return Ok(key);
    }
    let key = DeviceKey::generate()?;
    let tx = write_transaction(conn)?;
    // Another process may have created it meanwhile; the first key stays.
    execute_cached(
        &tx,
        "INSERT INTO device_key (id, seed, public_key, created_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO NOTHING",
        params![key.seed().as_slice(), key.public_key().to_string(), now],
    )?;
    tx.commit()?;
    load_device_key(conn)?
        .ok_or_else(|| StoreError::Damaged("the device key vanished after it was stored".into()))
}

fn load_device_key(conn: &Connection) -> Result<Option<DeviceKey>, StoreError> {
    let row: Option<(Vec<u8>, String)> = query_row_cached(
        conn,
        "SELECT seed, public_key FROM device_key WHERE id = 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()?;
    let Some((seed, public_key)) = row else {
        return Ok(None);
    };
    let seed = <[u8; 32]>::try_from(seed)
        .map_err(|_| StoreError::Damaged("the device key is not 32 bytes".into()))?;
    let key = DeviceKey::from_seed(&seed);
    if key.public_key().to_string() != public_key {
        return Err(StoreError::Damaged(
            "the device key does not match its recorded public key".into(),
        ));
    }
    Ok(Some(key))
}

/// Whether a register was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOutcome {
    /// The request, signed with the sequence number it took, is stored.
    /// Boxed: a request is some 460 bytes, a refusal 8.
    Recorded(Box<VerifiedRequest>),
    /// Nothing was written, and no sequence number taken:
    /// [`MAX_PENDING_REQUESTS`] license keys each have a pending request,
    /// and this one is for yet another key.
    Refused {
        /// How many requests are pending.
        pending: u64,
    },
}

/// Records a new request durably, in one transaction: `sign` makes it with
/// the installation's next sequence number ([`take_sequence_number`]), and
/// the request, the number it took and the clock's mark `mark` (when given:
/// `None` leaves a doubted mark as it is, see [`high_water_mark`]) are
/// written together, deleting the forgotten requests.
///
/// Beyond [`MAX_PENDING_REQUESTS`], the oldest requests that are not the
/// newest of their license key go: a key's newest request is never
/// forgotten for a register under another key, so whoever can reach the
/// port cannot push out the request a customer already sent to the vendor
/// by registering other keys. When every pending request is its key's
/// newest and this one is for another key, nothing is written: the signed
/// request is dropped and its number is taken again by the next one, so no
/// number is ever shown for a request the store does not keep.
pub fn insert_pending_request<E: From<StoreError>>(
    conn: &mut Connection,
    now: i64,
    mark: Option<i64>,
    sign: impl FnOnce(u64) -> Result<VerifiedRequest, E>,
) -> Result<PendingOutcome, E> {
    let tx = write_transaction(conn)?;
    let counter = take_sequence_number(&tx)?;
    let request = sign(counter)?;
    if request.request.counter != counter {
        return Err(StoreError::Damaged(format!(
            "a request was signed with sequence number {} instead of {counter}",
            request.request.counter
        ))
        .into());
    }
    let recorded = record_pending_request(&tx, &request, now, mark)?;
    if let Some(pending) = recorded {
        // Dropping `tx` rolls back: the forgotten rows and the number stay.
        return Ok(PendingOutcome::Refused { pending });
    }
    tx.commit().map_err(StoreError::from)?;
    Ok(PendingOutcome::Recorded(Box::new(request)))
}

/// The writes of [`insert_pending_request`] inside `tx`; `Some(pending)`
/// when the register must be refused, after which `tx` must not commit.
fn record_pending_request(
    tx: &Transaction<'_>,
    request: &VerifiedRequest,
    now: i64,
    mark: Option<i64>,
) -> Result<Option<u64>, StoreError> {
    execute_cached(
        tx,
        concat!(
            "DELETE FROM pending_requests WHERE seq <= ",
            forgotten_through!()
        ),
        [],
    )?;
    write_pending_request(tx, request, now)?;
    // Every stored row is pending now; each key keeps its newest.
    let (count, keys): (i64, i64) = query_row_cached(
        tx,
        "SELECT count(*), count(DISTINCT license_key_fingerprint) FROM pending_requests",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if keys > MAX_PENDING_REQUESTS {
        return Ok(Some(u64::try_from(count - 1).unwrap_or_default()));
    }
    if count > MAX_PENDING_REQUESTS {
        execute_cached(
            tx,
            "DELETE FROM pending_requests WHERE seq IN (
                 SELECT seq FROM pending_requests AS p
                 WHERE seq < (SELECT max(seq) FROM pending_requests
                              WHERE license_key_fingerprint = p.license_key_fingerprint)
                 ORDER BY seq LIMIT ?1)",
            [count - MAX_PENDING_REQUESTS],
        )?;
    }
    if let Some(mark) = mark {
        raise_high_water_mark(tx, mark)?;
    }
    Ok(None)
}

/// Writes the row of one exported request, and nothing else: unlike
/// [`insert_pending_request`], it neither opens a transaction nor trims the
/// list. Tests and the HTTP bench fill a store beyond what it keeps this way.
pub fn write_pending_request(
    conn: &Connection,
    request: &VerifiedRequest,
    now: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO pending_requests
             (request_id, token, request_hash, license_key_fingerprint, created_at, counter)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            request.request.request_id.to_string(),
            request.token(),
            request.hash().to_string(),
            request.request.license_key_fingerprint.to_string(),
            now,
            counter_column(request.request.counter)?,
        ],
    )?;
    Ok(())
}

/// How many requests are pending: stored and above the forgotten mark.
pub fn pending_request_count(conn: &Connection) -> Result<u64, StoreError> {
    // A bare count(*) counts a B-tree's entries without reading them; with
    // a condition it reads every one, at dozens of times the cost for a
    // long list. The forgotten rows still stored are at most a batch, found
    // by their rowid range.
    let count: i64 = query_row_cached(
        conn,
        concat!(
            "SELECT (SELECT count(*) FROM pending_requests)
                  - (SELECT count(*) FROM pending_requests WHERE seq <= ",
            forgotten_through!(),
            ")"
        ),
        [],
        |row| row.get(0),
    )?;
    u64::try_from(count).map_err(|_| StoreError::Damaged("a negative row count".into()))
}

/// The hashes of the pending requests, oldest first.
pub fn pending_request_hashes(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT request_hash FROM pending_requests WHERE seq > ",
        forgotten_through!(),
        " ORDER BY seq"
    ))?;
    let hashes = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(hashes)
}

/// The position of the pending request with `request_hash`, if there is
/// one: a forgotten request is not pending, even while it is still stored.
pub fn pending_request_seq(
    conn: &Connection,
    request_hash: &ren3_shared::Digest,
) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        concat!(
            "SELECT seq FROM pending_requests WHERE request_hash = ?1 AND seq > ",
            forgotten_through!()
        ),
        [request_hash.to_string()],
        |row| row.get(0),
    )
    .optional()?)
}

/// The stored columns of the active license that policy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLicenseRow {
    /// The row's id in `licenses`.
    pub id: i64,
    /// The payload's canonical token, as imported.
    pub token: String,
    /// The license's serial.
    pub serial: u64,
    /// The fingerprint of the license key it was issued for, as text.
    pub license_key_fingerprint: String,
    /// The issuer key that signed it, as recorded at import.
    pub key_id: String,
}

impl ActiveLicenseRow {
    /// The recorded key id, parsed.
    pub fn key_id(&self) -> Result<KeyId, StoreError> {
        self.key_id.parse().map_err(|e| {
            StoreError::Damaged(format!("the active license's key id is not one: {e}"))
        })
    }
}

/// The active license's row, if one is active: the one row not replaced
/// or deactivated. Its token is not verified here.
pub fn active_license(conn: &Connection) -> Result<Option<ActiveLicenseRow>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT id, token, serial, license_key_fingerprint, key_id FROM licenses
             WHERE replaced_at IS NULL",
        [],
        |row| {
            Ok(ActiveLicenseRow {
                id: row.get(0)?,
                token: row.get(1)?,
                serial: row.get::<_, i64>(2)?.cast_unsigned(),
                license_key_fingerprint: row.get(3)?,
                key_id: row.get(4)?,
            })
        },
    )
    .optional()?)
}

/// The distinct tokens of every stored license, active or not: each
/// carries a revocation list, and the newest of them counts at start-up.
pub fn license_tokens(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT token FROM licenses")?;
    let tokens = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(tokens)
}

/// The stored revocation list's token, if one is stored. The caller
/// verifies it: a row is never trusted for what it says.
pub fn stored_revocation_list(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT token FROM revocation_list WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .optional()?)
}

/// Stores `list` in place of the stored one. The caller has checked that
/// it is newer than the effective list, which is never older than a stored
/// row that verifies; a row that does not verify is overwritten whatever
/// version it claims. Runs inside the caller's transaction, or alone.
pub fn store_revocation_list(
    conn: &Connection,
    list: &RevocationList,
    now: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO revocation_list (id, version, token, stored_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET
             version = excluded.version, token = excluded.token, stored_at = excluded.stored_at",
        params![list.version().cast_signed(), list.token(), now],
    )?;
    Ok(())
}

/// Makes `payload`, whose canonical token is `token`, the active license
/// inside `tx`: the old active row is marked replaced, the new one inserted,
/// and the request it answers (at `answered_seq`) is forgotten together with
/// every request made before it. Forgotten rows are deleted once a batch of
/// them may have piled up. Returns how many pending requests it forgot.
pub fn install_license(
    tx: &Transaction<'_>,
    payload: &VerifiedPayload,
    token: &str,
    answered_seq: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let license = &payload.license;
    // Counted before the new row moves the mark: the rowid range holds the
    // newly forgotten requests only.
    let forgotten: i64 = query_row_cached(
        tx,
        concat!(
            "SELECT count(*) FROM pending_requests WHERE seq <= ?1 AND seq > ",
            forgotten_through!()
        ),
        [answered_seq],
        |row| row.get(0),
    )?;
    execute_cached(
        tx,
        "UPDATE licenses SET replaced_at = ?1 WHERE replaced_at IS NULL",
        [now],
    )?;
    execute_cached(
        tx,
        "INSERT INTO licenses
             (token, serial, license_key_fingerprint, key_id, expires_at, imported_at,
              answered_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token,
            license.serial.cast_signed(),
            license.license_key_fingerprint.to_string(),
            payload.key_id.to_string(),
            license.expires_at,
            now,
            answered_seq,
        ],
    )?;
    let oldest: Option<i64> =
        query_row_cached(tx, "SELECT min(seq) FROM pending_requests", [], |row| {
            row.get(0)
        })?;
    if oldest.is_some_and(|oldest| answered_seq - oldest >= FORGOTTEN_BATCH) {
        execute_cached(
            tx,
            "DELETE FROM pending_requests WHERE seq <= ?1",
            [answered_seq],
        )?;
    }
    u64::try_from(forgotten).map_err(|_| StoreError::Damaged("a negative row count".into()))
}

/// The newest time the store records besides the clock's mark (see
/// `newest_recorded_time!`); `None` when it records none. A mark below it was
/// lowered.
pub fn recorded_times(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let newest: i64 = query_row_cached(
        conn,
        concat!("SELECT ", newest_recorded_time!()),
        [],
        |row| row.get(0),
    )?;
    Ok((newest > i64::MIN).then_some(newest))
}

/// The high-water mark of the clock recorded in the store, if any.
///
/// With a license installed the mark is never missing, and never below
/// [`recorded_times`], unless the store was edited: every change that
/// writes a time also writes a mark at least as late in the same
/// transaction. Start-up tells the handle ([`crate::license::MarkProblem`]),
/// and from then on nothing raises or re-creates a doubted mark but the
/// import or deactivation that ends its license: rewriting it again would
/// erase the evidence.
pub fn high_water_mark(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT high_water_mark FROM clock WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .optional()?)
}

/// Raises the recorded high-water mark to `mark`; it never goes down.
/// Runs inside the caller's transaction, or alone (autocommit).
pub fn raise_high_water_mark(conn: &Connection, mark: i64) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO clock (id, high_water_mark) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET high_water_mark = excluded.high_water_mark
             WHERE excluded.high_water_mark > clock.high_water_mark",
        [mark],
    )?;
    Ok(())
}

/// When the newest license was deactivated, if the newest one was and none
/// has been imported since.
pub fn deactivated_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT deactivated_at FROM licenses ORDER BY id DESC LIMIT 1",
        [],
        |row| row.get::<_, Option<i64>>(0),
    )
    .optional()?
    .flatten())
}

/// Takes the installation's next sequence number inside `tx` (docs/FORMAT.md
/// §6): one more than the last one taken, by a request or a receipt. It
/// counts only once `tx` commits with the row it signs, so a refused
/// register or deactivation, which rolls back, takes none.
///
/// It is never below a number a stored request or receipt carries either,
/// so a store whose sequence row was lost still never signs a number twice.
pub fn take_sequence_number(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let last: i64 = query_row_cached(
        tx,
        "SELECT max(
             coalesce((SELECT last_counter FROM signing_sequence WHERE id = 1), 0),
             coalesce((SELECT max(counter) FROM release_receipts), 0),
             coalesce((SELECT max(counter) FROM pending_requests), 0))",
        [],
        |row| row.get(0),
    )?;
    let next = last
        .checked_add(1)
        .ok_or_else(|| StoreError::Damaged("the sequence number is exhausted".into()))?;
    execute_cached(
        tx,
        "INSERT INTO signing_sequence (id, last_counter) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET last_counter = excluded.last_counter",
        [next],
    )?;
    u64::try_from(next).map_err(|_| StoreError::Damaged("a negative sequence number".into()))
}

/// The sequence number taken last (0 before any), as the store records it.
pub fn last_sequence_number(conn: &Connection) -> Result<u64, StoreError> {
    let last: i64 = query_row_cached(
        conn,
        "SELECT coalesce((SELECT last_counter FROM signing_sequence WHERE id = 1), 0)",
        [],
        |row| row.get(0),
    )?;
    u64::try_from(last).map_err(|_| StoreError::Damaged("a negative sequence number".into()))
}

/// A counter as the store keeps it: every one this installation signs came
/// from [`take_sequence_number`], so it fits.
fn counter_column(counter: u64) -> Result<i64, StoreError> {
    i64::try_from(counter)
        .map_err(|_| StoreError::Damaged(format!("the counter {counter} is out of range")))
}

/// Stops using the active license `license_id` inside `tx`: it stays in
/// history as deactivated, every pending request is forgotten, the receipt
/// that proves it is recorded, and the device key that signed the receipt
/// is replaced by `next_key`, created at `now`.
///
/// The old key is bound to the released seat at the vendor: once the
/// receipt is signed, nothing more may be signed with it, or a request
/// made after the release could still be answered under the old binding
/// (and a second receipt could outrun the first). The pending requests
/// were all signed with it, so no payload for them could be imported
/// under the new key anyway.
pub fn deactivate_license(
    tx: &Transaction<'_>,
    license_id: i64,
    receipt: &VerifiedReceipt,
    next_key: &DeviceKey,
    now: i64,
) -> Result<(), StoreError> {
    let r = &receipt.receipt;
    let changed = execute_cached(
        tx,
        "UPDATE licenses SET replaced_at = ?2, deactivated_at = ?2
         WHERE id = ?1 AND replaced_at IS NULL",
        params![license_id, r.released_at],
    )?;
    if changed != 1 {
        return Err(StoreError::Damaged(
            "the license to deactivate is no longer the active one".into(),
        ));
    }
    execute_cached(tx, "DELETE FROM pending_requests", [])?;
    execute_cached(
        tx,
        "INSERT INTO release_receipts
             (counter, license_id, token, serial, license_key_fingerprint, released_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            counter_column(r.counter)?,
            license_id,
            receipt.token(),
            r.serial.cast_signed(),
            r.license_key_fingerprint.to_string(),
            r.released_at,
        ],
    )?;
    let replaced = execute_cached(
        tx,
        "UPDATE device_key SET seed = ?1, public_key = ?2, created_at = ?3
         WHERE id = 1 AND public_key = ?4",
        params![
            next_key.seed().as_slice(),
            next_key.public_key().to_string(),
            now,
            receipt.device_public_key.to_string(),
        ],
    )?;
    if replaced != 1 {
        return Err(StoreError::Damaged(
            "the stored device key is not the one that signed the release receipt".into(),
        ));
    }
    Ok(())
}

/// [`Connection::execute`] through the connection's statement cache: an
/// import runs a dozen statements, and preparing one costs about as much as
/// running it.
fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`Connection::query_row`] through the connection's statement cache.
fn query_row_cached<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    use ren3_shared::{DeviceId, LicenseKey, LicenseRequest, Product};

    fn request(device: &DeviceKey, created_at: i64) -> VerifiedRequest {
        request_numbered(device, created_at, 1)
    }

    fn request_numbered(device: &DeviceKey, created_at: i64, counter: u64) -> VerifiedRequest {
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

    #[test]
    fn migrations_are_valid() {
        Migrations::from_slice(MIGRATIONS).validate().unwrap();
    }

    #[test]
    fn requests_pending_before_the_forgotten_mark_existed_stay_pending() {
        // A store of migration 2, with a license imported then and two
        // requests made since: its answered requests were deleted at once,
        // so every stored request is pending after the upgrade.
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = Migrations::from_slice(MIGRATIONS);
        migrations.to_version(&mut conn, 2).unwrap();
        conn.execute(
            "INSERT INTO licenses
                 (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
             VALUES ('t', 1, 'f', 'k', NULL, 1)",
            [],
        )
        .unwrap();
        let device = DeviceKey::from_seed(&[4; 32]);
        let requests = [request(&device, 10), request(&device, 20)];
        for (seq, request) in [7, 8].into_iter().zip(&requests) {
            conn.execute(
                "INSERT INTO pending_requests
                     (seq, request_id, token, request_hash, license_key_fingerprint, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    seq,
                    request.request.request_id.to_string(),
                    request.token(),
                    request.hash().to_string(),
                    "f",
                    1
                ],
            )
            .unwrap();
        }
        migrations.to_latest(&mut conn).unwrap();
        assert_eq!(pending_request_count(&conn).unwrap(), 2);
        assert_eq!(pending_request_hashes(&conn).unwrap().len(), 2);
        assert_eq!(
            pending_request_seq(&conn, &requests[0].hash()).unwrap(),
            Some(7)
        );
    }

    #[tokio::test]
    async fn every_connection_gets_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("license.db")).await.unwrap();
        let (mode, synchronous, foreign_keys, timeout) = store
            .call(|conn| {
                let get = |name: &str| -> Result<String, StoreError> {
                    Ok(conn.pragma_query_value(None, name, |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                            .map(|v| format!("{v:?}"))
                    })?)
                };
                Ok::<_, StoreError>((
                    get("journal_mode")?,
                    get("synchronous")?,
                    get("foreign_keys")?,
                    get("busy_timeout")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "Text(\"wal\")");
        // FULL is 2.
        assert_eq!(synchronous, "Integer(2)");
        assert_eq!(foreign_keys, "Integer(1)");
        assert_eq!(timeout, "Integer(5000)");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn store_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.db");
        let store = Store::open(&path).await.unwrap();
        store
            .call(|conn| load_or_create_device_key(conn, 1))
            .await
            .unwrap();
        for file in [path.clone(), dir.path().join("license.db-wal")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        drop(store);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn device_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.db");
        let store = Store::open(&path).await.unwrap();
        let first = store
            .call(|conn| load_or_create_device_key(conn, 1))
            .await
            .unwrap();
        let again = store
            .call(|conn| load_or_create_device_key(conn, 2))
            .await
            .unwrap();
        assert_eq!(first.public_key(), again.public_key());
        drop(store);
        let reopened = Store::open(&path).await.unwrap();
        let after_restart = reopened
            .call(|conn| load_or_create_device_key(conn, 3))
            .await
            .unwrap();
        assert_eq!(first.public_key(), after_restart.public_key());
    }

    #[tokio::test]
    async fn pending_requests_keep_the_newest_sixteen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("license.db")).await.unwrap();
        let mut requests = Vec::new();
        for i in 0..20 {
            let outcome = store
                .call(move |conn| {
                    insert_pending_request::<StoreError>(conn, 1_800_000_000, None, |counter| {
                        let device = DeviceKey::from_seed(&[7u8; 32]);
                        Ok(request_numbered(&device, 1_800_000_000 + i, counter))
                    })
                })
                .await
                .unwrap();
            let PendingOutcome::Recorded(request) = outcome else {
                panic!("{i}. refused: {outcome:?}");
            };
            assert_eq!(request.request.counter, u64::try_from(i + 1).unwrap());
            requests.push(*request);
        }
        let (count, kept) = store
            .call(|conn| {
                let mut stmt =
                    conn.prepare("SELECT request_hash FROM pending_requests ORDER BY seq")?;
                let kept = stmt
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, StoreError>((pending_request_count(conn)?, kept))
            })
            .await
            .unwrap();
        assert_eq!(count, 16);
        let newest: Vec<String> = requests[4..].iter().map(|r| r.hash().to_string()).collect();
        assert_eq!(kept, newest);
    }

    #[test]
    fn at_most_one_license_is_active() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .unwrap();
        let insert = "INSERT INTO licenses
            (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
            VALUES ('t', 1, 'f', 'k', NULL, 1)";
        conn.execute(insert, []).unwrap();
        assert!(conn.execute(insert, []).is_err());
        conn.execute("UPDATE licenses SET replaced_at = 2", [])
            .unwrap();
        conn.execute(insert, []).unwrap();
    }

    #[test]
    fn serials_beyond_i64_round_trip() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .unwrap();
        conn.execute(
            "INSERT INTO licenses
                (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
             VALUES ('t', ?1, 'f', 'k', NULL, 1)",
            [u64::MAX.cast_signed()],
        )
        .unwrap();
        assert_eq!(active_license(&conn).unwrap().unwrap().serial, u64::MAX);
    }

    #[test]
    fn an_upgrade_leaves_the_mark_no_lower_than_any_recorded_time() {
        let dir = tempfile::tempdir().unwrap();
        let device = DeviceKey::from_seed(&[4; 32]);
        // (schema before the upgrade, mark then, the mark after)
        let cases = [
            (1, None, Some(500)),
            (4, Some(100), Some(500)),
            (4, None, None),
        ];
        for (n, (version, mark, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("{n}.db"));
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(MIGRATIONS)
                .to_version(&mut conn, version)
                .unwrap();
            conn.execute(
                "INSERT INTO licenses
                     (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
                 VALUES ('t', 1, 'f', 'k', NULL, 300)",
                [],
            )
            .unwrap();
            // The columns of that schema.
            let pending = request(&device, 500);
            conn.execute(
                "INSERT INTO pending_requests
                     (request_id, token, request_hash, license_key_fingerprint, created_at)
                 VALUES (?1, ?2, ?3, 'f', 500)",
                params![
                    pending.request.request_id.to_string(),
                    pending.token(),
                    pending.hash().to_string()
                ],
            )
            .unwrap();
            if let Some(mark) = mark {
                raise_high_water_mark(&conn, mark).unwrap();
            }
            drop(conn);
            // Only the first schema had no mark: a later store without
            // one lost it, and keeps it lost.
            let conn = open_connection(&path).unwrap();
            assert_eq!(high_water_mark(&conn).unwrap(), expected, "{n}.");
            assert_eq!(recorded_times(&conn).unwrap(), Some(500), "{n}.");
        }
    }

    #[test]
    fn an_upgrade_continues_the_sequence_above_every_receipt() {
        // (receipt counters before the upgrade, the next number after it)
        let cases: [(&[i64], u64); 3] = [(&[], 1), (&[1], 2), (&[1, 2, 5], 6)];
        for (n, (counters, next)) in cases.into_iter().enumerate() {
            let mut conn = Connection::open_in_memory().unwrap();
            let migrations = Migrations::from_slice(MIGRATIONS);
            migrations.to_version(&mut conn, 5).unwrap();
            conn.execute(
                "INSERT INTO licenses
                     (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
                 VALUES ('t', 1, 'f', 'k', NULL, 1)",
                [],
            )
            .unwrap();
            for counter in counters {
                conn.execute(
                    "INSERT INTO release_receipts
                         (counter, license_id, token, serial, license_key_fingerprint,
                          released_at)
                     VALUES (?1, 1, 'r', 1, 'f', 1)",
                    [counter],
                )
                .unwrap();
            }
            // A request of the old format, which carried no counter.
            conn.execute(
                "INSERT INTO pending_requests
                     (request_id, token, request_hash, license_key_fingerprint, created_at)
                 VALUES ('i', 't', 'h', 'f', 1)",
                [],
            )
            .unwrap();
            migrations.to_latest(&mut conn).unwrap();
            assert_eq!(last_sequence_number(&conn).unwrap(), next - 1, "{n}.");
            let tx = write_transaction(&mut conn).unwrap();
            assert_eq!(take_sequence_number(&tx).unwrap(), next, "{n}.");
            assert_eq!(take_sequence_number(&tx).unwrap(), next + 1, "{n}.");
            drop(tx);
            assert_eq!(
                last_sequence_number(&conn).unwrap(),
                next - 1,
                "{n}. rolled back"
            );
        }
    }

    #[test]
    fn the_sequence_never_falls_below_a_stored_counter() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .unwrap();
        let device = DeviceKey::from_seed(&[4; 32]);
        write_pending_request(&conn, &request_numbered(&device, 1, 7), 1).unwrap();
        // An operator deleted the row.
        conn.execute("DELETE FROM signing_sequence", []).unwrap();
        let tx = write_transaction(&mut conn).unwrap();
        assert_eq!(take_sequence_number(&tx).unwrap(), 8);
        tx.commit().unwrap();
        assert_eq!(last_sequence_number(&conn).unwrap(), 8);
    }

    #[test]
    fn high_water_mark_never_goes_down() {
        let mut conn = Connection::open_in_memory().unwrap();
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .unwrap();
        assert_eq!(high_water_mark(&conn).unwrap(), None);
        for (n, (raise_to, expected)) in [(100, 100), (200, 200), (150, 200), (200, 200)]
            .into_iter()
            .enumerate()
        {
            raise_high_water_mark(&conn, raise_to).unwrap();
            assert_eq!(high_water_mark(&conn).unwrap(), Some(expected), "{n}.");
        }
    }
}
