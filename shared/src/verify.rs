//! Ed25519 signature checks that accept exactly the signatures
//! `ed25519_dalek::VerifyingKey::verify_strict` accepts, with less work.
//!
//! `verify_strict` (ed25519-dalek 3) accepts a signature `(R, s)` by key
//! `A` over message `M` when all of these hold:
//!
//! 1. `s` is canonical (below the group order ℓ);
//! 2. `R` decodes to a curve point;
//! 3. that point is not of small order;
//! 4. `A` is not of small order;
//! 5. `compress([s]B - [k]A) == R`, byte for byte, where
//!    `k = SHA-512(R ‖ A ‖ M) mod ℓ` and `B` is the base point.
//!
//! Here, with `P = [s]B - [k]A`, a signature is accepted when 1, 4, 5 and
//! "`P` is not of small order" hold. The two sets are the same: when 5
//! holds, `R` is the canonical encoding of `P`, so `R` decodes (2) and
//! decodes to `P`, and `R` is of small order exactly when `P` is (3).
//! When 5 fails, both refuse. What this saves is decoding `R`, a square
//! root as costly as the compression it is compared with: about a tenth
//! of a check. Condition 4 is a property of the key alone, so it is
//! tested once, when a [`PublicKey`] is made.
//!
//! A key that signs many messages, like a trusted issuer key, can also be
//! [`PreparedKey`]: a table of multiples of `-A`, made once, that makes
//! `[k]A` cheaper on every check after.
//!
//! The tests below check both against `verify_strict` itself: valid
//! signatures, every single-bit change of them, a small-order `R` that
//! satisfies the equation, `s` beyond ℓ, and a key with a torsion part.

use std::fmt;
use std::sync::{Arc, OnceLock};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimePrecomputedMultiscalarMul as _;
use sha2::{Digest as _, Sha512};

use crate::binary::PublicKey;

/// The checks that come before the curve arithmetic: `s` canonical (1),
/// then the challenge `k`. `None` when `s` is not canonical.
fn challenge_and_s(
    key: &PublicKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Option<(Scalar, Scalar)> {
    let (r, s) = signature.split_at(32);
    let s: [u8; 32] = s
        .try_into()
        .unwrap_or_else(|_| unreachable!("64 = 32 + 32"));
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s))?;
    let mut hash = Sha512::new();
    hash.update(r);
    hash.update(key.verifying_key().as_bytes());
    hash.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    Some((k, s))
}

/// Conditions 5 and 3: `P` is what `R` encodes, and not of small order.
fn is_r(p: &EdwardsPoint, signature: &[u8; 64]) -> bool {
    p.compress().as_bytes()[..] == signature[..32] && !p.is_small_order()
}

/// Checks `signature` over `message` by `key`, accepting exactly what
/// `verify_strict` accepts. `key` is never of small order: [`PublicKey`]
/// refuses such keys when it is made.
pub(crate) fn verify(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Some((k, s)) = challenge_and_s(key, message, signature) else {
        return false;
    };
    let minus_a = -key.verifying_key().to_edwards();
    is_r(
        &EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s),
        signature,
    )
}

/// A public key with a table of multiples of it and of the base point,
/// for a key that checks many signatures, like a client's trusted issuer
/// keys: each check costs about a tenth less than with the key alone
/// ([`PublicKey::verify_strict`]). The table takes 20 KiB, and about as
/// long as one check to make; it is made by the first check, so a key
/// that is only listed (a trusted-keys file being written) costs nothing.
#[derive(Clone)]
pub struct PreparedKey {
    key: PublicKey,
    /// Multiples of `B` and of `-A`, in that order, once made; shared by
    /// the clones.
    table: Arc<OnceLock<VartimeEdwardsPrecomputation>>,
}

impl PreparedKey {
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            table: Arc::default(),
        }
    }

    fn table(&self) -> &VartimeEdwardsPrecomputation {
        self.table.get_or_init(|| {
            let minus_a = -self.key.verifying_key().to_edwards();
            VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT, minus_a])
        })
    }

    /// Checks `signature` over `message`, accepting exactly what
    /// `verify_strict` accepts.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Some((k, s)) = challenge_and_s(&self.key, message, signature) else {
            return false;
        };
        is_r(&self.table().vartime_multiscalar_mul([s, k]), signature)
    }
}

/// The same key: the table follows from it.
impl PartialEq for PreparedKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PreparedKey {}

impl fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PreparedKey({})", self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::traits::IsIdentity as _;
    use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

    /// `verify_strict` itself, the reference.
    fn reference(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }

    /// Every check here against the reference, for one key and input.
    fn assert_agree(key: &VerifyingKey, message: &[u8], signature: &[u8; 64], expected: bool) {
        let ours = PublicKey::from_bytes(key.as_bytes()).expect("a sound key");
        let prepared = PreparedKey::new(ours);
        let answers = [
            reference(key, message, signature),
            verify(&ours, message, signature),
            prepared.verify(message, signature),
            ours.verify_strict(message, signature),
        ];
        assert_eq!(answers, [expected; 4], "reference, plain, prepared, public");
    }

    /// The secret scalar `a` of a signing key, with `A = [a]B`.
    fn secret_scalar(signing: &SigningKey) -> Scalar {
        let hash: [u8; 64] = Sha512::digest(signing.as_bytes()).into();
        let mut bits = [0u8; 32];
        bits.copy_from_slice(&hash[..32]);
        bits[0] &= 248;
        bits[31] &= 127;
        bits[31] |= 64;
        Scalar::from_bytes_mod_order(bits)
    }

    /// `(R, s)` with `s = r + k·a`, for any chosen `R = [r]B + T`: the
    /// equation holds for `R`'s prime-order part whatever `T` is.
    fn signature_with(
        r_point: EdwardsPoint,
        r: Scalar,
        a: Scalar,
        key: &[u8; 32],
        m: &[u8],
    ) -> [u8; 64] {
        let r_bytes = r_point.compress().to_bytes();
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(key);
        hash.update(m);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_bytes);
        signature[32..].copy_from_slice((r + k * a).as_bytes());
        signature
    }

    /// The eight points of small order, as encoded.
    fn torsion() -> Vec<EdwardsPoint> {
        curve25519_dalek::constants::EIGHT_TORSION.to_vec()
    }

    #[test]
    fn valid_signatures_and_every_one_bit_change_agree_with_verify_strict() {
        for seed in 0..4u8 {
            let signing = SigningKey::from_bytes(&[seed.wrapping_mul(37); 32]);
            let key = signing.verifying_key();
            let message = format!("message {seed}").into_bytes();
            let signature = signing.sign(&message).to_bytes();
            assert_agree(&key, &message, &signature, true);
            for bit in 0..512 {
                let mut altered = signature;
                altered[bit / 8] ^= 1 << (bit % 8);
                let expected = reference(&key, &message, &altered);
                assert_agree(&key, &message, &altered, expected);
            }
            for bit in 0..message.len() * 8 {
                let mut altered = message.clone();
                altered[bit / 8] ^= 1 << (bit % 8);
                assert_agree(&key, &altered, &signature, false);
            }
        }
    }

    #[test]
    fn a_small_order_r_that_satisfies_the_equation_is_refused() {
        // R = T of small order and s = k·a: [s]B - [k]A = identity, so the
        // equation holds for R = identity and fails for any other T.
        let signing = SigningKey::from_bytes(&[5; 32]);
        let key = signing.verifying_key();
        let a = secret_scalar(&signing);
        let message = b"small order R";
        for t in torsion() {
            let signature = signature_with(t, Scalar::ZERO, a, key.as_bytes(), message);
            assert_agree(&key, message, &signature, false);
        }
        // The identity is the case the small-order test alone refuses.
        let signature = signature_with(
            EdwardsPoint::default(),
            Scalar::ZERO,
            a,
            key.as_bytes(),
            message,
        );
        let ours = PublicKey::from_bytes(key.as_bytes()).unwrap();
        let (k, s) = challenge_and_s(&ours, message, &signature).unwrap();
        let p = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &s);
        assert_eq!(
            p.compress().as_bytes()[..],
            signature[..32],
            "the equation holds"
        );
    }

    #[test]
    fn an_r_with_a_torsion_part_agrees_with_verify_strict() {
        // R = [r]B + T: the equation's side is [r]B alone, so it fails
        // unless T is the identity; both must say the same.
        let signing = SigningKey::from_bytes(&[6; 32]);
        let key = signing.verifying_key();
        let a = secret_scalar(&signing);
        let r = Scalar::from_bytes_mod_order([42; 32]);
        for t in torsion() {
            let r_point = ED25519_BASEPOINT_POINT * r + t;
            let signature = signature_with(r_point, r, a, key.as_bytes(), b"mixed R");
            let expected = t.is_identity();
            assert_agree(&key, b"mixed R", &signature, expected);
        }
    }

    #[test]
    fn a_key_with_a_torsion_part_agrees_with_verify_strict() {
        // A' = A + T is a sound key to verify_strict (not of small order).
        // With s = r + k·a, [s]B - [k]A' = [r]B - [k]T: some messages give
        // k ≡ 0 on T and verify, the others do not.
        let signing = SigningKey::from_bytes(&[7; 32]);
        let a = secret_scalar(&signing);
        let t = torsion()[1];
        let mixed = (signing.verifying_key().to_edwards() + t).compress();
        let key = VerifyingKey::from_bytes(mixed.as_bytes()).unwrap();
        let r = Scalar::from_bytes_mod_order([9; 32]);
        let mut verified = 0;
        for i in 0..64u8 {
            let message = [i; 3];
            let signature = signature_with(ED25519_BASEPOINT_POINT * r, r, a, &mixed.0, &message);
            let expected = reference(&key, &message, &signature);
            verified += usize::from(expected);
            assert_agree(&key, &message, &signature, expected);
        }
        assert!(
            verified > 0 && verified < 64,
            "both outcomes were tested: {verified}"
        );
    }

    #[test]
    fn s_at_or_beyond_the_group_order_is_refused() {
        let signing = SigningKey::from_bytes(&[8; 32]);
        let key = signing.verifying_key();
        let signature = signing.sign(b"s").to_bytes();
        // ℓ, little-endian: s + ℓ is the same scalar, spelled a second way.
        let ell: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = signature;
        let mut carry = 0u16;
        for (byte, ell) in malleated[32..].iter_mut().zip(ell) {
            let total = u16::from(*byte) + u16::from(ell) + carry;
            *byte = total.to_le_bytes()[0];
            carry = total >> 8;
        }
        assert_eq!(carry, 0, "s + ℓ fits in 32 bytes");
        assert_agree(&key, b"s", &malleated, false);
        let mut high = signature;
        high[63] |= 0xE0;
        assert_agree(&key, b"s", &high, false);
    }

    #[test]
    fn the_table_is_made_by_the_first_check_and_shared_by_clones() {
        let signing = SigningKey::from_bytes(&[11; 32]);
        let signature = signing.sign(b"table").to_bytes();
        let key = PublicKey::from_bytes(signing.verifying_key().as_bytes()).unwrap();
        let prepared = PreparedKey::new(key);
        let clone = prepared.clone();
        assert!(prepared.table.get().is_none(), "made before any check");
        assert!(clone.verify(b"table", &signature));
        assert!(prepared.table.get().is_some(), "not shared with the clone");
        assert!(prepared.verify(b"table", &signature));
    }

    #[test]
    fn an_r_that_is_not_a_point_is_refused() {
        let signing = SigningKey::from_bytes(&[10; 32]);
        let key = signing.verifying_key();
        let mut signature = signing.sign(b"r").to_bytes();
        // y = 2 is not the y of any curve point.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(CompressedEdwardsY(not_a_point).decompress().is_none());
        signature[..32].copy_from_slice(&not_a_point);
        assert_agree(&key, b"r", &signature, false);
    }

    proptest::proptest! {
        #[test]
        fn any_signature_gets_the_answer_verify_strict_gives(
            seed in proptest::prelude::any::<[u8; 32]>(),
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            mask in proptest::collection::vec(proptest::prelude::any::<u8>(), 64),
            masked in 0usize..4,
        ) {
            // A valid signature: untouched (0); the low bit of some of its
            // first 21 or 42 bytes flipped (1, 2); its first 63 bytes
            // arbitrary (3).
            let signing = SigningKey::from_bytes(&seed);
            let mut signature = signing.sign(&message).to_bytes();
            for (byte, mask) in signature.iter_mut().zip(&mask).take(masked * 21) {
                *byte ^= if masked == 3 { *byte ^ mask } else { *mask & 1 };
            }
            let key = signing.verifying_key();
            let expected = reference(&key, &message, &signature);
            assert_agree(&key, &message, &signature, expected);
        }
    }
}
