//! The licensing status shown to operators by `GET /license` and after an
//! import. It never contains the license key or a token.

use std::collections::BTreeMap;

use ren3_shared::{DeviceId, timestamp};
use serde::Serialize;

use crate::license::{InstalledLicense, LicenseState};
use crate::state::AppState;
use crate::store::{self, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseStatus {
    pub state: StatusState,
    /// A sentence for the operator: why this state, and what to do.
    pub reason: String,
    pub offline_licensing: bool,
    pub client_device_id: Option<DeviceId>,
    pub pending_requests: u64,
    pub license: Option<LicenseSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusState {
    Unlicensed,
    /// No license is installed, and requests await an answer.
    Pending,
    Active,
    Expired,
    NotYetValid,
}

/// The installed license as operators see it; times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSummary {
    pub customer: String,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, u64>,
    pub issued_at: String,
    pub not_before: String,
    pub expires_at: Option<String>,
    pub serial: u64,
    pub key_id: String,
}

impl From<&InstalledLicense> for LicenseSummary {
    fn from(installed: &InstalledLicense) -> Self {
        let license = &installed.license;
        Self {
            customer: license.customer.clone(),
            features: license.features.clone(),
            limits: license.limits.clone(),
            issued_at: timestamp::format(license.issued_at),
            not_before: timestamp::format(license.not_before),
            expires_at: license.expires_at.map(timestamp::format),
            serial: license.serial,
            key_id: installed.key_id.to_string(),
        }
    }
}

impl AppState {
    /// The status now, by the state's clock.
    pub async fn status(&self) -> Result<LicenseStatus, StoreError> {
        let pending_requests = self
            .store()
            .call(|conn| store::pending_request_count(conn))
            .await?;
        Ok(self.status_with(pending_requests, self.license().check_at(self.now())))
    }

    fn status_with(&self, pending_requests: u64, license: LicenseState) -> LicenseStatus {
        let Some(offline) = self.offline() else {
            return LicenseStatus {
                state: StatusState::Unlicensed,
                reason: "offline licensing is disabled; set enable_offline_license=true and \
                         client_device_id=<the id the ReN3 team sent you> in the ingestor's \
                         environment, then restart it"
                    .into(),
                offline_licensing: false,
                client_device_id: None,
                pending_requests,
                license: None,
            };
        };
        let (state, reason) = match &license {
            LicenseState::Unlicensed if pending_requests == 0 => (
                StatusState::Unlicensed,
                "no license is installed; request one with POST /license/register and your \
                 license key, then send the licenseRequest to the ReN3 team"
                    .to_owned(),
            ),
            LicenseState::Unlicensed => (
                StatusState::Pending,
                format!(
                    "no license is installed and {} waiting for a license payload from the \
                     ReN3 team; import it with POST /license/import",
                    if pending_requests == 1 {
                        "1 license request is".to_owned()
                    } else {
                        format!("{pending_requests} license requests are")
                    }
                ),
            ),
            LicenseState::Active(installed) => {
                let license = &installed.license;
                let until = match license.expires_at {
                    Some(at) => format!("until {}", timestamp::format(at)),
                    None => "without expiry".to_owned(),
                };
                (
                    StatusState::Active,
                    format!("licensed to {} {until}", license.customer),
                )
            }
            LicenseState::Expired(installed) => (
                StatusState::Expired,
                format!(
                    "the license expired at {}; ask the ReN3 team for a renewed license, then \
                     register and import it",
                    installed
                        .license
                        .expires_at
                        .map(timestamp::format)
                        .unwrap_or_default()
                ),
            ),
            LicenseState::NotYetValid(installed) => (
                StatusState::NotYetValid,
                format!(
                    "the license takes effect at {}; until then the ingestor is unlicensed",
                    timestamp::format(installed.license.not_before)
                ),
            ),
        };
        LicenseStatus {
            state,
            reason,
            offline_licensing: true,
            client_device_id: Some(offline.client_device_id.clone()),
            pending_requests,
            license: license
                .installed()
                .map(|i| LicenseSummary::from(i.as_ref())),
        }
    }
}
