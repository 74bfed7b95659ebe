//! Where a store lives, and making a new one with its root.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::PathBuf;

use ren3_shared::{Certificate, IssuerKey, RandomSourceError, TrustRoot};

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::chain::{self, ChainError};
use crate::error::{Coded, ErrorKind};
use crate::keystore::{AtRest, KeyStore, KeyStoreError};
use crate::passphrase::PassphraseSource;
use crate::root::{self, OpenedRoot, RootDir, RootError};
use crate::sealed_key::{self, Cost};
use crate::signing_keys::{self, DEFAULT_KEY_VALID_DAYS, SigningKeyError};
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
    #[error(
        "the root directory and the key directory are both {}: the root must live apart \
         from the issuer's keys (and later offline); choose another --root-dir",
        path.display()
    )]
    RootInKeysDir { path: PathBuf },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
}

impl Coded for InitError {
    fn code(&self) -> &'static str {
        match self {
            InitError::AlreadyInitialised { .. } => "store_exists",
            InitError::RootInKeysDir { .. } => "root_in_keys_dir",
            InitError::Root(e) => e.code(),
            InitError::KeyStore(_) => "key_file_error",
            InitError::SigningKey(e) => e.code(),
            InitError::Chain(e) => e.code(),
            InitError::Store(e) => e.code(),
            InitError::Random(_) => "random_source_failed",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            InitError::AlreadyInitialised { .. } | InitError::RootInKeysDir { .. } => {
                ErrorKind::Refused
            }
            InitError::Root(e) => e.kind(),
            InitError::KeyStore(e) => e.kind(),
            InitError::SigningKey(e) => e.kind(),
            InitError::Chain(e) => e.kind(),
            InitError::Store(e) => e.kind(),
            InitError::Random(_) => ErrorKind::Internal,
        }
    }
}

/// How `init` makes the store, its first key and (or with) the root.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The root's directory: a new root is made there if it holds no
    /// `root.key`, else that root is adopted.
    pub root_dir: PathBuf,
    /// How a new root key is kept; an adopted one stays as it is.
    pub root_at_rest: AtRest,
    /// The root key's passphrase (`REN3_ROOT_PASSPHRASE` by default).
    pub root_passphrase: PassphraseSource,
    /// How the first signing key is kept.
    pub at_rest: AtRest,
    /// The first signing key's passphrase (`REN3_ISSUER_PASSPHRASE`).
    pub passphrase: PassphraseSource,
    /// How long the first key's certificate lasts.
    pub key_valid_days: u32,
    pub(crate) root_cost: Cost,
}

impl InitOptions {
    /// A sealed root in `root_dir`, a plain first key certified for
    /// [`DEFAULT_KEY_VALID_DAYS`], passphrases from the environment.
    pub fn new(root_dir: PathBuf) -> Self {
        Self {
            root_dir,
            root_at_rest: AtRest::Encrypted,
            root_passphrase: PassphraseSource::environment(),
            at_rest: AtRest::Plain,
            passphrase: PassphraseSource::environment(),
            key_valid_days: DEFAULT_KEY_VALID_DAYS,
            root_cost: sealed_key::DEFAULT_COST,
        }
    }

    /// Seals a new root at `cost`: for fast unit tests only.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_root_cost(self, root_cost: Cost) -> Self {
        Self { root_cost, ..self }
    }
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub key: SigningKeyRecord,
    pub key_file: PathBuf,
    /// The root the store trusts; made now, or adopted.
    pub root: TrustRoot,
    pub root_created: bool,
    pub root_dir: PathBuf,
    /// The root's public key file, for building clients.
    pub root_public_file: PathBuf,
    pub certificate: Certificate,
    pub revocations_version: u64,
}

/// Creates the store, the key directory and the first signing key, and
/// roots it: a new root in `options.root_dir`, or the one already there,
/// certifies the key, and the root's revocation list (version 1, empty,
/// for a new directory) is installed.
///
/// Refuses, changing nothing, if a store exists at `paths.db` or the key
/// directory already holds keys, and before anything is made if the root
/// cannot be opened (a wrong passphrase, a directory others can read). If
/// a later step fails, what was made is removed again, so a retry starts
/// from the same state; an adopted root is never touched.
pub fn init(
    paths: &StorePaths,
    options: &InitOptions,
    actor: &Actor,
    now: i64,
) -> Result<Initialized, InitError> {
    if paths.db.symlink_metadata().is_ok() {
        return Err(InitError::AlreadyInitialised {
            path: paths.db.clone(),
        });
    }
    if options.root_dir == paths.keys_dir {
        return Err(InitError::RootInKeysDir {
            path: paths.keys_dir.clone(),
        });
    }
    let (root_dir, created_root_dir) = RootDir::open_or_create(&options.root_dir)?;
    let root_dir = root_dir
        .with_passphrase(options.root_passphrase.clone())
        .with_cost(options.root_cost);
    let opened = if root_dir.has_key() {
        root::adopt(&root_dir, now)
    } else {
        root::create(&root_dir, options.root_at_rest, now)
    };
    let opened = match opened {
        Ok(opened) => opened,
        Err(e) => {
            if created_root_dir {
                let _ = fs::remove_dir(&options.root_dir);
            }
            return Err(e.into());
        }
    };
    let mut made = Made {
        root_dir: created_root_dir.then(|| options.root_dir.clone()),
        root_files: opened.wrote.clone(),
        keys_dir: None,
        key_file: None,
        db: None,
    };
    let result = KeyStore::create(&paths.keys_dir)
        .map_err(InitError::from)
        .and_then(|(keys, created_dir)| {
            made.keys_dir = created_dir.then(|| paths.keys_dir.clone());
            let keys = keys.with_passphrase(options.passphrase.clone());
            init_in(paths, &keys, options, &opened, actor, now, &mut made)
        })
        .map(|(key, key_file, certificate)| Initialized {
            key,
            key_file,
            root: opened.key.trust_root(),
            root_created: opened.created,
            root_dir: options.root_dir.clone(),
            root_public_file: root_dir.public_path(),
            certificate,
            revocations_version: opened.revocations.version(),
        });
    if result.is_err() {
        made.remove();
    }
    result
}

fn init_in(
    paths: &StorePaths,
    keys: &KeyStore,
    options: &InitOptions,
    root: &OpenedRoot,
    actor: &Actor,
    now: i64,
    made: &mut Made,
) -> Result<(SigningKeyRecord, PathBuf, Certificate), InitError> {
    let key = IssuerKey::generate()?;
    let certificate = signing_keys::certify_now(&key, &root.key, options.key_valid_days, now)?;
    made.key_file = Some(keys.save_as(&key, options.at_rest)?);
    let mut store = match Store::create_new(&paths.db) {
        Ok(store) => store,
        Err(StoreError::Open { source, .. }) if matches!(&*source, OpenError::Io(e) if e.kind() == io::ErrorKind::AlreadyExists) =>
        {
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
    let trust_root = root.key.trust_root();
    store.write(|tx| {
        store::insert_signing_key(tx, &record)?;
        store::insert_trust_root(tx, &trust_root.public_key(), now)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: if root.created {
                    Action::RootCreate
                } else {
                    Action::RootAdopt
                },
                subject: trust_root.key_id().to_string(),
                outcome: Outcome::Ok,
                detail: format!(
                    "root {} (fingerprint {}) {} in {}; keep that directory offline",
                    trust_root.key_id(),
                    trust_root.fingerprint(),
                    if root.created { "created" } else { "adopted" },
                    options.root_dir.display()
                ),
            },
            now,
        )?;
        chain::install_certificate_in(tx, actor, &certificate, now)?;
        chain::install_revocations_in(tx, actor, &root.revocations, now)?;
        Ok::<_, InitError>(())
    })?;
    Ok((record, keys.key_path(&key.key_id()), certificate))
}

/// What a failed `init` must take back.
struct Made {
    root_dir: Option<PathBuf>,
    root_files: Vec<PathBuf>,
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
        root::remove_all(&self.root_files);
        if let Some(dir) = self.root_dir {
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

    use ren3_shared::{RootKey, VerifiedPayload};

    use super::*;
    use crate::passphrase::Passphrase;
    use crate::testing::{CHEAP, ROOT_SEED, place_root};

    const NOW: i64 = 1_800_000_000;

    fn paths(dir: &Path) -> StorePaths {
        StorePaths::new(dir.join("issuer.db"), None)
    }

    fn plain(root_dir: PathBuf) -> InitOptions {
        InitOptions {
            root_at_rest: AtRest::Plain,
            ..InitOptions::new(root_dir).with_root_cost(CHEAP)
        }
    }

    fn sealed(root_dir: PathBuf, passphrase: &str) -> InitOptions {
        InitOptions {
            root_passphrase: PassphraseSource::fixed(Passphrase::new(passphrase.into()).unwrap()),
            ..InitOptions::new(root_dir).with_root_cost(CHEAP)
        }
    }

    fn init_in(dir: &Path) -> Result<Initialized, InitError> {
        init(&paths(dir), &plain(dir.join("root")), &Actor::cli(), NOW)
    }

    /// Every file under `dir` with its bytes and mode, to prove a refusal
    /// changed nothing.
    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                let mode = fs::metadata(&path).unwrap().permissions().mode();
                if path.is_dir() {
                    out.push((path.clone(), Vec::new(), mode));
                    stack.push(path);
                } else {
                    out.push((path.clone(), fs::read(&path).unwrap(), mode));
                }
            }
        }
        out.sort();
        out
    }

    fn actions(paths: &StorePaths) -> Vec<String> {
        let store = open_store(paths).unwrap();
        let mut rows: Vec<String> = audit::page(&store, &audit::Filter::default(), 100)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| format!("{} {}", e.action, e.result))
            .collect();
        rows.reverse();
        rows
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
        let made = init_in(temp.path()).unwrap();

        let dir_mode = fs::metadata(&paths.keys_dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let file_mode = fs::metadata(&made.key_file).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
        assert_eq!(
            made.key_file,
            paths.keys_dir.join(format!("{}.key", made.key.key_id))
        );

        let store = open_store(&paths).unwrap();
        let listed = store.read(|db| store::signing_keys(db)).unwrap();
        assert_eq!(listed, vec![made.key.clone()]);
        let loaded = open_keys(&paths).unwrap().load(&made.key.key_id).unwrap();
        assert_eq!(loaded.public_key(), made.key.public_key);
    }

    #[test]
    fn init_makes_a_sealed_root_certifies_the_first_key_and_audits_it() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        let root_dir = temp.path().join("root");
        let made = init(&paths, &sealed(root_dir.clone(), "pw"), &Actor::cli(), NOW).unwrap();
        assert!(made.root_created);

        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root_dir), 0o700);
        let key_file = root_dir.join(root::ROOT_KEY_FILE);
        assert_eq!(mode(&key_file), 0o600);
        let text = fs::read_to_string(&key_file).unwrap();
        assert!(
            text.contains("ren3-root-key-encrypted-v1: argon2id"),
            "{text}"
        );
        let public = fs::read_to_string(root_dir.join(root::ROOT_PUBLIC_FILE)).unwrap();
        assert_eq!(TrustRoot::parse_public_file(&public).unwrap(), made.root);
        assert_eq!(made.root_public_file, root_dir.join(root::ROOT_PUBLIC_FILE));
        let list = fs::read_to_string(root_dir.join(root::REVOCATIONS_FILE)).unwrap();
        assert_eq!(
            ren3_shared::RevocationList::open(list.trim(), &made.root)
                .unwrap()
                .version(),
            1
        );
        // The root is in the store as its public key only, with the
        // certificate of the first key.
        let store = open_store(&paths).unwrap();
        assert_eq!(chain::stored_root(&store).unwrap(), Some(made.root));
        let window = &made.certificate.body;
        assert_eq!(window.not_before, NOW - 300);
        assert_eq!(window.not_after, NOW + 1826 * 86_400);
        assert_eq!(
            actions(&paths),
            ["root.create ok", "key.certify ok", "revocations.install ok"]
        );
    }

    #[test]
    fn init_adopts_a_root_placed_in_its_directory_and_completes_it() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        let root_dir = temp.path().join("root");
        place_root(&root_dir, &ROOT_SEED);
        let made = init(&paths, &plain(root_dir.clone()), &Actor::cli(), NOW).unwrap();
        assert!(!made.root_created);
        assert_eq!(made.root, RootKey::from_seed(&ROOT_SEED).trust_root());
        assert!(root_dir.join(root::ROOT_PUBLIC_FILE).exists());
        assert!(root_dir.join(root::REVOCATIONS_FILE).exists());
        assert_eq!(
            actions(&paths),
            ["root.adopt ok", "key.certify ok", "revocations.install ok"]
        );
    }

    #[test]
    fn init_installs_the_newest_list_the_adopted_root_signed() {
        let temp = tempfile::tempdir().unwrap();
        let root_dir = temp.path().join("root");
        let root = RootDir::open_or_create(&root_dir).unwrap().0;
        root::create(&root, AtRest::Plain, NOW).unwrap();
        let revoked = ren3_shared::IssuerKey::from_seed(&[3; 32]).key_id();
        root::revoke(&root, &revoked, 0, NOW).unwrap();
        let made = init(&paths(temp.path()), &plain(root_dir), &Actor::cli(), NOW).unwrap();
        assert_eq!(made.revocations_version, 2);

        // A payload issued now carries version 2.
        let mut t_store = open_store(&paths(temp.path())).unwrap();
        let keys = open_keys(&paths(temp.path())).unwrap();
        let license = crate::licenses::create(
            &mut t_store,
            &Actor::cli(),
            &crate::licenses::NewLicense {
                customer: "ACME".into(),
                max_devices: 1,
                ..Default::default()
            },
            NOW,
        )
        .unwrap()
        .key;
        let device = crate::devices::add(&mut t_store, &Actor::cli(), &license, None, NOW)
            .unwrap()
            .device
            .client_device_id;
        let text = crate::testing::request(
            &license,
            &device,
            &ren3_shared::DeviceKey::from_seed(&[1; 32]),
        );
        let issued =
            crate::issuance::issue(&mut t_store, &keys, &Actor::cli(), &text, NOW).unwrap();
        let opened = VerifiedPayload::open(&issued.payload.token(), &made.root).unwrap();
        assert_eq!(opened.revocations.version(), 2);
    }

    #[test]
    fn init_with_a_wrong_root_passphrase_changes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let root_dir = temp.path().join("root");
        let root = RootDir::open_or_create(&root_dir)
            .unwrap()
            .0
            .with_passphrase(PassphraseSource::fixed(
                Passphrase::new("right".into()).unwrap(),
            ))
            .with_cost(CHEAP);
        root::create(&root, AtRest::Encrypted, NOW).unwrap();
        let before = tree(temp.path());

        let paths = paths(temp.path());
        let err = init(
            &paths,
            &sealed(root_dir.clone(), "wrong"),
            &Actor::cli(),
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.code(), "wrong_passphrase", "{err}");
        assert!(
            err.to_string().contains("nothing was signed or changed"),
            "{err}"
        );
        assert_eq!(tree(temp.path()), before);

        let made = init(&paths, &sealed(root_dir, "right"), &Actor::cli(), NOW).unwrap();
        assert!(!made.root_created);
    }

    #[test]
    fn init_refuses_a_root_dir_or_root_key_others_can_read_and_makes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let root_dir = temp.path().join("root");
        place_root(&root_dir, &ROOT_SEED);
        let key_file = root_dir.join(root::ROOT_KEY_FILE);
        let set_mode =
            |path: &Path, mode| fs::set_permissions(path, fs::Permissions::from_mode(mode));
        for (case, path, open, fix) in [
            (
                "1. the root directory is group-readable",
                &root_dir,
                0o750,
                "chmod 700",
            ),
            (
                "2. root.key is group-readable",
                &key_file,
                0o640,
                "chmod 600",
            ),
        ] {
            set_mode(&root_dir, 0o700).unwrap();
            set_mode(path, open).unwrap();
            let before = tree(temp.path());
            let err = init_in(temp.path()).unwrap_err();
            assert!(
                matches!(err, InitError::Root(RootError::TooOpen { mode, .. }) if mode == open),
                "{case}: {err}"
            );
            assert!(err.to_string().contains(fix), "{case}: {err}");
            assert_eq!(tree(temp.path()), before, "{case}");
        }
    }

    #[test]
    fn init_refuses_the_key_dir_as_root_dir() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        let err = init(&paths, &plain(paths.keys_dir.clone()), &Actor::cli(), NOW).unwrap_err();
        assert_eq!(err.code(), "root_in_keys_dir", "{err}");
        assert!(!paths.keys_dir.exists());
    }

    #[test]
    fn second_init_is_refused_and_changes_nothing() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        let first = init_in(temp.path()).unwrap();
        let db_before = fs::read(&paths.db).unwrap();

        let err = init_in(temp.path()).unwrap_err();
        assert!(matches!(err, InitError::AlreadyInitialised { .. }), "{err}");
        assert_eq!(fs::read(&paths.db).unwrap(), db_before);
        let files: Vec<_> = fs::read_dir(&paths.keys_dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let store = open_store(&paths).unwrap();
        assert_eq!(
            store.read(|db| store::signing_keys(db)).unwrap(),
            vec![first.key]
        );
    }

    #[test]
    fn init_refuses_a_group_readable_key_dir_and_creates_no_store() {
        let temp = tempfile::tempdir().unwrap();
        let paths = paths(temp.path());
        fs::create_dir(&paths.keys_dir).unwrap();
        fs::set_permissions(&paths.keys_dir, fs::Permissions::from_mode(0o750)).unwrap();
        let err = init_in(temp.path()).unwrap_err();
        assert!(
            matches!(err, InitError::KeyStore(KeyStoreError::TooOpen { .. })),
            "{err}"
        );
        assert!(!paths.db.exists());
        assert_eq!(fs::read_dir(&paths.keys_dir).unwrap().count(), 0);
        assert!(
            !temp.path().join("root").exists(),
            "the new root is taken back"
        );
    }

    #[test]
    fn failed_init_removes_what_it_made() {
        let temp = tempfile::tempdir().unwrap();
        // The store's directory does not exist, so creating the store fails
        // after the root, the key directory and key file were made.
        let paths = StorePaths::new(
            temp.path().join("missing").join("issuer.db"),
            Some(temp.path().join("keys")),
        );
        let root_dir = temp.path().join("root");
        assert!(init(&paths, &plain(root_dir.clone()), &Actor::cli(), NOW).is_err());
        assert!(!paths.keys_dir.exists());
        assert!(!paths.db.exists());
        assert!(!root_dir.exists());
    }
}
