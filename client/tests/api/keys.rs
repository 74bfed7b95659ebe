//! Key rotation on the client: several trusted keys, retired keys and
//! unknown keys, at import and when the stored license is checked again at
//! start-up.

use axum::http::StatusCode;
use ren3_shared::IssuerKey;

use crate::support::{
    DAY, NOW, TestApp, answer, issuer, key, other_device_id, path_text, rogue_issuer,
    write_trust_file_with_retirement,
};

fn new_issuer() -> IssuerKey {
    IssuerKey::from_seed(&[13u8; 32])
}

/// A client trusting the current key and the new one, with the current key
/// retired at `retired_at` if given.
async fn rotating_app(retired_at: Option<i64>) -> TestApp {
    let app = TestApp::new().await;
    let old = issuer();
    let new = new_issuer();
    let trust = write_trust_file_with_retirement(
        &app.dir,
        "rotating.json",
        &[(&old, retired_at), (&new, None)],
    );
    app.restart_with(&[("license_trusted_keys", &path_text(&trust))])
        .await
}

#[tokio::test]
async fn import_accepts_every_trusted_key_and_refuses_unknown_and_retired_ones() {
    let app = rotating_app(Some(NOW - 10)).await;
    let request = app.register(&key()).await;
    let newer = app.register(&key()).await;
    let good = answer(&request, 1);
    let before_retirement = {
        let mut l = good.clone();
        l.issued_at = NOW - 20;
        l.not_before = NOW - 20;
        l
    };
    // (case, signer, license, Ok(()) or Err(code))
    let cases = [
        (
            "1. unknown key",
            rogue_issuer(),
            good.clone(),
            Err("unknown_key"),
        ),
        ("2. retired key", issuer(), good.clone(), Err("key_retired")),
        (
            "3. retired key, issued before",
            issuer(),
            before_retirement,
            Ok(()),
        ),
        ("4. the new key", new_issuer(), answer(&newer, 2), Ok(())),
    ];
    for (context, signer, license, expected) in cases {
        let before = (app.dump().await, app.installed());
        let payload = signer.sign_payload(&license).unwrap().token();
        let reply = app.import(&key(), &payload).await;
        match expected {
            Ok(()) => assert_eq!(reply.status, StatusCode::OK, "{context}: {}", reply.text),
            Err(code) => {
                reply.assert_problem(StatusCode::BAD_REQUEST, code, context);
                assert_eq!((app.dump().await, app.installed()), before, "{context}");
            }
        }
    }
    let installed = app.installed().unwrap();
    assert_eq!(installed.key_id, new_issuer().key_id());
    assert_eq!(
        app.get_status().await.json["keyId"],
        new_issuer().key_id().to_string()
    );
}

#[tokio::test]
async fn stored_license_is_checked_against_the_trust_file_at_start_up() {
    // (case, trust file: the signing key retired at, or removed; state code)
    let cases: [(&str, Option<Option<i64>>, &str); 4] = [
        ("1. still trusted", Some(None), "valid"),
        ("2. retired after issuing", Some(Some(NOW + DAY)), "valid"),
        (
            "3. retired before issuing",
            Some(Some(NOW - DAY)),
            "key_retired",
        ),
        ("4. removed", None, "unknown_key"),
    ];
    for (context, signing_key, code) in cases {
        let app = TestApp::new().await;
        app.install(1).await;
        let before = app.dump().await;
        let old = issuer();
        let new = new_issuer();
        let keys: Vec<(&IssuerKey, Option<i64>)> = match signing_key {
            Some(retired_at) => vec![(&old, retired_at), (&new, None)],
            None => vec![(&new, None)],
        };
        let trust = write_trust_file_with_retirement(&app.dir, "next.json", &keys);
        let app = app
            .restart_with(&[("license_trusted_keys", &path_text(&trust))])
            .await;
        let status = app.get_status().await.json;
        assert_eq!(status["reasonCode"], code, "{context}: {status}");
        let licensed = code == "valid";
        assert_eq!(app.state.license().is_licensed(), licensed, "{context}");
        assert_eq!(status["licensed"], licensed, "{context}");
        assert_eq!(status["keyId"], old.key_id().to_string(), "{context}");
        assert_eq!(status["deviceMatches"], true, "{context}");
        assert_eq!(
            app.dump().await,
            before,
            "{context}: the store is unchanged"
        );
        if !licensed {
            assert_eq!(status["state"], "unlicensed", "{context}");
            assert!(
                status["nextAction"]
                    .as_str()
                    .unwrap()
                    .contains("trusted-keys file"),
                "{context}: {status}"
            );
        }
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
