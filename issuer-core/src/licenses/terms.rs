//! The terms of a new license as a person types them (features, limits,
//! expiry, seats, grace, clock policy), checked under the payload rules.

use super::*;

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
