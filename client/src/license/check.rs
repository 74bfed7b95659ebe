//! One reading of the licensing state: the snapshot judged at the clock's
//! reading and the high-water mark, and the states and suspicions it can
//! find.

use std::sync::Arc;

use ren3_shared::payload::Window;
use ren3_shared::{ClockPolicy, License};
use serde::Serialize;

use super::{CLOCK_SKEW_TOLERANCE, ClockRules, InstalledLicense, MarkProblem, Refusal};

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ren3_shared::{ClockPolicy, timestamp};

    use super::*;
    use crate::license::fixtures::{DAY, EXPIRES_AT, GRACE, NOT_BEFORE, installed, revoked, rules};

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
}
