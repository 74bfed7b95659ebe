//! The licensing service's state: configuration, store, device key and the
//! published license, shared by the HTTP handlers and the ingestor.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::extract::FromRef;
use ren3_shared::{DeviceKey, KeyId, PublicKey, VerifiedPayload, payload};

use crate::config::{Config, OfflineConfig, TrustSource};
use crate::license::{
    Clock, ClockRules, InstalledLicense, LicenseHandle, SECONDS_PER_DAY, system_clock,
};
use crate::status::RenderedStatus;
use crate::store::{self, Store, StoreError};

/// How often the background task reads the clock and, when due, records
/// the high-water mark.
const CLOCK_TICK: Duration = Duration::from_secs(60);

/// Everything the licensing endpoints need. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    offline: Option<OfflineConfig>,
    store: Store,
    /// The installation's private key. It signs license requests and
    /// release receipts and is never shown: `DeviceKey`'s `Debug` prints
    /// the public half only.
    device_key: DeviceKey,
    license: LicenseHandle,
    clock: Clock,
    /// Why the license in the store was not loaded at start-up, if it was not.
    stored_problem: Option<StoredLicenseProblem>,
    /// The high-water mark as last written to the store.
    recorded_mark: AtomicI64,
    /// The last `GET /license` body, with what it was built from.
    last_status: ArcSwapOption<RenderedStatus>,
}

/// Why the license in the store is not in use: found when it was checked
/// again at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicenseProblem {
    /// A stable code: a token code such as `unknown_key` or `key_retired`,
    /// or `device_id_mismatch` or `device_key_mismatch`.
    pub code: &'static str,
    pub message: String,
    /// The key that signed it, as its signer line says.
    pub key_id: Option<KeyId>,
    /// Whether it is bound to this device id and this installation's key;
    /// `None` when it could not be read that far.
    pub device_matches: Option<bool>,
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

impl FromRef<AppState> for LicenseHandle {
    fn from_ref(state: &AppState) -> Self {
        state.license()
    }
}

impl AppState {
    /// Opens the store (creating it and the device key on first start) and
    /// loads the active license, using the system clock.
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        Self::open_with_clock(config, system_clock()).await
    }

    /// As [`AppState::open`], with an injected clock.
    ///
    /// Starts a background task on the current Tokio runtime that reads the
    /// clock every minute and records its high-water mark when due; it ends
    /// when the last clone of the state is dropped.
    pub async fn open_with_clock(config: &Config, clock: Clock) -> Result<Self, StoreError> {
        let store = Store::open(&config.license_db_path).await?;
        let now = clock();
        let step = record_step(config.clock_tolerance_seconds);
        let (device_key, active, recorded_mark) = store
            .call(move |conn| {
                let key = store::load_or_create_device_key(conn, now)?;
                let active = store::active_license(conn)?;
                let mut recorded = store::high_water_mark(conn)?;
                if recorded.is_none_or(|r| now.saturating_sub(r) >= step) {
                    store::raise_high_water_mark(conn, now)?;
                    recorded = Some(recorded.map_or(now, |r| r.max(now)));
                }
                Ok::<_, StoreError>((key, active, recorded))
            })
            .await?;
        let offline = config.offline.clone();
        if let Some(OfflineConfig {
            trusted_keys_source: TrustSource::Pinned { ignored_path },
            ..
        }) = &offline
        {
            match ignored_path {
                Some(path) => tracing::info!(
                    ignored = %path.display(),
                    "this build pins its trusted keys; license_trusted_keys is ignored"
                ),
                None => tracing::info!("this build pins its trusted keys"),
            }
        }
        let (installed, stored_problem) = match (&offline, active) {
            (Some(offline), Some(active)) => match reverify(&active.token, offline, &device_key) {
                Ok(installed) => (Some(installed), None),
                Err(problem) => (None, Some(problem)),
            },
            (None, Some(_)) => {
                tracing::warn!(
                    "offline licensing is disabled, so the license in the store is not used"
                );
                (None, None)
            }
            (_, None) => (None, None),
        };
        if let Some(installed) = &installed {
            tracing::info!(
                serial = installed.license.serial,
                key_id = %installed.key_id,
                "loaded the active license"
            );
        }
        let rules = ClockRules {
            tolerance_seconds: config.clock_tolerance_seconds,
            warning_seconds: config.warning_days.saturating_mul(SECONDS_PER_DAY),
        };
        let recorded_mark = recorded_mark.unwrap_or(i64::MIN);
        let license = LicenseHandle::new(installed, Arc::clone(&clock), rules, recorded_mark);
        // The first check at start-up: it logs a suspect clock or an open
        // warning window once.
        license.check_at(now);
        let state = Self {
            inner: Arc::new(Inner {
                offline,
                license,
                store,
                device_key,
                clock,
                stored_problem,
                recorded_mark: AtomicI64::new(recorded_mark),
                last_status: ArcSwapOption::empty(),
            }),
        };
        spawn_clock_task(Arc::downgrade(&state.inner));
        Ok(state)
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

    /// Why the license in the store was not loaded at start-up.
    pub fn stored_problem(&self) -> Option<&StoredLicenseProblem> {
        self.inner.stored_problem.as_ref()
    }

    /// The clock's high-water mark as last recorded in the store.
    pub fn recorded_high_water_mark(&self) -> i64 {
        self.inner.recorded_mark.load(Ordering::Relaxed)
    }

    /// Records the clock's high-water mark in the store. The ingestor calls
    /// this on shutdown (`serve` does); while running, the background task
    /// and status record it when it has moved on by [`Self::record_step`].
    pub async fn persist_clock(&self) -> Result<(), StoreError> {
        self.record_mark_if_ahead_by(0).await
    }

    /// Records the high-water mark if it moved on by a step since it was
    /// last recorded: the store lags by at most a step, which is well within
    /// the tolerance, and stays unchanged for long stretches.
    pub(crate) async fn persist_clock_if_due(&self) -> Result<(), StoreError> {
        self.record_mark_if_ahead_by(self.record_step()).await
    }

    /// How far the high-water mark moves on before it is recorded again.
    pub fn record_step(&self) -> i64 {
        record_step(self.license().clock_rules().tolerance_seconds)
    }

    async fn record_mark_if_ahead_by(&self, step: i64) -> Result<(), StoreError> {
        let mark = self.license().high_water_mark();
        let recorded = self.recorded_high_water_mark();
        if mark <= recorded || mark.saturating_sub(recorded) < step {
            return Ok(());
        }
        self.store()
            .call(move |conn| store::raise_high_water_mark(conn, mark))
            .await?;
        self.note_recorded_mark(mark);
        Ok(())
    }

    /// The last `GET /license` body, with what it was built from.
    pub(crate) fn last_status(&self) -> &ArcSwapOption<RenderedStatus> {
        &self.inner.last_status
    }

    /// Remembers that the store now holds `mark` (written in a transaction
    /// of an import or a deactivation).
    pub(crate) fn note_recorded_mark(&self, mark: i64) {
        self.inner.recorded_mark.fetch_max(mark, Ordering::Relaxed);
    }
}

/// Half the clock tolerance, between a minute and an hour.
fn record_step(tolerance_seconds: i64) -> i64 {
    (tolerance_seconds / 2).clamp(60, 3_600)
}

fn spawn_clock_task(state: Weak<Inner>) {
    tokio::spawn(async move {
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + CLOCK_TICK, CLOCK_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = state.upgrade() else {
                return;
            };
            let state = AppState { inner };
            state.license().check();
            if let Err(e) = state.persist_clock_if_due().await {
                tracing::warn!("cannot record the clock's high-water mark: {e}");
            }
        }
    });
}

/// Checks a stored license again at start-up: the trusted-keys file or the
/// configured device id may have changed since it was imported.
fn reverify(
    token: &str,
    offline: &OfflineConfig,
    device_key: &DeviceKey,
) -> Result<InstalledLicense, StoredLicenseProblem> {
    let payload = match VerifiedPayload::open(token, &offline.trusted_keys) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(
                code = e.code(),
                trusted_keys = %offline.trusted_keys_source,
                "the stored license no longer verifies ({e}); running unlicensed until a \
                 license is imported"
            );
            let unverified = payload::decode_unverified(token).ok();
            return Err(StoredLicenseProblem {
                code: e.code(),
                message: e.to_string(),
                key_id: unverified.as_ref().map(|(key_id, _)| *key_id),
                device_matches: unverified.map(|(_, l)| {
                    l.client_device_id == offline.client_device_id
                        && l.device_public_key == device_key.public_key()
                }),
            });
        }
    };
    let license = &payload.license;
    let mismatch = |code, message: String| StoredLicenseProblem {
        code,
        message,
        key_id: Some(payload.key_id),
        device_matches: Some(false),
    };
    if license.client_device_id != offline.client_device_id {
        tracing::warn!(
            licensed = %license.client_device_id,
            configured = %offline.client_device_id,
            "the stored license is for another client_device_id; running unlicensed"
        );
        return Err(mismatch(
            "device_id_mismatch",
            format!(
                "the stored license is for client device id `{}`, but this ingestor is \
                 configured with `{}`",
                license.client_device_id, offline.client_device_id
            ),
        ));
    }
    if license.device_public_key != device_key.public_key() {
        tracing::warn!(
            "the stored license is bound to another installation's key; running unlicensed"
        );
        return Err(mismatch(
            "device_key_mismatch",
            "the stored license is bound to another installation's device key".into(),
        ));
    }
    Ok(InstalledLicense {
        key_id: payload.key_id,
        license: payload.license,
    })
}
