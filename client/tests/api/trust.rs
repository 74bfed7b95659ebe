//! Trust is the build's: the root pinned at build time, shown in the
//! status, and nothing a customer sets at run time adds to it.

use axum::http::StatusCode;
use ren3_shared::{IssuerKey, RootKey, TrustRoot};
use ren3_testkit::chain;
use serde_json::json;

use crate::support::{
    DAY, NOW, TestApp, answer, issuer, key, path_text, rogue_issuer, sign, test_only_root,
    write_file,
};

#[tokio::test]
async fn status_names_the_pinned_test_only_root_and_the_list_version() {
    let fixture = std::fs::read_to_string(ren3_testkit::fixture("TEST-ONLY-root.pub")).unwrap();
    let pinned = TrustRoot::parse_public_file(&fixture).unwrap();
    assert_eq!(pinned, test_only_root());

    let app = TestApp::new().await;
    let expected = |version: u64| {
        json!({
            "root": pinned.fingerprint().to_string(),
            "pinned": true,
            "revocationListVersion": version,
        })
    };
    assert_eq!(app.get_status().await.json["trust"], expected(0));
    assert!(app.state.trust().is_pinned());
    assert_eq!(
        app.state.trust().floor_version(),
        0,
        "no floor in test builds"
    );
    app.install(1).await;
    assert_eq!(app.get_status().await.json["trust"], expected(1));

    let disabled = TestApp::disabled().await;
    assert_eq!(disabled.get_status().await.json["trust"], expected(0));
}

#[tokio::test]
async fn a_payload_from_a_self_made_root_is_refused_and_changes_nothing() {
    let app = TestApp::new().await;
    app.install(1).await;
    let request = app.register(&key()).await;
    // The customer's own root, with a list of a high version that revokes
    // the vendor's key: neither may count.
    let root = RootKey::from_seed(&[0x71; 32]);
    let list = chain::revocations(&root, 99, &[(issuer().key_id(), NOW, NOW)]);
    let forger = chain::signer(&root, IssuerKey::from_seed(&[0x72; 32]), list);
    let mut license = answer(&request, 999);
    license.features = vec!["everything".into()];
    license.limits.insert("max-sources".into(), 999_999);
    license.expires_at = None;
    for (n, signer) in [forger, rogue_issuer()].iter().enumerate() {
        let before = (app.dump().await, app.installed());
        let reply = app
            .import(&key(), &signer.sign_payload(&license).unwrap().token())
            .await;
        reply.assert_problem(StatusCode::BAD_REQUEST, "untrusted_root", &format!("{n}."));
        assert_eq!((app.dump().await, app.installed()), before, "{n}.");
        assert_eq!(app.revocation_list_version().await, 1, "{n}.");
        assert!(app.state.license().is_licensed(), "{n}.");
        assert!(!app.state.license().has_feature("everything"), "{n}.");
    }
    // The request it tried to answer is still answerable by the vendor.
    let reply = app.import(&key(), &sign(&answer(&request, 2))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// A program embedding the library has the configuration API and nothing
/// else: every variable a customer could try (the old trust file, the
/// build's and the development build's root variables, a floor) leaves the
/// trust this build compiled in.
#[tokio::test]
async fn a_program_embedding_the_library_cannot_add_trust_through_any_variable() {
    let rogue = rogue_issuer();
    let app = TestApp::new().await;
    // What a customer writes: a file in the old trusted-keys format naming
    // their own key, and the variable pointing at it.
    let file = write_file(
        app.dir.path(),
        "trusted-keys.json",
        &json!({
            "format": "ren3-trusted-keys-v1",
            "keys": [{
                "keyId": rogue.key_id().to_string(),
                "publicKey": rogue.certificate().body.public_key.to_string(),
                "createdAt": NOW - DAY,
                "retiredAt": null,
            }],
        })
        .to_string(),
    );
    // The warning itself is checked where it is deterministic: in the
    // configuration (`config::tests`) and on the real binary's stderr
    // (`tests/e2e/trust.rs`); a thread-local log capture here raced with
    // tracing's per-callsite interest cache.
    let rogue_root = write_file(
        app.dir.path(),
        "root.pub",
        &RootKey::from_seed(&[0x73; 32])
            .trust_root()
            .to_public_file(),
    );
    let file = path_text(&file);
    let rogue_root = path_text(&rogue_root);
    let variables = [
        ("license_trusted_keys", file.as_str()),
        ("REN3_TRUST_ROOT", rogue_root.as_str()),
        ("REN3_DEV_TRUST_ROOT", rogue_root.as_str()),
        ("REN3_REVOCATION_FLOOR", file.as_str()),
        ("REN3_PINNED_TRUSTED_KEYS", file.as_str()),
    ];
    let config = ren3_client::Config::from_lookup(|name| {
        variables
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| (name == "enable_offline_license").then(|| "true".to_owned()))
            .or_else(|| (name == "client_device_id").then(|| crate::support::DEVICE_ID.to_owned()))
    })
    .unwrap();
    assert_eq!(*config.trust().root(), test_only_root());
    assert!(config.trust().is_pinned());
    let app = app.restart_with(&variables).await;

    let request = app.register(&key()).await;
    let before = (app.dump().await, app.installed());
    let reply = app
        .import(
            &key(),
            &rogue.sign_payload(&answer(&request, 999)).unwrap().token(),
        )
        .await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "untrusted_root", "forged");
    assert_eq!((app.dump().await, app.installed()), before);
    assert!(!app.state.license().is_licensed());
    let status = app.get_status().await.json;
    assert_eq!(status["trust"]["pinned"], true);
    assert_eq!(
        status["trust"]["root"],
        test_only_root().fingerprint().to_string()
    );
}
