use ren3_shared::timestamp;
use serde_json::json;

use crate::support::{DAY, DEVICE_ID, KEY, NOW, TestApp, issuer, key};

#[tokio::test]
async fn status_without_offline_licensing_says_how_to_enable_it() {
    let app = TestApp::disabled().await;
    let status = app.get_status().await;
    assert_eq!(status.content_type(), "application/json");
    let reason = status.json["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("offline licensing is disabled"), "{reason}");
    let next_action = status.json["nextAction"].as_str().unwrap().to_owned();
    assert!(
        next_action.contains("enable_offline_license=true"),
        "{next_action}"
    );
    assert_eq!(
        status.json,
        json!({
            "state": "unlicensed",
            "reasonCode": "offline_licensing_disabled",
            "reason": reason,
            "licensed": false,
            "nextAction": next_action,
            "offlineLicensing": false,
            "clientDeviceId": null,
            "pendingRequests": 0,
            "keyId": null,
            "deviceMatches": null,
            "daysRemaining": null,
            "warning": false,
            "grace": {"inGrace": false, "seconds": 0, "endsAt": null},
            "clock": {
                "suspect": false,
                "policy": null,
                "toleranceSeconds": 86_400,
                "highWaterMark": ren3_shared::timestamp::format(crate::support::NOW),
            },
            "revocation": null,
            "trust": {
                "root": crate::support::test_only_root().fingerprint().to_string(),
                "pinned": true,
                "revocationListVersion": 0,
            },
            "license": null,
        })
    );
    assert!(!app.state.license().is_licensed());
}

#[tokio::test]
async fn status_moves_from_unlicensed_to_pending_to_active() {
    let app = TestApp::new().await;
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "unlicensed");
    assert_eq!(status.json["reasonCode"], "no_license");
    assert_eq!(status.json["offlineLicensing"], true);
    assert_eq!(status.json["clientDeviceId"], DEVICE_ID);
    assert_eq!(status.json["license"], json!(null));
    assert_eq!(status.json["deviceMatches"], json!(null));
    assert!(
        status.json["nextAction"]
            .as_str()
            .unwrap()
            .contains("POST /license/register")
    );

    app.register(&key()).await;
    app.register(&key()).await;
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "pending");
    assert_eq!(status.json["reasonCode"], "awaiting_payload");
    assert_eq!(status.json["pendingRequests"], 2);
    assert!(
        status.json["reason"]
            .as_str()
            .unwrap()
            .contains("2 license requests are waiting")
    );
    assert!(
        status.json["nextAction"]
            .as_str()
            .unwrap()
            .contains("POST /license/import")
    );

    app.install(1).await;
    let status = app.get_status().await;
    assert_eq!(status.json["state"], "active");
    assert_eq!(status.json["licensed"], true);
    assert!(!status.text.contains(KEY));
    assert!(!status.text.contains("licenseKeyHint"));
}

#[tokio::test]
async fn status_walks_through_warning_grace_and_expiry() {
    let app = TestApp::new().await;
    app.install_with(1, |l| l.grace_seconds = (7 * DAY).cast_unsigned())
        .await;
    let handle = app.state.license();
    // (days after NOW, state, reasonCode, licensed, daysRemaining, warning,
    //  inGrace, words in nextAction)
    let cases = [
        (
            0,
            "active",
            "valid",
            true,
            365,
            false,
            false,
            "before 2028-01-15",
        ),
        (
            334,
            "active",
            "valid",
            true,
            31,
            false,
            false,
            "nothing to do now",
        ),
        (
            335,
            "active",
            "expiry_warning",
            true,
            30,
            true,
            false,
            "send it to the ReN3 team before 2028-01-15",
        ),
        (
            365,
            "grace",
            "in_grace",
            true,
            0,
            true,
            true,
            "before 2028-01-22",
        ),
        (
            371,
            "grace",
            "in_grace",
            true,
            0,
            true,
            true,
            "before 2028-01-22",
        ),
        (
            372,
            "expired",
            "expired",
            false,
            0,
            false,
            false,
            "for a renewed license",
        ),
    ];
    for (n, (days, state, code, licensed, remaining, warning, in_grace, action)) in
        cases.into_iter().enumerate()
    {
        app.set_now(NOW + days * DAY);
        let status = app.get_status().await.json;
        let context = format!("{n}. day {days}: {status}");
        assert_eq!(status["state"], state, "{context}");
        assert_eq!(status["reasonCode"], code, "{context}");
        assert_eq!(status["licensed"], licensed, "{context}");
        assert_eq!(status["daysRemaining"], remaining, "{context}");
        assert_eq!(status["warning"], warning, "{context}");
        assert_eq!(status["grace"]["inGrace"], in_grace, "{context}");
        assert_eq!(status["grace"]["seconds"], 7 * DAY, "{context}");
        assert_eq!(
            status["grace"]["endsAt"],
            timestamp::format(NOW + 372 * DAY),
            "{context}"
        );
        assert!(
            status["nextAction"].as_str().unwrap().contains(action),
            "{context}"
        );
        assert_eq!(status["keyId"], issuer().key_id().to_string(), "{context}");
        assert_eq!(status["deviceMatches"], true, "{context}");
        assert_eq!(handle.is_licensed(), licensed, "{context}");
        assert_eq!(handle.has_feature("ingest"), licensed, "{context}");
    }
}

#[tokio::test]
async fn warning_window_follows_license_warning_days() {
    let app = TestApp::with_vars(&[("license_warning_days", "90")]).await;
    app.install(1).await;
    for (n, (days, warning)) in [(274, false), (275, true)].into_iter().enumerate() {
        app.set_now(NOW + days * DAY);
        let status = app.get_status().await.json;
        assert_eq!(status["warning"], warning, "{n}. {status}");
    }
}

#[tokio::test]
async fn status_of_a_license_without_expiry_has_no_days_remaining() {
    let app = TestApp::new().await;
    app.install_with(1, |l| l.expires_at = None).await;
    app.set_now(NOW + 5_000 * DAY);
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "active");
    assert_eq!(status["daysRemaining"], json!(null));
    assert_eq!(status["warning"], false);
    assert_eq!(status["nextAction"], "nothing to do");
    assert_eq!(status["grace"]["endsAt"], json!(null));
}

/// `GET /license` sends its last body again while nothing it is built
/// from has changed: after each kind of change, the body must be the
/// status built afresh. Every debug build also checks each body it sends
/// again against a fresh one.
#[tokio::test]
async fn a_kept_status_body_follows_every_change() {
    let app = TestApp::new().await;
    let fresh = |app: &TestApp| {
        let state = app.state.clone();
        async move { serde_json::to_value(state.status().await.unwrap()).unwrap() }
    };
    let first = app.get_status().await;
    assert_eq!(
        first.headers["content-type"], "application/json",
        "the body is JSON"
    );
    let again = app.get_status().await;
    assert_eq!(again.text, first.text, "nothing changed");
    assert_eq!(again.json, fresh(&app).await);

    let mut seen = vec![first.text];
    let mut expect_change = |step: &str, reply: crate::support::Reply| {
        assert!(
            !seen.contains(&reply.text),
            "{step}: the status did not change"
        );
        seen.push(reply.text);
    };

    app.register(&key()).await;
    let reply = app.get_status().await;
    assert_eq!(reply.json["pendingRequests"], 1, "1. a register");
    assert_eq!(reply.json, fresh(&app).await, "1. a register");
    expect_change("1. a register", reply);

    app.install(1).await;
    let reply = app.get_status().await;
    assert_eq!(reply.json["state"], "active", "2. an import");
    assert_eq!(reply.json, fresh(&app).await, "2. an import");
    expect_change("2. an import", reply);

    app.set_now(NOW + 40 * DAY);
    let reply = app.get_status().await;
    assert_eq!(reply.json["daysRemaining"], 325, "3. the clock");
    assert_eq!(reply.json, fresh(&app).await, "3. the clock");
    expect_change("3. the clock", reply);

    // Winding the clock back behind what the installation recorded.
    app.set_now(NOW);
    let reply = app.get_status().await;
    assert_eq!(reply.json["state"], "clock_suspect", "4. a suspect clock");
    assert_eq!(reply.json, fresh(&app).await, "4. a suspect clock");
    expect_change("4. a suspect clock", reply);

    app.set_now(NOW + 41 * DAY);
    let reply = app.deactivate(KEY).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = app.get_status().await;
    assert_eq!(reply.json["reasonCode"], "deactivated", "5. a deactivation");
    assert_eq!(reply.json, fresh(&app).await, "5. a deactivation");
    expect_change("5. a deactivation", reply);
}
