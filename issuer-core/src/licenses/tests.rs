//! The licenses' tests: creation under the payload rules, lookups, terms
//! and status changes, each refusal leaving the store as it was.

use ren3_shared::{DeviceId, IssuerKey, License};

use super::*;
use crate::testing::{NOW, TestStore, actor};

fn acme() -> NewLicense {
    NewLicense {
        customer: "ACME GmbH".into(),
        features: vec!["ingest".into(), "export".into(), "ingest".into()],
        limits: vec![("max-sources".into(), 10)],
        expires_at: Some(NOW + 86_400),
        max_devices: 2,
        ..NewLicense::default()
    }
}

#[test]
fn create_stores_fingerprint_and_hint_but_never_the_key() {
    let mut t = TestStore::new();
    let created = create(&mut t.store, &actor(), &acme(), NOW).unwrap();
    assert_eq!(created.license.features, ["export", "ingest"]);
    assert_eq!(created.license.key_fingerprint, created.key.fingerprint());
    assert_eq!(created.license.key_hint, created.key.hint());

    let db = std::fs::read(&t.paths.db).unwrap();
    let wal = std::fs::read(t.paths.db.with_extension("db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(created.key.reveal()));
    }
    let found = show(&t.store, &created.key).unwrap();
    assert_eq!(found.license, created.license);
}

#[test]
fn check_refuses_bad_terms_with_a_specific_error() {
    type Case = (&'static str, NewLicense, fn(&LicenseError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "1. empty customer",
            NewLicense {
                customer: String::new(),
                ..acme()
            },
            |e| matches!(e, LicenseError::Customer(_)),
        ),
        (
            "2. padded customer",
            NewLicense {
                customer: " ACME".into(),
                ..acme()
            },
            |e| matches!(e, LicenseError::Customer(_)),
        ),
        (
            "3. upper-case feature",
            NewLicense {
                features: vec!["Ingest".into()],
                ..acme()
            },
            |e| {
                matches!(
                    e,
                    LicenseError::Name {
                        what: "feature",
                        ..
                    }
                )
            },
        ),
        (
            "4. bad limit name",
            NewLicense {
                limits: vec![("max sources".into(), 1)],
                ..acme()
            },
            |e| matches!(e, LicenseError::Name { what: "limit", .. }),
        ),
        (
            "5. limit twice",
            NewLicense {
                limits: vec![("a".into(), 1), ("a".into(), 2)],
                ..acme()
            },
            |e| matches!(e, LicenseError::DuplicateLimit(_)),
        ),
        (
            "6. zero devices",
            NewLicense {
                max_devices: 0,
                ..acme()
            },
            |e| matches!(e, LicenseError::MaxDevices),
        ),
        (
            "7. expiry now",
            NewLicense {
                expires_at: Some(NOW),
                ..acme()
            },
            |e| matches!(e, LicenseError::ExpiryPast { .. }),
        ),
        (
            "8. expiry out of range",
            NewLicense {
                expires_at: Some(i64::MAX),
                ..acme()
            },
            |e| matches!(e, LicenseError::ExpiryRange(_)),
        ),
        (
            "9. too many features",
            NewLicense {
                features: (0..=MAX_NAMES).map(|i| format!("f{i}")).collect(),
                ..acme()
            },
            |e| {
                matches!(
                    e,
                    LicenseError::TooMany {
                        what: "feature",
                        ..
                    }
                )
            },
        ),
    ];
    for (name, new, expected) in cases {
        let err = new.check(NOW).unwrap_err();
        assert!(expected(&err), "{name}: {err}");
    }
}

#[test]
fn refused_create_stores_nothing() {
    let mut t = TestStore::new();
    let bad = NewLicense {
        max_devices: 0,
        ..acme()
    };
    assert!(create(&mut t.store, &actor(), &bad, NOW).is_err());
    assert!(list(&t.store, None).unwrap().is_empty());
}

#[test]
fn max_names_matches_the_payload_rule() {
    let payload_with = |n: usize| License {
        customer: "ACME".into(),
        features: (0..n).map(|i| format!("f{i:03}")).collect(),
        limits: BTreeMap::new(),
        issued_at: NOW,
        not_before: NOW,
        expires_at: None,
        grace_seconds: 0,
        clock_policy: ren3_shared::ClockPolicy::Advisory,
        serial: 1,
        license_key_fingerprint: ren3_shared::binary::Bytes([0; 32]),
        client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
        device_public_key: IssuerKey::from_seed(&[1; 32]).public_key().into(),
        request_hash: ren3_shared::binary::Bytes([0; 32]),
    };
    assert!(payload_with(MAX_NAMES).validate().is_ok());
    assert!(payload_with(MAX_NAMES + 1).validate().is_err());
}

#[test]
fn parse_expiry_reads_dates_as_whole_utc_days_and_rfc3339_as_given() {
    // 2027-03-01 is valid through its last second: it expires at the
    // start of 2027-03-02.
    assert_eq!(parse_expiry("2027-03-01").unwrap(), 1_803_859_200 + 86_400);
    assert_eq!(parse_expiry("2027-03-01T00:00:00Z").unwrap(), 1_803_859_200);
    assert_eq!(
        parse_expiry("2027-03-01T02:00:00+02:00").unwrap(),
        1_803_859_200
    );
    for bad in [
        "2027-02-30",
        "01.03.2027",
        "2027-03-01T00:00:00.5Z",
        "9999-12-31",
        "",
    ] {
        assert!(parse_expiry(bad).is_err(), "{bad}");
    }
}

#[test]
fn parse_limit_reads_name_equals_number() {
    assert_eq!(
        parse_limit("max-sources=10").unwrap(),
        ("max-sources".into(), 10)
    );
    assert!(matches!(
        parse_limit("max-sources"),
        Err(LicenseError::LimitSyntax(_))
    ));
    assert!(matches!(
        parse_limit("=3"),
        Err(LicenseError::LimitSyntax(_))
    ));
    assert!(matches!(
        parse_limit("max-sources=-1"),
        Err(LicenseError::LimitValue { .. })
    ));
}

#[test]
fn list_searches_customer_and_hint_ignoring_case() {
    let mut t = TestStore::new();
    let acme = create(&mut t.store, &actor(), &acme(), NOW).unwrap();
    let other = NewLicense {
        customer: "Globex 100%".into(),
        ..self::acme()
    };
    create(&mut t.store, &actor(), &other, NOW).unwrap();
    let customers = |search: Option<&str>| -> Vec<String> {
        list(&t.store, search)
            .unwrap()
            .into_iter()
            .map(|s| s.license.customer)
            .collect()
    };
    let none = Vec::<String>::new();
    assert_eq!(customers(None), ["ACME GmbH", "Globex 100%"]);
    assert_eq!(customers(Some("  ")), ["ACME GmbH", "Globex 100%"]);
    assert_eq!(customers(Some("acme")), ["ACME GmbH"]);
    assert_eq!(customers(Some(" globex 100% ")), ["Globex 100%"]);
    // A prefix, not a substring; LIKE's wildcards are taken literally.
    assert_eq!(customers(Some("GmbH")), none);
    assert_eq!(customers(Some("%")), none);
    assert_eq!(customers(Some("_")), none);
    // The key: its first group with or without `REN3K1-`, a longer
    // prefix than the stored hint, the whole key, or its fingerprint.
    let key = acme.key.reveal().to_owned();
    let group = key[7..12].to_lowercase();
    for typed in [
        group.clone(),
        format!("ren3k1-{group}"),
        key[..15].to_owned(),
        key.clone(),
        acme.key.fingerprint().to_string(),
    ] {
        assert!(
            customers(Some(&typed)).contains(&"ACME GmbH".to_owned()),
            "{typed}"
        );
    }
    assert_eq!(customers(Some(&key)), ["ACME GmbH"]);
}

#[test]
fn revoked_is_final() {
    let mut t = TestStore::new();
    let created = create(&mut t.store, &actor(), &acme(), NOW).unwrap();
    let suspended = set_status(
        &mut t.store,
        &actor(),
        &created.key,
        LicenseStatus::Suspended,
        NOW,
    )
    .unwrap();
    assert_eq!(suspended.status, LicenseStatus::Suspended);
    set_status(
        &mut t.store,
        &actor(),
        &created.key,
        LicenseStatus::Active,
        NOW,
    )
    .unwrap();
    set_status(
        &mut t.store,
        &actor(),
        &created.key,
        LicenseStatus::Revoked,
        NOW,
    )
    .unwrap();
    let err = set_status(
        &mut t.store,
        &actor(),
        &created.key,
        LicenseStatus::Active,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, LicenseError::Revoked { .. }), "{err}");
    assert_eq!(
        show(&t.store, &created.key).unwrap().license.status,
        LicenseStatus::Revoked
    );
}

#[test]
fn update_replaces_terms_under_the_create_rules_and_never_for_a_revoked_license() {
    let mut t = TestStore::new();
    let created = create(&mut t.store, &actor(), &acme(), NOW).unwrap();
    let id = created.license.id;
    let change = TermsChange {
        features: parse_features("export, ingest reports"),
        limits: parse_limits("max-sources=20\nmax-users=3").unwrap(),
        expires_at: Some(NOW + 7 * 86_400),
        ..TermsChange::default()
    };
    let updated = update(&mut t.store, &actor(), id, &change, NOW).unwrap();
    assert_eq!(updated.features, ["export", "ingest", "reports"]);
    assert_eq!(updated.limits.get("max-users"), Some(&3));
    assert_eq!(show(&t.store, id).unwrap().license, updated);

    let before = show(&t.store, id).unwrap();
    let bad = TermsChange {
        expires_at: Some(NOW - 1),
        ..change.clone()
    };
    assert!(matches!(
        update(&mut t.store, &actor(), id, &bad, NOW),
        Err(LicenseError::ExpiryPast { .. })
    ));
    set_status(&mut t.store, &actor(), id, LicenseStatus::Revoked, NOW).unwrap();
    assert!(matches!(
        update(&mut t.store, &actor(), id, &change, NOW),
        Err(LicenseError::RevokedTerms { .. })
    ));
    assert_eq!(
        show(&t.store, id).unwrap().license.features,
        before.license.features
    );
    assert!(matches!(
        show(&t.store, id + 100),
        Err(LicenseError::UnknownId(_))
    ));
}

#[test]
fn page_walks_all_licenses_newest_first_and_searches_like_list() {
    let mut t = TestStore::new();
    let mut keys = Vec::new();
    for i in 0..7 {
        let new = NewLicense {
            customer: format!("Customer {i}"),
            ..acme()
        };
        keys.push(create(&mut t.store, &actor(), &new, NOW).unwrap());
    }
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = page(&t.store, None, before, 3).unwrap();
        seen.extend(page.licenses.iter().map(|s| s.license.customer.clone()));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("Customer {i}")).collect();
    assert_eq!(seen, expected);

    let fingerprint = keys[2].key.fingerprint().to_string();
    let found = page(&t.store, Some(&fingerprint), None, 3).unwrap();
    assert_eq!(found.licenses.len(), 1);
    assert_eq!(found.licenses[0].license.customer, "Customer 2");
    let by_hint = page(&t.store, Some(&keys[4].key.hint()[..12]), None, 3).unwrap();
    assert!(
        by_hint
            .licenses
            .iter()
            .any(|s| s.license.customer == "Customer 4")
    );
}

#[test]
fn page_stays_fast_with_100_000_licenses() {
    let mut t = TestStore::new();
    t.store
        .write(|tx| {
            let mut insert = tx.prepare(
                "INSERT INTO licenses (key_fingerprint, key_hint, customer, features, limits,
                                       expires_at, max_devices, status, created_at)
                 VALUES (?1, ?2, ?3, '[]', '{}', NULL, 1, 'active', ?4)",
            )?;
            for i in 0..100_000u64 {
                let mut fingerprint = [0u8; 32];
                fingerprint[..8].copy_from_slice(&i.to_le_bytes());
                insert.execute(rusqlite::params![
                    ren3_shared::binary::encode(&fingerprint),
                    format!("REN3K1-{i:05}-…"),
                    format!("Customer {i}"),
                    NOW
                ])?;
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // The plans, not a stopwatch, are what must not regress: a page walks
    // the rowid without sorting the table, and a search is a lookup in
    // the indexes of migration 0004, never a scan of every license.
    let plan = |search: Option<&str>| {
        t.store
            .read(|conn| store::license_page_plan(conn, search, Some(50_000)))
            .unwrap()
    };
    let (browse, steps) = plan(None);
    assert_eq!(browse, store::PagePlan::Browse);
    assert!(
        !steps.iter().any(|s| s.contains("TEMP B-TREE")),
        "{steps:?}"
    );
    for search in ["customer 99999", "REN3K1-00042", "00042", "nobody"] {
        let (chosen, steps) = plan(Some(search));
        assert_eq!(chosen, store::PagePlan::SortMatches, "{search}");
        assert!(
            !steps
                .iter()
                .any(|s| s.starts_with("SCAN l") || s.starts_with("SCAN licenses")),
            "{search}: {steps:?}"
        );
        for index in [
            "licenses_by_customer (customer>? AND customer<?)",
            "licenses_by_hint (key_hint>? AND key_hint<?)",
            "sqlite_autoindex_licenses_1 (key_fingerprint=?)",
        ] {
            assert!(
                steps.iter().any(|s| s.contains(index)),
                "{search}: {steps:?}"
            );
        }
    }
    // Every license matches: walk the rowid, sort nothing.
    let (chosen, steps) = plan(Some("CUSTOMER"));
    assert_eq!(chosen, store::PagePlan::WalkMatches);
    assert!(
        steps
            .iter()
            .any(|s| s.contains("USING INTEGER PRIMARY KEY (rowid<?)")),
        "{steps:?}"
    );
    assert!(
        !steps.iter().any(|s| s.contains("TEMP B-TREE")),
        "{steps:?}"
    );
    let dense = page(&t.store, Some("customer"), Some(50_000), 25).unwrap();
    let customers: Vec<_> = dense.licenses.iter().map(|s| &s.license.customer).collect();
    assert_eq!(customers.len(), 25);
    assert_eq!(customers[0], "Customer 49998");
    assert_eq!(dense.next_before, Some(49_975));
    let deep = page(&t.store, None, Some(50), 25).unwrap();
    assert_eq!(deep.licenses[0].license.customer, "Customer 48");
    let search = page(&t.store, Some("customer 99999"), None, 25).unwrap();
    assert_eq!(search.licenses.len(), 1);
    let by_key = page(&t.store, Some("ren3k1-00042"), None, 25).unwrap();
    assert_eq!(by_key.licenses.len(), 1);
    let missing = page(&t.store, Some("nobody"), None, 25).unwrap();
    assert!(missing.licenses.is_empty());
}

#[test]
fn grace_and_clock_policy_are_checked_stored_and_kept_by_partial_updates() {
    let mut t = TestStore::new();
    let created = create(
        &mut t.store,
        &actor(),
        &NewLicense {
            grace_seconds: grace_from_days(7).unwrap(),
            clock_policy: ClockPolicy::Enforcing,
            ..acme()
        },
        NOW,
    )
    .unwrap();
    let id = created.license.id;
    assert_eq!(created.license.grace_seconds, 7 * 86_400);
    assert_eq!(show(&t.store, id).unwrap().license, created.license);

    // 1. an edit of the features keeps grace and policy
    let updated = update_with(
        &mut t.store,
        &actor(),
        id,
        |current| TermsChange {
            features: vec!["reports".into()],
            ..TermsChange::keeping(current)
        },
        NOW,
    )
    .unwrap();
    assert_eq!(updated.features, ["reports"]);
    assert_eq!(
        (updated.grace_seconds, updated.clock_policy),
        (7 * 86_400, ClockPolicy::Enforcing)
    );
    // 2. and an edit of them changes them
    let updated = update_with(
        &mut t.store,
        &actor(),
        id,
        |current| TermsChange {
            grace_seconds: Some(0),
            clock_policy: Some(ClockPolicy::Advisory),
            ..TermsChange::keeping(current)
        },
        NOW,
    )
    .unwrap();
    assert_eq!(
        (updated.grace_seconds, updated.clock_policy),
        (0, ClockPolicy::Advisory)
    );
}

/// `license update` once read the license, then wrote the whole terms
/// later, so an edit committed in between was undone.
#[test]
fn an_edit_keeps_what_another_edit_changed_since_it_was_made() {
    let mut t = TestStore::new();
    let id = create(&mut t.store, &actor(), &acme(), NOW)
        .unwrap()
        .license
        .id;
    let features = TermsEdit {
        features: Some(vec!["reports".into()]),
        ..TermsEdit::default()
    };
    let limits = TermsEdit {
        limits: Some(vec![("max-sources".into(), 7)]),
        ..TermsEdit::default()
    };
    // Both made from the same reading; the second lands last.
    edit(&mut t.store, &actor(), id, &limits, NOW).unwrap();
    let updated = edit(&mut t.store, &actor(), id, &features, NOW).unwrap();
    assert_eq!(updated.features, ["reports"]);
    assert_eq!(
        updated.limits.iter().collect::<Vec<_>>(),
        [(&"max-sources".to_owned(), &7)]
    );
    let never = TermsEdit {
        expires_at: Some(None),
        ..TermsEdit::default()
    };
    let updated = edit(&mut t.store, &actor(), id, &never, NOW).unwrap();
    assert_eq!(updated.expires_at, None);
    assert_eq!(updated.features, ["reports"]);
}

#[test]
fn grace_needs_an_expiry_and_at_most_a_year() {
    assert!(matches!(
        grace_from_days(367),
        Err(LicenseError::GraceTooLong(_))
    ));
    assert!(matches!(
        grace_from_days(u64::MAX),
        Err(LicenseError::GraceTooLong(_))
    ));
    assert_eq!(grace_from_days(366).unwrap(), MAX_GRACE_SECONDS);
    let never_expires = NewLicense {
        expires_at: None,
        grace_seconds: 86_400,
        ..acme()
    };
    assert!(matches!(
        never_expires.check(NOW),
        Err(LicenseError::GraceWithoutExpiry)
    ));
    let mut t = TestStore::new();
    let created = create(
        &mut t.store,
        &actor(),
        &NewLicense {
            grace_seconds: 86_400,
            ..acme()
        },
        NOW,
    )
    .unwrap();
    let before = t.snapshot();
    let err = update_with(
        &mut t.store,
        &actor(),
        created.license.id,
        |current| TermsChange {
            expires_at: None,
            ..TermsChange::keeping(current)
        },
        NOW,
    )
    .unwrap_err();
    assert!(matches!(err, LicenseError::GraceWithoutExpiry), "{err}");
    assert_eq!(t.snapshot(), before);
}

#[test]
fn show_names_an_unknown_key_by_its_hint() {
    let t = TestStore::new();
    let key = LicenseKey::generate().unwrap();
    let err = show(&t.store, &key).unwrap_err();
    assert!(err.to_string().contains(&key.hint()), "{err}");
    assert!(!err.to_string().contains(key.reveal()));
}
