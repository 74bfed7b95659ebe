//! Fixtures for the unit tests: a fresh store in a temporary directory,
//! rooted in a plain in-process root, licenses, devices and signed
//! requests at a fixed time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default
)]

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ren3_shared::{
    DeviceId, DeviceKey, KeyId, LicenseKey, LicenseRequest, Product, Revocation, RevocationList,
    RevocationListBody, RootKey, TrustRoot, binary,
};
use rusqlite::types::Value;

use crate::audit::{self, Actor};
use crate::devices;
use crate::keystore::{AtRest, KeyStore};
use crate::licenses::{self, NewLicense};
use crate::sealed_key::Cost;
use crate::setup::{self, InitOptions, StorePaths};
use crate::store::{Store, StoreError};

/// The fixed "now" of the tests: 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;
/// The seed of the tests' root, which is public: it guards nothing.
pub const ROOT_SEED: [u8; 32] = [42; 32];
/// Argon2id parameters cheap enough for unit tests.
pub const CHEAP: Cost = Cost {
    memory_kib: 64,
    passes: 1,
    lanes: 1,
};

/// Writes a plain root key file for `seed` into `dir` (made 0700), as a
/// vendor who copied a root directory would have it.
pub fn place_root(dir: &Path, seed: &[u8; 32]) {
    fs::DirBuilder::new().mode(0o700).create(dir).unwrap();
    let path = dir.join(crate::root::ROOT_KEY_FILE);
    fs::write(
        &path,
        format!(
            "# TEST-ONLY root\nren3-root-key-seed-v1: {}\n",
            binary::encode(seed)
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
}

pub struct TestStore {
    _temp: tempfile::TempDir,
    pub paths: StorePaths,
    pub store: Store,
    pub keys: KeyStore,
    /// The root's directory; `serve` and `issue` never see it.
    pub root_dir: PathBuf,
    /// The same root, in memory, to sign what a test needs.
    pub root: RootKey,
}

impl TestStore {
    /// A store initialised with the tests' plain root, adopted from a
    /// pre-placed `root.key` as the end-to-end tests do.
    pub fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let paths = StorePaths::new(temp.path().join("issuer.db"), None);
        let root_dir = temp.path().join("root");
        place_root(&root_dir, &ROOT_SEED);
        let options = InitOptions {
            root_at_rest: AtRest::Plain,
            ..InitOptions::new(root_dir.clone()).with_root_cost(CHEAP)
        };
        setup::init(&paths, &options, &actor(), NOW).unwrap();
        Self {
            store: setup::open_store(&paths).unwrap(),
            keys: setup::open_keys(&paths).unwrap(),
            paths,
            root_dir,
            root: RootKey::from_seed(&ROOT_SEED),
            _temp: temp,
        }
    }

    pub fn trust_root(&self) -> TrustRoot {
        self.root.trust_root()
    }

    /// A revocation list of the tests' root.
    pub fn revocations(&self, version: u64, revoked: &[KeyId]) -> RevocationList {
        let mut revoked: Vec<Revocation> = revoked
            .iter()
            .map(|&key_id| Revocation {
                key_id,
                revoked_at: NOW,
                grace_until: NOW,
            })
            .collect();
        revoked.sort_by_key(|r| r.key_id);
        self.root
            .sign_revocations(RevocationListBody {
                version,
                issued_at: NOW,
                revoked,
            })
            .unwrap()
    }

    /// The audit rows of `action`, newest first, as `(result, subject)`.
    pub fn audited(&self, action: &str) -> Vec<(String, String)> {
        audit::page(
            &self.store,
            &audit::Filter {
                action: Some(action.into()),
                ..audit::Filter::default()
            },
            100,
        )
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.result, e.subject))
        .collect()
    }

    /// A license of ACME GmbH that never expires.
    pub fn license(&mut self, max_devices: u32) -> LicenseKey {
        self.license_with(NewLicense {
            customer: "ACME GmbH".into(),
            features: vec!["ingest".into()],
            limits: vec![("max-sources".into(), 10)],
            expires_at: None,
            max_devices,
            ..NewLicense::default()
        })
    }

    pub fn license_with(&mut self, new: NewLicense) -> LicenseKey {
        licenses::create(&mut self.store, &actor(), &new, NOW)
            .unwrap()
            .key
    }

    pub fn device(&mut self, key: &LicenseKey) -> DeviceId {
        devices::add(&mut self.store, &actor(), key, None, NOW)
            .unwrap()
            .device
            .client_device_id
    }

    /// Every row of every table, to prove a refusal changed nothing.
    pub fn snapshot(&self) -> Vec<String> {
        self.store
            .read(|conn| {
                let mut rows = Vec::new();
                for table in [
                    "signing_keys",
                    "trust_root",
                    "certificates",
                    "revocation_lists",
                    "licenses",
                    "devices",
                    "issuances",
                    "releases",
                ] {
                    let mut stmt =
                        conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
                    let columns = stmt.column_count();
                    let mut query = stmt.query([])?;
                    while let Some(row) = query.next()? {
                        let values = (0..columns)
                            .map(|i| row.get::<_, Value>(i))
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        rows.push(format!("{table}: {values:?}"));
                    }
                }
                Ok::<_, StoreError>(rows)
            })
            .unwrap()
    }
}

/// The actor of changes the tests make.
pub fn actor() -> Actor {
    Actor::console("test")
}

/// A request signed by `installation` for the device `device` of `key`:
/// the installation's first, with counter 1.
pub fn request(key: &LicenseKey, device: &DeviceId, installation: &DeviceKey) -> String {
    numbered_request(key, device, installation, 1)
}

/// A request with the installation's sequence number `counter`.
pub fn numbered_request(
    key: &LicenseKey,
    device: &DeviceId,
    installation: &DeviceKey,
    counter: u64,
) -> String {
    let product = Product {
        name: "ren3-ingestor".into(),
        version: "1.0.0".into(),
    };
    LicenseRequest::new(device.clone(), key, product, NOW)
        .unwrap()
        .with_counter(counter)
        .sign(installation)
        .unwrap()
        .token()
}

/// `token` with its signed message changed by `edit` and a fresh checksum:
/// well formed, so only the signature check can catch it.
pub fn tamper(token: &str, edit: impl FnOnce(&str) -> String) -> String {
    use ren3_shared::binary;
    use sha2::{Digest as _, Sha256};

    let dot = token.find('.').unwrap() + 1;
    let (prefix, rest) = token.split_at(dot);
    let parts: Vec<&str> = rest.split('.').collect();
    let message = String::from_utf8(binary::decode(parts[0]).unwrap()).unwrap();
    let signed = format!(
        "{prefix}{}.{}",
        binary::encode(edit(&message).as_bytes()),
        parts[1]
    );
    let check = binary::encode(&Sha256::digest(signed.as_bytes())[..6]);
    format!("{signed}.{check}")
}
