//! Changing a license: its terms (a whole `TermsChange`, or a `TermsEdit`
//! of some, applied inside the writing transaction) and its status.

use super::*;

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
pub(super) fn subject_of(license: LicenseRef<'_>) -> String {
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
