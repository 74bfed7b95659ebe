//! Licenses: the list with search and pages, creating one, its detail page
//! with devices and issuances, editing its terms, suspending, revoking and
//! adding devices. Every change is the library's function, as in the CLI.
//!
//! One piece, over the usual size: every page and form of one license
//! shares the detail page it re-renders with a refusal.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use ren3_shared::{ClockPolicy, DeviceId};
use serde::Deserialize;

use super::auth::CurrentUser;
use super::view::{self, Layout, filters};
use super::{AppState, WebError};
use ren3_issuer_core::devices::{self, AddedDevice, DeviceError};
use ren3_issuer_core::licenses::{
    self, CreatedLicense, LicenseDetails, LicenseError, NewLicense, TermsChange,
};
use ren3_issuer_core::releases::{self, ReleaseError};
use ren3_issuer_core::store::{LicenseRecord, LicenseStatus, LicenseSummary};

const PAGE_SIZE: u32 = 25;

// ---- the list

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    before: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "licenses.html")]
pub(crate) struct ListPage {
    layout: Layout,
    q: String,
    licenses: Vec<LicenseSummary>,
    /// The query string of the next page, if there is one.
    next: Option<String>,
    /// Whether this is a later page (so there is a first page to go back to).
    paged: bool,
    first: String,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    layout: Layout,
    Query(query): Query<ListQuery>,
) -> Result<ListPage, WebError> {
    let search = Some(query.q.trim().to_owned()).filter(|q| !q.is_empty());
    let before = query.before;
    let page = state
        .run(move |store, _| licenses::page(store, search.as_deref(), before, PAGE_SIZE))
        .await?;
    let next = page
        .next_before
        .map(|b| view::query_string(&[("q", &query.q), ("before", &b.to_string())]));
    Ok(ListPage {
        layout,
        first: view::query_string(&[("q", &query.q)]),
        q: query.q,
        licenses: page.licenses,
        next,
        paged: before.is_some(),
    })
}

// ---- creating

/// The license form as typed, kept when validation fails.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NewLicenseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    features: String,
    #[serde(default)]
    limits: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    max_devices: String,
    /// Absent (a client other than the form) means the CLI's default.
    #[serde(default = "default_grace_days")]
    grace_days: String,
    #[serde(default = "default_clock_policy")]
    clock_policy: String,
}

fn default_grace_days() -> String {
    grace_days_text(NewLicense::default().grace_seconds)
}

fn default_clock_policy() -> String {
    NewLicense::default().clock_policy.as_str().to_owned()
}

impl Default for NewLicenseForm {
    /// The CLI's defaults: one seat, no grace, an advisory clock.
    fn default() -> Self {
        let defaults = NewLicense::default();
        Self {
            csrf: String::new(),
            customer: String::new(),
            features: String::new(),
            limits: String::new(),
            expires: String::new(),
            max_devices: defaults.max_devices.to_string(),
            grace_days: default_grace_days(),
            clock_policy: default_clock_policy(),
        }
    }
}

/// The clock policies a form offers, by their names in the store.
const CLOCK_POLICIES: [ClockPolicy; 2] = [ClockPolicy::Advisory, ClockPolicy::Enforcing];

/// A grace period as the forms show it: whole days.
fn grace_days_text(grace_seconds: u64) -> String {
    (grace_seconds / 86_400).to_string()
}

/// Reads the grace period field (empty means none) with the CLI's rule.
fn parse_grace_days(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let days = text.parse::<u64>().map_err(|_| {
        format!(
            "`{}` is not a number of days: give a whole number, 0 for no grace period",
            text.escape_debug()
        )
    })?;
    licenses::grace_from_days(days).map_err(|e| e.to_string())
}

/// Reads the clock policy field with the CLI's parser.
fn parse_clock_policy(text: &str) -> Result<ClockPolicy, String> {
    text.trim().parse::<ClockPolicy>()
}

/// Which field a message belongs to.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors {
    customer: Option<String>,
    features: Option<String>,
    limits: Option<String>,
    expires: Option<String>,
    max_devices: Option<String>,
    grace_days: Option<String>,
    clock_policy: Option<String>,
    /// Not tied to a field.
    form: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.customer.is_some()
            || self.features.is_some()
            || self.limits.is_some()
            || self.expires.is_some()
            || self.max_devices.is_some()
            || self.grace_days.is_some()
            || self.clock_policy.is_some()
            || self.form.is_some()
    }

    /// Files a library refusal under the field it is about.
    fn file(&mut self, error: &LicenseError) {
        let message = Some(error.to_string());
        match error {
            LicenseError::Customer(_) => self.customer = message,
            LicenseError::Name {
                what: "feature", ..
            }
            | LicenseError::TooMany {
                what: "feature", ..
            } => self.features = message,
            LicenseError::Name { .. }
            | LicenseError::TooMany { .. }
            | LicenseError::LimitSyntax(_)
            | LicenseError::LimitValue { .. }
            | LicenseError::DuplicateLimit(_) => self.limits = message,
            LicenseError::MaxDevices => self.max_devices = message,
            LicenseError::ExpirySyntax(_)
            | LicenseError::ExpiryRange(_)
            | LicenseError::ExpiryPast { .. } => self.expires = message,
            LicenseError::GraceTooLong(_) | LicenseError::GraceWithoutExpiry => {
                self.grace_days = message;
            }
            _ => self.form = message,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "license_new.html")]
pub(crate) struct NewLicensePage {
    layout: Layout,
    form: NewLicenseForm,
    errors: FieldErrors,
    clock_policies: [ClockPolicy; 2],
}

pub(crate) async fn new_form(layout: Layout) -> NewLicensePage {
    NewLicensePage {
        layout,
        form: NewLicenseForm::default(),
        errors: FieldErrors::default(),
        clock_policies: CLOCK_POLICIES,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "license_created.html")]
pub(crate) struct CreatedPage {
    layout: Layout,
    created: CreatedLicense,
}

impl CreatedPage {
    fn key(&self) -> &str {
        self.created.key.reveal()
    }
}

/// Reads an expiry field: empty means never.
fn parse_expires(text: &str) -> Result<Option<i64>, LicenseError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("never") {
        Ok(None)
    } else {
        licenses::parse_expiry(text).map(Some)
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Form(form): Form<NewLicenseForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let limits = licenses::parse_limits(&form.limits).unwrap_or_else(|e| {
        errors.file(&e);
        Vec::new()
    });
    let expires_at = parse_expires(&form.expires).unwrap_or_else(|e| {
        errors.file(&e);
        None
    });
    let max_devices = form.max_devices.trim().parse::<u32>().unwrap_or_else(|_| {
        errors.max_devices = Some(format!(
            "`{}` is not a number of devices: give a whole number, at least 1",
            form.max_devices.trim()
        ));
        0
    });
    let grace_seconds = parse_grace_days(&form.grace_days).unwrap_or_else(|e| {
        errors.grace_days = Some(e);
        0
    });
    let clock_policy = parse_clock_policy(&form.clock_policy).unwrap_or_else(|e| {
        errors.clock_policy = Some(e);
        ClockPolicy::Advisory
    });
    if !errors.any() {
        let new = NewLicense {
            customer: form.customer.clone(),
            features: licenses::parse_features(&form.features),
            limits,
            expires_at,
            max_devices,
            grace_seconds,
            clock_policy,
        };
        let now = state.now();
        let actor = user.actor();
        match state
            .call(move |store, _| licenses::create(store, &actor, &new, now))
            .await?
        {
            Ok(created) => {
                return Ok(CreatedPage { layout, created }.into_response());
            }
            Err(e) => errors.file(&WebError::shown(e)?),
        }
    }
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        NewLicensePage {
            layout,
            form,
            errors,
            clock_policies: CLOCK_POLICIES,
        },
    )
        .into_response())
}

// ---- one license

#[derive(Template, WebTemplate)]
#[template(path = "license.html")]
pub(crate) struct DetailPage {
    layout: Layout,
    details: LicenseDetails,
    seats_used: usize,
    seats_free: usize,
    /// A refusal of the last action, not tied to a field.
    notice: Option<String>,
    label: String,
    label_error: Option<String>,
    /// The force-release form as typed, when it was refused.
    force: Option<ForceReleaseForm>,
    force_error: Option<String>,
}

impl DetailPage {
    /// The reason typed into the force-release form of `device`, if it
    /// was refused.
    fn force_reason(&self, device: &DeviceId) -> &str {
        match &self.force {
            Some(form) if form.device == device.as_str() => &form.reason,
            _ => "",
        }
    }

    /// The refusal of the force-release form of `device`, if any.
    fn force_error_for(&self, device: &DeviceId) -> Option<&str> {
        match &self.force {
            Some(form) if form.device == device.as_str() => self.force_error.as_deref(),
            _ => None,
        }
    }

    fn is(&self, status: &str) -> bool {
        self.details.license.status.as_str() == status
    }
}

fn limits_text(license: &LicenseRecord, separator: &str) -> String {
    license
        .limits
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(separator)
}

async fn details(state: &AppState, id: i64) -> Result<LicenseDetails, WebError> {
    state.run(move |store, _| licenses::show(store, id)).await
}

fn detail_page(layout: Layout, details: LicenseDetails) -> DetailPage {
    let seats_used = details.bound_devices();
    let seats_free = (details.license.max_devices as usize).saturating_sub(seats_used);
    DetailPage {
        layout,
        details,
        seats_used,
        seats_free,
        notice: None,
        label: String::new(),
        label_error: None,
        force: None,
        force_error: None,
    }
}

pub(crate) async fn show(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<i64>,
) -> Result<DetailPage, WebError> {
    Ok(detail_page(layout, details(&state, id).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn set_status(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Path(id): Path<i64>,
    Form(form): Form<StatusForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let refusal = match form.status.parse::<LicenseStatus>() {
        Err(e) => Some(e.to_string()),
        Ok(LicenseStatus::Revoked) if form.confirm != "yes" => Some(
            "Revoking is final: tick \"I understand\" next to the Revoke button to confirm."
                .to_owned(),
        ),
        Ok(status) => {
            let (now, actor) = (state.now(), user.actor());
            match state
                .call(move |store, _| licenses::set_status(store, &actor, id, status, now))
                .await?
            {
                Ok(_) => None,
                Err(e) => Some(WebError::shown(e)?.to_string()),
            }
        }
    };
    match refusal {
        None => Ok(Redirect::to(&format!("/licenses/{id}")).into_response()),
        Some(notice) => {
            let mut page = detail_page(layout, details(&state, id).await?);
            page.notice = Some(notice);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "device_added.html")]
pub(crate) struct DeviceAddedPage {
    layout: Layout,
    added: AddedDevice,
}

pub(crate) async fn add_device(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Path(id): Path<i64>,
    Form(form): Form<DeviceForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let label = Some(form.label.clone()).filter(|l| !l.is_empty());
    let (now, actor) = (state.now(), user.actor());
    let result = state
        .call(move |store, _| devices::add(store, &actor, id, label.as_deref(), now))
        .await?;
    let (notice, label_error) = match result {
        Ok(added) => {
            return Ok(DeviceAddedPage { layout, added }.into_response());
        }
        Err(e) => match WebError::shown(e)? {
            DeviceError::Label(problem) => (None, Some(problem)),
            e => (Some(e.to_string()), None),
        },
    };
    let mut page = detail_page(layout, details(&state, id).await?);
    page.notice = notice;
    page.label = form.label;
    page.label_error = label_error;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

// ---- force-releasing a lost machine's seat

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ForceReleaseForm {
    #[serde(default)]
    csrf: String,
    /// The client device id whose seat is freed.
    #[serde(default)]
    device: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// Frees the seat of a bound device of this license without a receipt
/// (`releases::force_release`, recorded as forced).
pub(crate) async fn force_release(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Path(id): Path<i64>,
    Form(form): Form<ForceReleaseForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    // The form names one of this license's devices; anything else is a
    // page that does not exist.
    let device = details(&state, id)
        .await?
        .devices
        .iter()
        .find(|d| d.client_device_id.as_str() == form.device)
        .map(|d| d.client_device_id.clone())
        .ok_or(WebError::NotFound)?;
    let (notice, force_error) = if form.confirm != "yes" {
        (
            Some(format!(
                "Nothing was released: tick \"I understand\" next to the Force release button \
                 of device {device} to confirm."
            )),
            releases::reason_problem(&form.reason),
        )
    } else {
        let (now, actor, reason) = (state.now(), user.actor(), form.reason.clone());
        let result = state
            .call(move |store, _| releases::force_release(store, &actor, &device, &reason, now))
            .await?;
        match result {
            Ok(_) => return Ok(Redirect::to(&format!("/licenses/{id}")).into_response()),
            Err(e) => match WebError::shown(e)? {
                ReleaseError::Reason(problem) => (None, Some(problem)),
                e => (Some(format!("Nothing was released: {e}")), None),
            },
        }
    };
    let mut page = detail_page(layout, details(&state, id).await?);
    page.notice = notice;
    page.force_error = force_error;
    page.force = Some(form);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

// ---- editing terms

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    features: String,
    #[serde(default)]
    limits: String,
    #[serde(default)]
    expires: String,
    /// Absent (a client other than the form) keeps the license's.
    grace_days: Option<String>,
    clock_policy: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "license_edit.html")]
pub(crate) struct EditPage {
    layout: Layout,
    license: LicenseRecord,
    form: EditForm,
    errors: FieldErrors,
    clock_policies: [ClockPolicy; 2],
}

pub(crate) async fn edit_form(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<i64>,
) -> Result<EditPage, WebError> {
    let license = details(&state, id).await?.license;
    let form = EditForm {
        csrf: String::new(),
        features: license.features.join(", "),
        limits: limits_text(&license, "\n"),
        expires: license
            .expires_at
            .map(crate::present::time)
            .unwrap_or_default(),
        grace_days: Some(grace_days_text(license.grace_seconds)),
        clock_policy: Some(license.clock_policy.as_str().to_owned()),
    };
    Ok(EditPage {
        layout,
        license,
        form,
        errors: FieldErrors::default(),
        clock_policies: CLOCK_POLICIES,
    })
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    layout: Layout,
    Path(id): Path<i64>,
    Form(mut form): Form<EditForm>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let mut errors = FieldErrors::default();
    let limits = licenses::parse_limits(&form.limits).unwrap_or_else(|e| {
        errors.file(&e);
        Vec::new()
    });
    let expires_at = parse_expires(&form.expires).unwrap_or_else(|e| {
        errors.file(&e);
        None
    });
    let grace_seconds = form
        .grace_days
        .as_deref()
        .map(parse_grace_days)
        .transpose()
        .unwrap_or_else(|e| {
            errors.grace_days = Some(e);
            None
        });
    let clock_policy = form
        .clock_policy
        .as_deref()
        .map(parse_clock_policy)
        .transpose()
        .unwrap_or_else(|e| {
            errors.clock_policy = Some(e);
            None
        });
    if !errors.any() {
        let change = TermsChange {
            features: licenses::parse_features(&form.features),
            limits,
            expires_at,
            grace_seconds,
            clock_policy,
        };
        let (now, actor) = (state.now(), user.actor());
        match state
            .call(move |store, _| licenses::update(store, &actor, id, &change, now))
            .await?
        {
            Ok(_) => return Ok(Redirect::to(&format!("/licenses/{id}")).into_response()),
            Err(e) => errors.file(&WebError::shown(e)?),
        }
    }
    let license = details(&state, id).await?.license;
    form.grace_days
        .get_or_insert_with(|| grace_days_text(license.grace_seconds));
    form.clock_policy
        .get_or_insert_with(|| license.clock_policy.as_str().to_owned());
    Ok((
        StatusCode::UNPROCESSABLE_ENTITY,
        EditPage {
            layout,
            license,
            form,
            errors,
            clock_policies: CLOCK_POLICIES,
        },
    )
        .into_response())
}
