//! The vendor's root key, in a directory of its own that only dedicated
//! commands (`init`, `root …`) open, given on their command line. `serve`
//! and `issue` never do: a machine that issues payloads holds the root's
//! public key, certificates and revocation lists (in its store), never the
//! root key itself, so the root can live on a machine that is kept offline.
//!
//! The directory (mode 0700, refused otherwise) holds:
//! - `root.key` (0600, refused otherwise): `ren3-root-key-seed-v1: <seed>`
//!   or, by default, the seed sealed with a passphrase
//!   (`ren3-root-key-encrypted-v1: argon2id …`, see `sealed_key`), with
//!   `#` comment lines;
//! - `root.pub`: the root's public key file ([`TrustRoot::to_public_file`]),
//!   which clients are built pinned to;
//! - `revocations.token`: the last revocation list the root signed, so that
//!   the next one repeats it with a higher version.
//!
//! Certifying a key and revoking one work on files: a certification request
//! comes in, a certificate goes out; a revocation list goes out.
//!
//! One module, over the usual size: the directory's checks, the key file's
//! sealing and the commands that use them share one error type and one
//! rule (only this module opens the root's directory), which a split would
//! spread over several files for the reader to keep together.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ren3_shared::revocation::MAX_REVOCATION_GRACE_SECONDS;
use ren3_shared::{
    Certificate, KeyId, RandomSourceError, Revocation, RevocationList, RevocationListBody, RootKey,
    TokenError, TrustError, TrustRoot, VerifiedCertificationRequest, binary, timestamp,
};
use serde::Serialize;

use crate::atomic_file::{self, Existing};
use crate::error::{Coded, ErrorKind};
use crate::keystore::private_path_errors;
use crate::keystore::{self, AtRest, FILE_MODE, KeyFile, KeyFileLabels, NotPrivate};
use crate::passphrase::{PassphraseError, PassphraseSource, Purpose};
use crate::sealed_key::{self, Cost, SealedSeed};

/// The root's private key file.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The root's public key file, for building clients.
pub const ROOT_PUBLIC_FILE: &str = "root.pub";
/// The last revocation list the root signed.
pub const REVOCATIONS_FILE: &str = "revocations.token";
/// Files others may read: the public key and the revocation list.
const PUBLIC_FILE_MODE: u32 = 0o644;

const ROOT_LABELS: KeyFileLabels = KeyFileLabels {
    plain: "ren3-root-key-seed-v1:",
    sealed: "ren3-root-key-encrypted-v1:",
};

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error(
        "no root directory at {}; create a root there with `ren3-issuer root init --root-dir \
         DIR`, or give the --root-dir it lives in",
        dir.display()
    )]
    Missing { dir: PathBuf },
    #[error("the root directory {} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error(
        "{} has mode {mode:04o}, which lets group or others reach the root key; restrict it \
         with `chmod {fix:o} {}`",
        path.display(), path.display()
    )]
    TooOpen { path: PathBuf, mode: u32, fix: u32 },
    #[error(
        "there is no root key at {}; create one with `ren3-issuer root init --root-dir DIR`",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "there is already a root key at {}; nothing was changed (a directory holds one root: \
         choose another --root-dir)",
        path.display()
    )]
    KeyExists { path: PathBuf },
    #[error("the root key file {} is not valid: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "wrong passphrase for the root key: it does not decrypt {}; nothing was signed or \
         changed",
        path.display()
    )]
    WrongPassphrase { path: PathBuf },
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
    #[error("cannot seal the root key: {0}")]
    Seal(String),
    #[error(
        "{} names root `{found}`, but root.key is root `{expected}`; the directory mixes two \
         roots: restore it from your backup",
        path.display()
    )]
    PublicMismatch {
        path: PathBuf,
        expected: KeyId,
        found: KeyId,
    },
    #[error(
        "there is no root public key file at {}; run `ren3-issuer root init` in this \
         directory, or restore it from your backup",
        path.display()
    )]
    NoPublicFile { path: PathBuf },
    #[error("the root public key file {} is not valid: {source}", path.display())]
    PublicFile { path: PathBuf, source: TrustError },
    #[error(
        "there is no revocation list at {}; the root directory is incomplete: restore it from \
         your backup",
        path.display()
    )]
    NoRevocations { path: PathBuf },
    #[error(
        "the revocation list {} does not verify under this root ({source}); restore it from \
         your backup",
        path.display()
    )]
    Revocations {
        path: PathBuf,
        source: Box<TokenError>,
    },
    #[error(
        "the certification request is not valid: {0}; ask for a new one \
         (`ren3-issuer keys certification-request KEY_ID`)"
    )]
    Request(TokenError),
    #[error(
        "key `{key_id}` is revoked in revocation list version {version}; the root certifies \
         no revoked key: make a new one (`ren3-issuer keys rotate`)"
    )]
    RevokedKey { key_id: KeyId, version: u64 },
    #[error("key `{key_id}` is revoked already, in revocation list version {version}")]
    AlreadyRevoked { key_id: KeyId, version: u64 },
    #[error("a grace period is at most 90 days, not {days}")]
    GraceTooLong { days: u64 },
    #[error("cannot sign: {0}")]
    Sign(TokenError),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl Coded for RootError {
    fn code(&self) -> &'static str {
        match self {
            RootError::Missing { .. } => "root_dir_missing",
            RootError::NotADirectory { .. } => "root_dir_invalid",
            RootError::TooOpen { .. } => "root_too_open",
            RootError::NoKey { .. } => "root_key_missing",
            RootError::KeyExists { .. } => "root_exists",
            RootError::Malformed { .. } => "root_key_invalid",
            RootError::WrongPassphrase { .. } => "wrong_passphrase",
            RootError::Passphrase(_) => "passphrase_missing",
            RootError::Seal(_) => "root_seal_failed",
            RootError::PublicMismatch { .. } => "root_public_mismatch",
            RootError::NoPublicFile { .. } | RootError::PublicFile { .. } => "root_public_invalid",
            RootError::NoRevocations { .. } | RootError::Revocations { .. } => {
                "revocations_invalid"
            }
            RootError::Request(_) => "certification_request_invalid",
            RootError::RevokedKey { .. } => "key_revoked",
            RootError::AlreadyRevoked { .. } => "key_already_revoked",
            RootError::GraceTooLong { .. } => "grace_too_long",
            RootError::Sign(_) => "signing_failed",
            RootError::Random(_) => "random_source_failed",
            RootError::Io { .. } => "io_error",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            RootError::Seal(_)
            | RootError::Sign(_)
            | RootError::Random(_)
            | RootError::Io { .. } => ErrorKind::Internal,
            RootError::Passphrase(e) => e.kind(),
            _ => ErrorKind::Refused,
        }
    }
}

private_path_errors!(RootError);

/// A checked root directory, and where the root key's passphrase comes
/// from (by default `REN3_ROOT_PASSPHRASE`).
#[derive(Debug, Clone)]
pub struct RootDir {
    dir: PathBuf,
    passphrase: PassphraseSource,
    cost: Cost,
}

impl RootDir {
    /// Opens an existing root directory, refusing one that group or others
    /// can reach.
    pub fn open(dir: &Path) -> Result<Self, RootError> {
        keystore::check_private_dir(dir).map_err(|e| RootError::not_private(dir, e))?;
        Ok(Self::at(dir))
    }

    /// Opens the root directory, creating it (mode 0700) if it does not
    /// exist; also says whether it was created, so a failed `init` can
    /// remove it again.
    pub fn open_or_create(dir: &Path) -> Result<(Self, bool), RootError> {
        let created = keystore::create_private_dir(dir, "create the root directory")
            .map_err(|e| RootError::not_private(dir, e))?;
        Ok((Self::at(dir), created))
    }

    /// The root directory `dir`, already checked.
    fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            passphrase: PassphraseSource::environment(),
            cost: sealed_key::DEFAULT_COST,
        }
    }

    /// Takes the passphrase from `source` instead of the environment.
    pub fn with_passphrase(self, source: PassphraseSource) -> Self {
        Self {
            passphrase: source,
            ..self
        }
    }

    /// Derives keys at `cost` when sealing (tests choose a cheap one).
    pub(crate) fn with_cost(self, cost: Cost) -> Self {
        Self { cost, ..self }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join(ROOT_KEY_FILE)
    }

    pub fn public_path(&self) -> PathBuf {
        self.dir.join(ROOT_PUBLIC_FILE)
    }

    pub fn revocations_path(&self) -> PathBuf {
        self.dir.join(REVOCATIONS_FILE)
    }

    /// Whether the directory holds a root key file (of any content).
    pub fn has_key(&self) -> bool {
        self.key_path().symlink_metadata().is_ok()
    }

    /// Loads the root key, refusing a file group or others can read, and
    /// asking for the passphrase of a sealed one. Checks it against
    /// `root.pub` when that exists.
    pub fn load_key(&self) -> Result<RootKey, RootError> {
        let path = self.key_path();
        keystore::check_private_file(&path).map_err(|e| match e {
            NotPrivate::Missing => RootError::NoKey { path: path.clone() },
            e => RootError::not_private(&path, e),
        })?;
        let text = fs::read_to_string(&path).map_err(RootError::io("read", &path))?;
        let seed = match keystore::parse_key_file(&text, ROOT_LABELS).map_err(|reason| {
            RootError::Malformed {
                path: path.clone(),
                reason,
            }
        })? {
            KeyFile::Plain(seed) => seed,
            KeyFile::Sealed(sealed) => {
                let passphrase = self.passphrase.get(Purpose::UnlockRoot)?;
                sealed.open(&passphrase).map_err(|e| match e {
                    sealed_key::OpenError::WrongPassphrase => {
                        RootError::WrongPassphrase { path: path.clone() }
                    }
                    sealed_key::OpenError::Kdf(reason) => RootError::Malformed {
                        path: path.clone(),
                        reason,
                    },
                })?
            }
        };
        let key = RootKey::from_seed(&seed);
        if let Some(public) = self.read_public()? {
            let expected = key.trust_root().key_id();
            if public.key_id() != expected {
                return Err(RootError::PublicMismatch {
                    path: self.public_path(),
                    expected,
                    found: public.key_id(),
                });
            }
        }
        Ok(key)
    }

    /// The root's public key, from `root.pub`: no passphrase needed.
    pub fn trust_root(&self) -> Result<TrustRoot, RootError> {
        self.read_public()?.ok_or_else(|| RootError::NoPublicFile {
            path: self.public_path(),
        })
    }

    fn read_public(&self) -> Result<Option<TrustRoot>, RootError> {
        let path = self.public_path();
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        TrustRoot::parse_public_file(&text)
            .map(Some)
            .map_err(|source| RootError::PublicFile { path, source })
    }

    /// The last list the root signed, verified under `root`; `None` if the
    /// directory has none yet.
    pub fn revocations(&self, root: &TrustRoot) -> Result<Option<RevocationList>, RootError> {
        let path = self.revocations_path();
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        RevocationList::open(&text, root)
            .map(Some)
            .map_err(|source| RootError::Revocations {
                path,
                source: Box::new(source),
            })
    }

    fn key_file_text(&self, key: &RootKey, at_rest: AtRest) -> Result<String, RootError> {
        let id = key.trust_root().key_id();
        Ok(match at_rest {
            AtRest::Plain => format!(
                "# ReN3 root key {id}. Whoever holds this file can certify issuer keys: keep \
                 it offline,\n# in this directory and in an encrypted backup, nowhere else.\n\
                 {} {}\n",
                ROOT_LABELS.plain,
                binary::encode(key.seed())
            ),
            AtRest::Encrypted => {
                let passphrase = self.passphrase.get(Purpose::ProtectRoot)?;
                let sealed =
                    SealedSeed::seal(ROOT_LABELS.sealed, key.seed(), &passphrase, self.cost)
                        .map_err(|e| RootError::Seal(e.to_string()))?;
                format!(
                    "# ReN3 root key {id}, sealed with a passphrase (Argon2id, \
                     ChaCha20-Poly1305).\n# Keep it offline; back up this file and the \
                     passphrase, apart.\n{}\n",
                    sealed.line()
                )
            }
        })
    }

    fn write_public(&self, root: &TrustRoot) -> Result<PathBuf, RootError> {
        let path = self.public_path();
        atomic_file::write(
            &path,
            root.to_public_file().as_bytes(),
            PUBLIC_FILE_MODE,
            Existing::Replace,
        )
        .map_err(RootError::io("write", &path))?;
        Ok(path)
    }

    fn write_revocations(&self, list: &RevocationList) -> Result<PathBuf, RootError> {
        let path = self.revocations_path();
        atomic_file::write(
            &path,
            format!("{}\n", list.token()).as_bytes(),
            PUBLIC_FILE_MODE,
            Existing::Replace,
        )
        .map_err(RootError::io("write", &path))?;
        Ok(path)
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, RootError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RootError::io("read", path)(e)),
    }
}

/// A root key ready to sign, with the last list it signed, and the files
/// opening it wrote (so a failed `init` can take them back).
#[derive(Debug)]
pub struct OpenedRoot {
    pub key: RootKey,
    pub revocations: RevocationList,
    /// Whether the key was made now rather than adopted.
    pub created: bool,
    pub wrote: Vec<PathBuf>,
}

/// Creates a new root in `dir`, kept `at_rest`: `root.key`, `root.pub` and
/// an empty revocation list, version 1. Refuses a directory that holds a
/// root key already. The passphrase is asked for before anything is written.
pub fn create(dir: &RootDir, at_rest: AtRest, now: i64) -> Result<OpenedRoot, RootError> {
    if dir.has_key() {
        return Err(RootError::KeyExists {
            path: dir.key_path(),
        });
    }
    let key = RootKey::generate()?;
    let text = dir.key_file_text(&key, at_rest)?;
    let revocations = first_list(&key, now)?;
    let key_path = dir.key_path();
    atomic_file::write(&key_path, text.as_bytes(), FILE_MODE, Existing::Keep)
        .map_err(RootError::io("write", &key_path))?;
    let mut wrote = vec![key_path];
    let rest = dir.write_public(&key.trust_root()).and_then(|public| {
        wrote.push(public);
        dir.write_revocations(&revocations)
    });
    match rest {
        Ok(list) => wrote.push(list),
        Err(e) => {
            remove_all(&wrote);
            return Err(e);
        }
    }
    Ok(OpenedRoot {
        key,
        revocations,
        created: true,
        wrote,
    })
}

/// Opens the root key in `dir` (asking the passphrase of a sealed one) and
/// completes the directory: `root.pub` if it is missing, and an empty
/// revocation list, version 1, if it has none; a list it has must verify
/// under this root.
pub fn adopt(dir: &RootDir, now: i64) -> Result<OpenedRoot, RootError> {
    let key = dir.load_key()?;
    let root = key.trust_root();
    let existing = dir.revocations(&root)?;
    let mut wrote = Vec::new();
    if dir.read_public()?.is_none() {
        wrote.push(dir.write_public(&root)?);
    }
    let revocations = match existing {
        Some(list) => list,
        None => {
            let list = first_list(&key, now)?;
            match dir.write_revocations(&list) {
                Ok(path) => wrote.push(path),
                Err(e) => {
                    remove_all(&wrote);
                    return Err(e);
                }
            }
            list
        }
    };
    Ok(OpenedRoot {
        key,
        revocations,
        created: false,
        wrote,
    })
}

/// Best effort: the error that made the caller give up is the one reported.
pub(crate) fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

fn first_list(key: &RootKey, now: i64) -> Result<RevocationList, RootError> {
    key.sign_revocations(RevocationListBody {
        version: 1,
        issued_at: now,
        revoked: Vec::new(),
    })
    .map_err(RootError::Sign)
}

/// Verifies a certification request and certifies the key it names, for
/// the window it asks for. Refuses a key the root's list revokes.
pub fn certify(dir: &RootDir, request_text: &str, now: i64) -> Result<Certificate, RootError> {
    let request = VerifiedCertificationRequest::open(request_text).map_err(RootError::Request)?;
    let key = dir.load_key()?;
    let root = key.trust_root();
    if let Some(list) = dir.revocations(&root)?
        && list.find(&request.body.key_id).is_some()
    {
        return Err(RootError::RevokedKey {
            key_id: request.body.key_id,
            version: list.version(),
        });
    }
    key.certify(&request, now).map_err(RootError::Sign)
}

/// The next revocation list: the last one in `dir` plus `key_id`, revoked
/// now with `grace_days` of grace, one version higher. It replaces
/// `revocations.token` atomically before it is returned.
pub fn revoke(
    dir: &RootDir,
    key_id: &KeyId,
    grace_days: u64,
    now: i64,
) -> Result<RevocationList, RootError> {
    let grace = i64::try_from(grace_days)
        .ok()
        .and_then(|d| d.checked_mul(24 * 60 * 60))
        .filter(|g| *g <= MAX_REVOCATION_GRACE_SECONDS)
        .ok_or(RootError::GraceTooLong { days: grace_days })?;
    let key = dir.load_key()?;
    let root = key.trust_root();
    let last = dir
        .revocations(&root)?
        .ok_or_else(|| RootError::NoRevocations {
            path: dir.revocations_path(),
        })?;
    if last.find(key_id).is_some() {
        return Err(RootError::AlreadyRevoked {
            key_id: *key_id,
            version: last.version(),
        });
    }
    let mut revoked = last.body.revoked.clone();
    revoked.push(Revocation {
        key_id: *key_id,
        revoked_at: now,
        grace_until: now + grace,
    });
    revoked.sort_by_key(|r| r.key_id);
    let list = key
        .sign_revocations(RevocationListBody {
            version: last.version() + 1,
            issued_at: now,
            revoked,
        })
        .map_err(RootError::Sign)?;
    dir.write_revocations(&list)?;
    Ok(list)
}

/// What `root show` reports: read from the public files only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootSummary {
    pub fingerprint: String,
    pub key_id: KeyId,
    pub public_file: PathBuf,
    /// The version of `revocations.token`, if there is one.
    pub revocations_version: Option<u64>,
    pub revoked_keys: Vec<KeyId>,
}

/// The root of `dir` as its public files describe it; no passphrase.
pub fn show(dir: &RootDir) -> Result<RootSummary, RootError> {
    let root = dir.trust_root()?;
    let list = dir.revocations(&root)?;
    Ok(RootSummary {
        fingerprint: root.fingerprint().to_string(),
        key_id: root.key_id(),
        public_file: dir.public_path(),
        revocations_version: list.as_ref().map(RevocationList::version),
        revoked_keys: list
            .map(|l| l.body.revoked.iter().map(|r| r.key_id).collect())
            .unwrap_or_default(),
    })
}

/// A revocation's time, for people.
pub fn grace_text(revocation: &Revocation) -> String {
    if revocation.grace_until > revocation.revoked_at {
        format!(
            "revoked {}, grace until {}",
            timestamp::format(revocation.revoked_at),
            timestamp::format(revocation.grace_until)
        )
    } else {
        format!("revoked {}", timestamp::format(revocation.revoked_at))
    }
}

#[cfg(test)]
mod tests {
    use ren3_shared::IssuerKey;

    use super::*;
    use crate::passphrase::Passphrase;
    use crate::testing::{CHEAP, NOW, TestStore};

    fn request(seed: u8) -> String {
        IssuerKey::from_seed(&[seed; 32])
            .certification_request(NOW, NOW + 1_000, NOW)
            .unwrap()
            .token()
    }

    #[test]
    fn certify_refuses_a_damaged_request_and_a_key_the_root_revoked() {
        let t = TestStore::new();
        let dir = RootDir::open(&t.root_dir).unwrap();
        // 1. certified as asked
        let certificate = certify(&dir, &request(5), NOW).unwrap();
        assert_eq!(certificate.body.not_after, NOW + 1_000, "1.");
        // 2. a damaged request
        let text = request(5);
        let err = certify(&dir, &text[..text.len() - 2], NOW).unwrap_err();
        assert_eq!(err.code(), "certification_request_invalid", "2. {err}");
        // 3. a key the root's list revokes
        let key_id = IssuerKey::from_seed(&[5; 32]).key_id();
        revoke(&dir, &key_id, 0, NOW).unwrap();
        let err = certify(&dir, &request(5), NOW).unwrap_err();
        assert_eq!(err.code(), "key_revoked", "3. {err}");
    }

    #[test]
    fn revoke_builds_the_next_cumulative_version_and_refuses_what_it_cannot_sign() {
        let t = TestStore::new();
        let dir = RootDir::open(&t.root_dir).unwrap();
        let (a, b) = (
            IssuerKey::from_seed(&[1; 32]).key_id(),
            IssuerKey::from_seed(&[2; 32]).key_id(),
        );
        let v2 = revoke(&dir, &a, 90, NOW).unwrap();
        let v3 = revoke(&dir, &b, 0, NOW + 1).unwrap();
        assert_eq!((v2.version(), v3.version()), (2, 3));
        assert!(v3.find(&a).is_some() && v3.find(&b).is_some(), "cumulative");
        assert_eq!(v2.find(&a).unwrap().grace_until, NOW + 90 * 86_400);
        let stored = dir.revocations(&t.trust_root()).unwrap().unwrap();
        assert_eq!(stored, v3);

        let before = fs::read(dir.revocations_path()).unwrap();
        for (n, (key, grace, code)) in [
            (a, 0, "key_already_revoked"),
            (
                IssuerKey::from_seed(&[3; 32]).key_id(),
                91,
                "grace_too_long",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let err = revoke(&dir, &key, grace, NOW).unwrap_err();
            assert_eq!(err.code(), code, "{n}. {err}");
            assert_eq!(fs::read(dir.revocations_path()).unwrap(), before, "{n}.");
        }
    }

    #[test]
    fn a_sealed_root_opens_with_its_passphrase_only_and_show_needs_none() {
        let temp = tempfile::tempdir().unwrap();
        let pass = |p: &str| PassphraseSource::fixed(Passphrase::new(p.into()).unwrap());
        let (dir, created) = RootDir::open_or_create(&temp.path().join("root")).unwrap();
        assert!(created);
        let dir = dir.with_passphrase(pass("right")).with_cost(CHEAP);
        let made = create(&dir, AtRest::Encrypted, NOW).unwrap();
        let text = fs::read_to_string(dir.key_path()).unwrap();
        assert!(!text.contains(&binary::encode(made.key.seed())));

        let wrong = dir.clone().with_passphrase(pass("wrong"));
        let err = wrong.load_key().unwrap_err();
        assert_eq!(err.code(), "wrong_passphrase", "{err}");
        let shown = show(&dir.clone().with_passphrase(PassphraseSource::none())).unwrap();
        assert_eq!(shown.key_id, made.key.trust_root().key_id());
        assert_eq!(shown.revocations_version, Some(1));
        assert_eq!(dir.load_key().unwrap().trust_root(), made.key.trust_root());
    }

    #[test]
    fn a_root_pub_of_another_root_is_refused() {
        let t = TestStore::new();
        let dir = RootDir::open(&t.root_dir).unwrap();
        let other = RootKey::from_seed(&[8; 32]).trust_root();
        fs::write(dir.public_path(), other.to_public_file()).unwrap();
        let err = dir.load_key().unwrap_err();
        assert_eq!(err.code(), "root_public_mismatch", "{err}");
    }
}
