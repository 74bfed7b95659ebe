//! Tokens an installation signs with its own device key: license requests
//! and release receipts. The signer line carries the device public key, so
//! such a token proves which installation made it; whether that
//! installation is entitled to anything is the vendor's check.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::binary::PublicKey;
use crate::device::DeviceKey;
use crate::token::{Envelope, Kind, TokenError};

/// Serializes `body` and signs it with `device` as a token of `kind`.
pub(crate) fn seal<T: Serialize>(
    kind: Kind,
    device: &DeviceKey,
    body: &T,
) -> Result<(PublicKey, Envelope), TokenError> {
    let json = serde_json::to_vec(body).map_err(|e| TokenError::invalid(kind, e.to_string()))?;
    let public_key = device.public_key();
    let envelope = Envelope::seal(kind, &public_key.to_string(), &json, |m| device.sign(m));
    Ok((public_key, envelope))
}

/// Decodes pasted text as a token of `kind`, checks the signature with the
/// device key on its signer line (`verify_strict` over the exact shipped
/// bytes), then parses the body and checks it with `validate`.
pub(crate) fn open<T: DeserializeOwned>(
    input: &str,
    kind: Kind,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> Result<(PublicKey, T, Envelope), TokenError> {
    let envelope = Envelope::open(input, kind)?;
    let device_public_key: PublicKey = envelope.signer().parse().map_err(|e| {
        TokenError::invalid(
            kind,
            format!("the signer line is not a usable device key: {e}"),
        )
    })?;
    if !device_public_key.verify_strict(envelope.message(), envelope.signature()) {
        return Err(TokenError::BadSignature {
            expected: kind,
            signer: "the device key it carries".into(),
        });
    }
    let body: T = envelope.parse_body()?;
    validate(&body).map_err(|r| TokenError::invalid(kind, r))?;
    Ok((device_public_key, body, envelope))
}
