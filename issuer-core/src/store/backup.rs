//! The SQL of backups and restores (`crate::backup` holds their rules):
//! a consistent copy of the live store with SQLite's online backup API,
//! the checks a copy must pass, the exclusive hold that shows nobody else
//! has the store open, and the copy written back into the store in one
//! transaction.

use std::os::unix::ffi::OsStrExt as _;
use std::thread;

use rusqlite::backup::{Backup, StepResult};

use super::*;

/// The tables whose rows a verified copy counts, in the order reported.
pub(crate) const COUNTED_TABLES: [&str; 9] = [
    "licenses",
    "devices",
    "issuances",
    "releases",
    "signing_keys",
    "certificates",
    "revocation_lists",
    "users",
    "audit",
];

/// How often a step of the backup API that met a lock is retried, 50 ms
/// apart, before the copy gives up as busy.
const LOCKED_STEP_RETRIES: u32 = 100;

/// What the checks of a copy found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspected {
    /// `PRAGMA integrity_check` and `foreign_key_check`: empty when both
    /// found nothing, else their first messages.
    pub problems: Vec<String>,
    /// The migrations applied (`user_version`); 0: not an issuer store.
    pub schema_version: usize,
    /// Rows of each of [`COUNTED_TABLES`] the copy has (some appeared in
    /// later migrations).
    pub counts: Vec<(&'static str, u64)>,
}

/// The schema version this build writes.
pub(crate) const fn schema_version() -> usize {
    SCHEMA_VERSION
}

impl Store {
    /// Copies the store, as one transaction sees it, into `dest`, an empty
    /// file; writers go on meanwhile (a WAL reader blocks no writer).
    pub(crate) fn copy_to(&self, dest: &Path) -> rusqlite::Result<()> {
        copy(&self.conn, dest)
    }

    /// Folds the WAL into the database file and leaves WAL mode, so that
    /// the file holds the whole store once this handle is dropped.
    pub(crate) fn fold_into_one_file(&self) -> rusqlite::Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        let mode: String =
            self.conn
                .pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
        if mode.eq_ignore_ascii_case("delete") {
            Ok(())
        } else {
            Err(rusqlite::Error::InvalidParameterName(format!(
                "journal_mode stayed `{mode}`"
            )))
        }
    }
}

/// Copies the backup at `file` (read as immutable) into `dest`, an empty
/// file.
pub(crate) fn copy_file(file: &Path, dest: &Path) -> rusqlite::Result<()> {
    copy(&open_copy(file)?, dest)
}

/// Copies the database `from` into `dest` (an empty file, or a database
/// this process holds alone) with the backup API: in one step, so the copy
/// is one read transaction of `from` and one write transaction of `dest`.
/// Leaves `dest` in rollback-journal mode, one file with no `-wal` beside
/// it, unless `dest` is in WAL mode already (a live store).
fn copy(from: &Connection, dest: &Path) -> rusqlite::Result<()> {
    let mut to = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    to.pragma_update(None, "synchronous", "FULL")?;
    copy_into(from, &mut to)?;
    // The copied header says WAL, as the store's does: a backup file is
    // one file, read without a WAL or shared memory beside it.
    let mode: String =
        to.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the copy's journal_mode stayed `{mode}`"
        )));
    }
    to.close().map_err(|(_, e)| e)
}

/// Every page of `from`'s main database into `to`'s, in one step of the
/// backup API (one transaction each side), retried while a lock is met.
fn copy_into(from: &Connection, to: &mut Connection) -> rusqlite::Result<()> {
    let backup = Backup::new(from, to)?;
    for _ in 0..LOCKED_STEP_RETRIES {
        // `-1` copies everything at once: anything but `Done` is a lock
        // met (or a writer of this process that changed the source, which
        // makes the next step start over).
        if backup.step(-1)? == StepResult::Done {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the store stayed locked during the copy".to_owned()),
    ))
}

/// Opens `path` read-only and as immutable: nothing is created beside it
/// (no `-wal`, no `-shm`), whoever owns its directory, and nothing is
/// written to it.
pub(crate) fn open_copy(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The checks of a copy (`crate::backup::verify`). An error is SQLite's
/// own verdict on a file it cannot read as a database (not one, damaged,
/// cut short).
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<Inspected> {
    // Read first: a file that is not a database fails here, with SQLite's
    // own word for it.
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let mut problems = Vec::new();
    {
        let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let line: String = row.get(0)?;
            if line != "ok" {
                problems.push(line);
            }
        }
    }
    if problems.is_empty() {
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let table: String = row.get(0)?;
            let parent: String = row.get(2)?;
            problems.push(format!("a row of {table} names a missing row of {parent}"));
            if problems.len() >= 20 {
                break;
            }
        }
    }
    let mut counts = Vec::with_capacity(COUNTED_TABLES.len());
    for table in COUNTED_TABLES {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [table],
            |row| row.get(0),
        )?;
        if exists {
            // The name is one of the constants above, never input.
            let count: i64 =
                conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
                    row.get(0)
                })?;
            counts.push((table, u64::try_from(count).unwrap_or(0)));
        }
    }
    Ok(Inspected {
        problems,
        schema_version: usize::try_from(schema_version).unwrap_or(0),
        counts,
    })
}

/// Why the store could not be held alone.
#[derive(Debug)]
pub(crate) enum HoldError {
    /// Another connection has it open: the console, another command.
    InUse,
    /// SQLite cannot read it as a database at all (damaged, or not one):
    /// nobody can be using it as a store either.
    Unreadable(rusqlite::Error),
    Other(rusqlite::Error),
}

/// The live store held alone: an exclusive lock on its database file,
/// which SQLite grants only when no other connection has the store open
/// (in WAL mode, each holds a shared lock on that file for as long as it
/// is open), and keeps until this is dropped. A command or console that
/// opens the store meanwhile waits for it, then sees the store as it is
/// left here.
pub(crate) struct Held {
    conn: Connection,
}

impl Held {
    /// Waits up to `wait` for the other connections to close.
    pub(crate) fn take(db: &Path, wait: Duration) -> Result<Self, HoldError> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(HoldError::Other)?;
        let classify = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => HoldError::InUse,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => HoldError::Unreadable(e),
            _ => HoldError::Other(e),
        };
        conn.busy_timeout(wait).map_err(HoldError::Other)?;
        // Before the first read: in exclusive locking mode SQLite takes
        // the exclusive lock on the database file before it opens the WAL
        // (and keeps the WAL's index in its own memory), so a store open
        // elsewhere is refused here rather than shared.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(classify)?;
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(classify)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(HoldError::Other)?;
        Ok(Self { conn })
    }

    /// Replaces every page of the held store with those of the database at
    /// `prepared`, in one write transaction: committed whole (the WAL
    /// synced), or rolled back whole by SQLite if this process dies
    /// midway. The WAL is then folded into the database file.
    pub(crate) fn replace_with(mut self, prepared: &Path) -> rusqlite::Result<()> {
        let from = open_copy(prepared)?;
        copy_into(&from, &mut self.conn)?;
        drop(from);
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        // Closing checkpoints again, removes the WAL, and releases the lock.
        self.conn.close().map_err(|(_, e)| e)
    }
}

/// The time of the store's latest restore, if it was restored: a serial
/// issued after it is above every serial issued before it
/// (`issuance::next_serial`).
pub(crate) fn last_restore_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT MAX(at) FROM audit WHERE action = 'store.restore' AND result = 'ok'",
        [],
        |row| row.get(0),
    )?)
}
