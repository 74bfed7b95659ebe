//! Every refusal of a single request but the signing key's: damaged input,
//! the license's state, the device and its installation, seats, and a
//! counter SQL cannot order; each leaves the store as it was.

use super::*;

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
