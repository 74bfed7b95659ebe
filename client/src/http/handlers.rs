use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse as _, Response};
use serde::{Deserialize, Serialize};

use ren3_shared::{DeviceId, timestamp};

use super::problem::{ApiError, Json};
use crate::deactivation::RECEIPT_SEND_TO;
use crate::registration::LicensingError;
use crate::state::AppState;

/// What the operator is told to do with a license request.
pub const SEND_TO: &str = "Send the licenseRequest value to the ReN3 team. They will answer \
     with a license payload: import it with POST /license/import, together with the same \
     license key.";

/// `POST /license/register`. No `Debug`: it holds the license key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterBody {
    /// `licenseKey`: the license key the ReN3 team sent, as typed.
    pub license_key: String,
    /// `export`: must be `true`, to export a request for the ReN3 team;
    /// `false` asks for online activation, which does not exist
    /// (`online_activation_unavailable`).
    pub export: bool,
}

/// `POST /license/import`. No `Debug`: it holds the license key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportBody {
    /// `licenseKey`: the same license key the request was exported for.
    pub license_key: String,
    /// `licensePayload`: the payload the ReN3 team answered with.
    pub license_payload: String,
}

/// `POST /license/deactivate`. No `Debug`: it holds the license key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeactivateBody {
    /// `licenseKey`: the key of the active license.
    pub license_key: String,
}

/// The answer to `POST /license/deactivate`, in camelCase JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeactivateResponse {
    /// The signed release receipt for the ReN3 team.
    pub release_receipt: String,
    /// The serial of the license that was released.
    pub serial: u64,
    /// The installation's sequence number the receipt took, shared with its
    /// license requests.
    pub counter: u64,
    /// When the license was released (RFC 3339): never before the latest
    /// time this installation had seen.
    pub released_at: String,
    /// The configured client device id.
    pub client_device_id: DeviceId,
    /// What to do with the receipt ([`RECEIPT_SEND_TO`]).
    pub send_to: &'static str,
}

/// The answer to `POST /license/register`, in camelCase JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// The signed license request, the token to send to the ReN3 team.
    pub license_request: String,
    /// The request's random id, for reference.
    pub request_id: String,
    /// The configured client device id.
    pub client_device_id: DeviceId,
    /// When the request was made (RFC 3339).
    pub created_at: String,
    /// The license key with all but its first group masked.
    pub license_key_hint: String,
    /// What to do with the request ([`SEND_TO`]).
    pub send_to: &'static str,
}

pub(super) async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterBody>,
) -> Result<axum::Json<RegisterResponse>, ApiError> {
    if state.offline().is_none() {
        return Err(LicensingError::OfflineDisabled.into());
    }
    if !body.export {
        return Err(ApiError::online_activation_unavailable());
    }
    let registration = state
        .register(&body.license_key)
        .await
        .map_err(ApiError::from)?;
    let request = &registration.request;
    Ok(axum::Json(RegisterResponse {
        license_request: request.token(),
        request_id: request.request.request_id.to_string(),
        client_device_id: request.request.client_device_id.clone(),
        created_at: timestamp::format(request.request.created_at),
        license_key_hint: registration.license_key_hint,
        send_to: SEND_TO,
    }))
}

pub(super) async fn import(
    State(state): State<AppState>,
    Json(body): Json<ImportBody>,
) -> Result<Response, ApiError> {
    // A re-import of the active license is answered like a first import.
    state
        .import(&body.license_key, &body.license_payload)
        .await
        .map_err(ApiError::from)?;
    status(State(state)).await
}

pub(super) async fn deactivate(
    State(state): State<AppState>,
    Json(body): Json<DeactivateBody>,
) -> Result<axum::Json<DeactivateResponse>, ApiError> {
    let deactivated = state
        .deactivate(&body.license_key)
        .await
        .map_err(ApiError::from)?;
    let receipt = &deactivated.receipt;
    Ok(axum::Json(DeactivateResponse {
        release_receipt: receipt.token(),
        serial: receipt.receipt.serial,
        counter: receipt.receipt.counter,
        released_at: timestamp::format(receipt.receipt.released_at),
        client_device_id: receipt.receipt.client_device_id.clone(),
        send_to: RECEIPT_SEND_TO,
    }))
}

pub(super) async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = state
        .status_json()
        .await
        .map_err(|e| ApiError::from(LicensingError::Store(e)))?;
    let json = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, json)], body).into_response())
}
