//! The private halves of the issuer's signing keys, one file per key in a
//! directory that only its owner can enter.
//!
//! The keys stay out of the SQLite store so that a copy of the database (a
//! backup, a support dump) can never sign a payload. Each file is
//! `<key_id>.key`, mode 0600, in a directory of mode 0700; anything more open
//! is refused rather than used, because a readable key is a leaked key.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ren3_shared::{IssuerKey, KeyId, RandomSourceError, binary};

use crate::atomic_file::{self, Existing};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
/// The label of the line that holds the seed, with the file format's version.
const SEED_LABEL: &str = "ren3-issuer-signing-key-seed-v1:";
const KEY_FILE_EXTENSION: &str = "key";

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error(
        "no key directory at {}: the store's private signing keys live there; \
         pass --keys-dir (or set REN3_ISSUER_KEYS) if they were moved",
        dir.display()
    )]
    Missing { dir: PathBuf },
    #[error("the key directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error(
        "{} has mode {mode:04o}, which lets group or others reach a private signing key; \
         restrict it with `chmod {fix:o} {}`",
        path.display(), path.display()
    )]
    TooOpen { path: PathBuf, mode: u32, fix: u32 },
    #[error(
        "the private key of signing key `{key_id}` is missing: there is no file {}; \
         restore it from your backup of the key directory",
        path.display()
    )]
    KeyFileMissing { key_id: KeyId, path: PathBuf },
    #[error("the key file {} is not valid: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "the key file {} holds key `{found}`, not the key `{expected}` its name promises; \
         restore the right file from your backup",
        path.display()
    )]
    WrongKey {
        path: PathBuf,
        expected: KeyId,
        found: KeyId,
    },
    #[error(
        "the key directory {} already holds signing keys; move them away or choose another \
         --keys-dir",
        dir.display()
    )]
    NotEmpty { dir: PathBuf },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    Random(#[from] RandomSourceError),
}

impl KeyStoreError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// A checked key directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// Opens an existing key directory, refusing one that group or others
    /// can reach.
    pub fn open(dir: &Path) -> Result<Self, KeyStoreError> {
        let meta = match fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyStoreError::Missing {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(KeyStoreError::io("read", dir)(e)),
        };
        if !meta.is_dir() {
            return Err(KeyStoreError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        check_private(dir, meta.permissions().mode(), DIR_MODE)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Creates the key directory with mode 0700, or adopts an existing one
    /// that is private and holds no key. Also says whether it was created, so
    /// that a failed `init` can remove what it made.
    pub(crate) fn create(dir: &Path) -> Result<(Self, bool), KeyStoreError> {
        match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {
                // The umask may have narrowed the mode further, never widened it;
                // set it exactly so that the check in `open` always passes.
                fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(KeyStoreError::io("set the mode of", dir))?;
                Ok((Self::open(dir)?, true))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let store = Self::open(dir)?;
                if !store.key_files()?.is_empty() {
                    return Err(KeyStoreError::NotEmpty {
                        dir: dir.to_path_buf(),
                    });
                }
                Ok((store, false))
            }
            Err(e) => Err(KeyStoreError::io("create the key directory", dir)(e)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or would hold) the private key `key_id`.
    pub fn key_path(&self, key_id: &KeyId) -> PathBuf {
        self.dir.join(format!("{key_id}.{KEY_FILE_EXTENSION}"))
    }

    /// Loads a private key, refusing a file that group or others can read
    /// and a file whose content is not the key its name says.
    pub fn load(&self, key_id: &KeyId) -> Result<IssuerKey, KeyStoreError> {
        let path = self.key_path(key_id);
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyStoreError::KeyFileMissing {
                    key_id: *key_id,
                    path,
                });
            }
            Err(e) => return Err(KeyStoreError::io("read", &path)(e)),
        };
        check_private(&path, meta.permissions().mode(), FILE_MODE)?;
        let text = fs::read_to_string(&path).map_err(KeyStoreError::io("read", &path))?;
        let seed = parse_key_file(&text).map_err(|reason| KeyStoreError::Malformed {
            path: path.clone(),
            reason,
        })?;
        let key = IssuerKey::from_seed(&seed);
        if key.key_id() != *key_id {
            return Err(KeyStoreError::WrongKey {
                path,
                expected: *key_id,
                found: key.key_id(),
            });
        }
        Ok(key)
    }

    /// Writes a new key file (mode 0600), never replacing an existing one.
    pub fn save(&self, key: &IssuerKey) -> Result<PathBuf, KeyStoreError> {
        let path = self.key_path(&key.key_id());
        let text = format!(
            "# ReN3 issuer signing key {}. Whoever holds this file can sign license payloads:\n\
             # keep it in this directory and in an encrypted backup, nowhere else.\n\
             {SEED_LABEL} {}\n",
            key.key_id(),
            binary::encode(key.seed())
        );
        atomic_file::write(&path, text.as_bytes(), FILE_MODE, Existing::Keep)
            .map_err(KeyStoreError::io("write the key file", &path))?;
        Ok(path)
    }

    fn key_files(&self) -> Result<Vec<PathBuf>, KeyStoreError> {
        let entries = fs::read_dir(&self.dir).map_err(KeyStoreError::io("list", &self.dir))?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(KeyStoreError::io("list", &self.dir))?.path();
            if path.extension().is_some_and(|e| e == KEY_FILE_EXTENSION) {
                files.push(path);
            }
        }
        Ok(files)
    }
}

fn check_private(path: &Path, mode: u32, fix: u32) -> Result<(), KeyStoreError> {
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::TooOpen {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
            fix,
        });
    }
    Ok(())
}

fn parse_key_file(text: &str) -> Result<[u8; 32], String> {
    let mut seeds = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = seeds
        .next()
        .ok_or_else(|| format!("it has no `{SEED_LABEL}` line"))?;
    if seeds.next().is_some() {
        return Err(format!("it has more than the one `{SEED_LABEL}` line"));
    }
    let value = line
        .strip_prefix(SEED_LABEL)
        .ok_or_else(|| format!("its key line does not start with `{SEED_LABEL}`"))?
        .trim();
    let seed: binary::Bytes<32> = value
        .parse()
        .map_err(|e| format!("the seed is not 32 bytes of base64url: {e}"))?;
    Ok(seed.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_dir() -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("keys");
        (temp, dir)
    }

    #[test]
    fn create_makes_a_0700_directory_and_save_a_0600_file_that_loads() {
        let (_temp, dir) = private_dir();
        let (store, created) = KeyStore::create(&dir).unwrap();
        assert!(created);
        let dir_mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);

        let key = IssuerKey::from_seed(&[7u8; 32]);
        let path = store.save(&key).unwrap();
        let file_mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        let loaded = store.load(&key.key_id()).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
    }

    #[test]
    fn open_refuses_a_group_readable_directory_and_names_the_fix() {
        let (_temp, dir) = private_dir();
        KeyStore::create(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        let err = KeyStore::open(&dir).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, KeyStoreError::TooOpen { mode: 0o750, .. }));
        assert!(message.contains("0750"), "{message}");
        assert!(
            message.contains(&format!("chmod 700 {}", dir.display())),
            "{message}"
        );
    }

    #[test]
    fn load_refuses_a_group_readable_key_file_and_names_the_fix() {
        let (_temp, dir) = private_dir();
        let (store, _) = KeyStore::create(&dir).unwrap();
        let key = IssuerKey::from_seed(&[7u8; 32]);
        let path = store.save(&key).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let message = store.load(&key.key_id()).unwrap_err().to_string();
        assert!(message.contains("0640"), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );
    }

    #[test]
    fn load_refuses_a_file_holding_another_key() {
        let (_temp, dir) = private_dir();
        let (store, _) = KeyStore::create(&dir).unwrap();
        let real = IssuerKey::from_seed(&[7u8; 32]);
        let other = IssuerKey::from_seed(&[8u8; 32]);
        let other_path = store.save(&other).unwrap();
        fs::rename(&other_path, store.key_path(&real.key_id())).unwrap();
        let err = store.load(&real.key_id()).unwrap_err();
        assert!(matches!(err, KeyStoreError::WrongKey { .. }), "{err}");
    }

    #[test]
    fn load_names_a_missing_key_file() {
        let (_temp, dir) = private_dir();
        let (store, _) = KeyStore::create(&dir).unwrap();
        let key = IssuerKey::from_seed(&[7u8; 32]);
        let err = store.load(&key.key_id()).unwrap_err();
        assert!(matches!(err, KeyStoreError::KeyFileMissing { .. }), "{err}");
    }

    #[test]
    fn create_adopts_an_empty_private_directory_but_not_one_with_keys() {
        let (_temp, dir) = private_dir();
        DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let (store, created) = KeyStore::create(&dir).unwrap();
        assert!(!created);
        store.save(&IssuerKey::from_seed(&[7u8; 32])).unwrap();
        assert!(matches!(
            KeyStore::create(&dir),
            Err(KeyStoreError::NotEmpty { .. })
        ));
    }

    #[test]
    fn key_file_parsing_refuses_damage() {
        let good = format!("# comment\n{SEED_LABEL} {}\n", binary::encode(&[1u8; 32]));
        assert_eq!(parse_key_file(&good), Ok([1u8; 32]));
        for (n, bad) in [
            String::new(),
            "# only a comment\n".to_owned(),
            format!("seed: {}\n", binary::encode(&[1u8; 32])),
            format!("{SEED_LABEL} {}\n", binary::encode(&[1u8; 31])),
            format!("{good}{good}"),
        ]
        .iter()
        .enumerate()
        {
            assert!(parse_key_file(bad).is_err(), "{n}. {bad:?}");
        }
    }
}
