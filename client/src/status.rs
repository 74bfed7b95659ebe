//! The licensing status shown to operators by `GET /license` and after an
//! import: what state the license is in, why, and what to do next. It
//! never contains the license key or a token.
//!
//! One piece, a little over the usual size: every state's sentences and
//! codes sit together, so that a new state cannot be explained in one
//! place and forgotten in another.

use std::collections::BTreeMap;

use ren3_shared::payload::Window;
use ren3_shared::{ClockPolicy, DeviceId, Digest, KeyId, timestamp};
use serde::Serialize;

use crate::license::{
    ClockSuspicion, InstalledLicense, LicenseCheck, LicenseState, MARK_NEXT_ACTION, REGISTER_AGAIN,
    SECONDS_PER_DAY,
};
use crate::licensing::Licensing;
use crate::startup::UNVERIFIABLE;
use crate::store::StoreError;

/// How to get a new license, the start of most next actions.
const EXPORT_A_REQUEST: &str = "export a new request with POST /license/register (or \
     `ren3-client request`, or the license page at /license/page) and send it to the ReN3 team";

/// The body of `GET /license` (and of an accepted import), in camelCase
/// JSON: the license's state, why, and what the operator should do next.
/// Never holds the license key or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Where the license stands.
    pub state: StatusState,
    /// A stable code for why the license is in this state (see the README).
    pub reason_code: &'static str,
    /// A sentence for the operator: why this state.
    pub reason: String,
    /// Whether licensed work is allowed now (what the guard decides,
    /// before any feature requirement).
    pub licensed: bool,
    /// A sentence the operator can follow.
    pub next_action: String,
    /// Whether offline licensing is enabled (`enable_offline_license`).
    pub offline_licensing: bool,
    /// The configured client device id; `null` while offline licensing is
    /// disabled.
    pub client_device_id: Option<DeviceId>,
    /// How many exported requests still await a payload.
    pub pending_requests: u64,
    /// The issuer key that signed the installed (or unusable stored) license.
    pub key_id: Option<KeyId>,
    /// Whether that license is bound to this device id and installation;
    /// `null` when there is none.
    pub device_matches: Option<bool>,
    /// Whole days until `expiresAt`, rounded up; 0 once it passed; `null`
    /// without an expiring license.
    pub days_remaining: Option<i64>,
    /// Whether the warning window is open: from `license_warning_days`
    /// before `expiresAt` until the grace period ends.
    pub warning: bool,
    /// The license's grace period after `expiresAt`.
    pub grace: GraceStatus,
    /// What this installation thinks of its clock.
    pub clock: ClockStatus,
    /// The revocation of the installed license's key, if it is revoked.
    pub revocation: Option<RevocationStatus>,
    /// The root this build trusts and the revocation list in effect.
    pub trust: TrustStatus,
    /// The installed license, in effect or not; `null` when none is.
    pub license: Option<LicenseView>,
}

/// The root this build trusts and the effective revocation list's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustStatus {
    /// The root's fingerprint (base64url), for a vendor to compare with the
    /// root they meant to pin.
    pub root: Digest,
    /// `false` only in a development build, whose root is taken at run time.
    pub pinned: bool,
    /// 0 while no list is known.
    pub revocation_list_version: u64,
}

/// The installed license's key is revoked: it works until `graceUntil`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationStatus {
    /// The revoked issuer key.
    pub key_id: KeyId,
    /// When the ReN3 team revoked it (RFC 3339).
    pub revoked_at: String,
    /// When the license signed by it stops working (RFC 3339).
    pub grace_until: String,
    /// Whether the license still works: the grace period is not over.
    pub in_grace: bool,
}

/// The license's state as status reports it, in snake_case: the
/// [`LicenseState`] of the license check, or `pending` when no license is
/// installed and requests await an answer. `reasonCode` tells the cases of
/// one state apart (`active` while a revoked key is in its grace is
/// `key_revoked_in_grace`; `unlicensed` also covers offline licensing
/// disabled and a stored license that is not used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    /// No license is installed, and requests await an answer.
    Pending,
    /// The state the license check gives, serialized as its own code.
    #[serde(untagged)]
    License(LicenseState),
}

/// The grace period of the installed license, after `expiresAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraceStatus {
    /// Whether the license is in its grace period now.
    pub in_grace: bool,
    /// The grace period the license grants after `expiresAt`; 0 without
    /// a license.
    pub seconds: u64,
    /// The last moment the license works.
    pub ends_at: Option<String>,
}

/// What this installation thinks of its clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockStatus {
    /// Whether the clock looks wound back (the state is then
    /// `clock_suspect`).
    pub suspect: bool,
    /// The license's clock policy: whether a suspect clock only warns.
    pub policy: Option<ClockPolicy>,
    /// How far the clock may go back before it is suspect
    /// (`license_clock_tolerance`).
    pub tolerance_seconds: i64,
    /// The latest time this installation has recorded in its store; `null`
    /// when the store holds none (`clock_mark_missing`).
    pub high_water_mark: Option<String>,
}

/// The installed license as operators see it; times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseView {
    /// The customer the license is issued to.
    pub customer: String,
    /// The features it grants, sorted.
    pub features: Vec<String>,
    /// Its numeric limits by name.
    pub limits: BTreeMap<String, u64>,
    /// When the ReN3 team issued it.
    pub issued_at: String,
    /// When it takes effect.
    pub not_before: String,
    /// When it expires; `null` when it never does.
    pub expires_at: Option<String>,
    /// How long it keeps working after `expiresAt`, in seconds.
    pub grace_seconds: u64,
    /// What a suspect clock does: `advisory` only warns, `enforcing`
    /// refuses licensed work.
    pub clock_policy: ClockPolicy,
    /// The issuance's serial: a newer payload for the same license key has
    /// a higher one.
    pub serial: u64,
    /// The issuer key that signed it.
    pub key_id: KeyId,
}

impl From<&InstalledLicense> for LicenseView {
    fn from(installed: &InstalledLicense) -> Self {
        let license = &installed.license;
        Self {
            customer: license.customer.clone(),
            features: license.features.clone(),
            limits: license.limits.clone(),
            issued_at: timestamp::format(license.issued_at),
            not_before: timestamp::format(license.not_before),
            expires_at: license.expires_at.map(timestamp::format),
            grace_seconds: license.grace_seconds,
            clock_policy: license.clock_policy,
            serial: license.serial,
            key_id: installed.key_id,
        }
    }
}

/// The date of a time, `2027-03-01`, for sentences.
fn day(unix_seconds: i64) -> String {
    let full = timestamp::format(unix_seconds);
    full.split('T').next().unwrap_or(&full).to_owned()
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Everything a status is built from that changes while the ingestor runs.
/// The rest is its configuration, and the stored license's problem found
/// at start-up, which do not: equal inputs give equal statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusInputs {
    /// The license and the clock's second. Comparing it compares the
    /// installed license by pointer first.
    check: LicenseCheck,
    pending_requests: u64,
    deactivated_at: Option<i64>,
    recorded_mark: i64,
    /// The effective revocation list's version, which a refused import can
    /// raise without changing anything else.
    revocation_list_version: u64,
}

/// A status as JSON. This cannot fail: a status is plain data whose only
/// map has string keys, which is all `serde_json` could refuse.
pub(crate) fn encode(status: &StatusReport) -> Vec<u8> {
    serde_json::to_vec(status).expect("a status always encodes: its map has string keys")
}

/// The three sentences-and-codes that depend on the state.
struct Explained {
    state: StatusState,
    reason_code: &'static str,
    reason: String,
    next_action: String,
}

impl Licensing {
    /// The status now, by the service's clock. Records the clock's
    /// high-water mark first if it is due.
    pub async fn status(&self) -> Result<StatusReport, StoreError> {
        Ok(self.status_with(&self.status_inputs().await?))
    }

    /// What a status is built from now, by the service's clock. Records
    /// the clock's high-water mark first if it is due.
    pub(crate) async fn status_inputs(&self) -> Result<StatusInputs, StoreError> {
        let check = self.license().check_at(self.now());
        self.persist_clock_if_due().await?;
        let summary = self.store().summary().await?;
        Ok(StatusInputs {
            check,
            pending_requests: summary.pending_requests,
            deactivated_at: summary.deactivated_at,
            recorded_mark: self.recorded_high_water_mark(),
            revocation_list_version: self.revocation_list_version(),
        })
    }

    /// The status now, as [`Self::status`] gives it, without recording
    /// the clock's high-water mark, or even raising the handle's: for the
    /// metrics, which change nothing, whenever they are read.
    pub(crate) async fn status_unrecorded(&self) -> Result<StatusReport, StoreError> {
        let handle = self.license();
        let check = LicenseCheck::evaluate(
            handle.installed(),
            self.now(),
            handle.high_water_mark(),
            handle.clock_rules(),
        );
        let summary = self.store().summary().await?;
        Ok(self.status_with(&StatusInputs {
            check,
            pending_requests: summary.pending_requests,
            deactivated_at: summary.deactivated_at,
            recorded_mark: self.recorded_high_water_mark(),
            revocation_list_version: self.revocation_list_version(),
        }))
    }

    /// The status `inputs` give, with this ingestor's configuration.
    pub(crate) fn status_with(&self, inputs: &StatusInputs) -> StatusReport {
        let StatusInputs {
            check,
            pending_requests,
            deactivated_at,
            recorded_mark,
            revocation_list_version,
        } = inputs;
        let (pending_requests, deactivated_at) = (*pending_requests, *deactivated_at);
        let installed = check.installed.as_deref();
        let license = installed.map(|i| &i.license);
        // The problem found at start-up is the active row's: once it is
        // deactivated (or another license installed) it is history, and
        // judging it against the device key is meaningless, the key having
        // been replaced with the deactivation.
        let problem = self
            .stored_problem()
            .filter(|_| installed.is_none() && deactivated_at.is_none());
        let explained = self.explain(pending_requests, deactivated_at, check);
        StatusReport {
            state: explained.state,
            reason_code: explained.reason_code,
            reason: explained.reason,
            licensed: check.is_licensed(),
            next_action: explained.next_action,
            offline_licensing: self.offline().is_some(),
            client_device_id: self.offline().map(|o| o.client_device_id.clone()),
            pending_requests,
            key_id: installed
                .map(|i| i.key_id)
                .or(problem.and_then(|p| p.key_id)),
            device_matches: if installed.is_some() {
                Some(true)
            } else {
                problem.and_then(|p| p.device_matches)
            },
            days_remaining: license.and_then(|l| l.expires_at).map(|expires| {
                let left = expires.saturating_sub(check.high_water_mark).max(0);
                (left + SECONDS_PER_DAY - 1) / SECONDS_PER_DAY
            }),
            warning: check.warning,
            grace: GraceStatus {
                in_grace: check.window == Some(Window::Grace),
                seconds: license.map_or(0, |l| l.grace_seconds),
                ends_at: license
                    .and_then(|l| l.grace_ends_at())
                    .map(timestamp::format),
            },
            clock: ClockStatus {
                suspect: check.clock_suspicion.is_some(),
                policy: license.map(|l| l.clock_policy),
                tolerance_seconds: self.license().clock_rules().tolerance_seconds,
                high_water_mark: (*recorded_mark > i64::MIN)
                    .then(|| timestamp::format(*recorded_mark)),
            },
            revocation: installed.and_then(|i| {
                i.revocation.as_ref().map(|r| RevocationStatus {
                    key_id: i.key_id,
                    revoked_at: timestamp::format(r.revoked_at),
                    grace_until: timestamp::format(r.grace_until),
                    in_grace: !check.key_revoked,
                })
            }),
            trust: TrustStatus {
                root: self.trust().fingerprint(),
                pinned: self.trust().is_pinned(),
                revocation_list_version: *revocation_list_version,
            },
            license: installed.map(LicenseView::from),
        }
    }

    fn explain(
        &self,
        pending_requests: u64,
        deactivated_at: Option<i64>,
        check: &LicenseCheck,
    ) -> Explained {
        let unlicensed = |reason_code, reason: String, next_action: String| Explained {
            state: StatusState::License(LicenseState::Unlicensed),
            reason_code,
            reason,
            next_action,
        };
        if self.offline().is_none() {
            return unlicensed(
                "offline_licensing_disabled",
                "offline licensing is disabled in this ingestor".into(),
                "set enable_offline_license=true and client_device_id=<the id the ReN3 team \
                 sent you> in the ingestor's environment, then restart it"
                    .into(),
            );
        }
        let Some(installed) = check.installed.as_deref() else {
            if pending_requests > 0 {
                return Explained {
                    state: StatusState::Pending,
                    reason_code: "awaiting_payload",
                    reason: format!(
                        "no license is installed and {} waiting for a license payload from \
                         the ReN3 team",
                        plural(
                            pending_requests,
                            "license request is",
                            "license requests are"
                        )
                    ),
                    next_action: "import the license payload the ReN3 team sends with POST \
                                  /license/import, together with the same license key"
                        .into(),
                };
            }
            if let Some(at) = deactivated_at {
                return unlicensed(
                    "deactivated",
                    format!("the license was deactivated at {}", timestamp::format(at)),
                    format!(
                        "send the release receipt to the ReN3 team so that they can free the \
                         seat; to license this installation again, {EXPORT_A_REQUEST}"
                    ),
                );
            }
            if let Some(problem) = self.stored_problem() {
                let next_action = match problem.code {
                    UNVERIFIABLE => format!(
                        "register again: {EXPORT_A_REQUEST}, then import the new payload they \
                         send"
                    ),
                    "device_id_mismatch" => format!(
                        "set client_device_id to the id this license was issued for, or \
                         {EXPORT_A_REQUEST}"
                    ),
                    _ => format!("{EXPORT_A_REQUEST}, then import the payload they send"),
                };
                return unlicensed(
                    problem.code,
                    format!("the stored license is not used: {}", problem.message),
                    next_action,
                );
            }
            return unlicensed(
                "no_license",
                "no license is installed".into(),
                "request a license: POST /license/register with your license key (or \
                 `ren3-client request`, or the license page at /license/page), then send \
                 the license request to the ReN3 team"
                    .into(),
            );
        };

        let license = &installed.license;
        let expires = license.expires_at.map(day).unwrap_or_default();
        let grace_end = license.grace_ends_at().map(day).unwrap_or_default();
        if let Some(revocation) = &installed.revocation {
            let revoked = format!(
                "the ReN3 team revoked the key `{}` that signed this license at {}",
                installed.key_id,
                timestamp::format(revocation.revoked_at)
            );
            if check.key_revoked {
                return Explained {
                    state: StatusState::License(LicenseState::KeyRevoked),
                    reason_code: "key_revoked",
                    reason: format!(
                        "{revoked}, and its grace period ended at {}",
                        timestamp::format(revocation.grace_until)
                    ),
                    next_action: REGISTER_AGAIN.into(),
                };
            }
            if check.clock_suspicion.is_none()
                && matches!(check.state(), LicenseState::Active | LicenseState::Grace)
            {
                return Explained {
                    state: if check.state() == LicenseState::Grace {
                        StatusState::License(LicenseState::Grace)
                    } else {
                        StatusState::License(LicenseState::Active)
                    },
                    reason_code: "key_revoked_in_grace",
                    reason: format!(
                        "{revoked}; the license keeps working until {}",
                        timestamp::format(revocation.grace_until)
                    ),
                    next_action: format!(
                        "{REGISTER_AGAIN}, before {}",
                        day(revocation.grace_until)
                    ),
                };
            }
        }
        if let Some(suspicion) = check.clock_suspicion {
            if suspicion.refuses_under_any_policy() {
                let record = match suspicion {
                    ClockSuspicion::MarkLowered {
                        recorded,
                        newest_recorded,
                    } => format!(
                        "was lowered in its store (to {}, though the store records {})",
                        timestamp::format(recorded),
                        timestamp::format(newest_recorded)
                    ),
                    _ => "is missing from its store".to_owned(),
                };
                return Explained {
                    state: StatusState::License(LicenseState::ClockSuspect),
                    reason_code: suspicion.code(),
                    reason: format!(
                        "this machine's clock reads {}, and the record of the latest time this \
                         installation has seen {record}; that happens only when the store is \
                         edited, and without it a wound-back clock cannot be told apart, so \
                         licensed work is refused under either clock policy",
                        timestamp::format(check.now)
                    ),
                    next_action: MARK_NEXT_ACTION.into(),
                };
            }
            let seen = match suspicion {
                ClockSuspicion::BehindHighWaterMark { high_water_mark } => format!(
                    "more than the tolerance ({} s) before {}, which this installation has \
                     already seen",
                    self.license().clock_rules().tolerance_seconds,
                    timestamp::format(high_water_mark)
                ),
                ClockSuspicion::BeforeIssuedAt { issued_at } => format!(
                    "before the license was issued ({})",
                    timestamp::format(issued_at)
                ),
                // Returned above.
                ClockSuspicion::MarkMissing | ClockSuspicion::MarkLowered { .. } => String::new(),
            };
            let effect = match (check.is_licensed(), license.clock_policy) {
                (false, ClockPolicy::Enforcing) => {
                    "the license's clock policy is enforcing, so licensed work is refused \
                     until the clock is right"
                }
                (true, _) => {
                    "the license's clock policy is advisory, so licensed work goes on, but \
                     the vendor may ask about it"
                }
                (false, ClockPolicy::Advisory) => "the license is not in effect anyway",
            };
            return Explained {
                state: StatusState::License(LicenseState::ClockSuspect),
                reason_code: suspicion.code(),
                reason: format!(
                    "this machine's clock reads {}, {seen}; {effect}",
                    timestamp::format(check.now)
                ),
                next_action: "correct this machine's clock (date, time and time zone); the \
                              state recovers by itself once it is right"
                    .into(),
            };
        }
        match check.state() {
            LicenseState::Active if check.warning => Explained {
                state: StatusState::License(LicenseState::Active),
                reason_code: "expiry_warning",
                reason: format!(
                    "licensed to {}; the license expires at {}",
                    license.customer,
                    license
                        .expires_at
                        .map(timestamp::format)
                        .unwrap_or_default()
                ),
                next_action: format!("{EXPORT_A_REQUEST} before {expires}"),
            },
            LicenseState::Active => Explained {
                state: StatusState::License(LicenseState::Active),
                reason_code: "valid",
                reason: match license.expires_at {
                    Some(at) => format!(
                        "licensed to {} until {}",
                        license.customer,
                        timestamp::format(at)
                    ),
                    None => format!("licensed to {} without expiry", license.customer),
                },
                next_action: match license.expires_at {
                    Some(_) => {
                        format!("nothing to do now; to renew, {EXPORT_A_REQUEST} before {expires}")
                    }
                    None => "nothing to do".into(),
                },
            },
            LicenseState::Grace => Explained {
                state: StatusState::License(LicenseState::Grace),
                reason_code: "in_grace",
                reason: format!(
                    "the license expired at {}, and its grace period keeps it working until {}",
                    license
                        .expires_at
                        .map(timestamp::format)
                        .unwrap_or_default(),
                    license
                        .grace_ends_at()
                        .map(timestamp::format)
                        .unwrap_or_default()
                ),
                next_action: format!("{EXPORT_A_REQUEST} before {grace_end}"),
            },
            LicenseState::Expired => Explained {
                state: StatusState::License(LicenseState::Expired),
                reason_code: "expired",
                reason: format!(
                    "the license expired at {}{}",
                    license
                        .expires_at
                        .map(timestamp::format)
                        .unwrap_or_default(),
                    if license.grace_seconds > 0 {
                        format!(" and its grace period ended at {grace_end}")
                    } else {
                        String::new()
                    }
                ),
                next_action: format!(
                    "{EXPORT_A_REQUEST} for a renewed license, then import the payload they send"
                ),
            },
            LicenseState::NotYetValid => Explained {
                state: StatusState::License(LicenseState::NotYetValid),
                reason_code: "not_yet_valid",
                reason: format!(
                    "the license takes effect at {}; until then the ingestor is unlicensed",
                    timestamp::format(license.not_before)
                ),
                next_action: format!(
                    "wait until {}; if that is wrong, check this machine's clock",
                    timestamp::format(license.not_before)
                ),
            },
            // Handled above: a check with a license is never unlicensed, and
            // a suspect clock and a revoked key returned early.
            LicenseState::Unlicensed | LicenseState::ClockSuspect | LicenseState::KeyRevoked => {
                Explained {
                    state: StatusState::License(LicenseState::Unlicensed),
                    reason_code: "no_license",
                    reason: "no license is installed".into(),
                    next_action: EXPORT_A_REQUEST.into(),
                }
            }
        }
    }
}
