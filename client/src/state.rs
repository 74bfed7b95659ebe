//! The licensing service's state: configuration, store, device key and the
//! published license, shared by the HTTP handlers and the ingestor.

use std::fmt;
use std::sync::Arc;

use ren3_shared::{DeviceKey, PublicKey, VerifiedPayload};

use crate::config::{Config, OfflineConfig};
use crate::license::{Clock, InstalledLicense, LicenseHandle, system_clock};
use crate::store::{self, Store, StoreError};

/// Everything the licensing endpoints need. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    offline: Option<OfflineConfig>,
    store: Store,
    /// The installation's private key. It signs license requests and is
    /// never shown: `DeviceKey`'s `Debug` prints the public half only.
    device_key: DeviceKey,
    license: LicenseHandle,
    clock: Clock,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("offline", &self.inner.offline)
            .field("store", &self.inner.store.path())
            .field("device_key", &self.inner.device_key)
            .field("license", &self.inner.license)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Opens the store (creating it and the device key on first start) and
    /// loads the active license, using the system clock.
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        Self::open_with_clock(config, system_clock()).await
    }

    /// As [`AppState::open`], with an injected clock.
    pub async fn open_with_clock(config: &Config, clock: Clock) -> Result<Self, StoreError> {
        let store = Store::open(&config.license_db_path).await?;
        let now = clock();
        let (device_key, active) = store
            .call(move |conn| {
                let key = store::load_or_create_device_key(conn, now)?;
                Ok::<_, StoreError>((key, store::active_license(conn)?))
            })
            .await?;
        let offline = config.offline.clone();
        let installed = match (&offline, active) {
            (Some(offline), Some(active)) => reverify(&active.token, offline, &device_key),
            (None, Some(_)) => {
                tracing::warn!(
                    "offline licensing is disabled, so the license in the store is not used"
                );
                None
            }
            (_, None) => None,
        };
        if let Some(installed) = &installed {
            tracing::info!(
                serial = installed.license.serial,
                key_id = %installed.key_id,
                "loaded the active license"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                offline,
                license: LicenseHandle::new(installed, Arc::clone(&clock)),
                store,
                device_key,
                clock,
            }),
        })
    }

    /// The handle the ingestor asks whether it is licensed.
    pub fn license(&self) -> LicenseHandle {
        self.inner.license.clone()
    }

    /// The offline-licensing settings, or `None` when it is disabled.
    pub fn offline(&self) -> Option<&OfflineConfig> {
        self.inner.offline.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This installation's public key, which every payload must name.
    pub fn device_public_key(&self) -> PublicKey {
        self.inner.device_key.public_key()
    }

    pub(crate) fn device_key(&self) -> &DeviceKey {
        &self.inner.device_key
    }

    /// The current time by the injected clock, in Unix seconds.
    pub fn now(&self) -> i64 {
        (self.inner.clock)()
    }
}

/// Checks a stored license again at start-up: the trusted-keys file or the
/// configured device id may have changed since it was imported.
fn reverify(
    token: &str,
    offline: &OfflineConfig,
    device_key: &DeviceKey,
) -> Option<InstalledLicense> {
    let payload = match VerifiedPayload::open(token, &offline.trusted_keys) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(
                code = e.code(),
                trusted_keys = %offline.trusted_keys_path.display(),
                "the stored license no longer verifies ({e}); running unlicensed until a \
                 license is imported"
            );
            return None;
        }
    };
    let license = &payload.license;
    if license.client_device_id != offline.client_device_id {
        tracing::warn!(
            licensed = %license.client_device_id,
            configured = %offline.client_device_id,
            "the stored license is for another client_device_id; running unlicensed"
        );
        return None;
    }
    if license.device_public_key != device_key.public_key() {
        tracing::warn!(
            "the stored license is bound to another installation's key; running unlicensed"
        );
        return None;
    }
    Some(InstalledLicense {
        key_id: payload.key_id,
        license: payload.license,
    })
}
