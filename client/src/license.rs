//! The licensing state the ingestor consults on every request.
//!
//! A [`LicenseHandle`] reads an immutable snapshot through `ArcSwap` and
//! keeps the clock's high-water mark in an atomic: no database access and
//! no lock, so a check costs a few atomic operations and an import never
//! makes a check wait. The store keeps a copy of the high-water mark
//! ([`crate::AppState::persist_clock`]) so that a restart does not forget it.
//!
//! One piece, a little over the usual size: the snapshot, the check and
//! its refusals are the hot path, and splitting them would hide what a
//! check costs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use arc_swap::ArcSwapOption;
use ren3_shared::payload::Window;
use ren3_shared::{ClockPolicy, KeyId, License, Revocation, RevocationList, timestamp};
use serde::Serialize;

/// Where the current time comes from, in Unix seconds. Tests inject a
/// fixed or stepped clock instead of sleeping.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(ren3_shared::timestamp::now)
}

/// Seconds a license may be used before its `notBefore`, and the clock may
/// read before its `issuedAt`: the vendor's and the customer's clocks never
/// agree exactly, and a license imported right after it was issued must
/// work at once.
pub const CLOCK_SKEW_TOLERANCE: i64 = 300;

/// Seconds in a day, for the day counts of the configuration and status.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// The next action for a license signed by a revoked key.
pub(crate) const REGISTER_AGAIN: &str = "export a new request with POST /license/register, \
     send it to the ReN3 team and import the payload they answer with, which is signed \
     with a current key";

/// A license whose chain verified up to the build's root and that is bound
/// to this installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledLicense {
    /// The issuer key that signed it.
    pub key_id: KeyId,
    /// The signed license: customer, features, limits and times.
    pub license: License,
    /// The revocation of that key in the effective revocation list, if it
    /// is revoked: the license keeps working until `grace_until`, judged at
    /// the clock's high-water mark. Looked up when the snapshot is made, so
    /// a check compares two integers.
    pub revocation: Option<Revocation>,
    /// Whether the store's clock mark was missing or lowered when this
    /// license was loaded at start-up: the clock is then suspect, and
    /// licensed work refused, until another license is imported or this
    /// one deactivated. Always `None` for a license imported since.
    pub mark_problem: Option<MarkProblem>,
}

/// What start-up found wrong with the store's clock mark while a license
/// was installed. Every change that writes a time to the store writes a
/// mark at least as late in the same transaction, so either means the
/// store was edited: this installation no longer knows the latest time it
/// has seen, and so cannot tell a wound-back clock from a right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkProblem {
    /// The store holds no mark.
    Missing,
    /// The mark is below another time the store records.
    Lowered {
        /// The mark the store holds (Unix seconds).
        recorded: i64,
        /// The newest other time the store records, which the mark should
        /// be no lower than (Unix seconds).
        newest_recorded: i64,
    },
}

impl InstalledLicense {
    /// The same license judged against `list`: `None` when that changes
    /// nothing.
    fn with_revocations_of(&self, list: &RevocationList) -> Option<Self> {
        let revocation = list.find(&self.key_id);
        (revocation != self.revocation.as_ref()).then(|| Self {
            revocation: revocation.cloned(),
            ..self.clone()
        })
    }
}

/// How the handle judges time: set at start-up from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockRules {
    /// How far the clock may go back behind the high-water mark before it
    /// is suspect (`license_clock_tolerance`).
    pub tolerance_seconds: i64,
    /// How long before `expiresAt` status and the log start warning
    /// (`license_warning_days`, in seconds).
    pub warning_seconds: i64,
}

impl Default for ClockRules {
    fn default() -> Self {
        Self {
            tolerance_seconds: crate::config::DEFAULT_CLOCK_TOLERANCE_SECONDS,
            warning_seconds: crate::config::DEFAULT_WARNING_DAYS * SECONDS_PER_DAY,
        }
    }
}

/// What the installed license allows at one moment, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseState {
    /// No license is installed, or offline licensing is disabled.
    Unlicensed,
    /// Within the license's window (`notBefore` to `expiresAt`), with a
    /// plausible clock.
    Active,
    /// Past `expiresAt` but within the payload's grace period: still works.
    Grace,
    /// Past `expiresAt` and its grace period, judged at the high-water
    /// mark: winding the clock back does not revive it.
    Expired,
    /// More than [`CLOCK_SKEW_TOLERANCE`] before the license's `notBefore`.
    NotYetValid,
    /// The clock went back behind what this installation has seen, or lies
    /// before the license's `issuedAt`. Whether licensed work goes on
    /// depends on the license's [`ClockPolicy`].
    ClockSuspect,
    /// The key that signed the license is revoked and the revocation's
    /// grace period is over.
    KeyRevoked,
}

impl LicenseState {
    /// The stable snake_case code, as serialized: `unlicensed`, `active`,
    /// `grace`, `expired`, `not_yet_valid`, `clock_suspect` or
    /// `key_revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseState::Unlicensed => "unlicensed",
            LicenseState::Active => "active",
            LicenseState::Grace => "grace",
            LicenseState::Expired => "expired",
            LicenseState::NotYetValid => "not_yet_valid",
            LicenseState::ClockSuspect => "clock_suspect",
            LicenseState::KeyRevoked => "key_revoked",
        }
    }
}

/// Why the clock is suspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSuspicion {
    /// The clock reads more than the tolerance before the latest time this
    /// installation has seen.
    BehindHighWaterMark {
        /// The latest time seen (Unix seconds).
        high_water_mark: i64,
    },
    /// The clock reads before the license was issued (less the skew
    /// tolerance).
    BeforeIssuedAt {
        /// The license's `issuedAt` (Unix seconds).
        issued_at: i64,
    },
    /// The store's mark was missing or lowered at start-up
    /// ([`MarkProblem`]). Unlike the others, it refuses licensed work under
    /// either clock policy: it is not a clock that may be a little wrong,
    /// but a record that was removed, and an advisory license would
    /// otherwise outlive its expiry for anyone who deletes one row.
    MarkMissing,
    /// The store's mark was lowered ([`MarkProblem::Lowered`]); refuses
    /// like [`Self::MarkMissing`].
    MarkLowered {
        /// The mark the store held at start-up (Unix seconds).
        recorded: i64,
        /// The newest other time the store records (Unix seconds).
        newest_recorded: i64,
    },
}

impl ClockSuspicion {
    /// A stable reason code.
    pub fn code(self) -> &'static str {
        match self {
            ClockSuspicion::BehindHighWaterMark { .. } => "clock_behind_high_water_mark",
            ClockSuspicion::BeforeIssuedAt { .. } => "clock_before_issued_at",
            ClockSuspicion::MarkMissing => "clock_mark_missing",
            ClockSuspicion::MarkLowered { .. } => "clock_mark_lowered",
        }
    }

    /// Whether licensed work is refused whatever the license's clock
    /// policy says.
    pub fn refuses_under_any_policy(self) -> bool {
        matches!(
            self,
            ClockSuspicion::MarkMissing | ClockSuspicion::MarkLowered { .. }
        )
    }
}

/// What the operator is told to do when the store's mark is missing or
/// lowered.
pub(crate) const MARK_NEXT_ACTION: &str = "check this machine's clock (date, time and time \
     zone); the license stays refused until the ReN3 team's next payload is imported, \
     because their signed time re-establishes the record: export a new request with \
     POST /license/register, send it to the ReN3 team and import their payload (or \
     deactivate the license with POST /license/deactivate); restoring license.db from a \
     backup also brings the record back";

/// Why licensed work is refused, with a stable code: the guard's 403.
/// Its `Display` is a sentence for the operator that says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No license is installed, or offline licensing is disabled.
    Unlicensed,
    /// The license expired and its grace period is over.
    Expired {
        /// The license's `expiresAt` (Unix seconds).
        expired_at: i64,
    },
    /// The license does not take effect yet.
    NotYetValid {
        /// The license's `notBefore` (Unix seconds).
        not_before: i64,
    },
    /// The clock looks wound back, and the license's clock policy is
    /// enforcing or the suspicion refuses under any policy.
    ClockSuspect {
        /// The clock's reading (Unix seconds).
        now: i64,
        /// Why the clock is suspect.
        suspicion: ClockSuspicion,
    },
    /// The license is in effect but does not grant the feature the route
    /// requires.
    FeatureMissing {
        /// The feature required.
        feature: &'static str,
    },
    /// The key that signed the license is revoked and its grace period is
    /// over.
    KeyRevoked {
        /// The revoked issuer key.
        key_id: KeyId,
        /// When the ReN3 team revoked it (Unix seconds).
        revoked_at: i64,
        /// When the license stopped working (Unix seconds).
        grace_until: i64,
    },
}

impl Refusal {
    /// The stable code, the problem+json `code` of the guard's 403:
    /// `unlicensed`, `expired`, `not_yet_valid`, `clock_suspect`,
    /// `feature_missing` or `key_revoked`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unlicensed => "unlicensed",
            Refusal::Expired { .. } => "expired",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::ClockSuspect { .. } => "clock_suspect",
            Refusal::FeatureMissing { .. } => "feature_missing",
            Refusal::KeyRevoked { .. } => "key_revoked",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unlicensed => f.write_str(
                "this ingestor has no license in effect; GET /license says why and what to do",
            ),
            Refusal::Expired { expired_at } => write!(
                f,
                "the license expired at {} and its grace period is over; ask the ReN3 team \
                 for a renewed license (GET /license says how)",
                timestamp::format(*expired_at)
            ),
            Refusal::NotYetValid { not_before } => write!(
                f,
                "the license takes effect at {}; until then licensed work is refused",
                timestamp::format(*not_before)
            ),
            Refusal::ClockSuspect { now, suspicion } => {
                write!(
                    f,
                    "this machine's clock reads {}, ",
                    timestamp::format(*now)
                )?;
                match suspicion {
                    ClockSuspicion::BehindHighWaterMark { high_water_mark } => write!(
                        f,
                        "but this installation has already seen {}",
                        timestamp::format(*high_water_mark)
                    )?,
                    ClockSuspicion::BeforeIssuedAt { issued_at } => write!(
                        f,
                        "before the license was issued ({})",
                        timestamp::format(*issued_at)
                    )?,
                    ClockSuspicion::MarkMissing => f.write_str(
                        "and the record of the latest time this installation has seen is \
                         missing from its store, so a wound-back clock cannot be told apart; \
                         licensed work is refused; ",
                    )?,
                    ClockSuspicion::MarkLowered {
                        recorded,
                        newest_recorded,
                    } => write!(
                        f,
                        "and the record of the latest time this installation has seen was \
                         lowered in its store ({}, though the store records {}), so a \
                         wound-back clock cannot be told apart; licensed work is refused; ",
                        timestamp::format(*recorded),
                        timestamp::format(*newest_recorded)
                    )?,
                }
                if suspicion.refuses_under_any_policy() {
                    return f.write_str(MARK_NEXT_ACTION);
                }
                f.write_str(
                    "; the license refuses licensed work while the clock looks wound back, \
                     so correct the clock",
                )
            }
            Refusal::FeatureMissing { feature } => write!(
                f,
                "the license does not include the feature `{feature}`; ask the ReN3 team \
                 for a license that does"
            ),
            Refusal::KeyRevoked {
                key_id,
                revoked_at,
                grace_until,
            } => write!(
                f,
                "the license is signed by key `{key_id}`, which the ReN3 team revoked at {}; \
                 its grace period ended at {}; {REGISTER_AGAIN}",
                timestamp::format(*revoked_at),
                timestamp::format(*grace_until)
            ),
        }
    }
}

/// One reading of the licensing state: the snapshot, the clock and what
/// follows from them. Cheap to make; it owns an `Arc` of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseCheck {
    /// The clock's reading.
    pub now: i64,
    /// The latest time this installation has seen, `now` included.
    pub high_water_mark: i64,
    /// The installed license, in effect or not; `None` when none is.
    pub installed: Option<Arc<InstalledLicense>>,
    /// Where the license's window is, judged at the high-water mark, so
    /// that winding the clock back never revives an expired license.
    pub window: Option<Window>,
    /// Why the clock looks wound back, if it does. Whether that refuses
    /// licensed work depends on the license's clock policy
    /// ([`ClockSuspicion::refuses_under_any_policy`]).
    pub clock_suspicion: Option<ClockSuspicion>,
    /// Whether the expiry-warning window is open: from
    /// `license_warning_days` before `expiresAt` until the grace ends.
    pub warning: bool,
    /// Whether the license's key is revoked and the revocation's grace is
    /// over at the high-water mark (winding the clock back does not
    /// reopen it). A revoked key still in grace is only reported.
    pub key_revoked: bool,
}

impl LicenseCheck {
    /// Judges `installed` at `now`, given the high-water mark `seen`
    /// (which already includes `now`).
    pub fn evaluate(
        installed: Option<Arc<InstalledLicense>>,
        now: i64,
        seen: i64,
        rules: ClockRules,
    ) -> Self {
        let high_water_mark = seen.max(now);
        let Some(l) = installed.as_ref().map(|i| &i.license) else {
            return Self {
                now,
                high_water_mark,
                installed,
                window: None,
                clock_suspicion: None,
                warning: false,
                key_revoked: false,
            };
        };
        let key_revoked = installed
            .as_ref()
            .and_then(|i| i.revocation.as_ref())
            .is_some_and(|r| high_water_mark >= r.grace_until);
        let mark_problem = installed.as_ref().and_then(|i| i.mark_problem);
        let clock_suspicion = if let Some(problem) = mark_problem {
            Some(match problem {
                MarkProblem::Missing => ClockSuspicion::MarkMissing,
                MarkProblem::Lowered {
                    recorded,
                    newest_recorded,
                } => ClockSuspicion::MarkLowered {
                    recorded,
                    newest_recorded,
                },
            })
        } else if now < high_water_mark.saturating_sub(rules.tolerance_seconds) {
            Some(ClockSuspicion::BehindHighWaterMark { high_water_mark })
        } else if now < l.issued_at.saturating_sub(CLOCK_SKEW_TOLERANCE) {
            Some(ClockSuspicion::BeforeIssuedAt {
                issued_at: l.issued_at,
            })
        } else {
            None
        };
        let window = window_with_skew(l, high_water_mark);
        let warning = matches!(window, Window::Valid | Window::Grace)
            && l.expires_at.is_some_and(|expires| {
                high_water_mark >= expires.saturating_sub(rules.warning_seconds)
            });
        Self {
            now,
            high_water_mark,
            installed,
            window: Some(window),
            clock_suspicion,
            warning,
            key_revoked,
        }
    }

    /// The state: `key_revoked` once a revoked key's grace is over;
    /// otherwise `clock_suspect` whenever the clock is, whatever the
    /// policy; otherwise where the license's window is.
    pub fn state(&self) -> LicenseState {
        match (self.window, self.clock_suspicion) {
            (None, _) => LicenseState::Unlicensed,
            (Some(_), _) if self.key_revoked => LicenseState::KeyRevoked,
            (Some(_), Some(_)) => LicenseState::ClockSuspect,
            (Some(Window::Valid), None) => LicenseState::Active,
            (Some(Window::Grace), None) => LicenseState::Grace,
            (Some(Window::Expired), None) => LicenseState::Expired,
            (Some(Window::NotYetValid), None) => LicenseState::NotYetValid,
        }
    }

    /// Why licensed work is refused now, or `None` when it is allowed.
    pub fn refusal(&self) -> Option<Refusal> {
        let Some(installed) = self.installed.as_ref() else {
            return Some(Refusal::Unlicensed);
        };
        let license = &installed.license;
        if self.key_revoked
            && let Some(revocation) = &installed.revocation
        {
            return Some(Refusal::KeyRevoked {
                key_id: installed.key_id,
                revoked_at: revocation.revoked_at,
                grace_until: revocation.grace_until,
            });
        }
        match self.window? {
            Window::Valid | Window::Grace => match self.clock_suspicion {
                Some(suspicion)
                    if license.clock_policy == ClockPolicy::Enforcing
                        || suspicion.refuses_under_any_policy() =>
                {
                    Some(Refusal::ClockSuspect {
                        now: self.now,
                        suspicion,
                    })
                }
                _ => None,
            },
            Window::Expired => Some(Refusal::Expired {
                expired_at: license.expires_at.unwrap_or(self.high_water_mark),
            }),
            Window::NotYetValid => Some(Refusal::NotYetValid {
                not_before: license.not_before,
            }),
        }
    }

    /// Whether licensed work is allowed now.
    pub fn is_licensed(&self) -> bool {
        self.refusal().is_none()
    }

    /// The license in effect: `Some` only while licensed work is allowed.
    pub fn active(&self) -> Option<&License> {
        if self.is_licensed() {
            self.installed.as_ref().map(|i| &i.license)
        } else {
            None
        }
    }

    /// Why licensed work that needs `feature` (if any) is refused, if it is.
    pub fn refusal_for(&self, feature: Option<&'static str>) -> Option<Refusal> {
        if let Some(refusal) = self.refusal() {
            return Some(refusal);
        }
        match (feature, self.active()) {
            (Some(feature), Some(license)) if !license.has_feature(feature) => {
                Some(Refusal::FeatureMissing { feature })
            }
            _ => None,
        }
    }
}

/// The window at `at`, allowing [`CLOCK_SKEW_TOLERANCE`] before `notBefore`.
pub(crate) fn window_with_skew(license: &License, at: i64) -> Window {
    if at.saturating_add(CLOCK_SKEW_TOLERANCE) < license.not_before {
        Window::NotYetValid
    } else {
        license.window_at(at.max(license.not_before))
    }
}

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
    use std::collections::BTreeMap;

    use ren3_shared::binary::Bytes;
    use ren3_shared::{DeviceId, DeviceKey};

    use super::*;

    const NOT_BEFORE: i64 = 1_800_000_000;
    const EXPIRES_AT: i64 = 1_900_000_000;
    const GRACE: i64 = 7 * SECONDS_PER_DAY;
    const DAY: i64 = SECONDS_PER_DAY;

    fn installed(policy: ClockPolicy) -> InstalledLicense {
        InstalledLicense {
            key_id: Bytes([1u8; 8]),
            license: License {
                customer: "ACME".into(),
                features: vec!["ingest".into(), "reports".into()],
                limits: BTreeMap::from([("max-sources".into(), 12)]),
                issued_at: NOT_BEFORE,
                not_before: NOT_BEFORE,
                expires_at: Some(EXPIRES_AT),
                grace_seconds: GRACE.cast_unsigned(),
                clock_policy: policy,
                serial: 1,
                license_key_fingerprint: Bytes([2u8; 32]),
                client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
                device_public_key: DeviceKey::from_seed(&[3u8; 32]).public_key().into(),
                request_hash: Bytes([4u8; 32]),
            },
            revocation: None,
            mark_problem: None,
        }
    }

    /// [`installed`], its key revoked at `revoked_at` with grace until
    /// `grace_until`.
    fn revoked(policy: ClockPolicy, revoked_at: i64, grace_until: i64) -> InstalledLicense {
        let mut installed = installed(policy);
        installed.revocation = Some(Revocation {
            key_id: installed.key_id,
            revoked_at,
            grace_until,
        });
        installed
    }

    fn stepped_clock(start: i64) -> (Arc<AtomicI64>, Clock) {
        let now = Arc::new(AtomicI64::new(start));
        let read = Arc::clone(&now);
        (now, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    fn rules() -> ClockRules {
        ClockRules {
            tolerance_seconds: DAY,
            warning_seconds: 30 * DAY,
        }
    }

    #[test]
    fn state_follows_the_window_the_clock_and_the_policy() {
        use ClockPolicy::{Advisory, Enforcing};
        use LicenseState as S;
        // (policy, high-water mark before the check, now, state, refusal code)
        let cases = [
            (
                Advisory,
                0,
                NOT_BEFORE - CLOCK_SKEW_TOLERANCE - 1,
                S::ClockSuspect,
                Some("not_yet_valid"),
            ),
            (
                Advisory,
                0,
                NOT_BEFORE - CLOCK_SKEW_TOLERANCE,
                S::Active,
                None,
            ),
            (Advisory, 0, NOT_BEFORE, S::Active, None),
            (Advisory, 0, EXPIRES_AT - 1, S::Active, None),
            (Advisory, 0, EXPIRES_AT, S::Grace, None),
            (Advisory, 0, EXPIRES_AT + GRACE - 1, S::Grace, None),
            (Advisory, 0, EXPIRES_AT + GRACE, S::Expired, Some("expired")),
            (Advisory, 0, i64::MAX, S::Expired, Some("expired")),
            // Back by exactly the tolerance: forgiven.
            (
                Enforcing,
                NOT_BEFORE + 2 * DAY,
                NOT_BEFORE + DAY,
                S::Active,
                None,
            ),
            // Back by more: suspect; the policy decides.
            (
                Advisory,
                NOT_BEFORE + 2 * DAY,
                NOT_BEFORE + DAY - 1,
                S::ClockSuspect,
                None,
            ),
            (
                Enforcing,
                NOT_BEFORE + 2 * DAY,
                NOT_BEFORE + DAY - 1,
                S::ClockSuspect,
                Some("clock_suspect"),
            ),
            // Before issuedAt: suspect even without a mark.
            (
                Enforcing,
                0,
                NOT_BEFORE - CLOCK_SKEW_TOLERANCE - 1,
                S::ClockSuspect,
                Some("not_yet_valid"),
            ),
            // Winding back never revives an expired license.
            (
                Advisory,
                EXPIRES_AT + GRACE,
                EXPIRES_AT + GRACE - DAY / 2,
                S::Expired,
                Some("expired"),
            ),
            (
                Advisory,
                EXPIRES_AT + GRACE + DAY,
                EXPIRES_AT - DAY,
                S::ClockSuspect,
                Some("expired"),
            ),
        ];
        for (n, (policy, mark, now, state, refusal)) in cases.into_iter().enumerate() {
            let check =
                LicenseCheck::evaluate(Some(Arc::new(installed(policy))), now, mark, rules());
            assert_eq!(check.state(), state, "{n}. at {now}");
            assert_eq!(check.refusal().map(|r| r.code()), refusal, "{n}. at {now}");
            assert_eq!(check.is_licensed(), refusal.is_none(), "{n}.");
        }
        let none = LicenseCheck::evaluate(None, NOT_BEFORE, 0, rules());
        assert_eq!(none.state(), S::Unlicensed);
        assert_eq!(none.refusal_for(None), Some(Refusal::Unlicensed));
    }

    #[test]
    fn a_revoked_key_works_until_its_grace_ends_judged_at_the_high_water_mark() {
        use ClockPolicy::{Advisory, Enforcing};
        use LicenseState as S;
        let grace_until = NOT_BEFORE + 10 * DAY;
        // (policy, high-water mark before the check, now, state, refusal code)
        let cases = [
            (Advisory, 0, NOT_BEFORE + DAY, S::Active, None),
            (Advisory, 0, grace_until - 1, S::Active, None),
            (Advisory, 0, grace_until, S::KeyRevoked, Some("key_revoked")),
            (
                Advisory,
                0,
                EXPIRES_AT + GRACE,
                S::KeyRevoked,
                Some("key_revoked"),
            ),
            // Winding the clock back does not reopen the grace period.
            (
                Advisory,
                grace_until + DAY,
                grace_until - DAY,
                S::KeyRevoked,
                Some("key_revoked"),
            ),
            (
                Enforcing,
                grace_until + 3 * DAY,
                NOT_BEFORE,
                S::KeyRevoked,
                Some("key_revoked"),
            ),
        ];
        for (n, (policy, mark, now, state, refusal)) in cases.into_iter().enumerate() {
            let installed = revoked(policy, NOT_BEFORE, grace_until);
            let check = LicenseCheck::evaluate(Some(Arc::new(installed)), now, mark, rules());
            assert_eq!(check.state(), state, "{n}. at {now}");
            assert_eq!(check.refusal().map(|r| r.code()), refusal, "{n}. at {now}");
            assert_eq!(check.key_revoked, refusal.is_some(), "{n}.");
        }
        let check = LicenseCheck::evaluate(
            Some(Arc::new(revoked(Advisory, NOT_BEFORE, grace_until))),
            grace_until,
            0,
            rules(),
        );
        let refusal = check.refusal().unwrap();
        assert_eq!(check.refusal_for(Some("ingest")), Some(refusal));
        let message = refusal.to_string();
        assert!(message.contains("POST /license/register"), "{message}");
        assert!(
            message.contains(&timestamp::format(grace_until)),
            "{message}"
        );
    }

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
    fn warning_opens_before_expiry_and_stays_through_grace() {
        let l = Some(Arc::new(installed(ClockPolicy::Advisory)));
        let cases = [
            (EXPIRES_AT - 30 * DAY - 1, false),
            (EXPIRES_AT - 30 * DAY, true),
            (EXPIRES_AT + GRACE - 1, true),
            (EXPIRES_AT + GRACE, false),
        ];
        for (n, (now, warning)) in cases.into_iter().enumerate() {
            let check = LicenseCheck::evaluate(l.clone(), now, 0, rules());
            assert_eq!(check.warning, warning, "{n}. at {now}");
        }
    }

    #[test]
    fn feature_refusal_comes_after_the_license_refusal() {
        let l = Some(Arc::new(installed(ClockPolicy::Advisory)));
        let active = LicenseCheck::evaluate(l.clone(), NOT_BEFORE, 0, rules());
        assert_eq!(active.refusal_for(Some("ingest")), None);
        assert_eq!(
            active.refusal_for(Some("export")),
            Some(Refusal::FeatureMissing { feature: "export" })
        );
        let expired = LicenseCheck::evaluate(l, i64::MAX, 0, rules());
        assert_eq!(
            expired.refusal_for(Some("export")).map(|r| r.code()),
            Some("expired")
        );
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
