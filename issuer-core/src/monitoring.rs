//! The vendor side's metrics, emitted through the [`metrics`] facade where
//! the rules decide: issuances ([`crate::issuance`]), refusals
//! ([`crate::audit`]'s refuse-and-record and the issuance's), console
//! logins ([`crate::login`]) and every store transaction's time
//! ([`crate::store::Store`]). The console installs the recorder; the CLI
//! installs none, so there they go nowhere.
//!
//! No metric has a per-license label (a million licenses would be a
//! million series): seats are counted in aggregate, and the labels are
//! fixed sets (actions, stable refusal codes, login results, transaction
//! kinds).

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

use crate::audit::Action;
use crate::store::{self, Store, StoreError};

/// Counter, label `repeated` (`true` for a request answered before, which
/// takes no seat): license payloads issued.
pub const ISSUANCES: &str = "ren3_issuer_issuances_total";
/// Counter, labels `action` (the audit log's, such as `issue` or
/// `device.release`) and `code` (the refusal's stable code).
pub const REFUSALS: &str = "ren3_issuer_refusals_total";
/// Counter, label `result`: `ok`, `wrong_credentials`, `throttled` (refused
/// before its password was checked) or `not_checked` (the console was busy
/// or the browser went away).
pub const LOGINS: &str = "ren3_issuer_logins_total";
/// Gauge: installations bound to a seat, over every license.
pub const SEATS_IN_USE: &str = "ren3_issuer_seats_in_use";
/// Histogram, label `transaction` (`read` or `write`): how long a store
/// transaction took, from its start to its commit or rollback.
pub const STORE_SECONDS: &str = "ren3_issuer_store_transaction_seconds";

/// The upper bounds of [`STORE_SECONDS`]'s buckets, in seconds: a point
/// read takes well under a millisecond; a batch of a thousand issuances
/// about a second.
pub const STORE_SECONDS_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Gives every metric of this module its unit and help text in the
/// installed recorder. Idempotent.
pub fn describe() {
    describe_counter!(
        ISSUANCES,
        "license payloads issued (repeated: answered before)"
    );
    describe_counter!(
        REFUSALS,
        "refused changes and issuances, by audit action and stable code"
    );
    describe_counter!(LOGINS, "console login attempts, by result");
    describe_gauge!(
        SEATS_IN_USE,
        "installations bound to a seat, over all licenses"
    );
    describe_histogram!(
        STORE_SECONDS,
        Unit::Seconds,
        "time of each store transaction, from its start to its commit or rollback"
    );
}

/// One more payload issued.
pub(crate) fn issued(repeated: bool) {
    counter!(ISSUANCES, "repeated" => if repeated { "true" } else { "false" }).increment(1);
}

/// One more refusal of `action`, under `code`.
pub(crate) fn refused(action: Action, code: &'static str) {
    counter!(REFUSALS, "action" => action.as_str(), "code" => code).increment(1);
}

/// How a console login ended, as [`LOGINS`]'s `result` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginResult {
    Ok,
    WrongCredentials,
    Throttled,
    NotChecked,
}

/// One more login attempt that ended with `result`.
pub(crate) fn login(result: LoginResult) {
    let result = match result {
        LoginResult::Ok => "ok",
        LoginResult::WrongCredentials => "wrong_credentials",
        LoginResult::Throttled => "throttled",
        LoginResult::NotChecked => "not_checked",
    };
    counter!(LOGINS, "result" => result).increment(1);
}

/// A store transaction's kind, as [`STORE_SECONDS`]'s label names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transaction {
    Read,
    Write,
}

/// Records how long a transaction of `kind` took.
pub(crate) fn transaction_took(kind: Transaction, took: Duration) {
    let kind = match kind {
        Transaction::Read => "read",
        Transaction::Write => "write",
    };
    metrics::histogram!(STORE_SECONDS, "transaction" => kind).record(took.as_secs_f64());
}

/// Sets the gauges that are read from the store ([`SEATS_IN_USE`]), for a
/// scrape. One read transaction; the seats are summed over the per-license
/// counts the store keeps (migration 0005), never counted device by device.
///
/// # Errors
///
/// The store's, and the gauges are left as they were.
pub fn publish_store_gauges(store: &Store) -> Result<(), StoreError> {
    let seats = store.read(|conn| store::seats_in_use(conn))?;
    // A gauge is a float; seat counts stay far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    gauge!(SEATS_IN_USE).set(seats as f64);
    Ok(())
}

/// Whether the store answers a read through its normal path (a read
/// transaction on the licenses table): a console's readiness.
///
/// # Errors
///
/// The store's, for the log.
pub fn check_readable(store: &Store) -> Result<(), StoreError> {
    store.read(|conn| store::licenses_readable(conn))
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;
    use crate::issuance;
    use crate::testing::{NOW, TestStore, actor, request};

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn issuances_refusals_and_seats_are_counted_without_per_license_labels() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let mut t = TestStore::new();
        metrics::with_local_recorder(&recorder, || {
            describe();
            let key = t.license(1);
            let device = t.device(&key);
            let installation = ren3_shared::DeviceKey::generate().unwrap();
            let text = request(&key, &device, &installation);
            issuance::issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
            // The same request again: its payload, no seat taken.
            issuance::issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
            // Another installation on the one seat: refused.
            let other = ren3_shared::DeviceKey::generate().unwrap();
            let second = t.device(&key);
            let refused = issuance::issue(
                &mut t.store,
                &t.keys,
                &actor(),
                &request(&key, &second, &other),
                NOW,
            )
            .unwrap_err();
            assert_eq!(crate::Coded::code(&refused), "no_free_seat");
            publish_store_gauges(&t.store).unwrap();
        });
        let text = handle.render();
        for (i, line) in [
            "ren3_issuer_issuances_total{repeated=\"false\"} 1",
            "ren3_issuer_issuances_total{repeated=\"true\"} 1",
            "ren3_issuer_refusals_total{action=\"issue\",code=\"no_free_seat\"} 1",
            "ren3_issuer_seats_in_use 1",
            "# TYPE ren3_issuer_store_transaction_seconds summary",
        ]
        .into_iter()
        .enumerate()
        {
            assert!(has_line(&text, line), "{i}: {line} in\n{text}");
        }
        assert!(
            text.contains("ren3_issuer_store_transaction_seconds_count{transaction=\"write\"} "),
            "{text}"
        );
        assert!(!text.contains("REN3"), "no key or device id: {text}");
    }

    #[test]
    fn readiness_fails_when_the_store_cannot_be_read() {
        let t = TestStore::new();
        check_readable(&t.store).unwrap();
        let conn = rusqlite::Connection::open(t.store.path()).unwrap();
        conn.execute_batch("DROP TABLE licenses").unwrap();
        assert!(check_readable(&t.store).is_err());
    }
}
