//! Why licensed work is refused: the guard's 403, with a stable code and a
//! sentence for the operator that says what to do.

use std::fmt;

use ren3_shared::{KeyId, timestamp};

use super::ClockSuspicion;

/// The next action for a license signed by a revoked key.
pub(crate) const REGISTER_AGAIN: &str = "export a new request with POST /license/register \
     (or `ren3-client request`, or the license page at /license/page), send it to the ReN3 team and import the payload they answer with, which is signed \
     with a current key";

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
