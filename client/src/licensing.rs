//! The licensing service: the configuration, the store, the device key and
//! the published license, with the operations the HTTP endpoints and the
//! ingestor share. It holds no axum type; [`crate::AppState`] wraps it for
//! the router.
//!
//! Its operations sit with their subject: opening it in
//! [`crate::startup`], register and import in [`crate::registration`],
//! deactivation in [`crate::deactivation`], the effective revocation list
//! in [`crate::revocations`], the status in [`crate::status`]; this file
//! holds what they share and the clock's high-water mark.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use ren3_shared::{DeviceKey, PublicKey, RevocationList, VerifiedChain};

use crate::config::{Config, OfflineConfig};
use crate::license::{Clock, LicenseHandle};
use crate::startup::StoredLicenseProblem;
use crate::store::{self, Store, StoreError};
use crate::trust::Trust;

/// How often the background task reads the clock and, when due, records
/// the high-water mark.
const CLOCK_TICK: Duration = Duration::from_secs(60);

/// The licensing service of one store.
///
/// Open it once per store with [`Licensing::open`], inside a Tokio runtime;
/// it comes in an `Arc`, to share with [`crate::AppState`] (which
/// dereferences to it, so every method here is also the state's) and with
/// the ingestor.
pub struct Licensing {
    config: Config,
    store: Store,
    clock: Clock,
    /// Why the license in the store was not loaded at start-up, if it was not.
    stored_problem: Option<StoredLicenseProblem>,
    mirror: Arc<Mirror>,
}

/// What this process holds in memory of the store: the active license (in
/// the handle), the device key, the effective revocation list and the
/// clock's mark as last recorded.
///
/// The license, the device key and the list are replaced only inside a
/// closure of [`Store::call`], with the connection held, once the
/// transaction that wrote them committed, so such a closure sees them agree
/// with the rows it reads. The recorded mark only rises, once the mark is
/// written. The closures run on the blocking pool and must own what they
/// use: they share this.
pub(crate) struct Mirror {
    /// The handle the ingestor asks.
    pub(crate) license: LicenseHandle,
    /// The installation's private key. It signs license requests and
    /// release receipts and is never shown: `DeviceKey`'s `Debug` prints
    /// the public half only. Replaced by a new one with every deactivation.
    device_key: ArcSwap<DeviceKey>,
    /// The effective revocation list ([`crate::revocations`]): only ever
    /// replaced by a newer list.
    revocations: ArcSwapOption<RevocationList>,
    /// The high-water mark as last written to the store.
    recorded_mark: AtomicI64,
    /// The chain (certificate and revocation list) of the last payload
    /// this process verified: the stored one at start-up, then each one
    /// imported. A payload that carries the same chain, as a vendor's next
    /// payloads do, has only its own signature checked at import
    /// ([`VerifiedPayload::open_after`]). In memory only: the store is the
    /// customer's to edit, so nothing read from it is trusted unchecked.
    ///
    /// [`VerifiedPayload::open_after`]: ren3_shared::VerifiedPayload::open_after
    chain: ArcSwapOption<VerifiedChain>,
}

impl Mirror {
    pub(crate) fn new(
        license: LicenseHandle,
        device_key: DeviceKey,
        revocations: Option<RevocationList>,
        recorded_mark: i64,
        chain: Option<VerifiedChain>,
    ) -> Self {
        Self {
            license,
            device_key: ArcSwap::from_pointee(device_key),
            revocations: ArcSwapOption::from(revocations.map(Arc::new)),
            recorded_mark: AtomicI64::new(recorded_mark),
            chain: ArcSwapOption::from(chain.map(Arc::new)),
        }
    }

    /// The chain of the last payload this process verified, if any.
    pub(crate) fn known_chain(&self) -> Option<Arc<VerifiedChain>> {
        self.chain.load_full()
    }

    /// Remembers the chain of a payload that just verified and was
    /// installed.
    pub(crate) fn remember_chain(&self, chain: VerifiedChain) {
        self.chain.store(Some(Arc::new(chain)));
    }

    /// The device key now. Read it inside a closure of [`Store::call`] to
    /// sign with it: a deactivation replaces it with the connection held.
    pub(crate) fn device_key(&self) -> Arc<DeviceKey> {
        self.device_key.load_full()
    }

    pub(crate) fn device_public_key(&self) -> PublicKey {
        self.device_key.load().public_key()
    }

    /// Uses `key` from now on. Called only by a deactivation, with the
    /// store's connection held, after the transaction that stored `key`
    /// committed.
    pub(crate) fn replace_device_key(&self, key: DeviceKey) {
        self.device_key.store(Arc::new(key));
    }

    pub(crate) fn revocation_list(&self) -> Option<Arc<RevocationList>> {
        self.revocations.load_full()
    }

    pub(crate) fn revocation_list_version(&self) -> u64 {
        self.revocations
            .load()
            .as_deref()
            .map_or(0, RevocationList::version)
    }

    /// Makes `list` the effective list. Called with the store's connection
    /// held, only with a list newer than the effective one.
    pub(crate) fn replace_revocations(&self, list: RevocationList) {
        self.revocations.store(Some(Arc::new(list)));
    }

    pub(crate) fn recorded_mark(&self) -> i64 {
        self.recorded_mark.load(Ordering::Relaxed)
    }

    /// Remembers that the store now holds `mark` (written in a transaction
    /// of a register, an import or a deactivation).
    pub(crate) fn note_recorded_mark(&self, mark: i64) {
        self.recorded_mark.fetch_max(mark, Ordering::Relaxed);
    }
}

impl fmt::Debug for Licensing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Licensing")
            .field("offline", &self.config.offline)
            .field("store", &self.store.path())
            .field("device_key", &self.mirror.device_key)
            .field("license", &self.mirror.license)
            .finish_non_exhaustive()
    }
}

impl Licensing {
    /// Assembles the service from what [`Licensing::open`] read, and starts
    /// the background task that records the clock's high-water mark.
    pub(crate) fn start(
        config: Config,
        store: Store,
        clock: Clock,
        stored_problem: Option<StoredLicenseProblem>,
        mirror: Mirror,
    ) -> Arc<Self> {
        let licensing = Arc::new(Self {
            config,
            store,
            clock,
            stored_problem,
            mirror: Arc::new(mirror),
        });
        spawn_clock_task(Arc::downgrade(&licensing));
        licensing
    }

    /// The handle the ingestor asks whether it is licensed.
    pub fn license(&self) -> LicenseHandle {
        self.mirror.license.clone()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The offline-licensing settings, or `None` when it is disabled.
    pub fn offline(&self) -> Option<&OfflineConfig> {
        self.config.offline.as_ref()
    }

    /// The build's trust root and revocation floor: read-only.
    pub fn trust(&self) -> &Trust {
        self.config.trust()
    }

    /// The SQLite store. The licensing operations keep it consistent with
    /// the published license; an ingestor has no need to write to it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What the store's closures share ([`Mirror`]).
    pub(crate) fn mirror(&self) -> &Arc<Mirror> {
        &self.mirror
    }

    /// This installation's public key, which every payload must name. It
    /// changes with every deactivation.
    pub fn device_public_key(&self) -> PublicKey {
        self.mirror.device_public_key()
    }

    /// The current time by the injected clock, in Unix seconds.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Why the license in the store was not loaded at start-up.
    pub fn stored_problem(&self) -> Option<&StoredLicenseProblem> {
        self.stored_problem.as_ref()
    }

    /// The clock's high-water mark as last recorded in the store.
    pub fn recorded_high_water_mark(&self) -> i64 {
        self.mirror.recorded_mark()
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
        let mirror = Arc::clone(&self.mirror);
        let written = self
            .store
            .call(move |conn| {
                // Decided again under the connection's lock, which an import
                // that clears a doubted mark holds.
                if mirror.license.mark_doubted() {
                    return Ok::<_, StoreError>(false);
                }
                store::raise_high_water_mark(conn, mark)?;
                Ok(true)
            })
            .await?;
        if written {
            self.mirror.note_recorded_mark(mark);
        }
        Ok(())
    }
}

/// Half the clock tolerance, between a minute and an hour.
pub(crate) fn record_step(tolerance_seconds: i64) -> i64 {
    (tolerance_seconds / 2).clamp(60, 3_600)
}

/// Reads the clock every [`CLOCK_TICK`] and records the mark when due, and
/// sets the metrics' gauges at start and at every tick
/// ([`crate::monitoring`]), until the last `Arc` of the service is dropped.
fn spawn_clock_task(licensing: std::sync::Weak<Licensing>) {
    tokio::spawn(async move {
        if let Some(licensing) = licensing.upgrade() {
            licensing.republish_metrics(true).await;
        }
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + CLOCK_TICK, CLOCK_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(licensing) = licensing.upgrade() else {
                return;
            };
            licensing.license().check();
            if let Err(e) = licensing.persist_clock_if_due().await {
                tracing::warn!("cannot record the clock's high-water mark: {e}");
            }
            // The gauges follow the clock too (days remaining, a license
            // that expired), for a recorder served elsewhere than /metrics.
            licensing.republish_metrics(true).await;
        }
    });
}
