//! The signing key's part in issuing: a missing private key, a key without
//! a certificate, revoked or ended, and the revocation list a payload carries.

use super::*;

/// Issues, expecting a refusal with `code` that changed nothing, and
/// the dry run to report the same failure on its signing-key line.
fn refused_for_signing(t: &mut TestStore, at: i64, code: &str, says: &str) {
    let key = t.license(1);
    let device = t.device(&key);
    let text = request(&key, &device, &installation(7));
    let err = refused(t, &text, at);
    assert_eq!(err.code(), code, "{err}");
    assert!(err.to_string().contains(says), "{err}");
    let report = check(&t.store, &text, at).unwrap();
    let line = report
        .checks
        .iter()
        .find(|c| c.check == Check::SigningKey)
        .unwrap();
    assert!(
        matches!(&line.verdict, Verdict::Fail { code: c, .. } if *c == code),
        "{line:?}"
    );
    assert_eq!(report.first_failure().unwrap().0, code);
}

#[test]
fn issue_refuses_without_the_private_key_and_changes_nothing() {
    let (mut t, key, device) = one_device(1);
    for entry in std::fs::read_dir(&t.paths.keys_dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let err = refused(&mut t, &request(&key, &device, &installation(1)), NOW);
    assert_eq!(err.code(), "signing_failed", "{err}");
}

#[test]
fn a_key_without_a_certificate_cannot_issue_and_says_how_to_get_one() {
    let mut t = TestStore::new();
    // A store whose only key has no certificate (as one made before
    // keys were certified would be).
    t.store
        .write(|tx| {
            tx.execute("DELETE FROM certificates", [])
                .map_err(StoreError::from)
        })
        .unwrap();
    refused_for_signing(
        &mut t,
        NOW,
        "key_not_certified",
        "keys certification-request",
    );
}

#[test]
fn a_revoked_signing_key_cannot_issue() {
    let mut t = TestStore::new();
    let current = signing_keys::list(&t.store).unwrap()[0].key.key_id;
    let list = t.revocations(2, &[current]);
    chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW).unwrap();
    refused_for_signing(&mut t, NOW, "key_revoked", "revoked");
}

#[test]
fn a_request_answered_by_a_key_revoked_since_is_refused_and_a_new_request_is_answered() {
    let (mut t, key, device) = one_device(1);
    let installation = installation(1);
    let text = request(&key, &device, &installation);
    let first = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    let revoked = first.payload.key_id;
    // The vendor moves to a new certified key and revokes the one that
    // answered: its payload would now be refused by the client.
    signing_keys::rotate_certified(
        &mut t.store,
        &t.keys,
        &actor(),
        AtRest::Plain,
        &t.root,
        10,
        NOW + 1,
    )
    .unwrap();
    let list = t.revocations(2, &[revoked]);
    chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW + 1).unwrap();

    let err = refused(&mut t, &text, NOW + 2);
    assert_eq!(err.code(), "answered_by_revoked_key", "{err}");
    let said = err.to_string();
    assert!(said.contains(&revoked.to_string()), "{said}");
    assert!(
        said.contains("version 2") && said.contains("new request"),
        "{said}"
    );
    let report = check(&t.store, &text, NOW + 2).unwrap();
    assert!(
        report
            .checks
            .iter()
            .any(|line| line.check == Check::SigningKey
                && matches!(&line.verdict, Verdict::Fail { code, .. } if *code == "answered_by_revoked_key")),
        "{report:?}"
    );

    // The same installation's next request is answered by the new key.
    let next = numbered_request(&key, &device, &installation, 2);
    let second = issue(&mut t.store, &t.keys, &actor(), &next, NOW + 2).unwrap();
    assert!(!second.repeated);
    assert_ne!(second.payload.key_id, revoked);
    assert!(second.payload.license.serial > first.payload.license.serial);
}

#[test]
fn a_key_whose_certificate_has_ended_cannot_issue() {
    let mut t = TestStore::new();
    let after = NOW + i64::from(signing_keys::DEFAULT_KEY_VALID_DAYS) * 86_400;
    refused_for_signing(
        &mut t,
        after,
        "certificate_not_current",
        "does not cover now",
    );
    // One second before its end it still signs.
    let key = t.license(1);
    let device = t.device(&key);
    let text = request(&key, &device, &installation(8));
    issue(&mut t.store, &t.keys, &actor(), &text, after - 1).unwrap();
}

#[test]
fn a_payload_issued_after_a_revocation_list_install_carries_it() {
    let (mut t, key, device) = one_device(2);
    let text = request(&key, &device, &installation(1));
    let before = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    assert_eq!(before.payload.revocations.version(), 1);
    let stranger = ren3_shared::IssuerKey::from_seed(&[9; 32]).key_id();
    let list = t.revocations(2, &[stranger]);
    chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW).unwrap();
    let second = ren3_shared::LicenseRequest::new(
        device.clone(),
        &key,
        ren3_shared::Product {
            name: "ren3-ingestor".into(),
            version: "1.0.1".into(),
        },
        NOW + 1,
    )
    .unwrap()
    .sign(&installation(1))
    .unwrap()
    .token();
    assert_ne!(text, second);
    let after = issue(&mut t.store, &t.keys, &actor(), &second, NOW + 1).unwrap();
    let opened = VerifiedPayload::open(&after.payload.token(), &t.trust_root()).unwrap();
    assert_eq!(opened.revocations.version(), 2);
    assert!(opened.revocations.find(&stranger).is_some());
    // The request answered before the install gets its stored payload,
    // with the list it was signed with.
    let again = issue(&mut t.store, &t.keys, &actor(), &text, NOW + 2).unwrap();
    assert!(again.repeated);
    assert_eq!(again.payload.revocations.version(), 1);
}
