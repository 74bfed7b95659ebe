//! The licensing service's state: configuration, store, device key and the
//! published license, shared by the HTTP handlers and the ingestor.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::extract::FromRef;
use ren3_shared::{DeviceKey, KeyId, PublicKey, RevocationList, VerifiedPayload, payload};

use crate::config::{Config, OfflineConfig};
use crate::license::{
    Clock, ClockRules, InstalledLicense, LicenseHandle, SECONDS_PER_DAY, system_clock,
};
use crate::revocations;
use crate::status::RenderedStatus;
use crate::store::{self, Store, StoreError};
use crate::trust::{self, Trust};

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
    /// The build's root and floor: fixed for the life of the process.
    trust: Trust,
    /// The effective revocation list ([`crate::revocations`]). Changed only
    /// with the store's connection held, and only to a newer list.
    revocations: ArcSwapOption<RevocationList>,
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
    /// A stable code: `license_unverifiable` (its chain does not verify
    /// under this build's root: another root, an older format, a damaged
    /// row), `device_id_mismatch` or `device_key_mismatch`.
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
        let trust = config.trust().clone();
        log_trust(config);
        let store_trust = trust.clone();
        let (device_key, active, recorded_mark, effective) = store
            .call(move |conn| {
                let key = store::load_or_create_device_key(conn, now)?;
                let active = store::active_license(conn)?;
                let mut recorded = store::high_water_mark(conn)?;
                if recorded.is_none_or(|r| now.saturating_sub(r) >= step) {
                    store::raise_high_water_mark(conn, now)?;
                    recorded = Some(recorded.map_or(now, |r| r.max(now)));
                }
                let effective = revocations::effective_at_start(conn, &store_trust, now)?;
                Ok::<_, StoreError>((key, active, recorded, effective))
            })
            .await?;
        tracing::info!(
            version = effective.as_ref().map_or(0, RevocationList::version),
            floor = trust.floor_version(),
            "effective revocation list"
        );
        let offline = config.offline.clone();
        let (installed, stored_problem) = match (&offline, active) {
            (Some(offline), Some(active)) => {
                match reverify(&active.token, offline, &trust, &device_key) {
                    Ok(mut installed) => {
                        installed.revocation = effective
                            .as_ref()
                            .and_then(|list| list.find(&installed.key_id))
                            .cloned();
                        (Some(installed), None)
                    }
                    Err(problem) => (None, Some(problem)),
                }
            }
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
            if let Some(revocation) = &installed.revocation {
                tracing::warn!(
                    key_id = %installed.key_id,
                    grace_until = %ren3_shared::timestamp::format(revocation.grace_until),
                    "the ReN3 team revoked the key that signed the active license; it works \
                     until the grace period ends; GET /license says what to do"
                );
            }
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
                trust,
                revocations: ArcSwapOption::from(effective.map(Arc::new)),
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

    /// The build's trust root and revocation floor: read-only.
    pub fn trust(&self) -> &Trust {
        &self.inner.trust
    }

    pub(crate) fn revocations(&self) -> &ArcSwapOption<RevocationList> {
        &self.inner.revocations
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

/// Logs the build's trust once at start-up, and every trust variable that
/// is set but not read.
fn log_trust(config: &Config) {
    let trust = config.trust();
    if trust.is_pinned() {
        tracing::info!(
            root = %trust.fingerprint(),
            pinned = true,
            revocation_floor = trust.floor_version(),
            "this build trusts only the root pinned into it"
        );
    } else {
        tracing::warn!(
            root = %trust.fingerprint(),
            pinned = false,
            "this is a development build: its trust root is taken at run time from {}, \
             and it must never ship",
            trust::DEV_TRUST_ROOT
        );
    }
    for variable in &config.ignored_variables {
        tracing::warn!(
            variable,
            root = %trust.fingerprint(),
            "{variable} is set but no longer read: this build trusts only its pinned root; \
             remove the variable"
        );
    }
}

/// Checks a stored license again at start-up: the configured device id may
/// have changed since it was imported, and a payload of an older format or
/// of another root does not verify under this build.
fn reverify(
    token: &str,
    offline: &OfflineConfig,
    trust: &Trust,
    device_key: &DeviceKey,
) -> Result<InstalledLicense, StoredLicenseProblem> {
    let payload = match VerifiedPayload::open(token, trust.root()) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(
                code = UNVERIFIABLE,
                cause = e.code(),
                root = %trust.fingerprint(),
                "the stored license does not verify under this build's root ({e}); running \
                 unlicensed until a license is imported"
            );
            let unverified = payload::decode_unverified(token).ok();
            return Err(StoredLicenseProblem {
                code: UNVERIFIABLE,
                message: format!("this build cannot verify it: {e}"),
                key_id: unverified.as_ref().map(|(key_id, ..)| *key_id),
                device_matches: unverified.map(|(_, l, ..)| {
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
        revocation: None,
    })
}

/// The code of a stored license that does not verify under this build.
pub const UNVERIFIABLE: &str = "license_unverifiable";
