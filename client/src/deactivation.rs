//! Offline deactivation: the installation stops using its license and signs
//! a release receipt that the ReN3 team uses to free the seat.
//!
//! Every check runs inside the same `BEGIN IMMEDIATE` transaction as the
//! write, and the published license is cleared only after it commits.

use ren3_shared::{LicenseKey, ReleaseReceipt, VerifiedReceipt};

use crate::registration::LicensingError;
use crate::state::AppState;
use crate::store::{self, StoreError};

/// What the operator is told to do with a release receipt.
pub const RECEIPT_SEND_TO: &str = "Send the releaseReceipt value to the ReN3 team. It proves \
     that this installation stopped using the license, so they can free its seat or move \
     the license to another machine. This installation is now unlicensed.";

/// An accepted deactivation.
#[derive(Debug, Clone)]
pub struct Deactivated {
    pub receipt: VerifiedReceipt,
}

impl AppState {
    /// Stops using the active license, if `license_key` is its key, and
    /// returns the signed release receipt. On any refusal nothing changes.
    pub async fn deactivate(&self, license_key: &str) -> Result<Deactivated, LicensingError> {
        let offline = self.offline().ok_or(LicensingError::OfflineDisabled)?;
        let key = LicenseKey::parse(license_key).map_err(LicensingError::InvalidLicenseKey)?;
        let fingerprint = key.fingerprint();
        let client_device_id = offline.client_device_id.clone();
        // The receipt's time never goes back behind what was already seen.
        let released_at = self.license().check().high_water_mark;
        let state = self.clone();
        let receipt = self
            .store()
            .call(move |conn| {
                let tx = store::write_transaction(conn)?;
                let active = store::active_license(&tx)?.ok_or(LicensingError::NoActiveLicense)?;
                if active.license_key_fingerprint != fingerprint.to_string() {
                    return Err(LicensingError::NotTheActiveLicenseKey);
                }
                let receipt = ReleaseReceipt {
                    released_at,
                    client_device_id,
                    license_key_fingerprint: fingerprint,
                    serial: active.serial,
                    counter: store::next_receipt_counter(&tx)?,
                }
                .sign(state.device_key())
                .map_err(LicensingError::Signing)?;
                store::deactivate_license(&tx, active.id, &receipt)?;
                store::raise_high_water_mark(&tx, released_at)?;
                tx.commit().map_err(StoreError::from)?;
                state.note_recorded_mark(released_at);
                // Cleared while the connection is still held, so an import
                // that commits after this publishes after it too.
                state.license().clear();
                Ok(receipt)
            })
            .await?;
        tracing::info!(
            serial = receipt.receipt.serial,
            counter = receipt.receipt.counter,
            "deactivated the license and signed a release receipt"
        );
        Ok(Deactivated { receipt })
    }
}
