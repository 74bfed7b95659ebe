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

mod changes;
mod terms;
#[cfg(test)]
mod tests;

pub use changes::*;
pub use terms::*;

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
