//! The device side: the `client_device_id` the vendor assigns, and the
//! Ed25519 key pair an installation creates for itself on first start.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::binary::{PublicKey, RandomSourceError, os_random};
use crate::crockford::{CodeError, CodeShape};

const SHAPE: CodeShape = CodeShape {
    what: "client device id",
    prefix: "REN3D1",
    data_len: 19,
};

/// A `client_device_id` in canonical form, e.g. `REN3D1-XXXXX-XXXXX-XXXXX-XXXXC`.
///
/// It names a seat of a license; it is not a secret. The key pair below is
/// what ties a payload to one installation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(String);

impl DeviceId {
    /// Parses a typed device id, as leniently as a license key (see
    /// [`LicenseKey::parse`](crate::LicenseKey::parse)), into its canonical
    /// form. A wrong check character is reported as a typo.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        SHAPE.parse(input).map(Self)
    }

    /// A new random device id (95 bits).
    #[cfg(feature = "signing")]
    pub fn generate() -> Result<Self, RandomSourceError> {
        SHAPE.generate::<19>().map(Self)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    /// Only the canonical spelling is accepted inside a signed token.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let id = Self::parse(&text).map_err(serde::de::Error::custom)?;
        if id.0 != text {
            return Err(serde::de::Error::custom(
                "client device id is not in canonical form",
            ));
        }
        Ok(id)
    }
}

/// An installation's private key. It is created on the device and never
/// leaves it; `Debug` does not show it.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    /// A new key from the operating system's secure random source.
    pub fn generate() -> Result<Self, RandomSourceError> {
        Ok(Self::from_seed(&os_random::<32>()?))
    }

    /// The key whose secret seed is `seed`, as [`DeviceKey::seed`] gave it.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The secret seed, for the device's own store only.
    pub fn seed(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The public half: the signer line of the requests and receipts this
    /// key signs, and the `devicePublicKey` a payload is bound to.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::of_signing_key(&self.0)
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey(public: {})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_round_trips_and_catches_typos() {
        let id = DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap();
        assert_eq!(DeviceId::parse(&id.to_string().to_lowercase()).unwrap(), id);
        assert!(matches!(
            DeviceId::parse("REN3D1-00000-00000-00000-00001"),
            Err(CodeError::CheckFailed { .. })
        ));
    }

    #[test]
    fn deserialize_demands_canonical_spelling() {
        let ok: Result<DeviceId, _> = serde_json::from_str("\"REN3D1-00000-00000-00000-00000\"");
        assert!(ok.is_ok());
        let sloppy: Result<DeviceId, _> =
            serde_json::from_str("\"ren3d1-00000-00000-00000-00000\"");
        assert!(sloppy.is_err());
    }

    #[test]
    fn device_key_debug_hides_the_seed() {
        let key = DeviceKey::from_seed(&[9u8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains("public"));
        assert!(!shown.contains(&crate::binary::encode(&[9u8; 32])));
    }
}
