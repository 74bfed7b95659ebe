//! Fixtures for the unit tests: a fresh store in a temporary directory,
//! licenses, devices and signed requests at a fixed time.

use ren3_shared::{DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product};
use rusqlite::types::Value;

use crate::audit::Actor;
use crate::devices;
use crate::keystore::KeyStore;
use crate::licenses::{self, NewLicense};
use crate::setup::{self, StorePaths};
use crate::store::{Store, StoreError};

/// The fixed "now" of the tests: 2027-01-15T08:00:00Z.
pub(crate) const NOW: i64 = 1_800_000_000;

pub(crate) struct TestStore {
    _temp: tempfile::TempDir,
    pub paths: StorePaths,
    pub store: Store,
    pub keys: KeyStore,
}

impl TestStore {
    pub fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let paths = StorePaths::new(temp.path().join("issuer.db"), None);
        setup::init(&paths, NOW).unwrap();
        Self {
            store: setup::open_store(&paths).unwrap(),
            keys: setup::open_keys(&paths).unwrap(),
            paths,
            _temp: temp,
        }
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
pub(crate) fn actor() -> Actor {
    Actor::console("test")
}

/// A request signed by `installation` for the device `device` of `key`.
pub(crate) fn request(key: &LicenseKey, device: &DeviceId, installation: &DeviceKey) -> String {
    let product = Product {
        name: "ren3-ingestor".into(),
        version: "1.0.0".into(),
    };
    LicenseRequest::new(device.clone(), key, product, NOW)
        .unwrap()
        .sign(installation)
        .unwrap()
        .token()
}

/// `token` with its signed message changed by `edit` and a fresh checksum:
/// well formed, so only the signature check can catch it.
pub(crate) fn tamper(token: &str, edit: impl FnOnce(&str) -> String) -> String {
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
