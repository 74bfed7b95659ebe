//! The issuance's tests: single and batch issuance, the dry run and every
//! refusal, each leaving the store as it was.

use ren3_shared::{DeviceKey, LicenseKey};

use super::*;
use crate::keystore::AtRest;
use crate::licenses::{self, NewLicense};
use crate::store::StoreError;
use crate::testing::{NOW, TestStore, actor, numbered_request, request};
use crate::{chain, devices, signing_keys};

/// A store with one license of `max_devices` seats and one device.
fn one_device(max_devices: u32) -> (TestStore, LicenseKey, ren3_shared::DeviceId) {
    let mut t = TestStore::new();
    let key = t.license(max_devices);
    let device = t.device(&key);
    (t, key, device)
}

fn installation(n: u8) -> DeviceKey {
    DeviceKey::from_seed(&[n; 32])
}

/// Issues and asserts the refusal changed nothing in the store.
fn refused(t: &mut TestStore, text: &str, at: i64) -> IssueError {
    let before = t.snapshot();
    let err = issue(&mut t.store, &t.keys, &actor(), text, at).unwrap_err();
    assert_eq!(t.snapshot(), before, "{err}");
    err
}

#[test]
fn issue_produces_a_payload_that_verifies_under_the_exported_root() {
    let (mut t, key, device) = one_device(1);
    let installation = installation(1);
    let text = request(&key, &device, &installation);
    let issued = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    assert!(!issued.repeated);

    let exported = chain::stored_root(&t.store)
        .unwrap()
        .unwrap()
        .to_public_file();
    let root = ren3_shared::TrustRoot::parse_public_file(&exported).unwrap();
    assert_eq!(root, t.trust_root());
    let opened = VerifiedPayload::open(&issued.payload.token(), &root).unwrap();
    assert_eq!(opened.revocations.version(), 1);
    assert_eq!(opened.certificate.key_id(), opened.key_id);
    let license = &opened.license;
    let request = VerifiedRequest::open(&text).unwrap();
    assert_eq!(license.customer, "ACME GmbH");
    assert_eq!(license.features, ["ingest"]);
    assert_eq!(license.limits.get("max-sources"), Some(&10));
    // The first serial of a device is the issuance time in microseconds.
    assert_eq!(license.serial, NOW as u64 * SERIALS_PER_SECOND);
    assert_eq!((license.issued_at, license.not_before), (NOW, NOW));
    assert_eq!(license.expires_at, None);
    assert_eq!(license.license_key_fingerprint, key.fingerprint());
    assert_eq!(license.client_device_id, device);
    assert_eq!(license.device_public_key, installation.public_key());
    assert_eq!(license.request_hash, request.hash());

    let details = licenses::show(&t.store, &key).unwrap();
    assert_eq!(
        details.devices[0].public_key,
        Some(installation.public_key())
    );
    assert_eq!(details.issuances.len(), 1);
    assert_eq!(details.issuances[0].payload, issued.payload.token());
}

#[test]
fn issue_carries_grace_and_clock_policy_and_a_renewal_carries_the_new_terms() {
    let mut t = TestStore::new();
    let key = t.license_with(NewLicense {
        customer: "ACME GmbH".into(),
        expires_at: Some(NOW + 86_400),
        grace_seconds: 3 * 86_400,
        clock_policy: ren3_shared::ClockPolicy::Enforcing,
        ..NewLicense::default()
    });
    let device = t.device(&key);
    let first = issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &device, &installation(1)),
        NOW,
    )
    .unwrap()
    .payload
    .license;
    assert_eq!(first.grace_seconds, 3 * 86_400);
    assert_eq!(first.clock_policy, ren3_shared::ClockPolicy::Enforcing);

    licenses::update_with(
        &mut t.store,
        &actor(),
        &key,
        |current| licenses::TermsChange {
            features: vec!["ingest".into(), "reports".into()],
            expires_at: Some(NOW + 400 * 86_400),
            grace_seconds: Some(0),
            clock_policy: Some(ren3_shared::ClockPolicy::Advisory),
            ..licenses::TermsChange::keeping(current)
        },
        NOW + 10,
    )
    .unwrap();
    let renewed = issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &device, &installation(1)),
        NOW + 20,
    )
    .unwrap()
    .payload
    .license;
    assert_eq!(renewed.serial, (NOW + 20) as u64 * SERIALS_PER_SECOND);
    assert_eq!(renewed.features, ["ingest", "reports"]);
    assert_eq!(renewed.expires_at, Some(NOW + 400 * 86_400));
    assert_eq!(
        (renewed.grace_seconds, renewed.clock_policy),
        (0, ren3_shared::ClockPolicy::Advisory)
    );
}

#[test]
fn issue_accepts_an_armoured_and_wrapped_request() {
    let (mut t, key, device) = one_device(1);
    let token = request(&key, &device, &installation(1));
    let mail = format!(
        "Hello,\n\n{}\nRegards\n",
        ren3_shared::Kind::Request.armor(&token)
    );
    assert!(issue(&mut t.store, &t.keys, &actor(), &mail, NOW).is_ok());
}

#[test]
fn issue_twice_returns_same_payload() {
    let (mut t, key, device) = one_device(1);
    let text = request(&key, &device, &installation(1));
    let first = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    let before = t.snapshot();
    let again = issue(&mut t.store, &t.keys, &actor(), &text, NOW + 3_600).unwrap();
    assert!(again.repeated);
    assert_eq!(again.payload.token(), first.payload.token());
    assert_eq!(t.snapshot(), before);
}

/// The dry run of a request answered before says so in one sentence.
/// (Its reason once lost a `\` at a line break, and the console showed
/// "is" followed by 22 spaces.)
#[test]
fn the_dry_run_of_an_answered_request_reads_as_one_sentence() {
    let (mut t, key, device) = one_device(1);
    let text = request(&key, &device, &installation(1));
    issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    let report = check(&t.store, &text, NOW + 60).unwrap();
    assert!(report.answered_before);
    let seats = report
        .checks
        .iter()
        .find(|c| c.check == Check::Seats)
        .unwrap();
    assert_eq!(
        seats.verdict,
        Verdict::Pass {
            reason: format!(
                "this request was answered before (serial {}): the same payload is \
                 returned, no seat or serial is used",
                NOW as u64 * SERIALS_PER_SECOND
            )
        }
    );
    for line in &report.checks {
        let text = format!("{:?}", line.verdict);
        assert!(!text.contains("  "), "a run of spaces in {text}");
    }
}

#[test]
fn issue_gives_the_next_serial_to_a_new_request_from_the_same_installation() {
    // One seat, already taken by this very device: a new request from
    // the same installation still gets a payload.
    let (mut t, key, device) = one_device(1);
    let installation = installation(1);
    let first = request(&key, &device, &installation);
    let second = request(&key, &device, &installation);
    let third = request(&key, &device, &installation);
    let first_serial = issue(&mut t.store, &t.keys, &actor(), &first, NOW)
        .unwrap()
        .payload
        .license
        .serial;
    let next = issue(&mut t.store, &t.keys, &actor(), &second, NOW + 60).unwrap();
    assert!(!next.repeated);
    assert!(next.payload.license.serial > first_serial);
    assert_eq!(next.payload.license.issued_at, NOW + 60);
    // Within the same second, still higher: the serial is never below the
    // device's last one plus one.
    let again = issue(&mut t.store, &t.keys, &actor(), &third, NOW + 60).unwrap();
    assert_eq!(
        again.payload.license.serial,
        next.payload.license.serial + 1
    );
}

#[test]
fn next_serial_is_the_highest_plus_one_or_the_time_in_microseconds() {
    let at = |seconds: i64| seconds as u64 * SERIALS_PER_SECOND;
    let cases: [(&str, u64, i64, Option<i64>, u64); 10] = [
        ("1. a first issuance: the time", 0, NOW, None, at(NOW)),
        (
            "2. serials numbered 1, 2, ... before: the time",
            41,
            NOW,
            None,
            at(NOW),
        ),
        (
            "3. the same second again: one more",
            at(NOW),
            NOW,
            None,
            at(NOW) + 1,
        ),
        (
            "4. a later second: its time",
            at(NOW) + 7,
            NOW + 1,
            None,
            at(NOW + 1),
        ),
        (
            "5. the clock gone back: one more",
            at(NOW),
            NOW - 10,
            None,
            at(NOW) + 1,
        ),
        (
            "6. restored earlier: the time",
            5,
            NOW,
            Some(NOW - 60),
            at(NOW),
        ),
        (
            "7. restored this second: the next second",
            at(NOW) + 9,
            NOW,
            Some(NOW),
            at(NOW + 1),
        ),
        (
            "8. a time from before the restore: after it",
            5,
            NOW - 60,
            Some(NOW),
            at(NOW + 1),
        ),
        ("9. a time before 1970 adds nothing", 5, -1, None, 6),
        (
            "10. a time beyond i64::MAX microseconds adds nothing",
            5,
            i64::MAX,
            Some(i64::MAX),
            6,
        ),
    ];
    for (name, highest, now, restored, expected) in cases {
        assert_eq!(next_serial(highest, now, restored), expected, "{name}");
    }
    // The last second whose microseconds the store can record still counts.
    let last = i64::MAX / SERIALS_PER_SECOND as i64;
    assert_eq!(next_serial(0, last, None), at(last));
    assert_eq!(next_serial(0, last + 1, None), 1);
}

#[test]
fn issue_refuses_a_damaged_request() {
    let (mut t, key, device) = one_device(1);
    let text = request(&key, &device, &installation(1));
    let err = refused(&mut t, &text[..text.len() - 5], NOW);
    assert_eq!(err.code(), "token_damaged", "{err}");
}

#[test]
fn issue_refuses_unknown_license() {
    let (mut t, _, device) = one_device(1);
    let stranger = LicenseKey::generate().unwrap();
    let err = refused(&mut t, &request(&stranger, &device, &installation(1)), NOW);
    assert_eq!(err.code(), "license_unknown", "{err}");
}

#[test]
fn issue_refuses_suspended_license() {
    let (mut t, key, device) = one_device(1);
    licenses::set_status(&mut t.store, &actor(), &key, LicenseStatus::Suspended, NOW).unwrap();
    let err = refused(&mut t, &request(&key, &device, &installation(1)), NOW);
    assert_eq!(err.code(), "license_suspended", "{err}");
    assert!(err.to_string().contains("ACME GmbH"));
}

#[test]
fn issue_refuses_revoked_license_even_for_a_request_answered_before() {
    let (mut t, key, device) = one_device(1);
    let text = request(&key, &device, &installation(1));
    issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    licenses::set_status(&mut t.store, &actor(), &key, LicenseStatus::Revoked, NOW).unwrap();
    let err = refused(&mut t, &text, NOW);
    assert_eq!(err.code(), "license_revoked", "{err}");
}

#[test]
fn issue_refuses_expired_license_from_its_expiry_on() {
    let mut t = TestStore::new();
    let key = t.license_with(NewLicense {
        customer: "ACME GmbH".into(),
        expires_at: Some(NOW + 100),
        max_devices: 1,
        ..NewLicense::default()
    });
    let device = t.device(&key);
    let text = request(&key, &device, &installation(1));
    let err = refused(&mut t, &text, NOW + 100);
    assert_eq!(err.code(), "license_expired", "{err}");
    // One second earlier it is still valid, and the payload expires with
    // the license.
    let issued = issue(&mut t.store, &t.keys, &actor(), &text, NOW + 99).unwrap();
    assert_eq!(issued.payload.license.expires_at, Some(NOW + 100));
}

#[test]
fn issue_refuses_unregistered_device() {
    let mut t = TestStore::new();
    let key = t.license(1);
    let never_added = ren3_shared::DeviceId::generate().unwrap();
    let err = refused(&mut t, &request(&key, &never_added, &installation(1)), NOW);
    assert_eq!(err.code(), "device_unknown", "{err}");
}

#[test]
fn issue_refuses_device_of_another_license() {
    let mut t = TestStore::new();
    let ours = t.license(1);
    let theirs = t.license_with(NewLicense {
        customer: "Globex".into(),
        max_devices: 1,
        ..NewLicense::default()
    });
    let their_device = t.device(&theirs);
    let err = refused(
        &mut t,
        &request(&ours, &their_device, &installation(1)),
        NOW,
    );
    assert_eq!(err.code(), "device_of_other_license", "{err}");
    assert!(err.to_string().contains("Globex"), "{err}");
}

#[test]
fn issue_refuses_other_installation_with_the_same_device_id() {
    let (mut t, key, device) = one_device(2);
    issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &device, &installation(1)),
        NOW,
    )
    .unwrap();
    let err = refused(&mut t, &request(&key, &device, &installation(2)), NOW);
    assert_eq!(err.code(), "device_bound_to_other_installation", "{err}");
    let details = licenses::show(&t.store, &key).unwrap();
    assert_eq!(
        details.devices[0].public_key,
        Some(installation(1).public_key())
    );
}

#[test]
fn issue_refuses_when_no_seat_is_free() {
    let (mut t, key, first) = one_device(1);
    let second = t.device(&key);
    issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &first, &installation(1)),
        NOW,
    )
    .unwrap();
    let err = refused(&mut t, &request(&key, &second, &installation(2)), NOW);
    assert_eq!(err.code(), "no_free_seat", "{err}");
    let details = licenses::show(&t.store, &key).unwrap();
    assert!(!details.devices[1].is_bound());
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

#[test]
fn registering_more_devices_than_seats_is_allowed_but_binding_them_is_not() {
    let (mut t, key, first) = one_device(2);
    let second = t.device(&key);
    let third = devices::add(&mut t.store, &actor(), &key, None, NOW)
        .unwrap()
        .device
        .client_device_id;
    issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &first, &installation(1)),
        NOW,
    )
    .unwrap();
    issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &second, &installation(2)),
        NOW,
    )
    .unwrap();
    let err = refused(&mut t, &request(&key, &third, &installation(3)), NOW);
    assert_eq!(err.code(), "no_free_seat", "{err}");
}

fn audit_rows(t: &TestStore, outcome: &str) -> i64 {
    t.store
        .read(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM audit WHERE action = 'issue' AND result = ?1",
                [outcome],
                |row| row.get(0),
            )
            .map_err(StoreError::from)
        })
        .unwrap()
}

#[test]
fn batch_issues_every_request_in_one_transaction() {
    let mut t = TestStore::new();
    let key = t.license(3);
    let requests: Vec<String> = (1..=3)
        .map(|n| request(&key, &t.device(&key), &installation(n)))
        .collect();
    let commits = t.store.committed_writes();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    assert_eq!(t.store.committed_writes(), commits + 1);

    let trust = t.trust_root();
    for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
        let issued = result.as_ref().unwrap();
        assert!(!issued.repeated, "{n}");
        assert_eq!(
            issued.payload.license.serial,
            NOW as u64 * SERIALS_PER_SECOND,
            "{n}"
        );
        assert_eq!(
            issued.request_id,
            VerifiedRequest::open(text).unwrap().request.request_id,
            "{n}"
        );
        assert!(
            VerifiedPayload::open(&issued.payload.token(), &trust).is_ok(),
            "{n}"
        );
    }
    let details = licenses::show(&t.store, &key).unwrap();
    assert!(details.devices.iter().all(|d| d.is_bound()));
    assert_eq!(details.issuances.len(), 3);
}

#[test]
fn a_large_batch_verified_on_other_threads_answers_in_request_order() {
    // Above the size at which helper threads verify (64), with damaged
    // requests scattered among good ones: every result is the answer to
    // the request at its own position.
    let mut t = TestStore::new();
    let key = t.license(200);
    let requests: Vec<String> = (0..150u8)
        .map(|n| {
            let text = request(&key, &t.device(&key), &installation(n));
            if n % 7 == 3 {
                text[..text.len() - 4].to_owned()
            } else {
                text
            }
        })
        .collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    assert_eq!(results.len(), requests.len());
    for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
        match result {
            Ok(issued) => {
                assert_ne!(n % 7, 3, "{n}: a damaged request was issued");
                let expected = VerifiedRequest::open(text).unwrap();
                assert_eq!(issued.request_id, expected.request.request_id, "{n}");
                assert_eq!(issued.payload.license.request_hash, expected.hash(), "{n}");
            }
            Err(e) => {
                assert_eq!(n % 7, 3, "{n}: {e}");
                assert_eq!(e.code(), "token_damaged", "{n}");
            }
        }
    }
}

#[test]
fn batch_refuses_some_issues_the_rest_and_the_refused_leave_no_trace() {
    let mut t = TestStore::new();
    let key = t.license(2);
    let (first, second, third) = (t.device(&key), t.device(&key), t.device(&key));
    let stranger = LicenseKey::generate().unwrap();
    let good_one = request(&key, &first, &installation(1));
    let cases = [
        ("1. issued", good_one.clone(), None),
        (
            "2. unknown license",
            request(&stranger, &second, &installation(2)),
            Some("license_unknown"),
        ),
        (
            "3. damaged",
            good_one[..good_one.len() - 4].to_owned(),
            Some("token_damaged"),
        ),
        ("4. issued", request(&key, &second, &installation(2)), None),
        (
            "5. no seat left",
            request(&key, &third, &installation(3)),
            Some("no_free_seat"),
        ),
        (
            "6. the first device from another installation, within the batch",
            request(&key, &first, &installation(9)),
            Some("device_bound_to_other_installation"),
        ),
        ("7. the first again", good_one.clone(), None),
    ];
    let texts: Vec<&str> = cases.iter().map(|(_, text, _)| text.as_str()).collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();
    for ((name, _, expected), result) in cases.iter().zip(&results) {
        match (expected, result) {
            (None, Ok(_)) => {}
            (Some(code), Err(e)) => assert_eq!(e.code(), *code, "{name}: {e}"),
            (expected, result) => panic!("{name}: expected {expected:?}, got {result:?}"),
        }
    }
    assert!(
        results[6].as_ref().unwrap().repeated,
        "7. answered within the batch"
    );

    let details = licenses::show(&t.store, &key).unwrap();
    assert_eq!(details.issuances.len(), 2);
    assert!(!details.devices[2].is_bound());
    assert_eq!(
        details.devices[0].public_key,
        Some(installation(1).public_key())
    );
    assert_eq!(audit_rows(&t, "refused"), 4);
}

#[test]
fn a_batch_of_refused_requests_changes_nothing_but_the_audit_log() {
    let (mut t, key, device) = one_device(1);
    let stranger = LicenseKey::generate().unwrap();
    let texts = [
        request(&stranger, &device, &installation(1)),
        "not a request".to_owned(),
    ];
    let before = t.snapshot();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();
    assert!(results.iter().all(Result::is_err));
    assert_eq!(t.snapshot(), before);
    assert_eq!(audit_rows(&t, "refused"), 2);
    assert!(licenses::show(&t.store, &key).unwrap().issuances.is_empty());
}

#[test]
fn batch_run_again_returns_the_same_payloads_and_changes_nothing() {
    let mut t = TestStore::new();
    let key = t.license(2);
    let requests: Vec<String> = (1..=2)
        .map(|n| request(&key, &t.device(&key), &installation(n)))
        .collect();
    let first = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    let before = t.snapshot();
    let again = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW + 60).unwrap();
    assert_eq!(t.snapshot(), before);
    for (one, two) in first.iter().zip(&again) {
        let (one, two) = (one.as_ref().unwrap(), two.as_ref().unwrap());
        assert!(two.repeated);
        assert_eq!(one.payload.token(), two.payload.token());
    }
}

#[test]
fn batch_and_single_issue_give_the_same_answer_to_the_same_request() {
    let (mut t, key, device) = one_device(1);
    let text = request(&key, &device, &installation(1));
    let single = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    let batch = issue_batch(&mut t.store, &t.keys, &actor(), &[&text], NOW + 1).unwrap();
    let batch = batch[0].as_ref().unwrap();
    assert!(batch.repeated);
    assert_eq!(batch.payload.token(), single.payload.token());
}

#[test]
fn a_pipelined_batch_answers_as_one_request_at_a_time_would() {
    // A batch large enough for helper threads, where devices come back
    // within the signing window: new requests from the same
    // installation (the next serial), the very same request again (its
    // stored answer), and devices beyond the seats (refused). A model
    // of one-at-a-time issuance predicts every answer.
    const SEATS: usize = 30;
    let mut t = TestStore::new();
    let key = t.license(SEATS as u32);
    let devices: Vec<DeviceId> = (0..40).map(|_| t.device(&key)).collect();
    let mut made: Vec<Vec<String>> = vec![Vec::new(); devices.len()];
    let mut requests = Vec::new();
    for i in 0..240usize {
        let d = (i * 7 + i / 40) % devices.len();
        let text = match made[d].last() {
            Some(earlier) if i % 5 == 4 => earlier.clone(),
            _ => {
                let fresh = request(&key, &devices[d], &installation(d as u8));
                made[d].push(fresh.clone());
                fresh
            }
        };
        requests.push((d, text));
    }
    let texts: Vec<&str> = requests.iter().map(|(_, text)| text.as_str()).collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();

    // The model: the first SEATS devices to ask are bound; each new
    // request of a bound device takes the next serial; a request asked
    // again gets its first answer's serial.
    let mut bound: Vec<Option<u64>> = vec![None; devices.len()];
    let mut answered: std::collections::HashMap<&str, u64> = Default::default();
    let mut stored = 0;
    for (n, ((d, text), result)) in requests.iter().zip(&results).enumerate() {
        let seats_taken = bound.iter().filter(|b| b.is_some()).count();
        match (answered.get(text.as_str()), bound[*d], result) {
            (Some(serial), _, Ok(issued)) => {
                assert!(issued.repeated, "{n}: asked again, answered anew");
                assert_eq!(issued.payload.license.serial, *serial, "{n}");
            }
            (None, Some(last), Ok(issued)) => {
                assert!(!issued.repeated, "{n}");
                assert_eq!(issued.payload.license.serial, last + 1, "{n}");
                bound[*d] = Some(last + 1);
                answered.insert(text, last + 1);
                stored += 1;
            }
            (None, None, Ok(issued)) if seats_taken < SEATS => {
                assert!(!issued.repeated, "{n}");
                let first = NOW as u64 * SERIALS_PER_SECOND;
                assert_eq!(issued.payload.license.serial, first, "{n}");
                bound[*d] = Some(first);
                answered.insert(text, first);
                stored += 1;
            }
            (None, None, Err(e)) if seats_taken == SEATS => {
                assert_eq!(e.code(), "no_free_seat", "{n}");
            }
            (_, _, other) => panic!("{n}: the model did not expect {other:?}"),
        }
    }
    assert!(
        stored > 100 && answered.len() < requests.len(),
        "the mix is varied"
    );

    // Every new answer is stored as it was returned, and nothing else.
    let rows: Vec<(i64, String)> = t
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT serial, payload FROM issuances ORDER BY id")?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, rusqlite::Error>>()?;
            Ok::<_, StoreError>(rows)
        })
        .unwrap();
    let new_answers: Vec<(i64, String)> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|issued| !issued.repeated)
        .map(|issued| (issued.payload.license.serial as i64, issued.payload.token()))
        .collect();
    assert_eq!(rows, new_answers);
    assert_eq!(
        audit_rows(&t, "ok") + audit_rows(&t, "refused"),
        requests.len() as i64
    );
}

#[test]
fn batch_verifies_requests_in_parallel_and_keeps_their_order() {
    // Enough requests that verification is split over threads.
    let mut t = TestStore::new();
    let key = t.license(100);
    let requests: Vec<String> = (0..100)
        .map(|n| request(&key, &t.device(&key), &installation(n)))
        .collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
        let issued = result.as_ref().unwrap();
        assert_eq!(
            issued.payload.license.request_hash,
            VerifiedRequest::open(text).unwrap().hash(),
            "{n}"
        );
    }
}

/// The seat's answered counters are compared in SQL, which orders a u64
/// column only up to `i64::MAX`: a larger counter (no genuine client
/// signs one) is refused by the dry run and by `issue` alike.
#[test]
fn a_request_counter_sql_cannot_order_is_refused_and_changes_nothing() {
    let (mut t, key, device) = one_device(1);
    let text = numbered_request(&key, &device, &installation(1), u64::MAX);
    let report = check(&t.store, &text, NOW).unwrap();
    assert_eq!(
        report.first_failure().map(|(code, _)| code),
        Some("value_out_of_range")
    );
    let err = refused(&mut t, &text, NOW);
    assert_eq!(err.code(), "value_out_of_range", "{err}");
    assert!(
        err.to_string()
            .contains("request's counter 18446744073709551615"),
        "{err}"
    );
    let highest = numbered_request(&key, &device, &installation(1), i64::MAX.cast_unsigned());
    issue(&mut t.store, &t.keys, &actor(), &highest, NOW).unwrap();
}
