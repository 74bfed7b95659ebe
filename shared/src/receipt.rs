//! The release receipt: an installation's signed statement that it stopped
//! using a license, so that the vendor can free its seat.

use serde::{Deserialize, Serialize};

use crate::binary::{Digest, PublicKey};
use crate::device::{DeviceId, DeviceKey};
use crate::device_signed;
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError};

/// The signed content of a release receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseReceipt {
    /// Unix seconds on the device's clock.
    pub released_at: i64,
    /// The device id of the released seat.
    pub client_device_id: DeviceId,
    /// The fingerprint of the released license's key.
    pub license_key_fingerprint: Digest,
    /// The serial of the license that was active when it was released.
    pub serial: u64,
    /// The installation's sequence number, shared with its license
    /// requests: above every request it signed before this receipt. The
    /// vendor refuses a receipt it has seen (or an older one) again, and one
    /// signed before a request it answered (FORMAT.md §6).
    pub counter: u64,
}

impl ReleaseReceipt {
    fn validate(&self) -> Result<(), String> {
        if !timestamp::is_in_range(self.released_at) {
            return Err("releasedAt is out of range".into());
        }
        if self.serial == 0 || self.counter == 0 {
            return Err("serial and counter start at 1".into());
        }
        Ok(())
    }

    /// Signs the receipt with the device key.
    pub fn sign(&self, device: &DeviceKey) -> Result<VerifiedReceipt, TokenError> {
        self.validate()
            .map_err(|r| TokenError::invalid(Kind::Receipt, r))?;
        let (device_public_key, envelope) = device_signed::seal(Kind::Receipt, device, self)?;
        Ok(VerifiedReceipt {
            receipt: self.clone(),
            device_public_key,
            envelope,
        })
    }
}

/// A receipt whose device signature verified. Whether the device key is
/// the one bound to the seat is the issuer's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedReceipt {
    /// The signed content, checked.
    pub receipt: ReleaseReceipt,
    /// The key the receipt is signed with, from its signer line.
    pub device_public_key: PublicKey,
    envelope: Envelope,
}

impl VerifiedReceipt {
    /// Decodes pasted text and checks the device signature (`verify_strict`
    /// over the exact shipped bytes), then the content: `releasedAt` in the
    /// wire range, `serial` and `counter` at least 1.
    pub fn open(input: &str) -> Result<Self, TokenError> {
        let (device_public_key, receipt, envelope) =
            device_signed::open(input, Kind::Receipt, ReleaseReceipt::validate)?;
        Ok(Self {
            receipt,
            device_public_key,
            envelope,
        })
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> ReleaseReceipt {
        ReleaseReceipt {
            released_at: 1_800_000_000,
            client_device_id: DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap(),
            license_key_fingerprint: crate::binary::Bytes([1; 32]),
            serial: 3,
            counter: 1,
        }
    }

    #[test]
    fn receipt_round_trips_and_names_its_signer() {
        let device = DeviceKey::from_seed(&[5; 32]);
        let signed = receipt().sign(&device).unwrap();
        assert!(signed.token().starts_with("ren3-receipt-v2."));
        let opened = VerifiedReceipt::open(&signed.token()).unwrap();
        assert_eq!(opened.receipt, receipt());
        assert_eq!(opened.device_public_key, device.public_key());
    }

    #[test]
    fn receipt_is_not_a_request() {
        let device = DeviceKey::from_seed(&[5; 32]);
        let token = receipt().sign(&device).unwrap().token();
        let err = crate::VerifiedRequest::open(&token).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is a release receipt, not a license request"
        );
    }

    #[test]
    fn zero_counter_is_refused_when_signing() {
        let device = DeviceKey::from_seed(&[5; 32]);
        let bad = ReleaseReceipt {
            counter: 0,
            ..receipt()
        };
        assert_eq!(bad.sign(&device).unwrap_err().code(), "token_invalid");
    }
}
