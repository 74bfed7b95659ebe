//! The service's metrics, emitted through the [`metrics`] facade: whoever
//! runs the service installs the recorder (`ren3-client serve` installs a
//! Prometheus one; an ingestor that embeds this library installs its own),
//! and without one they cost next to nothing and go nowhere.
//!
//! The gauges describe the license now. They are set when the license
//! changes (an import, a deactivation), every minute by the service's
//! background task, and at every scrape of `/metrics` ([`crate::http`]),
//! so that they are current at scrape time. No metric carries a license
//! key, a customer or any other per-license label: the labels are a fixed
//! set of states, operations and refusal codes.

use metrics::{counter, describe_counter, describe_gauge, gauge};

use crate::license::LicenseState;
use crate::licensing::Licensing;
use crate::registration::LicensingError;
use crate::status::{StatusReport, StatusState};
use crate::store::StoreError;

/// Gauge, label `state`: 1 for the license's state now (the `state` of
/// `GET /license`), 0 for every other state.
pub const LICENSE_STATE: &str = "ren3_client_license_state";
/// Gauge: 1 while licensed work is allowed, else 0.
pub const LICENSE_LICENSED: &str = "ren3_client_license_licensed";
/// Gauge: days until the installed license's `expiresAt`, with a fraction,
/// from the latest time this installation has seen (negative once it has
/// expired). `NaN` when no license is installed or it never expires.
pub const LICENSE_REMAINING_DAYS: &str = "ren3_client_license_remaining_days";
/// Gauge: 1 while the clock looks wound back (the status's
/// `clock.suspect`), else 0.
pub const CLOCK_SUSPECT: &str = "ren3_client_clock_suspect";
/// Counter: license payloads imported (the active one imported again
/// included).
pub const IMPORTS: &str = "ren3_client_imports_total";
/// Counter: license requests exported.
pub const REGISTRATIONS: &str = "ren3_client_registrations_total";
/// Counter: licenses deactivated, each with a release receipt.
pub const DEACTIVATIONS: &str = "ren3_client_deactivations_total";
/// Counter, labels `operation` (`register`, `import`, `deactivate`) and
/// `code` (the refusal's stable code, as in the README's table, including
/// `storage_error` and `internal_error`).
pub const REFUSALS: &str = "ren3_client_refusals_total";

/// Every state [`LICENSE_STATE`] reports, so that each has a series.
const STATES: [&str; 8] = [
    "pending",
    "unlicensed",
    "active",
    "grace",
    "expired",
    "not_yet_valid",
    "clock_suspect",
    "key_revoked",
];

const SECONDS_PER_DAY: f64 = 86_400.0;

/// A licensing operation, as the `operation` label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Register,
    Import,
    Deactivate,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Register => "register",
            Operation::Import => "import",
            Operation::Deactivate => "deactivate",
        }
    }

    fn counter(self) -> &'static str {
        match self {
            Operation::Register => REGISTRATIONS,
            Operation::Import => IMPORTS,
            Operation::Deactivate => DEACTIVATIONS,
        }
    }
}

/// Gives every metric of this module its unit and help text in the
/// installed recorder. Idempotent; `publish` calls it, so a recorder
/// installed after the service opened gets the descriptions at the next
/// publication.
pub fn describe() {
    describe_gauge!(
        LICENSE_STATE,
        "1 for the license's state now (label state, as GET /license says it), 0 for the others"
    );
    describe_gauge!(LICENSE_LICENSED, "1 while licensed work is allowed, else 0");
    describe_gauge!(
        LICENSE_REMAINING_DAYS,
        "days until the installed license expires, from the latest time seen (negative once \
         expired); NaN when none is installed or it never expires"
    );
    describe_gauge!(
        CLOCK_SUSPECT,
        "1 while the clock looks wound back (GET /license: clock.suspect), else 0"
    );
    describe_counter!(IMPORTS, "license payloads imported");
    describe_counter!(REGISTRATIONS, "license requests exported");
    describe_counter!(DEACTIVATIONS, "licenses deactivated with a release receipt");
    describe_counter!(
        REFUSALS,
        "refused or failed licensing operations, by operation and stable code"
    );
}

/// Counts how `operation` ended: one more success, or one more refusal
/// under its code.
pub(crate) fn record<T>(operation: Operation, result: &Result<T, LicensingError>) {
    match result {
        Ok(_) => counter!(operation.counter()).increment(1),
        Err(e) => counter!(
            REFUSALS,
            "operation" => operation.as_str(),
            "code" => e.code()
        )
        .increment(1),
    }
}

/// Sets the gauges from `status` and the installed license's expiry
/// (`expires_at`, judged from `high_water_mark`, as the status is).
pub(crate) fn publish(status: &StatusReport, expires_at: Option<i64>, high_water_mark: i64) {
    describe();
    let now = state_label(status.state);
    for state in STATES {
        gauge!(LICENSE_STATE, "state" => state).set(if state == now { 1.0 } else { 0.0 });
    }
    gauge!(LICENSE_LICENSED).set(if status.licensed { 1.0 } else { 0.0 });
    gauge!(CLOCK_SUSPECT).set(if status.clock.suspect { 1.0 } else { 0.0 });
    let remaining = match (status.license.is_some(), expires_at) {
        // Seconds to days: a float is exact enough for any license's span.
        #[allow(clippy::cast_precision_loss)]
        (true, Some(expires_at)) => {
            expires_at.saturating_sub(high_water_mark) as f64 / SECONDS_PER_DAY
        }
        _ => f64::NAN,
    };
    gauge!(LICENSE_REMAINING_DAYS).set(remaining);
}

impl Licensing {
    /// Sets the gauges to the status now ([`Licensing::status`], without
    /// writing the clock's mark: publishing never writes to the store). The
    /// service calls it when the license changes and every minute, and
    /// `/metrics` before every scrape; an ingestor that serves its
    /// recorder elsewhere needs nothing more.
    ///
    /// # Errors
    ///
    /// As [`Licensing::status`]: the store could not be read, and the
    /// gauges are left as they were.
    pub async fn publish_metrics(&self) -> Result<(), StoreError> {
        let status = self.status_unrecorded().await?;
        let license = self.license();
        // As the status judges it: from the latest time seen, now included.
        let seen = license.high_water_mark().max(self.now());
        publish(&status, license.expires_at(), seen);
        Ok(())
    }

    /// After an operation: sets the gauges again if it `changed` what they
    /// report. A failure only leaves them for the next publication.
    pub(crate) async fn republish_metrics(&self, changed: bool) {
        if changed && let Err(e) = self.publish_metrics().await {
            tracing::debug!("cannot update the license metrics: {e}");
        }
    }

    /// Whether the store answers a read through the service's one
    /// connection, as every operation reaches it: what `/readyz` reports.
    ///
    /// # Errors
    ///
    /// The store's error, for the log; it says what failed.
    pub async fn check_store(&self) -> Result<(), StoreError> {
        self.store().check_readable().await
    }
}

fn state_label(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::License(state) => LicenseState::as_str(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_label_of_its_own() {
        use LicenseState as S;
        let states = [
            StatusState::Pending,
            StatusState::License(S::Unlicensed),
            StatusState::License(S::Active),
            StatusState::License(S::Grace),
            StatusState::License(S::Expired),
            StatusState::License(S::NotYetValid),
            StatusState::License(S::ClockSuspect),
            StatusState::License(S::KeyRevoked),
        ];
        let labels: Vec<&str> = states.into_iter().map(state_label).collect();
        assert_eq!(labels, STATES);
    }

    #[test]
    fn names_carry_their_prefix_and_unit() {
        for (i, name) in [
            LICENSE_STATE,
            LICENSE_LICENSED,
            LICENSE_REMAINING_DAYS,
            CLOCK_SUSPECT,
            IMPORTS,
            REGISTRATIONS,
            DEACTIVATIONS,
            REFUSALS,
        ]
        .into_iter()
        .enumerate()
        {
            assert!(name.starts_with("ren3_client_"), "{i}: {name}");
        }
        for (i, counter) in [IMPORTS, REGISTRATIONS, DEACTIVATIONS, REFUSALS]
            .into_iter()
            .enumerate()
        {
            assert!(counter.ends_with("_total"), "{i}: {counter}");
        }
        assert!(LICENSE_REMAINING_DAYS.ends_with("_days"));
    }
}
