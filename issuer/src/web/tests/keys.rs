//! Signing keys through the console: the dashboard, the trust file and
//! certificates, rotating and retiring, and rotating to an encrypted key.

use super::*;

#[tokio::test]
async fn dashboard_keys_and_trust_file_show_what_the_store_holds() {
    let mut console = Console::new();
    console.log_in().await;
    console.license(NewLicense {
        customer: "Soon Expiring".into(),
        expires_at: Some(NOW + 10 * 86_400),
        ..acme(1)
    });
    console.license(NewLicense {
        customer: "Far Future".into(),
        expires_at: Some(NOW + 100 * 86_400),
        ..acme(1)
    });
    let dashboard = console.get("/").await;
    assert!(dashboard.body.contains("<strong>2</strong> licenses"));
    assert!(dashboard.body.contains("Soon Expiring") && !dashboard.body.contains("Far Future"));

    let keys = console.get("/keys").await;
    let listed = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert!(keys.body.contains(&listed[0].key.key_id.to_string()));
    let root = console.t.trust_root();
    assert!(keys.body.contains(&root.fingerprint().to_string()));
    assert!(
        keys.body.contains("version 1, 0 revoked keys"),
        "{}",
        keys.body
    );
    let file = console.get("/keys/root.pub").await;
    assert_eq!(file.body, root.to_public_file());
    assert_eq!(
        ren3_shared::TrustRoot::parse_public_file(&file.body).unwrap(),
        root
    );
    let key_id = listed[0].key.key_id;
    let certificate = console
        .get(&format!("/keys/{key_id}/certificate.token"))
        .await;
    let opened = ren3_shared::Certificate::open(certificate.body.trim(), &root).unwrap();
    assert_eq!(opened.key_id(), key_id);
    let list = console.get("/keys/revocations.token").await;
    let opened = ren3_shared::RevocationList::open(list.body.trim(), &root).unwrap();
    assert_eq!(opened.version(), 1);
    // A key without a certificate has none to download.
    let stranger = ren3_shared::IssuerKey::from_seed(&[9; 32]).key_id();
    let missing = console
        .get(&format!("/keys/{stranger}/certificate.token"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_keys_page_rotates_and_retires_with_confirmation_but_never_the_last_key() {
    let mut console = Console::new();
    console.log_in().await;
    let csrf = console.csrf.clone();
    let first = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap()[0]
        .key
        .key_id;
    let page = console.get("/keys").await;
    assert!(page.body.contains("signs new payloads"));
    assert!(page.body.contains("<td>plain</td>"));
    assert!(
        !page.body.contains("Retire</button>"),
        "the only key offers no Retire"
    );

    // 1. the only key, even asked directly
    let before = console.t.snapshot();
    let audit_rows = console.audit_actions().len();
    let last = console
        .post(
            &format!("/keys/{first}/retire"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        last.body
            .contains("the only certified key that is not retired"),
        "{}",
        last.body
    );
    assert_eq!(console.t.snapshot(), before);
    assert_eq!(
        console.audit_since(audit_rows),
        [alice("key.retire", "refused")]
    );

    let files = console.key_files().len();
    let audit_rows = console.audit_actions().len();
    let rotated = console.post("/keys/rotate", &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let keys = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert_eq!(keys.len(), 2);
    let new = keys[1].key.key_id;
    assert!(!keys[1].signs_new_payloads && keys[0].signs_new_payloads);
    assert_eq!(keys[1].certificate, None);
    assert_eq!(rotated.location(), format!("/keys?rotated={new}"));
    assert_eq!(console.key_files().len(), files + 1);
    assert_eq!(console.audit_since(audit_rows), [alice("key.rotate", "ok")]);
    let page = console.get(rotated.location()).await;
    assert!(
        page.body.contains(&format!(
            "Signing key {new} was created. It signs nothing until"
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("awaiting certificate"), "{}", page.body);
    assert_eq!(page.body.matches("Retire</button>").count(), 2);

    // 2. the only certified key, while the new one awaits its certificate
    let before = console.t.snapshot();
    let early = console
        .post(
            &format!("/keys/{first}/retire"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(console.t.snapshot(), before);
    // The root, offline, certifies the new key; the certificate is installed.
    let request = ren3_issuer_core::signing_keys::certification_request(
        &console.t.store,
        &console.t.keys,
        &new,
        30,
        NOW,
    )
    .unwrap();
    let certificate = console.t.root.certify(&request, NOW).unwrap();
    ren3_issuer_core::chain::install_certificate(
        &mut console.t.store,
        &ren3_issuer_core::audit::Actor::cli(),
        &certificate.token(),
        NOW,
    )
    .unwrap();
    let keys = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert!(keys[1].signs_new_payloads && !keys[0].signs_new_payloads);

    // 3. not confirmed
    let before = console.t.snapshot();
    let unconfirmed = console
        .post(&format!("/keys/{first}/retire"), &[("csrf", &csrf)])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.body.contains("was not retired"));
    assert_eq!(console.t.snapshot(), before);

    let audit_rows = console.audit_actions().len();
    let retired = console
        .post(
            &format!("/keys/{first}/retire"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(retired.status, StatusCode::SEE_OTHER, "{}", retired.body);
    let keys = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert_eq!(keys[0].key.retired_at, Some(NOW));
    assert_eq!(console.audit_since(audit_rows), [alice("key.retire", "ok")]);
    let page = console.get(retired.location()).await;
    assert!(
        page.body
            .contains(&format!("Signing key {first} was retired")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<span class=\"status revoked\">retired</span>")
    );

    // 3. retired already; 4. unknown; 5. not a key id
    let stranger = ren3_shared::IssuerKey::from_seed(&[9; 32]).key_id();
    let before = console.t.snapshot();
    for (name, id, status, text) in [
        (
            "3. retired already",
            first.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "retired already",
        ),
        (
            "4. unknown",
            stranger.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "there is no signing key",
        ),
        (
            "5. not a key id",
            "nonsense".to_owned(),
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let answer = console
            .post(
                &format!("/keys/{id}/retire"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(answer.status, status, "{name}");
        assert!(answer.body.contains(text), "{name}: {}", answer.body);
    }
    assert_eq!(console.t.snapshot(), before);

    // A made-up notice link says nothing.
    let page = console.get(&format!("/keys?rotated={stranger}")).await;
    assert!(!page.body.contains("was created"));
}

#[tokio::test]
async fn rotating_encrypted_uses_the_console_passphrase_and_refuses_without_one() {
    use ren3_issuer_core::passphrase::{Passphrase, PassphraseSource};

    let mut without = Console::with_keys(|keys| keys.with_passphrase(PassphraseSource::none()));
    without.log_in().await;
    let csrf = without.csrf.clone();
    let (before, files) = (without.t.snapshot(), without.key_files());
    let audit_rows = without.audit_actions().len();
    let refused = without
        .post("/keys/rotate", &[("csrf", &csrf), ("encrypt", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("REN3_ISSUER_PASSPHRASE"),
        "{}",
        refused.body
    );
    assert_eq!(without.t.snapshot(), before);
    assert_eq!(without.key_files(), files, "no key file is left behind");
    assert_eq!(
        without.audit_since(audit_rows),
        [alice("key.rotate", "refused")]
    );

    let cheap = ren3_issuer_core::testing::CHEAP;
    let mut with = Console::with_keys(|keys| {
        keys.with_passphrase(PassphraseSource::fixed(
            Passphrase::new("console passphrase".into()).unwrap(),
        ))
        .with_cost(cheap)
    });
    with.log_in().await;
    let csrf = with.csrf.clone();
    let rotated = with
        .post("/keys/rotate", &[("csrf", &csrf), ("encrypt", "yes")])
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let new = ren3_issuer_core::signing_keys::list(&with.t.store).unwrap()[1]
        .key
        .key_id;
    assert_eq!(
        with.t.keys.at_rest(&new).unwrap(),
        ren3_issuer_core::keystore::AtRest::Encrypted
    );
    let page = with.get("/keys").await;
    assert!(page.body.contains("<td>encrypted</td>"), "{}", page.body);
}
