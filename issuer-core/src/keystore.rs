//! The private halves of the issuer's signing keys, one file per key in a
//! directory that only its owner can enter.
//!
//! The keys stay out of the SQLite store so that a copy of the database (a
//! backup, a support dump) can never sign a payload. Each file is
//! `<key_id>.key`, mode 0600, in a directory of mode 0700; anything more open
//! is refused rather than used, because a readable key is a leaked key.
//!
//! A key file holds one labelled line: the seed in plain base64url
//! (`ren3-issuer-signing-key-seed-v1:`), or the seed encrypted with a
//! passphrase (`ren3-issuer-signing-key-encrypted-v2:`, see `sealed_key`).
//! An encrypted key is decrypted in memory only, when it signs.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ren3_shared::{IssuerKey, KeyId, RandomSourceError, binary};

use crate::atomic_file::{self, Existing};
use crate::error::{Coded, ErrorKind};
use crate::passphrase::{PassphraseError, PassphraseSource, Purpose};
use crate::sealed_key::{self, Cost, SEALED_LABEL, SealedSeed};

/// The mode of a directory of private keys, and of a private key file;
/// `root` keeps the root key under the same rule.
pub(crate) const DIR_MODE: u32 = 0o700;
pub(crate) const FILE_MODE: u32 = 0o600;
/// The label of the line that holds the seed, with the file format's version.
const SEED_LABEL: &str = "ren3-issuer-signing-key-seed-v1:";
const KEY_FILE_EXTENSION: &str = "key";

/// The two labels of one kind of key file: a plain seed, or a sealed one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyFileLabels {
    pub plain: &'static str,
    pub sealed: &'static str,
}

/// The issuer signing keys' labels.
const ISSUER_LABELS: KeyFileLabels = KeyFileLabels {
    plain: SEED_LABEL,
    sealed: SEALED_LABEL,
};

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
    #[error(
        "wrong passphrase for signing key `{key_id}`: it does not decrypt {}; nothing was \
         signed or changed",
        path.display()
    )]
    WrongPassphrase { key_id: KeyId, path: PathBuf },
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
    #[error("the private key of signing key `{0}` is encrypted already")]
    AlreadyEncrypted(KeyId),
    #[error("cannot encrypt the private key of signing key `{key_id}`: {reason}")]
    Encrypt { key_id: KeyId, reason: String },
    #[error(transparent)]
    Random(#[from] RandomSourceError),
}

impl Coded for KeyStoreError {
    fn code(&self) -> &'static str {
        match self {
            KeyStoreError::WrongPassphrase { .. } => "wrong_passphrase",
            KeyStoreError::Passphrase(e) => e.code(),
            KeyStoreError::AlreadyEncrypted(_) => "key_already_encrypted",
            KeyStoreError::Random(_) => "random_source_failed",
            _ => "key_file_error",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            KeyStoreError::Io { .. } | KeyStoreError::Encrypt { .. } | KeyStoreError::Random(_) => {
                ErrorKind::Internal
            }
            KeyStoreError::Passphrase(e) => e.kind(),
            _ => ErrorKind::Refused,
        }
    }
}

private_path_errors!(KeyStoreError);

/// How a private key is kept in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AtRest {
    /// The seed in plain text, protected by file permissions only.
    Plain,
    /// The seed encrypted with a passphrase.
    Encrypted,
}

/// A checked key directory, and where the passphrase of encrypted keys
/// comes from (by default `REN3_ISSUER_PASSPHRASE`).
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    passphrase: PassphraseSource,
    cost: Cost,
}

impl KeyStore {
    /// Opens an existing key directory, refusing one that group or others
    /// can reach.
    pub fn open(dir: &Path) -> Result<Self, KeyStoreError> {
        check_private_dir(dir).map_err(|e| KeyStoreError::not_private(dir, e))?;
        Ok(Self::at(dir))
    }

    /// The key directory `dir`, already checked.
    fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            passphrase: PassphraseSource::environment(),
            cost: sealed_key::DEFAULT_COST,
        }
    }

    /// Takes passphrases from `source` instead of the environment.
    pub fn with_passphrase(self, source: PassphraseSource) -> Self {
        Self {
            passphrase: source,
            ..self
        }
    }

    /// Derives keys at `cost` when encrypting: for fast unit tests only.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_cost(self, cost: Cost) -> Self {
        Self { cost, ..self }
    }

    /// Creates the key directory with mode 0700, or adopts an existing one
    /// that is private and holds no key. Also says whether it was created, so
    /// that a failed `init` can remove what it made.
    pub(crate) fn create(dir: &Path) -> Result<(Self, bool), KeyStoreError> {
        let created = create_private_dir(dir, "create the key directory")
            .map_err(|e| KeyStoreError::not_private(dir, e))?;
        let store = Self::at(dir);
        if !created && !store.key_files()?.is_empty() {
            return Err(KeyStoreError::NotEmpty {
                dir: dir.to_path_buf(),
            });
        }
        Ok((store, created))
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
        check_private_file(&path).map_err(|e| match e {
            NotPrivate::Missing => KeyStoreError::KeyFileMissing {
                key_id: *key_id,
                path: path.clone(),
            },
            e => KeyStoreError::not_private(&path, e),
        })?;
        let text = fs::read_to_string(&path).map_err(KeyStoreError::io("read", &path))?;
        let seed = match parse_key_file(&text, ISSUER_LABELS).map_err(|reason| {
            KeyStoreError::Malformed {
                path: path.clone(),
                reason,
            }
        })? {
            KeyFile::Plain(seed) => seed,
            KeyFile::Sealed(sealed) => {
                let passphrase = self.passphrase.get(Purpose::Unlock(*key_id))?;
                sealed.open(&passphrase).map_err(|e| match e {
                    sealed_key::OpenError::WrongPassphrase => KeyStoreError::WrongPassphrase {
                        key_id: *key_id,
                        path: path.clone(),
                    },
                    sealed_key::OpenError::Kdf(reason) => KeyStoreError::Malformed {
                        path: path.clone(),
                        reason,
                    },
                })?
            }
        };
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

    /// Writes a new key file (mode 0600) with the seed in plain text, never
    /// replacing an existing one.
    pub fn save(&self, key: &IssuerKey) -> Result<PathBuf, KeyStoreError> {
        self.save_as(key, AtRest::Plain)
    }

    /// Writes a new key file (mode 0600), never replacing an existing one;
    /// `Encrypted` asks the passphrase source for a new passphrase.
    pub fn save_as(&self, key: &IssuerKey, at_rest: AtRest) -> Result<PathBuf, KeyStoreError> {
        let path = self.key_path(&key.key_id());
        let text = self.key_file_text(key, at_rest)?;
        atomic_file::write(&path, text.as_bytes(), FILE_MODE, Existing::Keep)
            .map_err(KeyStoreError::io("write the key file", &path))?;
        Ok(path)
    }

    /// Encrypts the plain-text private key of `key_id` in place with a new
    /// passphrase. The file is replaced atomically: it holds the old text
    /// or the new, never neither.
    pub fn encrypt(&self, key_id: &KeyId) -> Result<PathBuf, KeyStoreError> {
        if self.at_rest(key_id)? == AtRest::Encrypted {
            return Err(KeyStoreError::AlreadyEncrypted(*key_id));
        }
        let key = self.load(key_id)?;
        let path = self.key_path(key_id);
        let text = self.key_file_text(&key, AtRest::Encrypted)?;
        atomic_file::write(&path, text.as_bytes(), FILE_MODE, Existing::Replace)
            .map_err(KeyStoreError::io("write the key file", &path))?;
        Ok(path)
    }

    /// Whether the private key of `key_id` is encrypted, without decrypting it.
    pub fn at_rest(&self, key_id: &KeyId) -> Result<AtRest, KeyStoreError> {
        let path = self.key_path(key_id);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyStoreError::KeyFileMissing {
                    key_id: *key_id,
                    path,
                });
            }
            Err(e) => return Err(KeyStoreError::io("read", &path)(e)),
        };
        match parse_key_file(&text, ISSUER_LABELS)
            .map_err(|reason| KeyStoreError::Malformed { path, reason })?
        {
            KeyFile::Plain(_) => Ok(AtRest::Plain),
            KeyFile::Sealed(_) => Ok(AtRest::Encrypted),
        }
    }

    fn key_file_text(&self, key: &IssuerKey, at_rest: AtRest) -> Result<String, KeyStoreError> {
        let key_id = key.key_id();
        Ok(match at_rest {
            AtRest::Plain => format!(
                "# ReN3 issuer signing key {key_id}. Whoever holds this file can sign license \
                 payloads:\n# keep it in this directory and in an encrypted backup, nowhere \
                 else.\n{SEED_LABEL} {}\n",
                binary::encode(key.seed())
            ),
            AtRest::Encrypted => {
                let passphrase = self.passphrase.get(Purpose::Protect(key_id))?;
                let sealed = SealedSeed::seal(SEALED_LABEL, key.seed(), &passphrase, self.cost)
                    .map_err(|e| KeyStoreError::Encrypt {
                        key_id,
                        reason: e.to_string(),
                    })?;
                format!(
                    "# ReN3 issuer signing key {key_id}, encrypted with a passphrase \
                     (Argon2id, ChaCha20-Poly1305).\n# Without the passphrase it cannot sign; \
                     without this file the passphrase cannot either: back up both, apart.\n{}\n",
                    sealed.line()
                )
            }
        })
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

/// `io` and `not_private` for an error with the variants `Missing { dir }`,
/// `NotADirectory { path }`, `TooOpen { path, mode, fix }` and
/// `Io { action, path, source }`: the key store's and the root's, which say
/// the same things in words of their own.
macro_rules! private_path_errors {
    ($error:ident) => {
        impl $error {
            fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
                let path = path.to_path_buf();
                move |source| Self::Io {
                    action,
                    path,
                    source,
                }
            }

            /// The directory (or the key file in it, once `Missing` is
            /// handled) at `path` is not private.
            fn not_private(path: &Path, e: $crate::keystore::NotPrivate) -> Self {
                use $crate::keystore::NotPrivate;
                let path = path.to_path_buf();
                match e {
                    NotPrivate::Missing => Self::Missing { dir: path },
                    NotPrivate::NotADirectory => Self::NotADirectory { path },
                    NotPrivate::TooOpen { mode, fix } => Self::TooOpen { path, mode, fix },
                    NotPrivate::Io { action, source } => Self::Io {
                        action,
                        path,
                        source,
                    },
                }
            }
        }
    };
}
pub(crate) use private_path_errors;

/// Why a directory of private keys, or a private key file, cannot be used;
/// each caller turns it into its own error, naming the path.
#[derive(Debug)]
pub(crate) enum NotPrivate {
    /// There is nothing at the path.
    Missing,
    /// A directory was asked for, and something else is there.
    NotADirectory,
    /// Group or others can reach it: it has `mode`, and needs `fix`.
    TooOpen { mode: u32, fix: u32 },
    /// The filesystem refused to `action` it.
    Io {
        action: &'static str,
        source: io::Error,
    },
}

/// Checks that `dir` is a directory its owner alone can reach.
pub(crate) fn check_private_dir(dir: &Path) -> Result<(), NotPrivate> {
    let meta = private_metadata(dir)?;
    if !meta.is_dir() {
        return Err(NotPrivate::NotADirectory);
    }
    check_mode(meta.permissions().mode(), DIR_MODE)
}

/// Checks that the file at `path` exists and its owner alone can read it.
pub(crate) fn check_private_file(path: &Path) -> Result<(), NotPrivate> {
    check_mode(private_metadata(path)?.permissions().mode(), FILE_MODE)
}

/// Creates `dir` with mode 0700, or checks the one that is there; says
/// whether it was created. `action` names a failure to create it.
pub(crate) fn create_private_dir(dir: &Path, action: &'static str) -> Result<bool, NotPrivate> {
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {
            // The umask may have narrowed the mode further, never widened it;
            // set it exactly so that the check always passes.
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(|source| {
                NotPrivate::Io {
                    action: "set the mode of",
                    source,
                }
            })?;
            check_private_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            check_private_dir(dir)?;
            Ok(false)
        }
        Err(source) => Err(NotPrivate::Io { action, source }),
    }
}

fn private_metadata(path: &Path) -> Result<fs::Metadata, NotPrivate> {
    fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => NotPrivate::Missing,
        _ => NotPrivate::Io {
            action: "read",
            source,
        },
    })
}

fn check_mode(mode: u32, fix: u32) -> Result<(), NotPrivate> {
    match too_open(mode) {
        Some(mode) => Err(NotPrivate::TooOpen { mode, fix }),
        None => Ok(()),
    }
}

/// The permission bits of `mode` if group or others have any access: a
/// private key, or a directory of them, must be its owner's alone.
fn too_open(mode: u32) -> Option<u32> {
    (mode & 0o077 != 0).then_some(mode & 0o7777)
}

/// What a key file holds.
#[derive(Debug)]
pub(crate) enum KeyFile {
    Plain(zeroize::Zeroizing<[u8; 32]>),
    Sealed(SealedSeed),
}

/// Reads a key file: `#` comment lines, blank lines and one key line,
/// labelled as `labels` says.
pub(crate) fn parse_key_file(text: &str, labels: KeyFileLabels) -> Result<KeyFile, String> {
    let KeyFileLabels { plain, sealed } = labels;
    let mut seeds = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = seeds
        .next()
        .ok_or_else(|| format!("it has no `{plain}` or `{sealed}` line"))?;
    if seeds.next().is_some() {
        return Err("it has more than the one key line".to_owned());
    }
    if let Some(value) = line.strip_prefix(sealed) {
        return SealedSeed::parse(sealed, value).map(KeyFile::Sealed);
    }
    let value = line
        .strip_prefix(plain)
        .ok_or_else(|| format!("its key line starts with neither `{plain}` nor `{sealed}`"))?
        .trim();
    let seed: binary::Bytes<32> = value
        .parse()
        .map_err(|e| format!("the seed is not 32 bytes of base64url: {e}"))?;
    Ok(KeyFile::Plain(zeroize::Zeroizing::new(seed.0)))
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

    fn encrypting(dir: &Path, passphrase: &str) -> KeyStore {
        KeyStore::open(dir)
            .unwrap()
            .with_passphrase(PassphraseSource::fixed(
                crate::passphrase::Passphrase::new(passphrase.into()).unwrap(),
            ))
            .with_cost(Cost {
                memory_kib: 64,
                passes: 1,
                lanes: 1,
            })
    }

    #[test]
    fn an_encrypted_key_loads_with_its_passphrase_only() {
        let (_temp, dir) = private_dir();
        KeyStore::create(&dir).unwrap();
        let key = IssuerKey::from_seed(&[7u8; 32]);
        let path = encrypting(&dir, "right")
            .save_as(&key, AtRest::Encrypted)
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(SEALED_LABEL), "{text}");
        assert!(!text.contains(&binary::encode(key.seed())));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let right = encrypting(&dir, "right");
        assert_eq!(right.at_rest(&key.key_id()).unwrap(), AtRest::Encrypted);
        assert_eq!(
            right.load(&key.key_id()).unwrap().public_key(),
            key.public_key()
        );
        let err = encrypting(&dir, "wrong").load(&key.key_id()).unwrap_err();
        assert!(
            matches!(err, KeyStoreError::WrongPassphrase { .. }),
            "{err}"
        );
        assert!(err.to_string().starts_with("wrong passphrase"), "{err}");
    }

    #[test]
    fn encrypt_protects_a_plain_key_in_place_once() {
        let (_temp, dir) = private_dir();
        let (store, _) = KeyStore::create(&dir).unwrap();
        let key = IssuerKey::from_seed(&[7u8; 32]);
        store.save(&key).unwrap();
        assert_eq!(store.at_rest(&key.key_id()).unwrap(), AtRest::Plain);
        let keys = encrypting(&dir, "pw");
        keys.encrypt(&key.key_id()).unwrap();
        assert_eq!(keys.at_rest(&key.key_id()).unwrap(), AtRest::Encrypted);
        assert_eq!(keys.load(&key.key_id()).unwrap().key_id(), key.key_id());
        assert!(matches!(
            keys.encrypt(&key.key_id()),
            Err(KeyStoreError::AlreadyEncrypted(_))
        ));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn an_encrypted_key_without_a_passphrase_names_the_variable() {
        let (_temp, dir) = private_dir();
        KeyStore::create(&dir).unwrap();
        let key = IssuerKey::from_seed(&[7u8; 32]);
        encrypting(&dir, "pw")
            .save_as(&key, AtRest::Encrypted)
            .unwrap();
        let err = KeyStore::open(&dir)
            .unwrap()
            .with_passphrase(PassphraseSource::none())
            .load(&key.key_id())
            .unwrap_err();
        assert!(
            err.to_string().contains(crate::passphrase::PASSPHRASE_ENV),
            "{err}"
        );
    }

    #[test]
    fn key_file_parsing_refuses_damage() {
        let good = format!("# comment\n{SEED_LABEL} {}\n", binary::encode(&[1u8; 32]));
        assert!(
            matches!(parse_key_file(&good, ISSUER_LABELS), Ok(KeyFile::Plain(seed)) if *seed == [1u8; 32])
        );
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
            assert!(parse_key_file(bad, ISSUER_LABELS).is_err(), "{n}. {bad:?}");
        }
    }
}
