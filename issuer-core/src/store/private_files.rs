//! The store's files are its owner's alone: the database holds the console's
//! password hashes, the customers, every payload and the audit log.
//!
//! The database file is made with mode 0600 before SQLite first opens it.
//! SQLite makes its `-wal` and `-shm` files with the database file's mode
//! (its unix VFS reads that mode and sets it exactly, whatever the umask;
//! the tests here and the CLI's under umask 022 check it), so they are
//! 0600 too. A store whose database, WAL or shared-memory file group or
//! others can reach is refused when opened, as a key directory is
//! (`keystore`), with the `chmod` that fixes it: a store others could read
//! may already be copied, which its owner must hear about, and a refusal is
//! heard where a warning scrolls by.
//!
//! The directory is the operator's to choose, and may be shared (a home
//! directory), so it is neither changed nor checked. Files planted in it
//! before the store is opened are caught by the same check (a planted WAL
//! open to others is refused; one only its planter can open, SQLite cannot
//! open); someone who can write the directory can still replace the store
//! itself, so it belongs to the issuer's user (SECURITY.md).

use std::ffi::OsString;
use std::fs::{OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::{OpenError, StoreError};
use crate::keystore::{self, NotPrivate};

/// Creates an empty database file at `path` with mode 0600; fails with
/// `io::ErrorKind::AlreadyExists` if anything is there.
pub(super) fn create(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(keystore::FILE_MODE)
        .open(path)?;
    // The umask may have narrowed the mode further (0400 would leave the
    // owner a store they cannot write); set it exactly, as the WAL and
    // shared-memory files will copy it.
    file.set_permissions(Permissions::from_mode(keystore::FILE_MODE))
}

/// Refuses the store at `db` if group or others can reach its database, WAL
/// or shared-memory file; the WAL and shared-memory files may be absent.
pub(super) fn check(db: &Path) -> Result<(), StoreError> {
    check_beside(db)?;
    check_database(db)
}

/// [`check`] for the database file alone.
pub(super) fn check_database(db: &Path) -> Result<(), StoreError> {
    check_file(db.to_path_buf())
}

/// [`check`] for the WAL and shared-memory files alone.
pub(super) fn check_beside(db: &Path) -> Result<(), StoreError> {
    check_file(beside(db, "-wal"))?;
    check_file(beside(db, "-shm"))
}

fn check_file(path: PathBuf) -> Result<(), StoreError> {
    match keystore::check_private_file(&path) {
        // `check_private_file` reads a file's mode, and never asks for a
        // directory.
        Ok(()) | Err(NotPrivate::Missing | NotPrivate::NotADirectory) => Ok(()),
        Err(NotPrivate::TooOpen { mode, .. }) => Err(StoreError::TooOpen { path, mode }),
        Err(NotPrivate::Io { source, .. }) => Err(StoreError::Open {
            path,
            source: Box::new(OpenError::Io(source)),
        }),
    }
}

/// The file SQLite keeps beside the database `db`: `suffix` is `-wal` or
/// `-shm`.
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::Store;
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// A new store, written to: its database, WAL and shared-memory files.
    fn written_store(dir: &Path) -> (Store, [PathBuf; 3]) {
        let db = dir.join("issuer.db");
        let mut store = Store::create_new(&db).unwrap();
        store
            .write(|tx| {
                tx.execute_batch("CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1)")?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        (
            store,
            [db.clone(), beside(&db, "-wal"), beside(&db, "-shm")],
        )
    }

    /// The process's umask is whatever the test runner has (tests share
    /// it, so none sets it); under the usual 022 this is the bug the
    /// module fixes. The CLI's tests set 022 for the binary they run.
    #[test]
    fn the_database_wal_and_shared_memory_files_are_made_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, files) = written_store(dir.path());
        for file in &files {
            assert!(file.exists(), "{} was not made", file.display());
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        drop(store);
        // Reopened and written again: SQLite makes the WAL again, the same.
        let mut store = Store::open(&files[0]).unwrap();
        store
            .write(|tx| Ok::<_, StoreError>(tx.execute_batch("INSERT INTO probe VALUES (2)")?))
            .unwrap();
        for file in &files {
            assert_eq!(mode(file), 0o600, "{} after reopening", file.display());
        }
    }

    #[test]
    fn open_refuses_a_store_others_can_reach_and_names_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let (store, files) = written_store(dir.path());
        drop(store);
        // Each of the three files, each kind of opening: group read, other
        // read, group write.
        let cases = [
            ("1. database readable by all", 0, 0o644),
            ("2. database readable by the group", 0, 0o640),
            ("3. database writable by the group", 0, 0o620),
            ("4. WAL readable by all", 1, 0o644),
            ("5. shared memory readable by others", 2, 0o604),
        ];
        for (name, which, open) in cases {
            // A closed store has no WAL or shared-memory file: make them
            // as a crash or an older build would leave them.
            for file in &files[1..] {
                if !file.exists() {
                    fs::write(file, b"").unwrap();
                }
                fs::set_permissions(file, Permissions::from_mode(0o600)).unwrap();
            }
            let path = &files[which];
            fs::set_permissions(path, Permissions::from_mode(open)).unwrap();
            let err = Store::open(&files[0]).unwrap_err();
            assert!(
                matches!(&err, StoreError::TooOpen { path: p, mode } if p == path && *mode == open),
                "{name}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains(&format!("chmod 600 {}", path.display())),
                "{name}: {message}"
            );
            assert!(
                message.contains(&format!("{open:04o}")),
                "{name}: {message}"
            );
            assert_eq!(crate::error::Coded::code(&err), "store_too_open", "{name}");
            // Refused, not changed: the mode is the operator's to fix, and
            // the file is still there to fix.
            assert_eq!(mode(path), open, "{name}");
            fs::set_permissions(path, Permissions::from_mode(0o600)).unwrap();
            Store::open(&files[0]).unwrap_or_else(|e| panic!("{name}, fixed: {e}"));
        }
    }

    #[test]
    fn create_refuses_an_existing_file_and_leaves_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("issuer.db");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let err = create(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(mode(&path), 0o644);
    }
}
