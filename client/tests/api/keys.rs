//! Issuer keys on the client: any key the pinned root certified signs
//! payloads inside its certificate's window; a key under another root
//! never does; a stored license this build cannot verify is reported with
//! a code and a next action.

use axum::http::StatusCode;
use ren3_shared::{IssuerKey, License, PayloadSigner, RootKey};
use ren3_testkit::chain;

use crate::support::{
    DAY, NOW, TestApp, answer, assemble_token, disassemble_token, issuer, key, other_device_id,
    rogue_issuer,
};

/// A vendor key of `seed`, certified by the pinned root for
/// `[not_before, not_after)`, carrying the fixtures' revocation list.
fn certified(seed: u8, not_before: i64, not_after: i64) -> PayloadSigner {
    let key = IssuerKey::from_seed(&[seed; 32]);
    let certificate = chain::certify(
        &ren3_testkit::test_only_root_key(),
        &key,
        not_before,
        not_after,
    );
    PayloadSigner::new(key, certificate, issuer().revocations().clone()).unwrap()
}

/// `license` signed by the key of `seed` under a certificate for
/// `[not_before, not_after)`, even where that window does not cover its
/// `issuedAt`: the terms are checked by the same key under a window that
/// does, as a vendor whose clock is wrong, or an attacker holding the key,
/// could sign them.
fn signed_in_window(seed: u8, not_before: i64, not_after: i64, license: License) -> String {
    let wide = certified(seed, chain::NOT_BEFORE, ren3_shared::timestamp::MAX);
    let terms = wide.terms(license).unwrap();
    certified(seed, not_before, not_after)
        .sign_terms(terms)
        .token()
}

#[tokio::test]
async fn import_accepts_certified_keys_inside_their_window_and_refuses_every_other_chain() {
    let app = TestApp::new().await;
    let request = app.register(&key()).await;
    let newer = app.register(&key()).await;
    let good = answer(&request, 1);
    let issued_before_the_end = {
        let mut l = good.clone();
        l.issued_at = NOW - 20;
        l.not_before = NOW - 20;
        l
    };
    let stranger = RootKey::from_seed(&[0x70; 32]);
    let vendor_key_under_a_stranger = chain::signer(
        &stranger,
        ren3_testkit::test_only_issuer_key(),
        chain::revocations(&stranger, 1, &[]),
    );
    // (case, payload, Ok(()) or Err(code))
    let cases = [
        (
            "1. a root of the customer's own",
            rogue_issuer().sign_payload(&good).unwrap().token(),
            Err("untrusted_root"),
        ),
        (
            "2. the vendor's own key, certified by another root",
            vendor_key_under_a_stranger
                .sign_payload(&good)
                .unwrap()
                .token(),
            Err("untrusted_root"),
        ),
        (
            "3. issued after the key's window ended",
            signed_in_window(13, chain::NOT_BEFORE, NOW - 10, good.clone()),
            Err("outside_certificate"),
        ),
        (
            "4. issued before the key's window begins",
            signed_in_window(14, NOW + DAY, NOW + 2 * DAY, good.clone()),
            Err("outside_certificate"),
        ),
        (
            "5. issued before the key's window ended",
            signed_in_window(13, chain::NOT_BEFORE, NOW - 10, issued_before_the_end),
            Ok(13),
        ),
        (
            "6. another certified key",
            certified(15, chain::NOT_BEFORE, NOW + DAY)
                .sign_payload(&answer(&newer, 2))
                .unwrap()
                .token(),
            Ok(15),
        ),
    ];
    for (context, payload, expected) in cases {
        let before = (app.dump().await, app.installed());
        let reply = app.import(&key(), &payload).await;
        match expected {
            Ok(seed) => {
                assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.text);
                let key_id = IssuerKey::from_seed(&[seed; 32]).key_id();
                assert_eq!(app.installed().unwrap().key_id, key_id, "{context}");
                assert_eq!(
                    app.get_status().await.json["keyId"],
                    key_id.to_string(),
                    "{context}"
                );
            }
            Err(code) => {
                reply.assert_problem(StatusCode::BAD_REQUEST, code, context);
                assert_eq!((app.dump().await, app.installed()), before, "{context}");
            }
        }
    }
}

#[tokio::test]
async fn stored_license_this_build_cannot_verify_is_reported_and_kept() {
    fn v2(token: &str) -> String {
        let (_, message, signature) = disassemble_token(token);
        let message = String::from_utf8(message).unwrap().replacen(
            "ren3/license-payload/v3",
            "ren3/license-payload/v2",
            1,
        );
        assemble_token("ren3-payload-v2.", message.as_bytes(), &signature)
    }
    // (case, what the stored token becomes, the cause in the message)
    type Edit = fn(&str, &License) -> String;
    let cases: [(&str, Edit, &str); 3] = [
        (
            "1. a payload of the previous format",
            |token, _| v2(token),
            "version 2",
        ),
        (
            "2. the same license under another root",
            |_, license| rogue_issuer().sign_payload(license).unwrap().token(),
            "root",
        ),
        (
            "3. a damaged row",
            |token, _| token[..token.len() - 3].to_owned(),
            "damaged",
        ),
    ];
    for (context, edit, cause) in cases {
        let app = TestApp::new().await;
        let token = app.install(1).await;
        let license = app.installed().unwrap().license.clone();
        let replacement = edit(&token, &license);
        let app = app
            .restart_after_editing(|conn| {
                conn.execute("UPDATE licenses SET token = ?1", [&replacement])
                    .unwrap();
            })
            .await;
        let before = app.dump().await;
        let status = app.get_status().await.json;
        assert_eq!(status["state"], "unlicensed", "{context}: {status}");
        assert_eq!(status["reasonCode"], "license_unverifiable", "{context}");
        assert_eq!(status["licensed"], false, "{context}");
        assert!(!app.state.license().is_licensed(), "{context}");
        let reason = status["reason"].as_str().unwrap();
        assert!(reason.contains(cause), "{context}: {reason}");
        let next_action = status["nextAction"].as_str().unwrap();
        assert!(
            next_action.contains("register again")
                && next_action.contains("POST /license/register"),
            "{context}: {next_action}"
        );
        assert_eq!(
            app.state.stored_problem().map(|p| p.code),
            Some("license_unverifiable"),
            "{context}"
        );
        // The row stays for the operator to see, and a new license can be
        // imported over it.
        let app = app.restart().await;
        assert_eq!(
            app.dump().await,
            before,
            "{context}: the store is unchanged"
        );
        app.install(2).await;
        assert!(app.state.license().is_licensed(), "{context}");
    }
}

#[tokio::test]
async fn stored_license_for_another_device_id_says_the_device_does_not_match() {
    let app = TestApp::new().await;
    app.install(1).await;
    let app = app
        .restart_with(&[("client_device_id", other_device_id().as_str())])
        .await;
    let status = app.get_status().await.json;
    assert_eq!(status["state"], "unlicensed", "{status}");
    assert_eq!(status["reasonCode"], "device_id_mismatch");
    assert_eq!(status["deviceMatches"], false);
    assert_eq!(status["keyId"], issuer().key_id().to_string());
}
