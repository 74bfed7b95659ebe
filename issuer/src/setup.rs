//! Where a store lives, and making a new one.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::PathBuf;

use ren3_shared::{IssuerKey, RandomSourceError};

use crate::keystore::{AtRest, KeyStore, KeyStoreError};
use crate::passphrase::PassphraseSource;
use crate::store::{self, OpenError, SigningKeyRecord, Store, StoreError};

/// The store file and its key directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    pub db: PathBuf,
    pub keys_dir: PathBuf,
}

impl StorePaths {
    /// The key directory defaults to `<db>.keys`, beside the store, so that
    /// two stores never share keys by accident.
    pub fn new(db: PathBuf, keys_dir: Option<PathBuf>) -> Self {
        let keys_dir = keys_dir.unwrap_or_else(|| {
            let mut name = OsString::from(db.as_os_str());
            name.push(".keys");
            PathBuf::from(name)
        });
        Self { db, keys_dir }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "there is already an issuer store at {}; nothing was changed \
         (to start over, move it and its key directory away)",
        path.display()
    )]
    AlreadyInitialised { path: PathBuf },
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub key: SigningKeyRecord,
    pub key_file: PathBuf,
}

/// Creates the store, the key directory and the first signing key.
///
/// Refuses, changing nothing, if a store exists at `paths.db` or the key
/// directory already holds keys. If a later step fails, what was made is
/// removed again, so a retry starts from the same state.
pub fn init(paths: &StorePaths, now: i64) -> Result<Initialized, InitError> {
    init_with(paths, AtRest::Plain, PassphraseSource::environment(), now)
}

/// [`init`], keeping the first key `at_rest`; an encrypted key takes its
/// passphrase from `passphrase`.
pub fn init_with(
    paths: &StorePaths,
    at_rest: AtRest,
    passphrase: PassphraseSource,
    now: i64,
) -> Result<Initialized, InitError> {
    if paths.db.symlink_metadata().is_ok() {
        return Err(InitError::AlreadyInitialised {
            path: paths.db.clone(),
        });
    }
    let (keys, created_dir) = KeyStore::create(&paths.keys_dir)?;
    let keys = keys.with_passphrase(passphrase);
    let mut made = Made {
        keys_dir: created_dir.then(|| paths.keys_dir.clone()),
        key_file: None,
        db: None,
    };
    let result = init_in(paths, &keys, at_rest, now, &mut made);
    if result.is_err() {
        made.remove();
    }
    result
}

fn init_in(
    paths: &StorePaths,
    keys: &KeyStore,
    at_rest: AtRest,
    now: i64,
    made: &mut Made,
) -> Result<Initialized, InitError> {
    let key = IssuerKey::generate()?;
    made.key_file = Some(keys.save_as(&key, at_rest)?);
    let mut store = match Store::create_new(&paths.db) {
        Ok(store) => store,
        Err(StoreError::Open {
            source: OpenError::Io(e),
            ..
        }) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Another init won the race since the check above.
            return Err(InitError::AlreadyInitialised {
                path: paths.db.clone(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    made.db = Some(paths.db.clone());
    let record = SigningKeyRecord {
        key_id: key.key_id(),
        public_key: key.public_key(),
        created_at: now,
        retired_at: None,
    };
    store.write(|tx| store::insert_signing_key(tx, &record))?;
    Ok(Initialized {
        key: record,
        key_file: keys.key_path(&key.key_id()),
    })
}

/// What a failed `init` must take back.
struct Made {
    keys_dir: Option<PathBuf>,
    key_file: Option<PathBuf>,
    db: Option<PathBuf>,
}

impl Made {
    /// Best effort: the error that made `init` fail is the one to report.
    fn remove(self) {
        if let Some(db) = self.db {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = OsString::from(db.as_os_str());
                name.push(suffix);
                let _ = fs::remove_file(PathBuf::from(name));
            }
        }
        if let Some(file) = self.key_file {
            let _ = fs::remove_file(file);
        }
        if let Some(dir) = self.keys_dir {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Opens the store at `paths.db`.
pub fn open_store(paths: &StorePaths) -> Result<Store, StoreError> {
    Store::open(&paths.db)
}

/// Opens the key directory at `paths.keys_dir`.
pub fn open_keys(paths: &StorePaths) -> Result<KeyStore, KeyStoreError> {
    KeyStore::open(&paths.keys_dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use std::path::Path;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn paths(dir: &Path) -> StorePaths {
        StorePaths::new(dir.join("issuer.db"), None)
    }

    #[test]
    fn keys_dir_defaults_to_db_path_with_keys_suffix() {
        let paths = StorePaths::new(PathBuf::from("/srv/ren3/issuer.db"), None);
        assert_eq!(paths.keys_dir, PathBuf::from("/srv/ren3/issuer.db.keys"));
        let chosen = StorePaths::new(PathBuf::from("a.db"), Some(PathBuf::from("/k")));
        assert_eq!(chosen.keys_dir, PathBuf::from("/k"));
    }

    #[test]
    fn init_creates_store_private_key_dir_and_a_loadable_first_key() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        let made = init(&paths, NOW).unwrap();

        let dir_mode = fs::metadata(&paths.keys_dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let file_mode = fs::metadata(&made.key_file).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
        assert_eq!(
            made.key_file,
            paths.keys_dir.join(format!("{}.key", made.key.key_id))
        );

        let store = open_store(&paths).unwrap();
        let listed = store.read(store::signing_keys).unwrap();
        assert_eq!(listed, vec![made.key.clone()]);
        let loaded = open_keys(&paths).unwrap().load(&made.key.key_id).unwrap();
        assert_eq!(loaded.public_key(), made.key.public_key);
    }

    #[test]
    fn second_init_is_refused_and_changes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        let first = init(&paths, NOW).unwrap();
        let db_before = fs::read(&paths.db).unwrap();

        let err = init(&paths, NOW + 1).unwrap_err();
        assert!(matches!(err, InitError::AlreadyInitialised { .. }), "{err}");
        assert_eq!(fs::read(&paths.db).unwrap(), db_before);
        let files: Vec<_> = fs::read_dir(&paths.keys_dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let store = open_store(&paths).unwrap();
        assert_eq!(store.read(store::signing_keys).unwrap(), vec![first.key]);
    }

    #[test]
    fn init_refuses_a_group_readable_key_dir_and_creates_no_store() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        fs::create_dir(&paths.keys_dir).unwrap();
        fs::set_permissions(&paths.keys_dir, fs::Permissions::from_mode(0o750)).unwrap();
        let err = init(&paths, NOW).unwrap_err();
        assert!(
            matches!(err, InitError::KeyStore(KeyStoreError::TooOpen { .. })),
            "{err}"
        );
        assert!(!paths.db.exists());
        assert_eq!(fs::read_dir(&paths.keys_dir).unwrap().count(), 0);
    }

    #[test]
    fn failed_init_removes_what_it_made() {
        let temp = tempfile::tempdir().unwrap();
        // The store's directory does not exist, so creating the store fails
        // after the key directory and key file were made.
        let paths = StorePaths::new(
            temp.path().join("missing").join("issuer.db"),
            Some(temp.path().join("keys")),
        );
        assert!(init(&paths, NOW).is_err());
        assert!(!paths.keys_dir.exists());
        assert!(!paths.db.exists());
    }
}
