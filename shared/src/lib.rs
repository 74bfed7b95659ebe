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
//!
//! # What crosses the air gap
//!
//! Every signed artefact travels as a token: one line of ASCII that names
//! its kind and format version, carries the signed message and its
//! signature, and ends in a checksum that tells damage in transit from
//! forgery (see [`token`]). Readers accept a token wrapped by a mail client
//! or inside an armoured block ([`Kind::armor`]), with prose around it.
//!
//! | token | made by | signed by | read with |
//! |---|---|---|---|
//! | license request | the ingestor | its device key | [`VerifiedRequest::open`] |
//! | license payload | the vendor | an issuer key | [`VerifiedPayload::open`] |
//! | release receipt | the ingestor, on deactivation | its device key | [`VerifiedReceipt::open`] |
//! | issuer certificate | the vendor's offline root | the root key | [`Certificate::open`] |
//! | revocation list | the vendor's offline root | the root key | [`RevocationList::open`] |
//! | certification request | a new issuer key | that key | [`VerifiedCertificationRequest::open`] |
//!
//! People type two codes that are not tokens: the secret [`LicenseKey`],
//! which never travels (only its [fingerprint](LicenseKey::fingerprint)
//! does), and the [`DeviceId`] that names a seat.
//!
//! # Verification
//!
//! Every signature is Ed25519, checked with ed25519-dalek's `verify_strict`
//! ([`PublicKey::verify_strict`]: canonical `S`, no small-order key or
//! component) over the exact bytes shipped, before any JSON it covers is
//! parsed; nothing is re-serialised to verify. Every kind of token has a
//! signing domain of its own, so no signature verifies as another kind's.
//!
//! A payload is trusted only through its chain from the [`TrustRoot`]
//! compiled into the client: the certificate it carries must be signed by
//! that root and certify the key that signed the payload, for a window that
//! holds the payload's `issuedAt`, and the revocation list it carries must be
//! signed by the same root. [`VerifiedPayload::open`] checks all of that.
//! What it cannot know is left to the embedder (docs/FORMAT.md §5): that the
//! payload is for this license key, this device id and this installation's
//! device key, that it answers a request this installation made, that no
//! newer revocation list the client keeps revokes its key, its serial, and
//! where the current time lies in its [window](License::window_at).
//!
//! Every refusal is a [`TokenError`] whose message says what to do, and
//! whose [`code`](TokenError::code) is stable, for programs.
//!
//! # Example: importing a payload
//!
//! The fixtures are signed under the TEST-ONLY root of `fixtures/`, whose
//! seed is public; a release client pins the vendor's root instead.
//!
//! ```
//! use ren3_shared::payload::Window;
//! use ren3_shared::{DeviceId, LicenseKey, TrustRoot, VerifiedPayload};
//!
//! let root = TrustRoot::parse_public_file(include_str!("../../fixtures/TEST-ONLY-root.pub"))?;
//! assert!(root.is_test_only());
//!
//! // What the customer pastes: here, the armoured payload inside an e-mail.
//! let mail = format!(
//!     "Hello,\n\nyour license:\n\n{}\nRegards,\nReN3\n",
//!     include_str!("../../fixtures/payload.armored")
//! );
//! let payload = VerifiedPayload::open(&mail, &root)?;
//!
//! // The chain verified. Whether the payload is for this installation is
//! // the embedder's check: the license key the operator supplied, the
//! // configured device id, and so on.
//! let license = &payload.license;
//! let key = LicenseKey::parse(include_str!("../../fixtures/license-key.txt"))?;
//! assert_eq!(license.license_key_fingerprint, key.fingerprint());
//! let device_id = DeviceId::parse(include_str!("../../fixtures/device-id.txt"))?;
//! assert_eq!(license.client_device_id, device_id);
//!
//! // Revocation is judged against the newest list the client knows; here
//! // that is the one the payload carries.
//! let newest = &payload.revocations;
//! assert_eq!(payload.revocation_in(newest), None);
//!
//! // The fixture license runs from 2027-01-15T08:01:40Z to 2028-01-15,
//! // then 14 days of grace. A client reads the clock with
//! // `ren3_shared::timestamp::now()`.
//! let now = 1_803_859_200; // 2027-03-01T00:00:00Z
//! assert_eq!(license.window_at(now), Window::Valid);
//! assert_eq!(license.window_at(1_700_000_000), Window::NotYetValid);
//! assert!(license.has_feature("ingest"));
//! assert_eq!(license.limits.get("max-sources"), Some(&25));
//!
//! // A token of another kind is refused, with a code of its own.
//! let request = include_str!("../../fixtures/request.token");
//! let err = VerifiedPayload::open(request, &root).unwrap_err();
//! assert_eq!(err.code(), "token_wrong_kind");
//! assert_eq!(err.to_string(), "this is a license request, not a license payload");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: the device's side of a request
//!
//! ```
//! use ren3_shared::{
//!     DeviceId, DeviceKey, Kind, LicenseKey, LicenseRequest, Product, VerifiedRequest, timestamp,
//! };
//!
//! // Created on first start, and kept on the device.
//! let device = DeviceKey::generate()?;
//! let request = LicenseRequest::new(
//!     DeviceId::parse("REN3D1-TEST0-DEV1C-E0000-00002")?,
//!     &LicenseKey::parse("REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q")?,
//!     Product {
//!         name: "ren3-ingestor".into(),
//!         version: "1.0.0".into(),
//!     },
//!     timestamp::now(),
//! )?
//! .with_counter(1);
//! let signed = request.sign(&device)?;
//! let mail = Kind::Request.armor(&signed.token());
//!
//! // The vendor's side: the signature proves which installation asked.
//! let received = VerifiedRequest::open(&mail)?;
//! assert_eq!(received.device_public_key, device.public_key());
//! // The payload that answers it names it by this hash.
//! assert_eq!(received.hash(), signed.hash());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `signing` (off by default): the vendor's side, in the `issuer_key`
//!   module: the root key (`RootKey`), which certifies issuer keys and signs
//!   revocation lists; issuer keys (`IssuerKey`); the `PayloadSigner` that
//!   signs payloads with their chain; and `LicenseKey::generate` and
//!   `DeviceId::generate`. A client never enables it.

#![warn(missing_docs)]

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
pub mod terminal;
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
pub use payload::{ClockPolicy, License, VerifiedChain, VerifiedPayload};
pub use receipt::{ReleaseReceipt, VerifiedReceipt};
pub use request::{LicenseRequest, Product, VerifiedRequest};
pub use revocation::{Revocation, RevocationList, RevocationListBody};
pub use token::{Kind, TokenError};
pub use trust::{TrustError, TrustRoot};
