//! The clock's high-water mark: a clock wound back is suspect, a forgiving
//! tolerance, recovery, the license's policy, and persistence across
//! restarts. Every test injects the clock; none sleeps.

use axum::http::StatusCode;
use ren3_client::LicenseState;
use ren3_shared::{ClockPolicy, timestamp};
use serde_json::Value;

use crate::support::{DAY, KEY, NOW, TestApp, answer, key, sign};

const HOUR: i64 = 3_600;

#[tokio::test]
async fn clock_wound_back_beyond_the_tolerance_is_suspect_until_it_is_right_again() {
    for (n, policy) in [ClockPolicy::Advisory, ClockPolicy::Enforcing]
        .into_iter()
        .enumerate()
    {
        let app = TestApp::new().await;
        app.install_with(1, |l| l.clock_policy = policy).await;
        let handle = app.state.license();
        app.set_now(NOW + 10 * DAY);
        assert_eq!(app.get_status().await.json["state"], "active", "{n}.");

        // (seconds back from the high-water mark, state, licensed)
        let advisory = policy == ClockPolicy::Advisory;
        let steps = [
            (DAY, "active", true),
            (DAY + 1, "clock_suspect", advisory),
            (30 * DAY, "clock_suspect", advisory),
            (HOUR, "active", true),
            (0, "active", true),
        ];
        for (m, (back, state, licensed)) in steps.into_iter().enumerate() {
            app.set_now(NOW + 10 * DAY - back);
            let status = app.get_status().await.json;
            let context = format!("{n}.{m} {policy:?}, {back} s back: {status}");
            assert_eq!(status["state"], state, "{context}");
            assert_eq!(status["licensed"], licensed, "{context}");
            assert_eq!(
                status["clock"]["suspect"],
                state == "clock_suspect",
                "{context}"
            );
            assert_eq!(status["clock"]["policy"], policy.as_str(), "{context}");
            assert_eq!(handle.is_licensed(), licensed, "{context}");
            if state == "clock_suspect" {
                assert_eq!(
                    status["reasonCode"], "clock_behind_high_water_mark",
                    "{context}"
                );
                assert!(
                    status["nextAction"]
                        .as_str()
                        .unwrap()
                        .contains("correct this machine's clock"),
                    "{context}"
                );
            }
        }
    }
}

#[tokio::test]
async fn clock_tolerance_is_configurable() {
    let app = TestApp::with_vars(&[("license_clock_tolerance", "1h")]).await;
    app.install(1).await;
    app.set_now(NOW + DAY);
    app.state.license().check();
    for (n, (back, suspect)) in [(HOUR, false), (HOUR + 1, true), (2 * HOUR, true)]
        .into_iter()
        .enumerate()
    {
        app.set_now(NOW + DAY - back);
        let status = app.get_status().await.json;
        assert_eq!(status["clock"]["suspect"], suspect, "{n}. {status}");
        assert_eq!(status["clock"]["toleranceSeconds"], HOUR, "{n}.");
    }
}

#[tokio::test]
async fn clock_before_the_license_was_issued_is_suspect() {
    let app = TestApp::new().await;
    // Issued a little after this machine's time: within the skew, importable.
    app.install_with(1, |l| {
        l.issued_at = NOW + 250;
        l.not_before = NOW + 250;
    })
    .await;
    app.set_now(NOW - 100);
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "clock_suspect", "{status}");
    assert_eq!(status["reasonCode"], "clock_before_issued_at");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains(&timestamp::format(NOW + 250))
    );
    app.set_now(NOW);
    assert_eq!(app.get_status().await.json["state"], "active");
}

#[tokio::test]
async fn winding_the_clock_back_never_revives_an_expired_license() {
    let app = TestApp::new().await;
    app.install(1).await;
    app.set_now(NOW + 400 * DAY);
    assert_eq!(app.get_status().await.json["state"], "expired");

    app.set_now(NOW);
    let handle = app.state.license();
    let check = handle.check();
    assert_eq!(check.state(), LicenseState::ClockSuspect);
    assert_eq!(check.refusal().map(|r| r.code()), Some("expired"));
    assert!(!handle.is_licensed());
    assert_eq!(app.get_status().await.json["licensed"], false);
}

#[tokio::test]
async fn import_with_a_wound_back_clock_is_judged_at_the_high_water_mark() {
    let app = TestApp::new().await;
    let request = app.register(&key()).await;
    app.set_now(NOW + 400 * DAY);
    app.state.license().check();
    app.set_now(NOW);
    let before = (app.dump().await, app.installed());
    // Valid by the wound-back clock, expired by the time already seen.
    let reply = app.import(&key(), &sign(&answer(&request, 1))).await;
    reply.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "license_expired",
        "wound back",
    );
    // A refused import changes nothing: the list it carries revokes no
    // key, so it is not kept either.
    assert_eq!((app.dump().await, app.installed()), before);
    assert_eq!(app.stored_list_version().await, None);
}

#[tokio::test]
async fn high_water_mark_survives_a_restart() {
    let app = TestApp::with_vars(&[("license_clock_tolerance", "2h")]).await;
    app.install_with(1, |l| l.clock_policy = ClockPolicy::Enforcing)
        .await;
    assert_eq!(app.recorded_mark().await, Some(NOW));

    // Less than a step (half the tolerance) on: status does not write.
    app.set_now(NOW + HOUR - 1);
    app.get_status().await;
    assert_eq!(app.recorded_mark().await, Some(NOW));
    // A step on: status records it.
    app.set_now(NOW + 2 * HOUR);
    let status = app.get_status().await.json;
    assert_eq!(app.recorded_mark().await, Some(NOW + 2 * HOUR));
    assert_eq!(
        status["clock"]["highWaterMark"],
        timestamp::format(NOW + 2 * HOUR)
    );
    // Shutdown records the exact mark.
    app.set_now(NOW + 2 * HOUR + 10);
    app.state.license().check();
    app.state.persist_clock().await.unwrap();
    assert_eq!(app.recorded_mark().await, Some(NOW + 2 * HOUR + 10));

    // Restarted with the clock wound back by more than the tolerance.
    app.set_now(NOW);
    let app = app.restart().await;
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "clock_suspect", "{status}");
    assert_eq!(status["licensed"], false);
    assert!(!app.state.license().is_licensed());
    assert_eq!(app.recorded_mark().await, Some(NOW + 2 * HOUR + 10));

    app.set_now(NOW + 2 * HOUR);
    assert!(app.state.license().is_licensed(), "recovered");
}

#[tokio::test]
async fn deactivation_and_import_record_the_high_water_mark() {
    let app = TestApp::new().await;
    app.set_now(NOW + 60);
    app.install(1).await;
    assert_eq!(app.recorded_mark().await, Some(NOW + 60));
    app.set_now(NOW + 120);
    assert_eq!(app.deactivate(KEY).await.status, StatusCode::OK);
    assert_eq!(app.recorded_mark().await, Some(NOW + 120));
}

/// A license that expired long ago by the clock the store recorded, with the
/// clock wound back to inside its year: the status before any edit.
async fn expired_then_wound_back(policy: ClockPolicy) -> TestApp {
    let app = TestApp::new().await;
    app.install_with(1, |l| l.clock_policy = policy).await;
    app.set_now(NOW + 400 * DAY);
    assert_eq!(app.get_status().await.json["state"], "expired");
    app.state.persist_clock().await.unwrap();
    app.set_now(NOW + 10 * DAY);
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "clock_suspect", "{status}");
    assert_eq!(status["licensed"], false, "{status}");
    app
}

#[tokio::test]
async fn deleting_the_clock_mark_while_stopped_does_not_revive_an_expired_license() {
    for (n, policy) in [ClockPolicy::Advisory, ClockPolicy::Enforcing]
        .into_iter()
        .enumerate()
    {
        let app = expired_then_wound_back(policy).await;
        let app = app
            .restart_after_editing(|conn| {
                conn.execute("DELETE FROM clock", []).unwrap();
            })
            .await;
        // Twice, and with a clean shutdown between: nothing re-creates the
        // mark, so the next start finds it missing too.
        app.state.persist_clock().await.unwrap();
        let app = app.restart().await;
        for m in 0..2 {
            let status = app.get_status().await.json;
            let context = format!("{n}.{m} {policy:?}: {status}");
            assert_eq!(status["state"], "clock_suspect", "{context}");
            assert_eq!(status["reasonCode"], "clock_mark_missing", "{context}");
            assert_eq!(status["licensed"], false, "{context}");
            assert_eq!(status["clock"]["highWaterMark"], Value::Null, "{context}");
            let next = status["nextAction"].as_str().unwrap();
            assert!(next.contains("check this machine's clock"), "{context}");
            assert!(next.contains("POST /license/register"), "{context}");
            assert!(!app.state.license().is_licensed(), "{context}");
            let refusal = app.state.license().check().refusal().unwrap();
            assert_eq!(refusal.code(), "clock_suspect", "{context}");
            assert_eq!(app.recorded_mark().await, None, "{context}");
            app.state.persist_clock().await.unwrap();
            app.set_now(NOW + 20 * DAY);
        }

        // The honest way out: the clock set right, a new request, and the
        // vendor's payload, whose import records the mark again.
        app.set_now(NOW + 401 * DAY);
        let request = app.register(&key()).await;
        assert_eq!(
            app.recorded_mark().await,
            None,
            "{n}. a register writes no doubted mark"
        );
        let mut renewal = answer(&request, 2);
        renewal.issued_at = NOW + 401 * DAY;
        renewal.not_before = NOW + 401 * DAY;
        renewal.expires_at = Some(NOW + 766 * DAY);
        renewal.clock_policy = policy;
        let reply = app.import(&key(), &sign(&renewal)).await;
        assert_eq!(reply.status, StatusCode::OK, "{n}. {}", reply.text);
        assert_eq!(reply.json["state"], "active", "{n}.");
        assert_eq!(app.recorded_mark().await, Some(NOW + 401 * DAY), "{n}.");
        let app = app.restart().await;
        let status = app.get_status().await.json;
        assert_eq!(status["state"], "active", "{n}. {status}");
    }
}

#[tokio::test]
async fn lowering_the_clock_mark_below_a_time_the_store_records_is_detected() {
    // The operator registered a renewal request once the license had
    // expired: its time is recorded, and the mark with it.
    let app = expired_then_wound_back(ClockPolicy::Advisory).await;
    app.set_now(NOW + 400 * DAY);
    let renewal_request = app.register(&key()).await;
    app.set_now(NOW + 10 * DAY);
    // (value the mark is lowered to, the time the license is judged at)
    let cases = [(NOW + 10 * DAY, NOW + 400 * DAY), (0, NOW + 400 * DAY)];
    let mut app = app;
    for (n, (lowered_to, judged_at)) in cases.into_iter().enumerate() {
        app = app
            .restart_after_editing(|conn| {
                conn.execute("UPDATE clock SET high_water_mark = ?1", [lowered_to])
                    .unwrap();
            })
            .await;
        let status = app.get_status().await.json;
        assert_eq!(status["state"], "clock_suspect", "{n}. {status}");
        assert_eq!(status["reasonCode"], "clock_mark_lowered", "{n}. {status}");
        assert_eq!(status["licensed"], false, "{n}. {status}");
        assert!(
            status["reason"]
                .as_str()
                .unwrap()
                .contains(&timestamp::format(NOW + 400 * DAY)),
            "{n}. {status}"
        );
        let check = app.state.license().check();
        assert_eq!(check.high_water_mark, judged_at, "{n}.");
        assert_eq!(check.refusal().map(|r| r.code()), Some("expired"), "{n}.");
        assert_eq!(
            app.recorded_mark().await,
            Some(lowered_to),
            "{n}. left as found"
        );
    }

    // The honest way out: the clock right, and the renewal imported.
    app.set_now(NOW + 400 * DAY);
    let mut renewal = answer(&renewal_request, 2);
    renewal.issued_at = NOW + 400 * DAY;
    renewal.not_before = NOW + 400 * DAY;
    renewal.expires_at = Some(NOW + 765 * DAY);
    let reply = app.import(&key(), &sign(&renewal)).await;
    assert_eq!(reply.json["state"], "active", "{}", reply.text);
    let app = app.restart().await;
    assert_eq!(app.get_status().await.json["state"], "active");
}

#[tokio::test]
async fn a_mark_rewritten_no_lower_than_any_recorded_time_is_a_snapshot_restore() {
    // The limit SECURITY.md states: with nothing but status reads since the
    // import, the store records no time after the import but the mark, so
    // a mark rewritten to the wound-back clock is what a snapshot of the
    // store taken then would hold, and nothing can tell them apart.
    let app = expired_then_wound_back(ClockPolicy::Enforcing).await;
    let app = app
        .restart_after_editing(|conn| {
            conn.execute("UPDATE clock SET high_water_mark = ?1", [NOW + 10 * DAY])
                .unwrap();
        })
        .await;
    assert_eq!(app.get_status().await.json["state"], "active");
}

#[tokio::test]
async fn the_license_is_judged_no_earlier_than_its_vendor_signed_times() {
    let app = TestApp::new().await;
    app.set_now(NOW + 100 * DAY);
    app.install_with(1, |l| {
        l.issued_at = NOW + 100 * DAY + 250;
        l.not_before = NOW + 100 * DAY + 250;
        l.expires_at = Some(NOW + 130 * DAY);
    })
    .await;
    // The import records the payload's signed time, ahead of the clock.
    assert_eq!(app.recorded_mark().await, Some(NOW + 100 * DAY + 250));

    // Every time the device wrote, rewritten to 1970, and the clock well
    // before the license was issued: judged at its issuedAt all the same.
    app.set_now(NOW);
    let app = app
        .restart_after_editing(|conn| {
            conn.execute_batch(
                "UPDATE clock SET high_water_mark = 0;
                 UPDATE licenses SET imported_at = 0;
                 UPDATE pending_requests SET created_at = 0;",
            )
            .unwrap();
        })
        .await;
    let check = app.state.license().check();
    assert_eq!(check.high_water_mark, NOW + 100 * DAY + 250);
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "clock_suspect", "{status}");
    assert_eq!(
        status["reasonCode"], "clock_behind_high_water_mark",
        "{status}"
    );
    assert_eq!(status["daysRemaining"], 30, "{status}");
    // Start-up recorded that mark: the store is consistent again.
    assert_eq!(app.recorded_mark().await, Some(NOW + 100 * DAY + 250));
}
