//! Tokens made without the binaries: payloads signed in-process, forgeries
//! by token surgery, text wrapped as a mail client would, request hashes.

use crate::test_only_signer;

/// The payload a vendor would send for `request` with `serial`, signed
/// in-process with the TEST-ONLY issuer key: much faster than running the
/// issuer when a test needs hundreds of them.
pub fn test_only_payload(request: &str, serial: u64) -> String {
    test_only_payload_with(request, serial, |_| {})
}

/// [`test_only_payload`] with its terms changed by `edit` before signing:
/// a payload for another device, an expired one, one that answers no
/// request.
pub fn test_only_payload_with(
    request: &str,
    serial: u64,
    edit: impl FnOnce(&mut ren3_shared::License),
) -> String {
    payload_signed_by(&test_only_signer(), request, serial, edit)
}

/// The payload `signer` makes for `request` with `serial`: issued a minute
/// ago, expiring in 2096, then changed by `edit` before signing.
pub fn payload_signed_by(
    signer: &ren3_shared::PayloadSigner,
    request: &str,
    serial: u64,
    edit: impl FnOnce(&mut ren3_shared::License),
) -> String {
    let request = ren3_shared::VerifiedRequest::open(request).unwrap();
    let issued_at = ren3_shared::timestamp::now() - 60;
    let mut license = ren3_shared::License {
        customer: "Reliability GmbH".into(),
        features: vec!["ingest".into()],
        limits: std::collections::BTreeMap::new(),
        issued_at,
        not_before: issued_at,
        expires_at: Some(4_000_000_000),
        grace_seconds: 0,
        clock_policy: ren3_shared::ClockPolicy::Advisory,
        serial,
        license_key_fingerprint: request.request.license_key_fingerprint,
        client_device_id: request.request.client_device_id.clone(),
        device_public_key: request.device_public_key.into(),
        request_hash: request.hash(),
    };
    edit(&mut license);
    signer.sign_payload(&license).unwrap().token()
}

/// Token surgery for forgery tests: the same token with its signed message
/// changed by `edit` and a *correct* checksum, so that only the signature
/// can catch it (docs/FORMAT.md §3).
pub fn reseal_with_edited_message(token: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let mut message = ren3_shared::binary::decode(parts[0]).unwrap();
    edit(&mut message);
    with_checksum(&format!(
        "{prefix}{}.{}",
        ren3_shared::binary::encode(&message),
        parts[1]
    ))
}

/// The same token with its signed message changed by `edit` and signed
/// again with the raw Ed25519 key of `seed`: what the holder of a leaked
/// key can do, past every check the issuer would make.
pub fn resign_with_edited_message(
    token: &str,
    seed: &[u8; 32],
    edit: impl FnOnce(&mut Vec<u8>),
) -> String {
    use ed25519_dalek::Signer as _;
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let mut message = ren3_shared::binary::decode(parts[0]).unwrap();
    edit(&mut message);
    let signature = ed25519_dalek::SigningKey::from_bytes(seed).sign(&message);
    with_checksum(&format!(
        "{prefix}{}.{}",
        ren3_shared::binary::encode(&message),
        ren3_shared::binary::encode(&signature.to_bytes())
    ))
}

/// Replaces the first `from` in `message` by `to`.
pub fn replace_bytes(message: &mut Vec<u8>, from: &str, to: &str) {
    let text = String::from_utf8(std::mem::take(message)).unwrap();
    assert!(text.contains(from), "{from} is not in the message");
    *message = text.replacen(from, to, 1).into_bytes();
}

/// The same token with signature bytes changed by `edit` and a correct checksum.
pub fn reseal_with_edited_signature(token: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let mut signature = ren3_shared::binary::decode(parts[1]).unwrap();
    edit(&mut signature);
    with_checksum(&format!(
        "{prefix}{}.{}",
        parts[0],
        ren3_shared::binary::encode(&signature)
    ))
}

fn with_checksum(signed_part: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(signed_part.as_bytes());
    format!(
        "{signed_part}.{}",
        ren3_shared::binary::encode(&digest[..6])
    )
}

/// Wraps `text` at `width` columns with CRLF, as a mail client would.
pub fn wrap_like_a_mail_client(text: &str, width: usize) -> String {
    text.as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The hash of a license request token, as the client stores it.
pub fn request_hash(request: &str) -> String {
    ren3_shared::VerifiedRequest::open(request)
        .unwrap()
        .hash()
        .to_string()
}
