//! Licenses: creating them under the payload rules, finding them by key,
//! listing and showing them, and changing their status.

use std::collections::BTreeMap;

use ren3_shared::payload::{customer_problem, is_valid_name};
use ren3_shared::{LicenseKey, RandomSourceError, timestamp};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

use crate::store::{
    self, DeviceRecord, IssuanceRecord, LicenseRecord, LicenseStatus, LicenseSummary, Store,
    StoreError,
};

/// At most this many features, and as many limits, per license: the payload
/// rule, so that every license created here can be signed.
pub use ren3_shared::payload::MAX_NAMES;

#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    #[error("{0}")]
    Customer(String),
    #[error(
        "`{name}` is not a valid {what} name: use 1 to 64 of a-z, 0-9, `.`, `_`, `-`, \
         starting with a letter or digit"
    )]
    Name { what: &'static str, name: String },
    #[error("{count} {what}s were given; at most {MAX_NAMES} are allowed")]
    TooMany { what: &'static str, count: usize },
    #[error("`{0}` is not a limit: write it as name=value, e.g. max-sources=10")]
    LimitSyntax(String),
    #[error(
        "the value of limit `{name}` is `{value}`; it must be a whole number from 0 to {}",
        u64::MAX
    )]
    LimitValue { name: String, value: String },
    #[error("limit `{0}` is given twice; give each limit once")]
    DuplicateLimit(String),
    #[error("the maximum number of devices must be at least 1")]
    MaxDevices,
    #[error(
        "`{0}` is not an expiry date: write YYYY-MM-DD (valid through that whole UTC day) \
         or a full RFC 3339 time such as 2027-03-01T12:00:00Z"
    )]
    ExpirySyntax(String),
    #[error("the expiry {} is out of range (years 1970 to 9999)", timestamp::format(*.0))]
    ExpiryRange(i64),
    #[error(
        "the expiry {} is in the past (now is {}); give a later date",
        timestamp::format(*expires_at), timestamp::format(*now)
    )]
    ExpiryPast { expires_at: i64, now: i64 },
    #[error(
        "no license has the key {hint}; check it for typos, or find the license with \
         `ren3-issuer license list`"
    )]
    Unknown { hint: String },
    #[error(
        "the license {hint} of {customer} is revoked, which is final: its status cannot change"
    )]
    Revoked { hint: String, customer: String },
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The terms of a new license, as a person typed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewLicense {
    pub customer: String,
    /// In any order, possibly repeated.
    pub features: Vec<String>,
    /// Each name at most once.
    pub limits: Vec<(String, u64)>,
    /// Unix seconds; `None` for a license that never expires.
    pub expires_at: Option<i64>,
    pub max_devices: u32,
}

/// The terms after checking: what the store and every payload hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseTerms {
    pub customer: String,
    /// Sorted and unique.
    pub features: Vec<String>,
    pub limits: BTreeMap<String, u64>,
    pub expires_at: Option<i64>,
    pub max_devices: u32,
}

impl NewLicense {
    /// Checks the terms with the payload's own rules, so that a license
    /// that is created can always be issued.
    pub fn check(&self, now: i64) -> Result<LicenseTerms, LicenseError> {
        if let Some(problem) = customer_problem(&self.customer) {
            return Err(LicenseError::Customer(problem));
        }
        let mut features = self.features.clone();
        features.sort();
        features.dedup();
        if let Some(bad) = features.iter().find(|f| !is_valid_name(f)) {
            return Err(LicenseError::Name {
                what: "feature",
                name: bad.escape_debug().to_string(),
            });
        }
        if features.len() > MAX_NAMES {
            return Err(LicenseError::TooMany {
                what: "feature",
                count: features.len(),
            });
        }
        let mut limits = BTreeMap::new();
        for (name, value) in &self.limits {
            if !is_valid_name(name) {
                return Err(LicenseError::Name {
                    what: "limit",
                    name: name.escape_debug().to_string(),
                });
            }
            if limits.insert(name.clone(), *value).is_some() {
                return Err(LicenseError::DuplicateLimit(name.clone()));
            }
        }
        if limits.len() > MAX_NAMES {
            return Err(LicenseError::TooMany {
                what: "limit",
                count: limits.len(),
            });
        }
        if self.max_devices == 0 {
            return Err(LicenseError::MaxDevices);
        }
        if let Some(expires_at) = self.expires_at {
            if !timestamp::is_in_range(expires_at) {
                return Err(LicenseError::ExpiryRange(expires_at));
            }
            if expires_at <= now {
                return Err(LicenseError::ExpiryPast { expires_at, now });
            }
        }
        Ok(LicenseTerms {
            customer: self.customer.clone(),
            features,
            limits,
            expires_at: self.expires_at,
            max_devices: self.max_devices,
        })
    }
}

/// Reads a `name=value` limit.
pub fn parse_limit(text: &str) -> Result<(String, u64), LicenseError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| LicenseError::LimitSyntax(text.to_owned()))?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(LicenseError::LimitSyntax(text.to_owned()));
    }
    let number = value.parse().map_err(|_| LicenseError::LimitValue {
        name: name.to_owned(),
        value: value.to_owned(),
    })?;
    Ok((name.to_owned(), number))
}

/// Reads an expiry: `YYYY-MM-DD` means valid through that whole UTC day,
/// so it expires at 00:00:00Z of the next day; a full RFC 3339 time is
/// taken as it is, in whole seconds.
pub fn parse_expiry(text: &str) -> Result<i64, LicenseError> {
    let text = text.trim();
    let syntax = || LicenseError::ExpirySyntax(text.to_owned());
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let next = date.next_day().ok_or_else(syntax)?;
        return Ok(next.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp());
    }
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| syntax())?;
    if time.nanosecond() != 0 {
        return Err(syntax());
    }
    Ok(time.unix_timestamp())
}

/// A license just created, with its key: the one moment the key is known.
#[derive(Debug, Clone)]
pub struct CreatedLicense {
    pub key: LicenseKey,
    pub license: LicenseRecord,
}

/// Creates a license with a new random key. Only the key's fingerprint and
/// hint are stored: hand `key` to the customer now, it cannot be shown again.
pub fn create(
    store: &mut Store,
    new: &NewLicense,
    now: i64,
) -> Result<CreatedLicense, LicenseError> {
    let terms = new.check(now)?;
    let key = LicenseKey::generate()?;
    let record = LicenseRecord {
        id: 0,
        key_fingerprint: key.fingerprint(),
        key_hint: key.hint(),
        customer: terms.customer,
        features: terms.features,
        limits: terms.limits,
        expires_at: terms.expires_at,
        max_devices: terms.max_devices,
        status: LicenseStatus::Active,
        created_at: now,
    };
    let license = store.write(|tx| store::insert_license(tx, &record))?;
    Ok(CreatedLicense { key, license })
}

/// Finds the license of a key.
pub(crate) fn find(
    conn: &rusqlite::Connection,
    key: &LicenseKey,
) -> Result<LicenseRecord, LicenseError> {
    store::license_by_fingerprint(conn, &key.fingerprint())?
        .ok_or_else(|| LicenseError::Unknown { hint: key.hint() })
}

/// Licenses with their seat counts, oldest first. `search` matches part of
/// the customer name or of the key hint, ignoring case.
pub fn list(store: &Store, search: Option<&str>) -> Result<Vec<LicenseSummary>, StoreError> {
    store.read(|conn| store::license_summaries(conn, search))
}

/// Everything about one license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDetails {
    pub license: LicenseRecord,
    pub devices: Vec<DeviceRecord>,
    pub issuances: Vec<IssuanceRecord>,
}

impl LicenseDetails {
    pub fn bound_devices(&self) -> usize {
        self.devices.iter().filter(|d| d.is_bound()).count()
    }
}

pub fn show(store: &Store, key: &LicenseKey) -> Result<LicenseDetails, LicenseError> {
    store.read(|conn| {
        let license = find(conn, key)?;
        Ok(LicenseDetails {
            devices: store::devices_of_license(conn, license.id)?,
            issuances: store::issuances_of_license(conn, license.id)?,
            license,
        })
    })
}

/// Suspends, reactivates or revokes a license. Revocation is final.
pub fn set_status(
    store: &mut Store,
    key: &LicenseKey,
    status: LicenseStatus,
) -> Result<LicenseRecord, LicenseError> {
    store.write(|tx| {
        let license = find(tx, key)?;
        if license.status == LicenseStatus::Revoked && status != LicenseStatus::Revoked {
            return Err(LicenseError::Revoked {
                hint: license.key_hint,
                customer: license.customer,
            });
        }
        store::set_license_status(tx, license.id, status)?;
        Ok(LicenseRecord { status, ..license })
    })
}

#[cfg(test)]
mod tests {
    use ren3_shared::{DeviceId, IssuerKey, License};

    use super::*;
    use crate::testing::{NOW, TestStore};

    fn acme() -> NewLicense {
        NewLicense {
            customer: "ACME GmbH".into(),
            features: vec!["ingest".into(), "export".into(), "ingest".into()],
            limits: vec![("max-sources".into(), 10)],
            expires_at: Some(NOW + 86_400),
            max_devices: 2,
        }
    }

    #[test]
    fn create_stores_fingerprint_and_hint_but_never_the_key() {
        let mut t = TestStore::new();
        let created = create(&mut t.store, &acme(), NOW).unwrap();
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
        assert!(create(&mut t.store, &bad, NOW).is_err());
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
            serial: 1,
            license_key_fingerprint: ren3_shared::binary::Bytes([0; 32]),
            client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
            device_public_key: IssuerKey::from_seed(&[1; 32]).public_key(),
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
        let acme = create(&mut t.store, &acme(), NOW).unwrap();
        let other = NewLicense {
            customer: "Globex 100%".into(),
            ..self::acme()
        };
        create(&mut t.store, &other, NOW).unwrap();
        let customers = |search| -> Vec<String> {
            list(&t.store, search)
                .unwrap()
                .into_iter()
                .map(|s| s.license.customer)
                .collect()
        };
        assert_eq!(customers(None), ["ACME GmbH", "Globex 100%"]);
        assert_eq!(customers(Some("acme")), ["ACME GmbH"]);
        assert_eq!(customers(Some("0%")), ["Globex 100%"]);
        assert_eq!(customers(Some("_")), Vec::<String>::new());
        let hint_part = &acme.key.hint()[7..12].to_lowercase();
        assert!(customers(Some(hint_part)).contains(&"ACME GmbH".to_owned()));
    }

    #[test]
    fn revoked_is_final() {
        let mut t = TestStore::new();
        let created = create(&mut t.store, &acme(), NOW).unwrap();
        let suspended = set_status(&mut t.store, &created.key, LicenseStatus::Suspended).unwrap();
        assert_eq!(suspended.status, LicenseStatus::Suspended);
        set_status(&mut t.store, &created.key, LicenseStatus::Active).unwrap();
        set_status(&mut t.store, &created.key, LicenseStatus::Revoked).unwrap();
        let err = set_status(&mut t.store, &created.key, LicenseStatus::Active).unwrap_err();
        assert!(matches!(err, LicenseError::Revoked { .. }), "{err}");
        assert_eq!(
            show(&t.store, &created.key).unwrap().license.status,
            LicenseStatus::Revoked
        );
    }

    #[test]
    fn show_names_an_unknown_key_by_its_hint() {
        let t = TestStore::new();
        let key = LicenseKey::generate().unwrap();
        let err = show(&t.store, &key).unwrap_err();
        assert!(err.to_string().contains(&key.hint()), "{err}");
        assert!(!err.to_string().contains(key.reveal()));
    }
}
