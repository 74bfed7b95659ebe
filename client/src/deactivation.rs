//! Offline deactivation: the installation stops using its license, signs
//! a release receipt that the ReN3 team uses to free the seat, and retires
//! the device key that signed it.
//!
//! Every check runs inside the same `BEGIN IMMEDIATE` transaction as the
//! write, and the published license is cleared only after it commits.

use std::sync::Arc;

use ren3_shared::{DeviceKey, LicenseKey, ReleaseReceipt, VerifiedReceipt};

use crate::licensing::Licensing;
use crate::monitoring::{self, Operation};
use crate::registration::LicensingError;
use crate::store::{self, StoreError};

/// What the operator is told to do with a release receipt.
pub const RECEIPT_SEND_TO: &str = "Send the releaseReceipt value to the ReN3 team. It proves \
     that this installation stopped using the license, so they can free its seat or move \
     the license to another machine. This installation is now unlicensed, and has a new \
     device key: payloads answering its earlier requests no longer install, so to license \
     it again export a new request with POST /license/register.";

/// An accepted deactivation.
#[derive(Debug, Clone)]
pub struct Deactivated {
    /// The release receipt, signed with the released device key and
    /// already recorded in the store. Its token is what the operator sends
    /// to the ReN3 team ([`RECEIPT_SEND_TO`]).
    pub receipt: VerifiedReceipt,
}

impl Licensing {
    /// Stops using the active license, if `license_key` is its key, and
    /// returns the release receipt, signed with the device key and the
    /// installation's next sequence number. In the same transaction the
    /// device key is replaced by a new one (docs/FORMAT.md §6), so the
    /// receipt is the last thing the released key signs. On any refusal
    /// nothing changes, and no sequence number is taken.
    ///
    /// Once it returns, the [`LicenseHandle`](crate::LicenseHandle) is
    /// unlicensed, every pending request is forgotten, and payloads that
    /// answer earlier requests no longer install.
    ///
    /// # Errors
    ///
    /// [`LicensingError::OfflineDisabled`], [`LicensingError::InvalidLicenseKey`],
    /// [`LicensingError::NoActiveLicense`],
    /// [`LicensingError::NotTheActiveLicenseKey`] when `license_key` is not
    /// the active license's; [`LicensingError::Store`],
    /// [`LicensingError::RandomSource`] or [`LicensingError::Signing`] on an
    /// internal failure.
    pub async fn deactivate(&self, license_key: &str) -> Result<Deactivated, LicensingError> {
        let deactivated = self.deactivate_unrecorded(license_key).await;
        monitoring::record(Operation::Deactivate, &deactivated);
        self.republish_metrics(deactivated.is_ok()).await;
        deactivated
    }

    async fn deactivate_unrecorded(
        &self,
        license_key: &str,
    ) -> Result<Deactivated, LicensingError> {
        let offline = self.offline().ok_or(LicensingError::OfflineDisabled)?;
        let key = LicenseKey::parse(license_key).map_err(LicensingError::InvalidLicenseKey)?;
        let fingerprint = key.fingerprint();
        let client_device_id = offline.client_device_id.clone();
        // The receipt's time never goes back behind what was already seen.
        let released_at = self.license().check().high_water_mark;
        let mirror = Arc::clone(self.mirror());
        let (receipt, next_public_key) = self
            .store()
            .call(move |conn| {
                let tx = store::write_transaction(conn)?;
                let active = store::active_license(&tx)?.ok_or(LicensingError::NoActiveLicense)?;
                if active.license_key_fingerprint != Some(fingerprint) {
                    return Err(LicensingError::NotTheActiveLicenseKey);
                }
                // Fresh from the OS's secure random source, as on first
                // start; a failure here rolls everything back.
                let next_key = DeviceKey::generate()?;
                let receipt = ReleaseReceipt {
                    released_at,
                    client_device_id,
                    license_key_fingerprint: fingerprint,
                    serial: active.serial,
                    counter: store::take_sequence_number(&tx)?,
                }
                // The key bound at the vendor, read under the connection's
                // lock, which every change of it holds.
                .sign(&mirror.device_key())
                .map_err(LicensingError::Signing)?;
                store::deactivate_license(&tx, active.id, &receipt, &next_key, released_at)?;
                store::raise_high_water_mark(&tx, released_at)?;
                tx.commit().map_err(StoreError::from)?;
                mirror.note_recorded_mark(released_at);
                let next_public_key = next_key.public_key();
                // Both while the connection is still held: a register or an
                // import that runs after this commit sees the new key, and
                // an import that commits after it publishes after it too.
                mirror.replace_device_key(next_key);
                mirror.license.clear();
                Ok((receipt, next_public_key))
            })
            .await?;
        tracing::info!(
            serial = receipt.receipt.serial,
            counter = receipt.receipt.counter,
            released_key = %receipt.device_public_key,
            device_public_key = %next_public_key,
            "deactivated the license, signed a release receipt and replaced the device key"
        );
        Ok(Deactivated { receipt })
    }
}
