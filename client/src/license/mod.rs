//! The licensing state the ingestor consults on every request.
//!
//! A [`LicenseHandle`] reads an immutable snapshot through `ArcSwap` and
//! keeps the clock's high-water mark in an atomic: no database access and
//! no lock, so a check costs a few atomic operations and an import never
//! makes a check wait. The store keeps a copy of the high-water mark
//! ([`crate::Licensing::persist_clock`]) so that a restart does not forget it.
//!
//! This file holds the snapshot ([`InstalledLicense`]) and the clock's
//! rules; `check` judges a snapshot at one moment ([`LicenseCheck`]),
//! `refusal` says why licensed work is refused ([`Refusal`]), and `handle`
//! is the shared, lock-free [`LicenseHandle`]. A check is
//! [`LicenseHandle::check_at`] then [`LicenseCheck::evaluate`]: nothing
//! else runs on the hot path.

use std::sync::Arc;

use ren3_shared::{KeyId, License, Revocation, RevocationList};

mod check;
mod handle;
mod refusal;

pub(crate) use check::window_with_skew;
pub use check::{ClockSuspicion, LicenseCheck, LicenseState};
pub use handle::LicenseHandle;
pub use refusal::Refusal;
pub(crate) use refusal::{MARK_NEXT_ACTION, REGISTER_AGAIN};

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

/// Licenses, clocks and rules for the tests of the check and the handle.
#[cfg(test)]
mod fixtures {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use ren3_shared::binary::Bytes;
    use ren3_shared::{ClockPolicy, DeviceId, DeviceKey, License, Revocation};

    use super::{Clock, ClockRules, InstalledLicense, SECONDS_PER_DAY};

    pub(super) const NOT_BEFORE: i64 = 1_800_000_000;
    pub(super) const EXPIRES_AT: i64 = 1_900_000_000;
    pub(super) const GRACE: i64 = 7 * SECONDS_PER_DAY;
    pub(super) const DAY: i64 = SECONDS_PER_DAY;

    pub(super) fn installed(policy: ClockPolicy) -> InstalledLicense {
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
    pub(super) fn revoked(
        policy: ClockPolicy,
        revoked_at: i64,
        grace_until: i64,
    ) -> InstalledLicense {
        let mut installed = installed(policy);
        installed.revocation = Some(Revocation {
            key_id: installed.key_id,
            revoked_at,
            grace_until,
        });
        installed
    }

    pub(super) fn stepped_clock(start: i64) -> (Arc<AtomicI64>, Clock) {
        let now = Arc::new(AtomicI64::new(start));
        let read = Arc::clone(&now);
        (now, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    pub(super) fn rules() -> ClockRules {
        ClockRules {
            tolerance_seconds: DAY,
            warning_seconds: 30 * DAY,
        }
    }
}
