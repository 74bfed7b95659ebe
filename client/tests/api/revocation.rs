//! Revocation: a newer list arrives inside any payload whose chain
//! verifies, is kept even when that import is refused, refuses the revoked
//! key's payloads, lets the installed one work until its grace ends, and
//! never goes back to an older version.

use axum::http::StatusCode;
use ren3_shared::{IssuerKey, KeyId, PayloadSigner};
use ren3_testkit::chain;

use crate::support::{DAY, NOW, TestApp, answer, issuer, key, other_key};

/// A vendor key of `seed` certified by the pinned root, carrying list
/// `version` of the pinned root, which revokes `revoked` (key, revoked at,
/// grace until).
fn vendor(seed: u8, version: u64, revoked: &[(KeyId, i64, i64)]) -> PayloadSigner {
    let root = ren3_testkit::test_only_root_key();
    let list = chain::revocations(&root, version, revoked);
    chain::signer(&root, IssuerKey::from_seed(&[seed; 32]), list)
}

#[tokio::test]
async fn a_newer_list_in_a_refused_payload_is_kept_and_ends_the_revoked_license_after_grace() {
    let app = TestApp::new().await;
    app.install(1).await;
    assert_eq!(app.revocation_list_version().await, 1);
    let grace_until = NOW + 7 * DAY;
    let next = vendor(21, 2, &[(issuer().key_id(), NOW, grace_until)]);

    // A genuine payload carrying list 2, refused for another reason: the
    // list is kept, nothing else changes.
    let request = app.register(&key()).await;
    let before = (app.licenses().await, app.pending().await);
    let reply = app
        .import(
            &other_key(),
            &next.sign_payload(&answer(&request, 2)).unwrap().token(),
        )
        .await;
    reply.assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "license_key_mismatch",
        "refused after the list was applied",
    );
    assert_eq!((app.licenses().await, app.pending().await), before);
    assert_eq!(app.stored_list_version().await, Some(2));

    // In grace: it works, and says so.
    let status = app.get_status().await.json;
    assert_eq!(status["trust"]["revocationListVersion"], 2, "{status}");
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["reasonCode"], "key_revoked_in_grace", "{status}");
    assert_eq!(status["licensed"], true);
    assert_eq!(status["revocation"]["inGrace"], true);
    assert_eq!(
        status["revocation"]["graceUntil"],
        ren3_shared::timestamp::format(grace_until)
    );
    assert_eq!(status["revocation"]["keyId"], issuer().key_id().to_string());
    assert!(app.state.license().has_feature("ingest"));

    // Any payload of the revoked key is refused now, the installed one too.
    let before = (app.dump().await, app.installed());
    let installed_again = app.licenses().await[0].token.clone();
    let fresh = crate::support::sign(&answer(&request, 3));
    for (n, payload) in [installed_again, fresh].iter().enumerate() {
        let reply = app.import(&key(), payload).await;
        reply.assert_problem(StatusCode::BAD_REQUEST, "key_revoked", &format!("{n}."));
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains("register again"), "{n}. {detail}");
        assert_eq!((app.dump().await, app.installed()), before, "{n}.");
    }

    // Past the grace period: refused, with what to do.
    app.set_now(grace_until);
    let check = app.state.license().check();
    assert_eq!(check.refusal().map(|r| r.code()), Some("key_revoked"));
    assert!(!app.state.license().has_feature("ingest"));
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "key_revoked", "{status}");
    assert_eq!(status["reasonCode"], "key_revoked", "{status}");
    assert_eq!(status["licensed"], false);
    assert_eq!(status["revocation"]["inGrace"], false);
    assert!(
        status["nextAction"]
            .as_str()
            .unwrap()
            .contains("POST /license/register"),
        "{status}"
    );
    // Winding the clock back does not reopen the grace period.
    app.set_now(NOW);
    assert_eq!(
        app.state.license().check().refusal().map(|r| r.code()),
        Some("key_revoked")
    );

    // The way out: a payload signed with a current key.
    app.set_now(grace_until);
    let request = app.register(&key()).await;
    let reply = app
        .import(
            &key(),
            &next.sign_payload(&answer(&request, 4)).unwrap().token(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(app.state.license().is_licensed());
    assert_eq!(reply.json["revocation"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_list_newer_at_start_up_applies_to_the_installed_license() {
    let app = TestApp::new().await;
    app.install(1).await;
    let next = vendor(22, 2, &[(issuer().key_id(), NOW - 2 * DAY, NOW - DAY)]);
    let request = app.register(&key()).await;
    // Refused for another key, but its list (grace already over) is kept.
    app.import(
        &other_key(),
        &next.sign_payload(&answer(&request, 2)).unwrap().token(),
    )
    .await;
    assert_eq!(
        app.get_status().await.json["state"],
        "key_revoked",
        "applied at once"
    );
    let app = app.restart().await;
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "key_revoked", "{status}");
    assert_eq!(status["trust"]["revocationListVersion"], 2);
}

#[tokio::test]
async fn deleting_the_stored_list_while_stopped_does_not_lower_the_effective_version() {
    let app = TestApp::new().await;
    app.install(1).await;
    let next = vendor(23, 2, &[(issuer().key_id(), NOW, NOW)]);
    let request = app.register(&key()).await;
    let reply = app
        .import(
            &key(),
            &next.sign_payload(&answer(&request, 2)).unwrap().token(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(app.stored_list_version().await, Some(2));

    // (case, what the operator does to the store while it is stopped)
    type Edit = fn(&rusqlite::Connection);
    let cases: [(&str, Edit); 2] = [
        ("1. the row deleted", |conn| {
            conn.execute("DELETE FROM revocation_list", []).unwrap();
        }),
        ("2. an older list written over it", |conn| {
            let old = std::fs::read_to_string(ren3_testkit::fixture("revocations.token")).unwrap();
            conn.execute(
                "UPDATE revocation_list SET version = 1, token = ?1",
                [old.trim()],
            )
            .unwrap();
        }),
    ];
    let mut app = app;
    for (context, edit) in cases {
        app = app.restart_after_editing(edit).await;
        assert_eq!(app.revocation_list_version().await, 2, "{context}");
        assert_eq!(
            app.stored_list_version().await,
            Some(2),
            "{context}: the row holds the newest list again"
        );
        // The revoked key is still refused.
        let request = app.register(&key()).await;
        let before = app.licenses().await;
        let reply = app
            .import(&key(), &crate::support::sign(&answer(&request, 3)))
            .await;
        reply.assert_problem(StatusCode::BAD_REQUEST, "key_revoked", context);
        assert_eq!(app.licenses().await, before, "{context}");
    }
}

/// A leaked key, certified and not yet revoked, signs the highest serial
/// there is, and the client imports it before any list names the key.
async fn install_the_highest_serial_of_a_leaked_key(app: &TestApp, seed: u8) -> PayloadSigner {
    let leaked = vendor(seed, 1, &[]);
    let request = app.register(&key()).await;
    let reply = app
        .import(
            &key(),
            &leaked
                .sign_payload(&answer(&request, u64::MAX))
                .unwrap()
                .token(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    leaked
}

#[tokio::test]
async fn a_revoked_keys_payload_with_the_highest_serial_does_not_lock_out_later_payloads() {
    let app = TestApp::new().await;
    let leaked = install_the_highest_serial_of_a_leaked_key(&app, 24).await;

    // Before the key is revoked, a genuine lower serial is a downgrade.
    let request = app.register(&key()).await;
    let genuine = issuer().sign_payload(&answer(&request, 5)).unwrap().token();
    let reply = app.import(&key(), &genuine).await;
    reply.assert_problem(
        StatusCode::CONFLICT,
        "downgrade_rejected",
        "not revoked yet",
    );

    // The vendor revokes it; the list reaches the client in a payload.
    let next = vendor(25, 2, &[(leaked.key_id(), NOW, NOW)]);
    let request = app.register(&key()).await;
    let reply = app
        .import(
            &key(),
            &next.sign_payload(&answer(&request, 6)).unwrap().token(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(app.installed().unwrap().license.serial, 6);
    assert!(app.state.license().is_licensed());
}

#[tokio::test]
async fn a_revoked_keys_installed_highest_serial_does_not_lock_out_the_list_bearer_either() {
    let app = TestApp::new().await;
    let leaked = install_the_highest_serial_of_a_leaked_key(&app, 26).await;
    // The list arrives in a refused import (another license key); then a
    // genuine payload of a lower serial, carrying an older list, installs.
    let next = vendor(27, 2, &[(leaked.key_id(), NOW, NOW + DAY)]);
    let request = app.register(&key()).await;
    app.import(
        &other_key(),
        &next.sign_payload(&answer(&request, 7)).unwrap().token(),
    )
    .await
    .assert_problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "license_key_mismatch",
        "carrier",
    );
    let genuine = issuer().sign_payload(&answer(&request, 7)).unwrap().token();
    let reply = app.import(&key(), &genuine).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(app.installed().unwrap().license.serial, 7);
    assert_eq!(app.revocation_list_version().await, 2);
}
