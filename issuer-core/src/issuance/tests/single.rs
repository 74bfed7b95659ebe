//! Issuing one request: the payload and the terms it carries, armoured
//! input, a repeated request, the dry run's wording and how serials are
//! numbered.

use super::*;

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
