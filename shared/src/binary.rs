//! Fixed-size binary values, carried as unpadded base64url text.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::VerifyingKey;
use rand::TryRng as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// Unpadded base64url, the only binary-to-text encoding in the formats.
///
/// Decoding is strict: padding and non-canonical trailing bits are refused,
/// so every value has exactly one textual form.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// See [`encode`].
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// Appends the text form of `bytes` to `out`.
pub fn encode_to(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// The longest value [`decode_array`] and [`Bytes`] hold: a signature.
const MAX_ARRAY: usize = 64;

/// Decodes the text form of exactly `N` bytes, as strictly as [`decode`],
/// into an array rather than a heap allocation: keys, digests and
/// signatures are decoded on every token a client or an issuer opens.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], BytesError> {
    const { assert!(N <= MAX_ARRAY) };
    if text.len() != (N * 4).div_ceil(3) {
        // Not the length of N bytes' text: decode it only to say what it is.
        let got = decode(text).map_err(|_| BytesError::NotBase64)?.len();
        return Err(BytesError::WrongLength { expected: N, got });
    }
    // The base64 crate wants room for its estimate, up to 2 bytes more.
    let mut buffer = [0u8; MAX_ARRAY + 2];
    let got = URL_SAFE_NO_PAD
        .decode_slice(text, &mut buffer)
        .map_err(|_| BytesError::NotBase64)?;
    let mut array = [0u8; N];
    match buffer.get(..got) {
        Some(decoded) if got == N => array.copy_from_slice(decoded),
        _ => return Err(BytesError::WrongLength { expected: N, got }),
    }
    Ok(array)
}

/// The operating system's secure random source failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's secure random source failed: {0}")]
pub struct RandomSourceError(String);

/// `N` bytes from the operating system's secure random source.
pub fn os_random<const N: usize>() -> Result<[u8; N], RandomSourceError> {
    let mut bytes = [0u8; N];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| RandomSourceError(e.to_string()))?;
    Ok(bytes)
}

/// SHA-256 over a domain-separation tag followed by `parts`.
pub(crate) fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// A fixed-size byte string whose text form is unpadded base64url.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes<const N: usize>(pub [u8; N]);

/// A SHA-256 value: a license-key fingerprint or a request hash.
pub type Digest = Bytes<32>;
/// The identifier of an issuer or root key (see [`crate::trust::key_id`]).
pub type KeyId = Bytes<8>;
/// The random identifier of a license request.
pub type RequestId = Bytes<16>;
/// An Ed25519 public key as its 32 encoded bytes, not decoded as a curve
/// point: for a key that is only ever compared, never verified with. A
/// payload's device key is one: the vendor signed it, and the client only
/// checks that it is its own, byte for byte. Decoding the point on every
/// payload check would cost about a tenth of a signature verification.
pub type PublicKeyBytes = Bytes<32>;

impl<const N: usize> Bytes<N> {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Display for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({self})")
    }
}

/// Why a base64url field did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytesError {
    /// Not unpadded base64url: padding, a character outside the alphabet,
    /// or non-zero trailing bits.
    #[error("not unpadded base64url text")]
    NotBase64,
    /// Valid base64url of the wrong number of bytes.
    #[error("{got} bytes where {expected} are expected")]
    WrongLength {
        /// The number of bytes the field holds.
        expected: usize,
        /// The number of bytes the text decoded to.
        got: usize,
    },
}

impl<const N: usize> FromStr for Bytes<N> {
    type Err = BytesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_array(s).map(Self)
    }
}

impl<const N: usize> Serialize for Bytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 public key that is a valid curve point and not of small order.
///
/// Small-order ("weak") keys are refused at parse time: with such a key a
/// single signature can verify for many messages.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    /// The text is not the base64url of 32 bytes.
    #[error("not a 32-byte base64url value: {0}")]
    Encoding(BytesError),
    /// The 32 bytes do not encode a point of the curve.
    #[error("not a valid Ed25519 point")]
    NotAPoint,
    /// The point is of small order: one signature could verify for many
    /// messages.
    #[error("a small-order (weak) Ed25519 key, which is never accepted")]
    Weak,
}

impl PublicKey {
    /// Decodes the 32 encoded bytes of a key, refusing bytes that are not
    /// a curve point ([`PublicKeyError::NotAPoint`]) and small-order points
    /// ([`PublicKeyError::Weak`]).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PublicKeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| PublicKeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(PublicKeyError::Weak);
        }
        Ok(Self(key))
    }

    /// The public half of a signing key, `[a]B`. It is never of small
    /// order: `B` has prime order ℓ, so `[a]B` is of small order only when
    /// it is the identity, that is when ℓ divides `a`. The secret scalar `a`
    /// is a multiple of 8 between 2^254 and 2^255, and ℓ is odd, so ℓ would
    /// have to divide `a / 8` < 2^252 < ℓ, which is not zero.
    pub(crate) fn of_signing_key(key: &ed25519_dalek::SigningKey) -> Self {
        Self(key.verifying_key())
    }

    /// The 32 encoded bytes of the key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The ed25519-dalek key inside. Verify with
    /// [`PublicKey::verify_strict`], the rule every format requires.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }

    /// Checks `signature` over `message` with ed25519-dalek's
    /// `verify_strict`: non-canonical `S` and small-order components are
    /// refused (docs/FORMAT.md §3.1).
    pub fn verify_strict(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }
}

impl From<PublicKey> for PublicKeyBytes {
    fn from(key: PublicKey) -> Self {
        Bytes(key.to_bytes())
    }
}

/// The same key, encoded the same way.
impl PartialEq<PublicKey> for PublicKeyBytes {
    fn eq(&self, other: &PublicKey) -> bool {
        self.0 == *other.0.as_bytes()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PublicKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes: Bytes<32> = s.parse().map_err(PublicKeyError::Encoding)?;
        Self::from_bytes(&bytes.0)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_text() {
        let value = Bytes([7u8; 16]);
        let text = value.to_string();
        assert_eq!(text.parse::<Bytes<16>>().unwrap(), value);
    }

    #[test]
    fn bytes_refuse_padding_wrong_length_and_trailing_bits() {
        assert_eq!(
            "AAAA".parse::<Bytes<16>>(),
            Err(BytesError::WrongLength {
                expected: 16,
                got: 3
            })
        );
        assert_eq!("AA==".parse::<Bytes<1>>(), Err(BytesError::NotBase64));
        // "AB" has non-zero trailing bits: a second spelling of [0x00].
        assert_eq!("AB".parse::<Bytes<1>>(), Err(BytesError::NotBase64));
        assert_eq!("AA".parse::<Bytes<1>>(), Ok(Bytes([0])));
    }

    #[test]
    fn decoding_into_an_array_is_decoding_then_checking_the_length() {
        let reference = |text: &str| -> Result<[u8; 64], BytesError> {
            let bytes = decode(text).map_err(|_| BytesError::NotBase64)?;
            let got = bytes.len();
            bytes
                .try_into()
                .map_err(|_| BytesError::WrongLength { expected: 64, got })
        };
        let signature = encode(&[0xA7; 64]);
        let mut texts = vec![signature.clone(), format!("{signature}=="), String::new()];
        for len in 0..=100 {
            texts.push("B".repeat(len));
            texts.push(signature.chars().cycle().take(len).collect());
        }
        // A last character with bits past the 64th byte: a second spelling.
        texts.push(format!("{}B", &signature[..85]));
        for text in &texts {
            assert_eq!(decode_array::<64>(text), reference(text), "{text:?}");
        }
        assert_eq!(decode_array::<64>(&signature), Ok([0xA7; 64]));
    }

    #[test]
    fn public_key_refuses_bytes_that_are_not_a_point() {
        // y = 2 is not the y of any curve point.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            PublicKey::from_bytes(&not_a_point),
            Err(PublicKeyError::NotAPoint)
        );
    }

    #[test]
    fn public_key_refuses_small_order_points() {
        // The identity point, encoded: y = 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(PublicKeyError::Weak));
    }

    #[test]
    fn public_key_bytes_equal_only_the_same_encoding() {
        let key = crate::DeviceKey::from_seed(&[9; 32]).public_key();
        let other = crate::DeviceKey::from_seed(&[8; 32]).public_key();
        let bytes = PublicKeyBytes::from(key);
        assert!(bytes == key);
        assert!(bytes != other);
        assert_eq!(bytes.to_string(), key.to_string());
    }

    #[test]
    fn os_random_gives_distinct_values() {
        let a = os_random::<16>().unwrap();
        let b = os_random::<16>().unwrap();
        assert_ne!(a, b);
    }
}
