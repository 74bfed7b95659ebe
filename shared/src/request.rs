//! The license request: made and signed on the device, read by the vendor.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::binary::{Bytes, Digest, PublicKey, RandomSourceError, RequestId, os_random};
use crate::device::{DeviceId, DeviceKey};
use crate::device_signed;
use crate::license_key::LicenseKey;
use crate::timestamp;
use crate::token::{Envelope, Kind, TokenError};

const MAX_PRODUCT_FIELD: usize = 64;

/// The product that asks for a license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    /// The product's name, e.g. `ren3-ingestor`: 1 to 64 printable ASCII
    /// characters without spaces.
    pub name: String,
    /// The product's version, e.g. `1.0.0`, by the same rule.
    pub version: String,
}

/// The signed content of a license request. The device public key travels
/// on the token's signer line, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseRequest {
    /// 128 random bits from the OS's secure random source.
    pub request_id: RequestId,
    /// Unix seconds on the device's clock.
    pub created_at: i64,
    /// The device id the vendor assigned to this seat.
    pub client_device_id: DeviceId,
    /// The fingerprint of the license key: the key itself never travels.
    pub license_key_fingerprint: Digest,
    /// The product that asks, and its version.
    pub product: Product,
    /// The installation's sequence number: one counter, shared with its
    /// release receipts, that rises with everything the device key signs.
    /// The vendor frees a seat only for a receipt whose counter is above
    /// every request it answered for that installation (FORMAT.md §6).
    pub counter: u64,
}

impl LicenseRequest {
    /// A new request with a fresh random id and counter 1; an installation
    /// sets its own sequence number with [`LicenseRequest::with_counter`].
    pub fn new(
        client_device_id: DeviceId,
        license_key: &LicenseKey,
        product: Product,
        created_at: i64,
    ) -> Result<Self, RandomSourceError> {
        Ok(Self {
            request_id: Bytes(os_random::<16>()?),
            created_at,
            client_device_id,
            license_key_fingerprint: license_key.fingerprint(),
            product,
            counter: 1,
        })
    }

    /// The same request with the installation's sequence number.
    pub fn with_counter(self, counter: u64) -> Self {
        Self { counter, ..self }
    }

    fn validate(&self) -> Result<(), String> {
        if !timestamp::is_in_range(self.created_at) {
            return Err("createdAt is out of range".into());
        }
        if self.counter == 0 {
            return Err("the counter starts at 1".into());
        }
        for (field, value) in [
            ("product.name", &self.product.name),
            ("product.version", &self.product.version),
        ] {
            if value.is_empty()
                || value.len() > MAX_PRODUCT_FIELD
                || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(format!(
                    "{field} must be 1 to {MAX_PRODUCT_FIELD} printable ASCII characters without spaces"
                ));
            }
        }
        Ok(())
    }

    /// Signs the request with the device key.
    pub fn sign(&self, device: &DeviceKey) -> Result<VerifiedRequest, TokenError> {
        self.validate()
            .map_err(|reason| TokenError::invalid(Kind::Request, reason))?;
        let (device_public_key, envelope) = device_signed::seal(Kind::Request, device, self)?;
        Ok(VerifiedRequest::new(
            self.clone(),
            device_public_key,
            envelope,
        ))
    }
}

/// A request whose device signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The signed content, checked.
    pub request: LicenseRequest,
    /// The key the request is signed with; a payload binds to it.
    pub device_public_key: PublicKey,
    envelope: Envelope,
    /// SHA-256 of the signed message, computed once: an issuer that checks
    /// requests on several threads computes it there, not in its writer.
    hash: Digest,
}

impl VerifiedRequest {
    fn new(request: LicenseRequest, device_public_key: PublicKey, envelope: Envelope) -> Self {
        let hash = Bytes(Sha256::digest(envelope.message()).into());
        Self {
            request,
            device_public_key,
            envelope,
            hash,
        }
    }

    /// Decodes pasted text and checks the device signature (`verify_strict`
    /// over the exact shipped bytes), then the content.
    pub fn open(input: &str) -> Result<Self, TokenError> {
        let (device_public_key, request, envelope) =
            device_signed::open(input, Kind::Request, LicenseRequest::validate)?;
        Ok(Self::new(request, device_public_key, envelope))
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        self.envelope.token()
    }

    /// SHA-256 of the exact signed message: what a payload names as the
    /// request it answers.
    pub fn hash(&self) -> Digest {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> (DeviceKey, LicenseRequest) {
        let device = DeviceKey::from_seed(&[3u8; 32]);
        let key = LicenseKey::parse("REN3K1-00000-00000-00000-00000-00000").unwrap();
        let id = DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap();
        let product = Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        };
        (
            device,
            LicenseRequest::new(id, &key, product, 1_800_000_000).unwrap(),
        )
    }

    #[test]
    fn signed_request_verifies_and_hash_is_stable() {
        let (device, req) = request();
        let signed = req.sign(&device).unwrap();
        let opened = VerifiedRequest::open(&signed.token()).unwrap();
        assert_eq!(opened.request, req);
        assert_eq!(opened.device_public_key, device.public_key());
        assert_eq!(opened.hash(), signed.hash());
    }

    #[test]
    fn a_resigned_body_under_another_key_fails_the_signature() {
        let (device, req) = request();
        let signed = req.sign(&device).unwrap();
        // Same message, signature from a different key: well formed, forged.
        let other = DeviceKey::from_seed(&[4u8; 32]);
        let forged = Envelope::seal(
            Kind::Request,
            &device.public_key().to_string(),
            signed.envelope.body(),
            |m| other.sign(m),
        );
        let err = VerifiedRequest::open(&forged.token()).unwrap_err();
        assert_eq!(err.code(), "signature_invalid");
    }

    #[test]
    fn request_ids_are_random() {
        let (_, a) = request();
        let (_, b) = request();
        assert_ne!(a.request_id, b.request_id);
    }
}
