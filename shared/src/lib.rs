//! Wire formats of the ReN3 offline licensing exchange.
//!
//! This crate is the compatibility boundary between the ingestor (`ren3-client`)
//! and the vendor's tool (`ren3-issuer`): `docs/FORMAT.md` is its normative
//! specification and the golden vectors in `fixtures/` pin it byte for byte.
//! Changing a serialized type here changes the protocol and must change the
//! format version.
//!
//! Everything that only the vendor does (holding the root and issuer keys,
//! signing payloads, minting license keys and device ids) sits behind the
//! `signing` feature, so the client links verification only.

pub mod armor;
pub mod binary;
pub mod certificate;
mod crockford;
pub mod device;
mod device_signed;
#[cfg(feature = "signing")]
pub mod issuer_key;
pub mod license_key;
pub mod payload;
pub mod receipt;
pub mod request;
pub mod revocation;
pub mod timestamp;
pub mod token;
pub mod trust;

pub use binary::{Digest, KeyId, PublicKey, PublicKeyBytes, RandomSourceError, RequestId};
pub use certificate::{Certificate, CertificateBody, VerifiedCertificationRequest};
pub use crockford::CodeError;
pub use device::{DeviceId, DeviceKey};
#[cfg(feature = "signing")]
pub use issuer_key::{IssuerKey, PayloadSigner, PayloadTerms, RootKey, SignerError};
pub use license_key::LicenseKey;
pub use payload::{ClockPolicy, License, VerifiedPayload};
pub use receipt::{ReleaseReceipt, VerifiedReceipt};
pub use request::{LicenseRequest, Product, VerifiedRequest};
pub use revocation::{Revocation, RevocationList, RevocationListBody};
pub use token::{Kind, TokenError};
pub use trust::{TrustError, TrustRoot};
