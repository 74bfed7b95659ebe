//! The handle every check goes through: the published snapshot in an
//! `ArcSwapOption`, the high-water mark in an atomic, and the state changes
//! logged once each.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use arc_swap::ArcSwapOption;
use ren3_shared::{RevocationList, timestamp};

use super::{Clock, ClockRules, InstalledLicense, LicenseCheck};

struct Shared {
    installed: ArcSwapOption<InstalledLicense>,
    clock: Clock,
    rules: ClockRules,
    /// The latest time any check has seen.
    high_water_mark: AtomicI64,
    /// Whether the store's mark was missing or lowered at start-up and no
    /// import or deactivation has written one since: then nothing else
    /// may write it. Set even when the stored license was not loaded
    /// (offline licensing disabled, say), so that a restart in between
    /// does not re-create the mark. Changed only with the store's
    /// connection held.
    mark_doubted: AtomicBool,
    /// Whether the clock was suspect at the last check, to log changes once.
    clock_suspect: AtomicBool,
    /// Whether the expiry warning was logged since start-up.
    warning_logged: AtomicBool,
    /// Whether the end of a revoked key's grace was logged since the
    /// snapshot last changed.
    revoked_logged: AtomicBool,
}

/// A cheap, cloneable view of the licensing state, for the ingestor to ask
/// on every request. Features and limits are granted only while licensed
/// work is allowed.
#[derive(Clone)]
pub struct LicenseHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for LicenseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LicenseHandle")
            .field("installed", &self.shared.installed.load_full())
            .field("high_water_mark", &self.high_water_mark())
            .finish_non_exhaustive()
    }
}

impl LicenseHandle {
    /// A handle on `installed`, whose clock has already reached
    /// `high_water_mark` (as recorded in the store). `mark_doubted`: see
    /// [`Self::mark_doubted`].
    pub(crate) fn new(
        installed: Option<InstalledLicense>,
        clock: Clock,
        rules: ClockRules,
        high_water_mark: i64,
        mark_doubted: bool,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                installed: ArcSwapOption::from(installed.map(Arc::new)),
                clock,
                rules,
                high_water_mark: AtomicI64::new(high_water_mark),
                mark_doubted: AtomicBool::new(mark_doubted),
                clock_suspect: AtomicBool::new(false),
                warning_logged: AtomicBool::new(false),
                revoked_logged: AtomicBool::new(false),
            }),
        }
    }

    /// Publishes a newly committed license to every clone of this handle:
    /// an imported one (whose transaction wrote the mark), or the same one
    /// judged against a newer revocation list (which keeps its doubt).
    pub(crate) fn replace(&self, installed: InstalledLicense) {
        self.shared
            .mark_doubted
            .store(installed.mark_problem.is_some(), Ordering::Relaxed);
        self.shared.installed.store(Some(Arc::new(installed)));
        self.shared.revoked_logged.store(false, Ordering::Relaxed);
    }

    /// Judges the installed license against a newer effective revocation
    /// list, publishing a new snapshot only if that changes its revocation.
    /// Called with the store's connection held, like [`Self::replace`].
    pub(crate) fn apply_revocations(&self, list: &RevocationList) {
        let changed = self
            .shared
            .installed
            .load()
            .as_deref()
            .and_then(|installed| installed.with_revocations_of(list));
        if let Some(changed) = changed {
            if let Some(revocation) = &changed.revocation {
                tracing::warn!(
                    key_id = %changed.key_id,
                    grace_until = %timestamp::format(revocation.grace_until),
                    "the ReN3 team revoked the key that signed the installed license; it \
                     works until the grace period ends; GET /license says what to do"
                );
            }
            self.replace(changed);
        }
    }

    /// Raises the high-water mark to `at`: an imported payload's
    /// vendor-signed times are times this installation can vouch for.
    pub(crate) fn raise_mark(&self, at: i64) {
        self.observe(at);
    }

    /// Whether the store's mark was found missing or lowered at start-up,
    /// and no import or deactivation has written one since: nothing else
    /// may write a mark then ([`crate::store::high_water_mark`]). Read with
    /// the store's connection held to decide a write.
    pub(crate) fn mark_doubted(&self) -> bool {
        self.shared.mark_doubted.load(Ordering::Relaxed)
    }

    /// Stops using the license, after a deactivation (which wrote the
    /// mark) committed.
    pub(crate) fn clear(&self) {
        self.shared.mark_doubted.store(false, Ordering::Relaxed);
        self.shared.installed.store(None);
    }

    /// The state now, by the handle's clock.
    pub fn check(&self) -> LicenseCheck {
        self.check_at((self.shared.clock)())
    }

    /// The state at `now` (Unix seconds), which counts as a time seen.
    pub fn check_at(&self, now: i64) -> LicenseCheck {
        let seen = self.observe(now);
        let check = LicenseCheck::evaluate(
            self.shared.installed.load_full(),
            now,
            seen,
            self.shared.rules,
        );
        self.log_transitions(&check);
        check
    }

    /// Raises the high-water mark to `now`; returns the mark. A plain load
    /// first, so that most checks do not write the shared cache line.
    fn observe(&self, now: i64) -> i64 {
        let mark = &self.shared.high_water_mark;
        let seen = mark.load(Ordering::Relaxed);
        if now > seen {
            mark.fetch_max(now, Ordering::Relaxed).max(now)
        } else {
            seen
        }
    }

    fn log_transitions(&self, check: &LicenseCheck) {
        let suspect = check.clock_suspicion.is_some();
        // Load before swapping: the steady state writes nothing, so checks
        // on many cores do not fight over this cache line.
        if self.shared.clock_suspect.load(Ordering::Relaxed) != suspect
            && self.shared.clock_suspect.swap(suspect, Ordering::Relaxed) != suspect
        {
            if let Some(suspicion) = check.clock_suspicion {
                tracing::warn!(
                    code = suspicion.code(),
                    now = %timestamp::format(check.now),
                    high_water_mark = %timestamp::format(check.high_water_mark),
                    "the clock looks wound back; GET /license says what to do"
                );
            } else {
                tracing::info!(
                    now = %timestamp::format(check.now),
                    "the clock is plausible again"
                );
            }
        }
        if check.key_revoked
            && !self.shared.revoked_logged.load(Ordering::Relaxed)
            && !self.shared.revoked_logged.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "the key that signed the license is revoked and its grace period is over; \
                 GET /license says what to do"
            );
        }
        if check.warning
            && !self.shared.warning_logged.load(Ordering::Relaxed)
            && !self.shared.warning_logged.swap(true, Ordering::Relaxed)
        {
            let expires_at = check
                .installed
                .as_ref()
                .and_then(|i| i.license.expires_at)
                .map(timestamp::format);
            tracing::warn!(
                expires_at = expires_at.as_deref().unwrap_or_default(),
                "the license expires soon; GET /license says what to do"
            );
        }
    }

    /// Whether licensed work is allowed now.
    pub fn is_licensed(&self) -> bool {
        self.check().is_licensed()
    }

    /// Whether the license in effect now grants `feature`.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.check()
            .active()
            .is_some_and(|l| l.has_feature(feature))
    }

    /// The limit `name` of the license in effect now; `None` when no license
    /// is in effect or it sets no such limit.
    pub fn limit(&self, name: &str) -> Option<u64> {
        self.check()
            .active()
            .and_then(|l| l.limits.get(name).copied())
    }

    /// When the installed license expires (Unix seconds), in effect or not;
    /// `None` when none is installed or it never expires.
    pub fn expires_at(&self) -> Option<i64> {
        self.shared
            .installed
            .load()
            .as_ref()
            .and_then(|i| i.license.expires_at)
    }

    /// The installed license, in effect or not.
    pub fn installed(&self) -> Option<Arc<InstalledLicense>> {
        self.shared.installed.load_full()
    }

    /// The latest time the handle has seen.
    pub fn high_water_mark(&self) -> i64 {
        self.shared.high_water_mark.load(Ordering::Relaxed)
    }

    /// How this handle judges time, as configured at start-up.
    pub fn clock_rules(&self) -> ClockRules {
        self.shared.rules
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use ren3_shared::binary::Bytes;
    use ren3_shared::{ClockPolicy, KeyId, Revocation};

    use super::*;
    use crate::license::LicenseState;
    use crate::license::fixtures::{
        DAY, EXPIRES_AT, GRACE, NOT_BEFORE, installed, rules, stepped_clock,
    };

    #[test]
    fn a_newer_list_reaches_the_installed_license_only_when_it_changes_it() {
        let root = ren3_shared::RootKey::from_seed(&[9; 32]);
        let list = |version, revoked: &[KeyId]| {
            root.sign_revocations(ren3_shared::RevocationListBody {
                version,
                issued_at: NOT_BEFORE,
                revoked: revoked
                    .iter()
                    .map(|&key_id| Revocation {
                        key_id,
                        revoked_at: NOT_BEFORE,
                        grace_until: NOT_BEFORE + DAY,
                    })
                    .collect(),
            })
            .unwrap()
        };
        let (now, clock) = stepped_clock(NOT_BEFORE);
        let handle = LicenseHandle::new(
            Some(installed(ClockPolicy::Advisory)),
            clock,
            rules(),
            0,
            false,
        );
        let key_id = handle.installed().unwrap().key_id;

        let before = handle.installed().unwrap();
        handle.apply_revocations(&list(2, &[Bytes([7; 8])]));
        assert!(
            Arc::ptr_eq(&before, &handle.installed().unwrap()),
            "another key's revocation leaves the snapshot alone"
        );
        handle.apply_revocations(&list(3, &[key_id]));
        assert_eq!(
            handle
                .installed()
                .unwrap()
                .revocation
                .as_ref()
                .map(|r| r.grace_until),
            Some(NOT_BEFORE + DAY)
        );
        assert!(handle.is_licensed(), "in grace");
        now.store(NOT_BEFORE + DAY, Ordering::SeqCst);
        assert_eq!(handle.check().state(), LicenseState::KeyRevoked);
        assert!(!handle.has_feature("ingest"));
        assert_eq!(handle.limit("max-sources"), None);
    }

    #[test]
    fn handle_grants_features_and_limits_only_while_licensed() {
        let (now, clock) = stepped_clock(NOT_BEFORE);
        let handle = LicenseHandle::new(
            Some(installed(ClockPolicy::Advisory)),
            clock,
            rules(),
            0,
            false,
        );
        assert!(handle.is_licensed());
        assert!(handle.has_feature("ingest"));
        assert!(!handle.has_feature("export"));
        assert_eq!(handle.limit("max-sources"), Some(12));
        assert_eq!(handle.limit("max-users"), None);
        assert_eq!(handle.expires_at(), Some(EXPIRES_AT));

        now.store(EXPIRES_AT + GRACE, Ordering::SeqCst);
        assert_eq!(handle.check().state(), LicenseState::Expired);
        assert!(!handle.is_licensed());
        assert!(!handle.has_feature("ingest"));
        assert_eq!(handle.limit("max-sources"), None);
        assert_eq!(handle.expires_at(), Some(EXPIRES_AT));
    }

    #[test]
    fn high_water_mark_only_rises_and_a_suspect_clock_recovers() {
        let (now, clock) = stepped_clock(NOT_BEFORE + 10 * DAY);
        let handle = LicenseHandle::new(
            Some(installed(ClockPolicy::Enforcing)),
            clock,
            rules(),
            0,
            false,
        );
        assert!(handle.is_licensed());
        assert_eq!(handle.high_water_mark(), NOT_BEFORE + 10 * DAY);

        now.store(NOT_BEFORE + 5 * DAY, Ordering::SeqCst);
        assert_eq!(handle.check().state(), LicenseState::ClockSuspect);
        assert!(!handle.is_licensed());
        assert_eq!(handle.high_water_mark(), NOT_BEFORE + 10 * DAY);

        now.store(NOT_BEFORE + 10 * DAY - 60, Ordering::SeqCst);
        assert_eq!(handle.check().state(), LicenseState::Active);
        assert!(handle.is_licensed());
    }

    #[test]
    fn replacing_and_clearing_the_license_reaches_every_clone() {
        let (_, clock) = stepped_clock(NOT_BEFORE);
        let handle = LicenseHandle::new(None, clock, rules(), 0, false);
        let clone = handle.clone();
        assert!(!clone.is_licensed());
        assert_eq!(clone.expires_at(), None);
        handle.replace(installed(ClockPolicy::Advisory));
        assert!(clone.is_licensed());
        assert!(clone.has_feature("reports"));
        handle.clear();
        assert_eq!(clone.check().state(), LicenseState::Unlicensed);
    }

    /// A log sink for one thread's subscriber.
    #[derive(Clone, Default)]
    struct Log(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        fn count(&self, needle: &str) -> usize {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .matches(needle)
                .count()
        }
    }

    #[test]
    fn warning_window_and_clock_changes_reach_the_log_once_each() {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let (now, clock) = stepped_clock(NOT_BEFORE);
        let handle = LicenseHandle::new(
            Some(installed(ClockPolicy::Advisory)),
            clock,
            rules(),
            0,
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            for at in [
                NOT_BEFORE,
                EXPIRES_AT - 30 * DAY,
                EXPIRES_AT - 29 * DAY,
                EXPIRES_AT - 40 * DAY,
                EXPIRES_AT - 41 * DAY,
                EXPIRES_AT - 28 * DAY,
            ] {
                now.store(at, Ordering::SeqCst);
                handle.check();
                handle.check();
            }
        });
        assert_eq!(log.count("the license expires soon"), 1);
        assert_eq!(log.count("the clock looks wound back"), 1);
        assert_eq!(log.count("the clock is plausible again"), 1);
    }
}
