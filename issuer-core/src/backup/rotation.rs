//! Backups into a directory, each named by the time it was taken, and the
//! oldest removed beyond a number: what a timer runs (`ren3-issuer backup
//! --out-dir DIR --keep N`).
//!
//! A backup is `ren3-issuer-YYYYMMDDTHHMMSSZ.db` (UTC), written by
//! [`super::create`], so checked and synced before its name appears, and
//! never over an existing file. Only once it is in place are older backups
//! removed, and only regular files whose whole name is that pattern with a
//! real time: a temporary file, a copy renamed by hand, a directory or a
//! link is never touched. The time in the name orders them, not the
//! files' modification times, which a copy or a `touch` changes. The new
//! backup is always kept, and counts as one of the N, even when the clock
//! has gone back and older backups carry later names.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{BackupError, Verified, create, io_error, sync_dir};
use crate::atomic_file::Existing;
use crate::keystore;
use crate::store::Store;

const PREFIX: &str = "ren3-issuer-";
const SUFFIX: &str = ".db";
/// `20270301T020000Z`: ISO 8601's basic format, which sorts as it reads.
const STAMP: &[BorrowedFormatItem<'_>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
/// Where the digits of [`STAMP`] are; every other byte is `T` or `Z`.
const STAMP_SHAPE: &[u8; 16] = b"00000000T000000Z";

/// A backup written into a directory, and what was removed to keep the
/// number asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    #[serde(flatten)]
    pub backup: Verified,
    /// The older backups removed, oldest first.
    pub pruned: Vec<PathBuf>,
    /// The backups in the directory now, the new one included.
    pub kept: usize,
}

/// The name of a backup taken at `at` (Unix seconds);
/// `None` for a time outside the years 0000 to 9999.
pub fn file_name(at: i64) -> Option<String> {
    let stamp = OffsetDateTime::from_unix_timestamp(at)
        .ok()?
        .format(STAMP)
        .ok()?;
    let name = format!("{PREFIX}{stamp}{SUFFIX}");
    taken_at(OsStr::new(&name)).map(|_| name)
}

/// The time (Unix seconds) in a backup's name, if `name` is exactly what
/// [`file_name`] makes, with a real date and time.
pub fn taken_at(name: &OsStr) -> Option<i64> {
    let stamp = name.to_str()?.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // The parser alone would take a sign before the year.
    let shaped = stamp.len() == STAMP_SHAPE.len()
        && stamp
            .bytes()
            .zip(STAMP_SHAPE)
            .all(|(b, &shape)| match shape {
                b'0' => b.is_ascii_digit(),
                _ => b == shape,
            });
    if !shaped {
        return None;
    }
    let parsed = PrimitiveDateTime::parse(stamp, STAMP).ok()?;
    Some(parsed.assume_utc().unix_timestamp())
}

/// Writes a verified backup of the store at `db` into `dir` (made 0700 if
/// missing), named by `now`; then, if `keep` is given, removes the oldest
/// backups there beyond the newest `keep`, the new one among them. A
/// backup that fails removes nothing.
pub fn create_in(
    db: &Path,
    dir: &Path,
    keep: Option<NonZeroUsize>,
    now: i64,
) -> Result<Rotated, BackupError> {
    let name = file_name(now).ok_or_else(|| BackupError::Io {
        what: "name a backup for the time of",
        path: dir.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the clock reads {now}, outside the years 0000 to 9999"),
        ),
    })?;
    // No directory is made for a store that is not there.
    drop(Store::open(db)?);
    DirBuilder::new()
        .recursive(true)
        .mode(keystore::DIR_MODE)
        .create(dir)
        .map_err(io_error("create the backup directory", dir))?;
    let out = dir.join(name);
    let backup = create(db, &out, Existing::Keep).map_err(|e| match e {
        BackupError::Exists { path } => BackupError::SameSecond { path },
        other => other,
    })?;
    let (pruned, kept) = prune(db, dir, &out, keep)?;
    Ok(Rotated {
        backup,
        pruned,
        kept,
    })
}

/// Removes the backups in `dir` beyond the newest `keep`, never `new` (one
/// of them) nor the store itself; returns those removed, oldest first,
/// and how many are left.
fn prune(
    db: &Path,
    dir: &Path,
    new: &Path,
    keep: Option<NonZeroUsize>,
) -> Result<(Vec<PathBuf>, usize), BackupError> {
    // A store named like a backup, in the backups' directory, is still
    // the store.
    let store = fs::canonicalize(db).ok();
    let mut kept = 1;
    let mut beyond = Vec::new();
    for (_, path) in backups_in(dir)? {
        if path == new || (store.is_some() && fs::canonicalize(&path).ok() == store) {
            continue;
        }
        match keep {
            Some(keep) if kept >= keep.get() => beyond.push(path),
            _ => kept += 1,
        }
    }
    beyond.reverse();
    let mut pruned = Vec::with_capacity(beyond.len());
    for path in beyond {
        match fs::remove_file(&path) {
            Ok(()) => pruned.push(path),
            // Removed meanwhile, by hand or by another run.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BackupError::Prune {
                    written: new.to_path_buf(),
                    path,
                    source,
                });
            }
        }
    }
    if !pruned.is_empty() {
        sync_dir(new)?;
    }
    Ok((pruned, kept))
}

/// The backups in `dir`, with the times in their names, newest first:
/// regular files named as [`file_name`] names them (a link is not
/// followed, and counts as nothing).
fn backups_in(dir: &Path) -> Result<Vec<(i64, PathBuf)>, BackupError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("read", dir))? {
        let entry = entry.map_err(io_error("read", dir))?;
        let Some(at) = taken_at(&entry.file_name()) else {
            continue;
        };
        let kind = entry.file_type().map_err(io_error("read", &entry.path()))?;
        if kind.is_file() {
            found.push((at, entry.path()));
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found)
}

#[cfg(test)]
mod tests;
