//! The licensing service's state: configuration, store, device key and the
//! published license, shared by the HTTP handlers and the ingestor.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use axum::extract::FromRef;
use ren3_shared::{DeviceKey, KeyId, PublicKey, RevocationList, VerifiedPayload, payload};

use crate::config::{Config, OfflineConfig};
use crate::http::host::AllowedHosts;
use crate::license::{
    Clock, ClockRules, InstalledLicense, LicenseHandle, MarkProblem, SECONDS_PER_DAY, system_clock,
};
use crate::revocations;
use crate::status::RenderedStatus;
use crate::store::{self, Store, StoreError};
use crate::trust::{self, Trust};

/// How often the background task reads the clock and, when due, records
/// the high-water mark.
const CLOCK_TICK: Duration = Duration::from_secs(60);

/// Everything the licensing endpoints need. Cloning is cheap: clones share
/// one store, one device key and one [`LicenseHandle`].
///
/// Open one per store with [`AppState::open`], inside a Tokio runtime,
/// and give clones to [`crate::app`] and to the ingestor.
/// `LicenseHandle` implements `FromRef<AppState>`, so routes whose state is
/// an `AppState` can use the [`Licensed`](crate::Licensed) extractor.
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
    /// the public half only. Replaced by a new one with every deactivation
    /// ([`AppState::replace_device_key`]), only with the store's connection
    /// held, so a closure of [`Store::call`] reads the one the store has.
    device_key: ArcSwap<DeviceKey>,
    license: LicenseHandle,
    clock: Clock,
    /// Why the license in the store was not loaded at start-up, if it was not.
    stored_problem: Option<StoredLicenseProblem>,
    /// The high-water mark as last written to the store.
    recorded_mark: AtomicI64,
    /// The last `GET /license` body, with what it was built from.
    last_status: ArcSwapOption<RenderedStatus>,
    /// The names the licensing endpoints answer to.
    allowed_hosts: AllowedHosts,
}

/// Why the license in the store is not in use: found when it was checked
/// again at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicenseProblem {
    /// A stable code: `license_unverifiable` (its chain does not verify
    /// under this build's root: another root, an older format, a damaged
    /// row), `device_id_mismatch` or `device_key_mismatch`.
    pub code: &'static str,
    /// A sentence for the operator: what is wrong with it.
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
    ///
    /// A stored license that no longer verifies under this build's root, or
    /// is bound to another device id or key, is not loaded: the ingestor
    /// runs unlicensed and [`Self::stored_problem`] says why.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be created, opened, migrated or
    /// read, for instance because the directory of
    /// [`Config::license_db_path`] does not exist.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
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
        let (device_key, active, start_mark, effective) = store
            .call(move |conn| {
                let key = store::load_or_create_device_key(conn, now)?;
                let active = store::active_license(conn)?;
                // Every stored payload, read once for the two things its
                // signed part vouches for: its times, and its list (payloads
                // of one key and period share one).
                let mut vouched = None;
                let mut lists = HashSet::new();
                for token in store::license_tokens(conn)? {
                    if let Ok((_, l, _, list)) = payload::decode_unverified(&token) {
                        vouched = vouched.max(Some(l.issued_at.max(l.not_before)));
                        lists.insert(list);
                    }
                }
                let mark = start_mark(
                    active.is_some(),
                    store::high_water_mark(conn)?,
                    store::recorded_times(conn)?,
                    vouched,
                    now,
                    step,
                );
                if mark.problem.is_none()
                    && let Some(record) = mark.record
                {
                    store::raise_high_water_mark(conn, record)?;
                }
                let effective = revocations::effective_at_start(
                    conn,
                    &store_trust,
                    now,
                    lists.iter().map(String::as_str),
                )?;
                Ok::<_, StoreError>((key, active, mark, effective))
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
                        installed.mark_problem = start_mark.problem;
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
            if let Some(problem) = installed.mark_problem {
                tracing::warn!(
                    ?problem,
                    "the store's record of the latest time this installation has seen is \
                     missing or was lowered; licensed work is refused until a new license \
                     payload is imported; GET /license says what to do"
                );
            }
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
        let recorded_mark = start_mark.recorded.unwrap_or(i64::MIN);
        let license = LicenseHandle::new(
            installed,
            Arc::clone(&clock),
            rules,
            start_mark.judged,
            start_mark.problem.is_some(),
        );
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
                device_key: ArcSwap::from_pointee(device_key),
                clock,
                stored_problem,
                recorded_mark: AtomicI64::new(recorded_mark),
                last_status: ArcSwapOption::empty(),
                allowed_hosts: AllowedHosts::new(config.listen_addr, &config.allowed_hosts),
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

    /// The SQLite store. The licensing operations keep it consistent with
    /// the published license; an ingestor has no need to write to it.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This installation's public key, which every payload must name. It
    /// changes with every deactivation.
    pub fn device_public_key(&self) -> PublicKey {
        self.inner.device_key.load().public_key()
    }

    /// The device key now. Read it inside a closure of [`Store::call`] to
    /// sign with it: a deactivation replaces it with the connection held.
    pub(crate) fn device_key(&self) -> Arc<DeviceKey> {
        self.inner.device_key.load_full()
    }

    /// Uses `key` from now on. Called only by a deactivation, with the
    /// store's connection held, after the transaction that stored `key`
    /// committed.
    pub(crate) fn replace_device_key(&self, key: DeviceKey) {
        self.inner.device_key.store(Arc::new(key));
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

    /// A doubted mark is never written here (see
    /// [`store::high_water_mark`]).
    async fn record_mark_if_ahead_by(&self, step: i64) -> Result<(), StoreError> {
        let mark = self.license().high_water_mark();
        let recorded = self.recorded_high_water_mark();
        if mark <= recorded || mark.saturating_sub(recorded) < step || self.license().mark_doubted()
        {
            return Ok(());
        }
        let state = self.clone();
        let written = self
            .store()
            .call(move |conn| {
                // Decided again under the connection's lock, which an import
                // that clears a doubted mark holds.
                if state.license().mark_doubted() {
                    return Ok::<_, StoreError>(false);
                }
                store::raise_high_water_mark(conn, mark)?;
                Ok(true)
            })
            .await?;
        if written {
            self.note_recorded_mark(mark);
        }
        Ok(())
    }

    /// The names and addresses the licensing endpoints answer to.
    pub fn allowed_hosts(&self) -> &AllowedHosts {
        &self.inner.allowed_hosts
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

/// The clock's mark at start-up, as the store leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StartMark {
    /// The mark recorded in the store, after start-up recorded one.
    recorded: Option<i64>,
    /// What start-up records, if it records anything (it does not when
    /// `problem` is set).
    record: Option<i64>,
    /// The mark the handle starts from: never below the vendor-signed
    /// times of the stored payloads, nor any other time the store records.
    judged: i64,
    problem: Option<MarkProblem>,
}

/// Judges the store's mark at start-up. `licensed`: whether a license is
/// active in the store; `recorded`: its mark; `newest_recorded`: the
/// newest other time it records ([`store::recorded_times`]); `vouched`: the
/// newest `issuedAt` or `notBefore` of its payloads, which the vendor
/// signed, so no edit lowers it short of deleting payloads.
///
/// A mark missing or below `newest_recorded` while a license is active
/// cannot happen without an edit (every write of a time writes a mark in
/// its transaction): it is a [`MarkProblem`], and nothing is recorded, so
/// that the next start finds it too.
///
/// The handle starts from the latest of all of these. Only `vouched` is a
/// floor no edit can lower: an editor can rewrite the device-written times
/// (and re-sign what the device signed, its key being in the store). They
/// count all the same, since in a store nobody edited they are never
/// above the mark; so they change nothing for an honest store, and after
/// an edit the next import or deactivation writes a mark no lower than
/// any of them, which leaves the store consistent again.
fn start_mark(
    licensed: bool,
    recorded: Option<i64>,
    newest_recorded: Option<i64>,
    vouched: Option<i64>,
    now: i64,
    step: i64,
) -> StartMark {
    let problem = match recorded {
        _ if !licensed => None,
        None => Some(MarkProblem::Missing),
        Some(recorded) => {
            newest_recorded
                .filter(|newest| recorded < *newest)
                .map(|newest_recorded| MarkProblem::Lowered {
                    recorded,
                    newest_recorded,
                })
        }
    };
    let judged = [recorded, newest_recorded, vouched]
        .into_iter()
        .flatten()
        .fold(now, i64::max);
    let due = recorded.is_none_or(|r| judged.saturating_sub(r) >= step);
    let record = (problem.is_none() && due).then_some(judged);
    StartMark {
        recorded: record.or(recorded),
        record,
        judged,
        problem,
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
        mark_problem: None,
    })
}

/// The code of a stored license that does not verify under this build.
pub const UNVERIFIABLE: &str = "license_unverifiable";
