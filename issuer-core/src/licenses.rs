//! Licenses: creating them under the payload rules, finding them by key
//! (the CLI) or by id (the console), listing and showing them, editing
//! their terms and changing their status.

use std::collections::BTreeMap;

use ren3_shared::payload::{MAX_GRACE_SECONDS, customer_problem, is_valid_name};
use ren3_shared::{ClockPolicy, LicenseKey, RandomSourceError, timestamp};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::error::{Coded, ErrorKind};
use crate::store::{
    self, DeviceRecord, IssuanceRecord, LicenseRecord, LicenseStatus, LicenseSummary,
    ReleaseRecord, Store, StoreError,
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
    #[error("there is no license #{0}")]
    UnknownId(i64),
    #[error(
        "the license {hint} of {customer} is revoked, which is final: its status cannot change"
    )]
    Revoked { hint: String, customer: String },
    #[error("the license {hint} of {customer} is revoked, which is final: its terms cannot change")]
    RevokedTerms { hint: String, customer: String },
    #[error(
        "a grace period of {} days is longer than the {} days a payload may carry",
        .0 / 86_400, MAX_GRACE_SECONDS / 86_400
    )]
    GraceTooLong(u64),
    #[error(
        "a license that never expires has no grace period: give an expiry, or a grace \
         period of 0 days"
    )]
    GraceWithoutExpiry,
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for LicenseError {
    fn code(&self) -> &'static str {
        match self {
            LicenseError::Customer(_) => "customer_invalid",
            LicenseError::Name { .. } => "name_invalid",
            LicenseError::TooMany { .. } => "too_many_names",
            LicenseError::LimitSyntax(_) | LicenseError::LimitValue { .. } => "limit_invalid",
            LicenseError::DuplicateLimit(_) => "limit_duplicate",
            LicenseError::MaxDevices => "max_devices_invalid",
            LicenseError::ExpirySyntax(_)
            | LicenseError::ExpiryRange(_)
            | LicenseError::ExpiryPast { .. } => "expiry_invalid",
            LicenseError::Unknown { .. } | LicenseError::UnknownId(_) => "license_unknown",
            LicenseError::Revoked { .. } | LicenseError::RevokedTerms { .. } => "license_revoked",
            LicenseError::GraceTooLong(_) => "grace_too_long",
            LicenseError::GraceWithoutExpiry => "grace_without_expiry",
            LicenseError::Random(_) => "random_source_failed",
            LicenseError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            LicenseError::Unknown { .. } | LicenseError::UnknownId(_) => ErrorKind::NotFound,
            LicenseError::Random(_) => ErrorKind::Internal,
            LicenseError::Store(e) => e.kind(),
            _ => ErrorKind::Refused,
        }
    }
}

/// The seconds in `days` days of grace, refusing more than a payload carries.
pub fn grace_from_days(days: u64) -> Result<u64, LicenseError> {
    days.checked_mul(86_400)
        .filter(|s| *s <= MAX_GRACE_SECONDS)
        .ok_or(LicenseError::GraceTooLong(days.saturating_mul(86_400)))
}

/// The terms of a new license, as a person typed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLicense {
    pub customer: String,
    /// In any order, possibly repeated.
    pub features: Vec<String>,
    /// Each name at most once.
    pub limits: Vec<(String, u64)>,
    /// Unix seconds; `None` for a license that never expires.
    pub expires_at: Option<i64>,
    pub max_devices: u32,
    /// How long payloads keep working after the expiry, in seconds; 0
    /// without an expiry.
    pub grace_seconds: u64,
    /// What a client does when its clock looks wound back.
    pub clock_policy: ClockPolicy,
}

impl Default for NewLicense {
    /// No customer, no terms, one seat, no grace, an advisory clock.
    fn default() -> Self {
        Self {
            customer: String::new(),
            features: Vec::new(),
            limits: Vec::new(),
            expires_at: None,
            max_devices: 1,
            grace_seconds: 0,
            clock_policy: ClockPolicy::Advisory,
        }
    }
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
    pub grace_seconds: u64,
    pub clock_policy: ClockPolicy,
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
        if self.grace_seconds > MAX_GRACE_SECONDS {
            return Err(LicenseError::GraceTooLong(self.grace_seconds));
        }
        if self.grace_seconds > 0 && self.expires_at.is_none() {
            return Err(LicenseError::GraceWithoutExpiry);
        }
        Ok(LicenseTerms {
            customer: self.customer.clone(),
            features,
            limits,
            expires_at: self.expires_at,
            max_devices: self.max_devices,
            grace_seconds: self.grace_seconds,
            clock_policy: self.clock_policy,
        })
    }
}

/// Reads features as typed: separated by commas or white space, empty
/// items ignored. Names are checked when the license is.
pub fn parse_features(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads limits as typed: `name=value` items separated by commas or lines.
pub fn parse_limits(text: &str) -> Result<Vec<(String, u64)>, LicenseError> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(parse_limit)
        .collect()
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
    actor: &Actor,
    new: &NewLicense,
    now: i64,
) -> Result<CreatedLicense, LicenseError> {
    let result = create_audited(store, actor, new, now);
    let subject = || new.customer.clone();
    audit::audited(store, actor, Action::LicenseCreate, subject, now, result)
}

/// The terms of a license in words, for the audit log.
fn terms_text(license: &LicenseRecord) -> String {
    let limits: Vec<String> = license
        .limits
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!(
        "features [{}], limits [{}], expires {}, grace {} s, clock {}, max devices {}",
        license.features.join(", "),
        limits.join(", "),
        license
            .expires_at
            .map_or_else(|| "never".to_owned(), timestamp::format),
        license.grace_seconds,
        license.clock_policy.as_str(),
        license.max_devices
    )
}

fn create_audited(
    store: &mut Store,
    actor: &Actor,
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
        grace_seconds: terms.grace_seconds,
        clock_policy: terms.clock_policy,
    };
    let license = store.write(|tx| {
        let license = store::insert_license(tx, &record)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::LicenseCreate,
                subject: license.key_hint.clone(),
                outcome: Outcome::Ok,
                detail: format!(
                    "license #{} for {}: {}",
                    license.id,
                    license.customer,
                    terms_text(&license)
                ),
            },
            now,
        )?;
        Ok::<_, StoreError>(license)
    })?;
    Ok(CreatedLicense { key, license })
}

/// How a caller names a license: the CLI by its key, the console by the
/// store's id (the console never sees a key after creation).
#[derive(Debug, Clone, Copy)]
pub enum LicenseRef<'a> {
    Key(&'a LicenseKey),
    Id(i64),
}

impl<'a> From<&'a LicenseKey> for LicenseRef<'a> {
    fn from(key: &'a LicenseKey) -> Self {
        LicenseRef::Key(key)
    }
}

impl From<i64> for LicenseRef<'_> {
    fn from(id: i64) -> Self {
        LicenseRef::Id(id)
    }
}

/// Finds a license by key or id.
pub(crate) fn find<'a>(
    conn: &rusqlite::Connection,
    license: impl Into<LicenseRef<'a>>,
) -> Result<LicenseRecord, LicenseError> {
    match license.into() {
        LicenseRef::Key(key) => store::license_by_fingerprint(conn, &key.fingerprint())?
            .ok_or_else(|| LicenseError::Unknown { hint: key.hint() }),
        LicenseRef::Id(id) => store::license_by_id(conn, id)?.ok_or(LicenseError::UnknownId(id)),
    }
}

/// Licenses with their seat counts, oldest first. `search` matches part of
/// the customer name or of the key hint, ignoring case, or the exact key
/// fingerprint.
pub fn list(store: &Store, search: Option<&str>) -> Result<Vec<LicenseSummary>, StoreError> {
    store.read(|conn| store::license_summaries(conn, search))
}

/// One page of the license list, newest first; the search is [`list`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensePage {
    pub licenses: Vec<LicenseSummary>,
    /// The `before` of the next page, if there is one.
    pub next_before: Option<i64>,
}

/// At most `limit` licenses matching `search` with ids below `before`.
pub fn page(
    store: &Store,
    search: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> Result<LicensePage, StoreError> {
    let mut licenses =
        store.read(|conn| store::license_summaries_page(conn, search, before, limit + 1))?;
    let next_before = if licenses.len() > limit as usize {
        licenses.truncate(limit as usize);
        licenses.last().map(|s| s.license.id)
    } else {
        None
    };
    Ok(LicensePage {
        licenses,
        next_before,
    })
}

/// What the console's dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub licenses: u64,
    pub devices: u64,
    pub issuances: u64,
    /// Active licenses expiring within [`EXPIRING_WITHIN_SECS`], soonest first.
    pub expiring: Vec<LicenseRecord>,
    /// The latest issuances, newest first, each with its customer.
    pub latest_issuances: Vec<(IssuanceRecord, String)>,
}

/// "Expires soon" means within 30 days.
pub const EXPIRING_WITHIN_SECS: i64 = 30 * 86_400;

pub fn overview(store: &Store, now: i64, limit: u32) -> Result<Overview, StoreError> {
    store.read(|conn| {
        Ok(Overview {
            licenses: store::count_rows(conn, "licenses")?,
            devices: store::count_rows(conn, "devices")?,
            issuances: store::count_rows(conn, "issuances")?,
            expiring: store::licenses_expiring(conn, now, now + EXPIRING_WITHIN_SECS, limit)?,
            latest_issuances: store::latest_issuances(conn, limit)?,
        })
    })
}

/// Everything about one license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseDetails {
    pub license: LicenseRecord,
    pub devices: Vec<DeviceRecord>,
    pub issuances: Vec<IssuanceRecord>,
    /// Seats given back, with a receipt or forced, oldest first.
    pub releases: Vec<ReleaseRecord>,
}

impl LicenseDetails {
    pub fn bound_devices(&self) -> usize {
        self.devices.iter().filter(|d| d.is_bound()).count()
    }
}

pub fn show<'a>(
    store: &Store,
    license: impl Into<LicenseRef<'a>>,
) -> Result<LicenseDetails, LicenseError> {
    store.read(|conn| {
        let license = find(conn, license)?;
        Ok(LicenseDetails {
            devices: store::devices_of_license(conn, license.id)?,
            issuances: store::issuances_of_license(conn, license.id)?,
            releases: store::releases_of_license(conn, license.id)?,
            license,
        })
    })
}

/// Suspends, reactivates or revokes a license. Revocation is final.
pub fn set_status<'a>(
    store: &mut Store,
    actor: &Actor,
    license: impl Into<LicenseRef<'a>>,
    status: LicenseStatus,
    now: i64,
) -> Result<LicenseRecord, LicenseError> {
    let license = license.into();
    let result = store.write(|tx| {
        let license = find(tx, license)?;
        if license.status == LicenseStatus::Revoked && status != LicenseStatus::Revoked {
            return Err(LicenseError::Revoked {
                hint: license.key_hint,
                customer: license.customer,
            });
        }
        store::set_license_status(tx, license.id, status)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::LicenseStatus,
                subject: license.key_hint.clone(),
                outcome: Outcome::Ok,
                detail: format!("{}: {} -> {status}", license.customer, license.status),
            },
            now,
        )?;
        Ok(LicenseRecord { status, ..license })
    });
    let subject = || subject_of(license);
    audit::audited(store, actor, Action::LicenseStatus, subject, now, result)
}

/// How an audit row names a license it could not find: never by its key.
fn subject_of(license: LicenseRef<'_>) -> String {
    match license {
        LicenseRef::Key(key) => key.hint(),
        LicenseRef::Id(id) => format!("#{id}"),
    }
}

/// The terms a vendor may change after creation. The customer, the key
/// and the seats stay as they were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermsChange {
    pub features: Vec<String>,
    pub limits: Vec<(String, u64)>,
    pub expires_at: Option<i64>,
    /// The new grace period in seconds; `None` keeps the current one.
    pub grace_seconds: Option<u64>,
    /// The new clock policy; `None` keeps the current one.
    pub clock_policy: Option<ClockPolicy>,
}

impl TermsChange {
    /// A change that keeps every term of `license` as it is, to edit some.
    pub fn keeping(license: &LicenseRecord) -> Self {
        Self {
            features: license.features.clone(),
            limits: license
                .limits
                .iter()
                .map(|(name, value)| (name.clone(), *value))
                .collect(),
            expires_at: license.expires_at,
            grace_seconds: None,
            clock_policy: None,
        }
    }
}

/// An edit of some terms (`ren3-issuer license update`): each `None` keeps
/// the license's value as it is when the edit is applied, inside the
/// transaction that writes it ([`edit`]), so an edit never undoes another
/// made since the license was last read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TermsEdit {
    pub features: Option<Vec<String>>,
    pub limits: Option<Vec<(String, u64)>>,
    /// `Some(None)` makes the license never expire.
    pub expires_at: Option<Option<i64>>,
    pub grace_seconds: Option<u64>,
    pub clock_policy: Option<ClockPolicy>,
}

impl TermsEdit {
    /// The whole change this edit makes to `license`.
    pub fn applied_to(&self, license: &LicenseRecord) -> TermsChange {
        let mut change = TermsChange::keeping(license);
        if let Some(features) = &self.features {
            change.features.clone_from(features);
        }
        if let Some(limits) = &self.limits {
            change.limits.clone_from(limits);
        }
        if let Some(expires_at) = self.expires_at {
            change.expires_at = expires_at;
        }
        change.grace_seconds = self.grace_seconds;
        change.clock_policy = self.clock_policy;
        change
    }
}

/// Applies `edit` to the license as it stands in the writing transaction.
pub fn edit<'a>(
    store: &mut Store,
    actor: &Actor,
    license: impl Into<LicenseRef<'a>>,
    edit: &TermsEdit,
    now: i64,
) -> Result<LicenseRecord, LicenseError> {
    update_with(
        store,
        actor,
        license,
        |current| edit.applied_to(current),
        now,
    )
}

/// Replaces the features, limits and expiry of a license, under the same
/// rules as [`create`]. Payloads issued before keep their old terms; the
/// next issuance carries the new ones. A revoked license cannot change.
pub fn update<'a>(
    store: &mut Store,
    actor: &Actor,
    license: impl Into<LicenseRef<'a>>,
    change: &TermsChange,
    now: i64,
) -> Result<LicenseRecord, LicenseError> {
    update_with(store, actor, license, |_| change.clone(), now)
}

/// [`update`] with the change made from the license as it is, inside the
/// same transaction: for edits of some terms that keep the others
/// (`ren3-issuer license update`), which no concurrent edit can undo.
pub fn update_with<'a>(
    store: &mut Store,
    actor: &Actor,
    license: impl Into<LicenseRef<'a>>,
    change: impl FnOnce(&LicenseRecord) -> TermsChange,
    now: i64,
) -> Result<LicenseRecord, LicenseError> {
    let license = license.into();
    let result = store.write(|tx| {
        let license = find(tx, license)?;
        if license.status == LicenseStatus::Revoked {
            return Err(LicenseError::RevokedTerms {
                hint: license.key_hint,
                customer: license.customer,
            });
        }
        let change = change(&license);
        let terms = NewLicense {
            customer: license.customer.clone(),
            features: change.features.clone(),
            limits: change.limits.clone(),
            expires_at: change.expires_at,
            max_devices: license.max_devices,
            grace_seconds: change.grace_seconds.unwrap_or(license.grace_seconds),
            clock_policy: change.clock_policy.unwrap_or(license.clock_policy),
        }
        .check(now)?;
        let updated = LicenseRecord {
            features: terms.features,
            limits: terms.limits,
            expires_at: terms.expires_at,
            grace_seconds: terms.grace_seconds,
            clock_policy: terms.clock_policy,
            ..license.clone()
        };
        store::update_license_terms(tx, &updated)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::LicenseUpdate,
                subject: updated.key_hint.clone(),
                outcome: Outcome::Ok,
                detail: format!(
                    "{}: was {}; now {}",
                    updated.customer,
                    terms_text(&license),
                    terms_text(&updated)
                ),
            },
            now,
        )?;
        Ok(updated)
    });
    let subject = || subject_of(license);
    audit::audited(store, actor, Action::LicenseUpdate, subject, now, result)
}

#[cfg(test)]
mod tests {
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
}
