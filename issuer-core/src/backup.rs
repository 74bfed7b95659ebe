//! Backups of the issuer's store, and restoring one.
//!
//! [`create`] copies the live store with SQLite's online backup API: one
//! read transaction, so the copy is the store as it was at one moment,
//! while the console and other commands go on writing (a WAL reader blocks
//! no writer). The copy is written to a temporary file beside its
//! destination, created 0600, checked ([`verify`]), synced, and only then
//! renamed into place; an existing file is replaced only when asked.
//!
//! [`restore`] checks the backup the same way before it touches anything,
//! and refuses to replace an existing store unless asked. It then holds
//! the live store alone: an exclusive lock on its database file, which
//! SQLite grants only when no other connection has the store open (the
//! console keeps it open while it runs), so a store in use is refused,
//! not replaced under its user. Holding it, it prepares the backup beside
//! the store (brought to this build's schema, with the `store.restore`
//! audit row appended to its hash chain), checks it again, and writes it
//! into the held store with the backup API, in one transaction that
//! SQLite commits whole or rolls back whole: the old WAL is part of the
//! old store's state and is overwritten with it, never applied to the
//! restored one. A store SQLite cannot read at all (damaged) is replaced
//! by renaming the prepared file over it, after removing its `-wal`,
//! `-shm` and `-journal` files, which belong to the damaged one.
//!
//! The audit row's time is what keeps serials from going backwards
//! (`issuance::next_serial`): it is read once the store is held, so it is
//! later than every issuance the restored store forgets.
//!
//! The key directory is not part of the store (`keystore`): it is backed
//! up with it, as files (README, "Backups").
//!
//! [`rotation`] keeps a directory of backups named by their time, as a
//! timer takes them, and removes the oldest beyond a number.
//!
//! One piece, over the usual size: backup and restore share the check of a
//! copy, the temporary file beside its destination and the directory sync,
//! and the order of their steps is what keeps every refusal from changing
//! anything, which reads best in one place.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::atomic_file::Existing;
use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::error::{Coded, ErrorKind};
use crate::keystore;
use crate::store::{self, Held, HoldError, Store, StoreError};

pub mod rotation;

/// How long [`restore`] waits for other connections to the store to
/// close before it calls the store in use: a command's own connection
/// lasts milliseconds, the console's as long as it runs.
const IN_USE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} exists; choose another --out, or add --force to replace it", path.display())]
    Exists { path: PathBuf },
    #[error(
        "{} is the issuer store itself or one of its files; write the backup elsewhere",
        path.display()
    )]
    IsTheStore { path: PathBuf },
    #[error(
        "{} is not a usable backup of an issuer store: {reason}; nothing was changed; \
         use another backup file",
        path.display()
    )]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{} is a backup of schema version {found}, newer than this build knows ({known}); \
         restore it with a newer ren3-issuer; nothing was changed",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error(
        "the copy of the issuer store at {} fails the checks ({reason}); no backup was \
         written; the store or the disk may be damaged: keep the earlier backups, and run \
         `ren3-issuer audit verify`",
        path.display()
    )]
    CopyFailsChecks { path: PathBuf, reason: String },
    #[error(
        "there is an issuer store at {}; restoring replaces it, and loses everything written \
         to it since the backup was made; stop the console, then add --force to replace it; \
         nothing was changed",
        path.display()
    )]
    StoreExists { path: PathBuf },
    #[error(
        "the issuer store at {} is open elsewhere (the console `ren3-issuer serve`, or another \
         command); stop it, then restore again; nothing was changed",
        path.display()
    )]
    InUse { path: PathBuf },
    #[error(
        "{} exists: a backup was already taken into this directory in this second; two \
         backups in one second are an operator error (two timers, or the command run twice); \
         nothing was written or removed",
        path.display()
    )]
    SameSecond { path: PathBuf },
    #[error(
        "the backup {} was written and checked, but the older backup {} could not be \
         removed: {source}; remove it by hand",
        written.display(),
        path.display()
    )]
    Prune {
        written: PathBuf,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    Sqlite {
        what: &'static str,
        path: PathBuf,
        source: Box<rusqlite::Error>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for BackupError {
    fn code(&self) -> &'static str {
        match self {
            BackupError::Exists { .. } | BackupError::SameSecond { .. } => "file_exists",
            BackupError::IsTheStore { .. } => "backup_is_the_store",
            BackupError::Invalid { .. } => "backup_invalid",
            BackupError::TooNew { .. } => "backup_too_new",
            BackupError::CopyFailsChecks { .. } => "store_damaged",
            BackupError::StoreExists { .. } => "store_exists",
            BackupError::InUse { .. } => "store_in_use",
            BackupError::Prune { .. } => "prune_failed",
            BackupError::Io { .. } => "io_error",
            BackupError::Sqlite { .. } => "store_error",
            BackupError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            BackupError::Exists { .. }
            | BackupError::SameSecond { .. }
            | BackupError::IsTheStore { .. }
            | BackupError::Invalid { .. }
            | BackupError::TooNew { .. }
            | BackupError::StoreExists { .. } => ErrorKind::Refused,
            BackupError::InUse { .. } => ErrorKind::Conflict,
            BackupError::CopyFailsChecks { .. }
            | BackupError::Prune { .. }
            | BackupError::Io { .. }
            | BackupError::Sqlite { .. } => ErrorKind::Internal,
            BackupError::Store(e) => e.kind(),
        }
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { what, path, source }
}

fn sqlite_error(what: &'static str, path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Sqlite {
        what,
        path,
        source: Box::new(source),
    }
}

/// Rows of one table in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCount {
    pub table: &'static str,
    pub rows: u64,
}

/// A backup file that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub file: PathBuf,
    pub bytes: u64,
    /// `PRAGMA integrity_check` and `foreign_key_check` found nothing.
    pub integrity: &'static str,
    pub schema_version: usize,
    pub counts: Vec<TableCount>,
}

impl Verified {
    /// The rows of `table`, 0 if the backup has no such table.
    pub fn rows(&self, table: &str) -> u64 {
        self.counts
            .iter()
            .find(|c| c.table == table)
            .map_or(0, |c| c.rows)
    }

    /// `licenses 3, devices 5, ...`, for a person.
    pub fn counts_text(&self) -> String {
        self.counts
            .iter()
            .map(|c| format!("{} {}", c.table, c.rows))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What [`restore`] replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replaced {
    /// There was no store.
    Nothing,
    /// A store nobody else had open, rewritten in one transaction.
    Store,
    /// A file SQLite could not read as a database, renamed over.
    UnreadableStore,
}

/// A restore done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    pub store: PathBuf,
    pub backup: Verified,
    pub replaced: Replaced,
    /// The time of the `store.restore` audit row: every serial issued from
    /// now on is above `(at + 1) × 10^6`.
    pub at: i64,
}

/// Writes a verified copy of the store at `db` to `out`, created 0600;
/// replaces an existing `out` only with [`Existing::Replace`].
pub fn create(db: &Path, out: &Path, existing: Existing) -> Result<Verified, BackupError> {
    refuse_store_files(db, out)?;
    if existing == Existing::Keep && fs::symlink_metadata(out).is_ok() {
        return Err(BackupError::Exists {
            path: out.to_path_buf(),
        });
    }
    let store = Store::open(db)?;
    let temp = temporary_beside(out, "")?;
    store
        .copy_to(temp.path())
        .map_err(sqlite_error("copy the store to", temp.path()))?;
    drop(store);
    let mut verified = verify(temp.path()).map_err(|e| match e {
        // The copy failing its checks is the live store's fault (or the
        // disk's): say so, not that a backup file given was bad.
        BackupError::Invalid { reason, .. } => BackupError::CopyFailsChecks {
            path: db.to_path_buf(),
            reason,
        },
        other => other,
    })?;
    temp.as_file()
        .sync_all()
        .map_err(io_error("sync", temp.path()))?;
    match existing {
        Existing::Replace => temp.persist(out),
        Existing::Keep => temp.persist_noclobber(out),
    }
    .map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            BackupError::Exists {
                path: out.to_path_buf(),
            }
        } else {
            io_error("write the backup to", out)(e.error)
        }
    })?;
    sync_dir(out)?;
    verified.file = out.to_path_buf();
    Ok(verified)
}

/// Checks that `file` is a whole, consistent issuer store this build can
/// restore: SQLite reads it, `PRAGMA integrity_check` and
/// `foreign_key_check` find nothing, its schema version is one this build
/// knows; counts its rows. Reads it only (as immutable: nothing is made
/// beside it).
pub fn verify(file: &Path) -> Result<Verified, BackupError> {
    let invalid = |reason: String| BackupError::Invalid {
        path: file.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(file).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => invalid("there is no such file".to_owned()),
        _ => io_error("read", file)(e),
    })?;
    if !meta.is_file() {
        return Err(invalid("it is not a file".to_owned()));
    }
    if meta.len() == 0 {
        return Err(invalid("it is empty".to_owned()));
    }
    let conn = store::open_copy(file).map_err(|e| invalid(sqlite_reason(&e)))?;
    let inspected = store::inspect(&conn).map_err(|e| invalid(sqlite_reason(&e)))?;
    drop(conn);
    if !inspected.problems.is_empty() {
        return Err(invalid(format!(
            "SQLite's integrity check found: {}",
            inspected.problems.join("; ")
        )));
    }
    let known = store::schema_version();
    if inspected.schema_version == 0 || !inspected.counts.iter().any(|(t, _)| *t == "licenses") {
        return Err(invalid(
            "it is an SQLite database, but not an issuer store".to_owned(),
        ));
    }
    if inspected.schema_version > known {
        return Err(BackupError::TooNew {
            path: file.to_path_buf(),
            found: inspected.schema_version,
            known,
        });
    }
    Ok(Verified {
        file: file.to_path_buf(),
        bytes: meta.len(),
        integrity: "ok",
        schema_version: inspected.schema_version,
        counts: inspected
            .counts
            .into_iter()
            .map(|(table, rows)| TableCount { table, rows })
            .collect(),
    })
}

/// SQLite's verdict on a file it cannot read, for a person.
fn sqlite_reason(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => "it is not an SQLite database".to_owned(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            format!("SQLite finds it damaged or cut short ({e})")
        }
        _ => format!("SQLite cannot read it ({e})"),
    }
}

/// Replaces the store at `db` with the backup `file`, after checking it
/// ([`verify`]); replaces an existing store only with
/// [`Existing::Replace`], and never one that is open elsewhere. Records
/// `store.restore` in the restored store's audit log, at the time `clock`
/// gives once the store is held. A refusal changes nothing.
pub fn restore(
    db: &Path,
    file: &Path,
    existing: Existing,
    actor: &Actor,
    clock: impl Fn() -> i64,
) -> Result<Restored, BackupError> {
    refuse_store_files(db, file)?;
    let backup = verify(file)?;
    let present = fs::symlink_metadata(db).is_ok();
    if present && existing == Existing::Keep {
        return Err(BackupError::StoreExists {
            path: db.to_path_buf(),
        });
    }
    let held = if present {
        match Held::take(db, IN_USE_WAIT) {
            Ok(held) => Some(held),
            Err(HoldError::InUse) => {
                return Err(BackupError::InUse {
                    path: db.to_path_buf(),
                });
            }
            Err(HoldError::Unreadable(e)) => {
                tracing::warn!(
                    "SQLite cannot read the store at {} ({e}): it is replaced by renaming",
                    db.display()
                );
                None
            }
            Err(HoldError::Other(e)) => return Err(sqlite_error("open", db)(e)),
        }
    } else {
        None
    };
    let replaced = match (&held, present) {
        (Some(_), _) => Replaced::Store,
        (None, true) => Replaced::UnreadableStore,
        (None, false) => Replaced::Nothing,
    };

    // The backup, prepared beside the store while it is held.
    let prepared = temporary_beside(db, "restore.")?;
    let at = prepare(file, &backup, prepared.path(), actor, replaced, &clock)?;
    prepared
        .as_file()
        .sync_all()
        .map_err(io_error("sync", prepared.path()))?;
    match held {
        Some(held) => held
            .replace_with(prepared.path())
            .map_err(sqlite_error("write the backup into", db))?,
        None => rename_over(db, prepared, present)?,
    }
    Ok(Restored {
        store: db.to_path_buf(),
        backup,
        replaced,
        at,
    })
}

/// Makes `prepared` the store that `backup` holds, at this build's schema,
/// with the `store.restore` audit row appended at `clock()`'s time, in one
/// file (no WAL), checked again; returns that time.
fn prepare(
    file: &Path,
    backup: &Verified,
    prepared: &Path,
    actor: &Actor,
    replaced: Replaced,
    clock: &impl Fn() -> i64,
) -> Result<i64, BackupError> {
    store::copy_file(file, prepared).map_err(sqlite_error("copy the backup to", prepared))?;
    let mut copy = Store::open(prepared)?;
    let at = clock();
    let replaced = match replaced {
        Replaced::Nothing => "there was no store",
        Replaced::Store => "replaced the store",
        Replaced::UnreadableStore => {
            "replaced a store SQLite could not read, and removed its -wal and -shm files"
        }
    };
    audit::record(
        &mut copy,
        &NewEntry {
            actor,
            action: Action::StoreRestore,
            subject: file.display().to_string(),
            outcome: Outcome::Ok,
            detail: format!(
                "restored from a backup of schema version {} ({}); {replaced}",
                backup.schema_version,
                backup.counts_text(),
            ),
        },
        at,
    )?;
    copy.fold_into_one_file()
        .map_err(sqlite_error("prepare", prepared))?;
    drop(copy);
    verify(prepared)?;
    Ok(at)
}

/// Moves `prepared` to `db`, where no store is, or one SQLite cannot read:
/// first removes the files SQLite keeps beside `db`, which belong to that
/// store (an old WAL applied to the restored database would corrupt it).
fn rename_over(
    db: &Path,
    prepared: tempfile::NamedTempFile,
    present: bool,
) -> Result<(), BackupError> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let companion = beside(db, suffix);
        match fs::remove_file(&companion) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove", &companion)(e)),
        }
    }
    let persisted = if present {
        prepared.persist(db)
    } else {
        // An `init` racing with this restore keeps its store.
        prepared.persist_noclobber(db)
    };
    persisted.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            BackupError::StoreExists {
                path: db.to_path_buf(),
            }
        } else {
            io_error("move the restored store to", db)(e.error)
        }
    })?;
    sync_dir(db)
}

/// Refuses `path` as a backup's file when it is the store at `db` or one
/// of SQLite's files beside it: writing one would replace the live store
/// under its own connections, and restoring from one reads a store in use.
fn refuse_store_files(db: &Path, path: &Path) -> Result<(), BackupError> {
    let (Some(db), Some(other)) = (resolved(db), resolved(path)) else {
        return Ok(());
    };
    let own = ["", "-wal", "-shm", "-journal"].map(|suffix| beside(&db, suffix));
    if own.contains(&other) {
        return Err(BackupError::IsTheStore {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// `path` with its directory's symbolic links and `..` resolved, and its
/// name kept as it is; `None` if its directory does not exist.
fn resolved(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    fs::canonicalize(parent(path))
        .ok()
        .map(|dir| dir.join(name))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The file SQLite keeps beside the database `db` (`-wal`, `-shm`,
/// `-journal`).
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// An empty file beside `path`, its owner's alone from the start, removed
/// when dropped unless persisted.
fn temporary_beside(path: &Path, kind: &str) -> Result<tempfile::NamedTempFile, BackupError> {
    let name = path.file_name().ok_or_else(|| BackupError::Io {
        what: "write",
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let dir = parent(path);
    tempfile::Builder::new()
        .prefix(&format!(".{}.{kind}", name.to_string_lossy()))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(keystore::FILE_MODE))
        .tempfile_in(&dir)
        .map_err(io_error("create a file in", &dir))
}

/// A rename is durable only once its directory's entry is on disk.
fn sync_dir(path: &Path) -> Result<(), BackupError> {
    let dir = parent(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync", &dir))
}

#[cfg(test)]
mod tests;
