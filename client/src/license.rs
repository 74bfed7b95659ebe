//! The licensing state the ingestor consults on every request.
//!
//! A [`LicenseHandle`] reads an immutable snapshot through `ArcSwap`: no
//! database access and no lock, so a check costs an atomic load and an
//! import never makes a check wait.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use ren3_shared::{KeyId, License};

/// Where the current time comes from, in Unix seconds. Tests inject a
/// fixed or stepped clock instead of sleeping.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(ren3_shared::timestamp::now)
}

/// Seconds a license may be used before its `notBefore`: the vendor's and
/// the customer's clocks never agree exactly, and a license imported right
/// after it was issued must work at once.
pub const CLOCK_SKEW_TOLERANCE: i64 = 300;

/// A license that verified against the trusted keys and is bound to this
/// installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledLicense {
    /// The issuer key that signed it.
    pub key_id: KeyId,
    pub license: License,
}

/// What the installed license allows at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseState {
    /// No license is installed, or offline licensing is disabled.
    Unlicensed,
    Active(Arc<InstalledLicense>),
    Expired(Arc<InstalledLicense>),
    NotYetValid(Arc<InstalledLicense>),
}

/// Where a moment lies relative to a license's validity window, with
/// [`CLOCK_SKEW_TOLERANCE`] before `notBefore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    NotYetValid,
    InEffect,
    Expired,
}

impl Window {
    pub fn of(license: &License, now: i64) -> Self {
        if now.saturating_add(CLOCK_SKEW_TOLERANCE) < license.not_before {
            Window::NotYetValid
        } else if license.expires_at.is_some_and(|e| now >= e) {
            Window::Expired
        } else {
            Window::InEffect
        }
    }
}

impl LicenseState {
    /// The state of `installed` at `now`.
    pub fn at(installed: Option<Arc<InstalledLicense>>, now: i64) -> Self {
        let Some(installed) = installed else {
            return LicenseState::Unlicensed;
        };
        match Window::of(&installed.license, now) {
            Window::NotYetValid => LicenseState::NotYetValid(installed),
            Window::InEffect => LicenseState::Active(installed),
            Window::Expired => LicenseState::Expired(installed),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self, LicenseState::Active(_))
    }

    /// The installed license, whether or not it is in effect.
    pub fn installed(&self) -> Option<&Arc<InstalledLicense>> {
        match self {
            LicenseState::Unlicensed => None,
            LicenseState::Active(l) | LicenseState::Expired(l) | LicenseState::NotYetValid(l) => {
                Some(l)
            }
        }
    }

    /// The license in effect: `Some` only when active.
    pub fn active(&self) -> Option<&License> {
        match self {
            LicenseState::Active(l) => Some(&l.license),
            _ => None,
        }
    }
}

/// A cheap, cloneable view of the licensing state, for the ingestor to ask
/// on every request. Features and limits are granted only while the
/// license is active.
#[derive(Clone)]
pub struct LicenseHandle {
    installed: Arc<ArcSwapOption<InstalledLicense>>,
    clock: Clock,
}

impl fmt::Debug for LicenseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LicenseHandle")
            .field("installed", &self.installed.load_full())
            .finish_non_exhaustive()
    }
}

impl LicenseHandle {
    pub(crate) fn new(installed: Option<InstalledLicense>, clock: Clock) -> Self {
        Self {
            installed: Arc::new(ArcSwapOption::from(installed.map(Arc::new))),
            clock,
        }
    }

    /// Publishes a newly committed license to every clone of this handle.
    pub(crate) fn replace(&self, installed: InstalledLicense) {
        self.installed.store(Some(Arc::new(installed)));
    }

    /// The state now, by the handle's clock.
    pub fn check(&self) -> LicenseState {
        self.check_at((self.clock)())
    }

    /// The state at `now` (Unix seconds).
    pub fn check_at(&self, now: i64) -> LicenseState {
        LicenseState::at(self.installed.load_full(), now)
    }

    /// Whether a license is in effect now.
    pub fn is_licensed(&self) -> bool {
        self.check().is_active()
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
        self.installed
            .load()
            .as_ref()
            .and_then(|i| i.license.expires_at)
    }

    /// The installed license, in effect or not.
    pub fn installed(&self) -> Option<Arc<InstalledLicense>> {
        self.installed.load_full()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicI64, Ordering};

    use ren3_shared::binary::Bytes;
    use ren3_shared::{DeviceId, DeviceKey};

    use super::*;

    const NOT_BEFORE: i64 = 1_800_000_000;
    const EXPIRES_AT: i64 = 1_900_000_000;

    fn installed() -> InstalledLicense {
        InstalledLicense {
            key_id: Bytes([1u8; 8]),
            license: License {
                customer: "ACME".into(),
                features: vec!["ingest".into(), "reports".into()],
                limits: BTreeMap::from([("max-sources".into(), 12)]),
                issued_at: NOT_BEFORE,
                not_before: NOT_BEFORE,
                expires_at: Some(EXPIRES_AT),
                serial: 1,
                license_key_fingerprint: Bytes([2u8; 32]),
                client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
                device_public_key: DeviceKey::from_seed(&[3u8; 32]).public_key(),
                request_hash: Bytes([4u8; 32]),
            },
        }
    }

    fn stepped_clock(start: i64) -> (Arc<AtomicI64>, Clock) {
        let now = Arc::new(AtomicI64::new(start));
        let read = Arc::clone(&now);
        (now, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    #[test]
    fn state_follows_the_validity_window() {
        let l = Some(Arc::new(installed()));
        let cases = [
            (NOT_BEFORE - CLOCK_SKEW_TOLERANCE - 1, "not yet valid"),
            (NOT_BEFORE - CLOCK_SKEW_TOLERANCE, "active"),
            (NOT_BEFORE, "active"),
            (EXPIRES_AT - 1, "active"),
            (EXPIRES_AT, "expired"),
            (i64::MAX, "expired"),
        ];
        for (n, (now, expected)) in cases.into_iter().enumerate() {
            let state = match LicenseState::at(l.clone(), now) {
                LicenseState::Unlicensed => "unlicensed",
                LicenseState::Active(_) => "active",
                LicenseState::Expired(_) => "expired",
                LicenseState::NotYetValid(_) => "not yet valid",
            };
            assert_eq!(state, expected, "{n}. at {now}");
        }
        assert_eq!(LicenseState::at(None, NOT_BEFORE), LicenseState::Unlicensed);
    }

    #[test]
    fn handle_grants_features_and_limits_only_while_active() {
        let (now, clock) = stepped_clock(NOT_BEFORE);
        let handle = LicenseHandle::new(Some(installed()), clock);
        assert!(handle.is_licensed());
        assert!(handle.has_feature("ingest"));
        assert!(!handle.has_feature("export"));
        assert_eq!(handle.limit("max-sources"), Some(12));
        assert_eq!(handle.limit("max-users"), None);
        assert_eq!(handle.expires_at(), Some(EXPIRES_AT));

        now.store(EXPIRES_AT, Ordering::SeqCst);
        assert!(matches!(handle.check(), LicenseState::Expired(_)));
        assert!(!handle.is_licensed());
        assert!(!handle.has_feature("ingest"));
        assert_eq!(handle.limit("max-sources"), None);
        assert_eq!(handle.expires_at(), Some(EXPIRES_AT));
    }

    #[test]
    fn replacing_the_license_reaches_every_clone() {
        let (_, clock) = stepped_clock(NOT_BEFORE);
        let handle = LicenseHandle::new(None, clock);
        let clone = handle.clone();
        assert!(!clone.is_licensed());
        assert_eq!(clone.expires_at(), None);
        handle.replace(installed());
        assert!(clone.is_licensed());
        assert!(clone.has_feature("reports"));
    }
}
