//! A private key seed encrypted with a passphrase: Argon2id (RFC 9106)
//! derives a 256-bit key from the passphrase and a random salt, and
//! ChaCha20-Poly1305 (RFC 8439) encrypts the seed with it under a random
//! nonce. A key file holds one labelled line (see `keystore` and `root`,
//! each with a label of its own):
//!
//! ```text
//! ren3-issuer-signing-key-encrypted-v2: argon2id m=65536 t=3 p=1 salt=<16 B> nonce=<12 B> ciphertext=<48 B>
//! ```
//!
//! Values are unpadded base64url; `m` is in KiB. Everything before
//! ` ciphertext=` is the AEAD's associated data, so the label, the
//! parameters, salt and nonce cannot be altered without the decryption
//! failing: an issuer key's sealed line cannot pass for a root key's.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ren3_shared::binary::{self, Bytes};
use ren3_shared::{RandomSourceError, binary::os_random};
use zeroize::Zeroizing;

use crate::passphrase::Passphrase;

/// The label of an encrypted issuer signing key line, with the file
/// format's version.
pub(crate) const SEALED_LABEL: &str = "ren3-issuer-signing-key-encrypted-v2:";
const KDF_NAME: &str = "argon2id";

/// The cost of deriving the key: 64 MiB, three passes, one lane (the
/// second recommended option of RFC 9106, single-threaded).
pub(crate) const DEFAULT_COST: Cost = Cost {
    memory_kib: 64 * 1024,
    passes: 3,
    lanes: 1,
};
/// Costs above these are refused when reading, so an altered file cannot
/// make the tool allocate without bound.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_PASSES: u32 = 64;
const MAX_LANES: u32 = 16;

/// Argon2id's cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

/// A seed as the key file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealedSeed {
    /// The line's label: which kind of key file it belongs to.
    label: &'static str,
    cost: Cost,
    salt: Bytes<16>,
    nonce: Bytes<12>,
    /// The 32-byte seed and the 16-byte tag.
    ciphertext: Bytes<48>,
}

/// Why a sealed seed could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("{0}")]
    Kdf(String),
}

fn derive_key(
    passphrase: &Passphrase,
    cost: Cost,
    salt: &[u8],
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, Some(32))
        .map_err(|e| format!("the Argon2id parameters are not usable: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| format!("Argon2id failed: {e}"))?;
    Ok(key)
}

impl SealedSeed {
    /// Encrypts `seed` under `passphrase` with a fresh salt and nonce, for
    /// a line labelled `label`.
    pub(crate) fn seal(
        label: &'static str,
        seed: &[u8; 32],
        passphrase: &Passphrase,
        cost: Cost,
    ) -> Result<Self, SealError> {
        let salt = Bytes(os_random::<16>()?);
        let nonce = Bytes(os_random::<12>()?);
        let key = derive_key(passphrase, cost, &salt.0).map_err(SealError::Kdf)?;
        let mut sealed = Self {
            label,
            cost,
            salt,
            nonce,
            ciphertext: Bytes([0; 48]),
        };
        let ciphertext = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .encrypt(
                Nonce::from_slice(&nonce.0),
                Payload {
                    msg: seed,
                    aad: sealed.header().as_bytes(),
                },
            )
            .map_err(|_| SealError::Kdf("ChaCha20-Poly1305 failed to encrypt".into()))?;
        sealed.ciphertext = Bytes(
            <[u8; 48]>::try_from(ciphertext.as_slice())
                .map_err(|_| SealError::Kdf("the ciphertext is not 48 bytes".into()))?,
        );
        Ok(sealed)
    }

    /// Decrypts the seed; a wrong passphrase and an altered line are the
    /// same failure to the AEAD, and the passphrase is by far the likelier.
    pub(crate) fn open(&self, passphrase: &Passphrase) -> Result<Zeroizing<[u8; 32]>, OpenError> {
        let key = derive_key(passphrase, self.cost, &self.salt.0).map_err(OpenError::Kdf)?;
        let plain = Zeroizing::new(
            ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
                .decrypt(
                    Nonce::from_slice(&self.nonce.0),
                    Payload {
                        msg: &self.ciphertext.0,
                        aad: self.header().as_bytes(),
                    },
                )
                .map_err(|_| OpenError::WrongPassphrase)?,
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        if plain.len() != seed.len() {
            return Err(OpenError::WrongPassphrase);
        }
        seed.copy_from_slice(&plain);
        Ok(seed)
    }

    /// The line without its ciphertext: the AEAD's associated data.
    fn header(&self) -> String {
        let Cost {
            memory_kib,
            passes,
            lanes,
        } = self.cost;
        format!(
            "{} {KDF_NAME} m={memory_kib} t={passes} p={lanes} salt={} nonce={}",
            self.label, self.salt, self.nonce
        )
    }

    /// The key file line.
    pub(crate) fn line(&self) -> String {
        format!("{} ciphertext={}", self.header(), self.ciphertext)
    }

    /// Reads the value of a line after its `label`.
    pub(crate) fn parse(label: &'static str, value: &str) -> Result<Self, String> {
        let fields: Vec<&str> = value.split_whitespace().collect();
        let [kdf, m, t, p, salt, nonce, ciphertext] = fields[..] else {
            return Err(format!(
                "the encrypted key line has {} fields where 7 are expected \
                 (argon2id m= t= p= salt= nonce= ciphertext=)",
                fields.len()
            ));
        };
        if kdf != KDF_NAME {
            return Err(format!(
                "the key is encrypted with `{}`, but this build knows only `{KDF_NAME}`",
                kdf.escape_debug()
            ));
        }
        let number = |field: &str, name: &str, max: u32| -> Result<u32, String> {
            let value = field
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .ok_or_else(|| format!("expected `{name}=` where `{}` is", field.escape_debug()))?;
            let n: u32 = value
                .parse()
                .map_err(|_| format!("`{name}` is not a whole number"))?;
            if n == 0 || n > max {
                return Err(format!("`{name}` is {n}, outside 1 to {max}"));
            }
            Ok(n)
        };
        let bytes = |field: &str, name: &str| -> Result<String, String> {
            field
                .strip_prefix(name)
                .and_then(|v| v.strip_prefix('='))
                .map(str::to_owned)
                .ok_or_else(|| format!("expected `{name}=` where `{}` is", field.escape_debug()))
        };
        fn bad(name: &'static str) -> impl Fn(binary::BytesError) -> String {
            move |e| format!("`{name}` is not valid: {e}")
        }
        Ok(Self {
            label,
            cost: Cost {
                memory_kib: number(m, "m", MAX_MEMORY_KIB)?,
                passes: number(t, "t", MAX_PASSES)?,
                lanes: number(p, "p", MAX_LANES)?,
            },
            salt: bytes(salt, "salt")?.parse().map_err(bad("salt"))?,
            nonce: bytes(nonce, "nonce")?.parse().map_err(bad("nonce"))?,
            ciphertext: bytes(ciphertext, "ciphertext")?
                .parse()
                .map_err(bad("ciphertext"))?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error("{0}")]
    Kdf(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check the format, not the cost.
    const CHEAP: Cost = Cost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    fn passphrase(text: &str) -> Passphrase {
        Passphrase::new(text.into()).unwrap()
    }

    #[test]
    fn seal_then_open_gives_the_seed_back_and_the_line_round_trips() {
        let seed = [7u8; 32];
        let sealed = SealedSeed::seal(SEALED_LABEL, &seed, &passphrase("right"), CHEAP).unwrap();
        let line = sealed.line();
        assert!(line.starts_with(SEALED_LABEL));
        assert!(!line.contains(&binary::encode(&seed)));
        let parsed =
            SealedSeed::parse(SEALED_LABEL, line.strip_prefix(SEALED_LABEL).unwrap()).unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(*parsed.open(&passphrase("right")).unwrap(), seed);
    }

    #[test]
    fn open_refuses_a_wrong_passphrase_and_altered_parameters() {
        let sealed =
            SealedSeed::seal(SEALED_LABEL, &[7u8; 32], &passphrase("right"), CHEAP).unwrap();
        assert_eq!(
            sealed.open(&passphrase("wrong")),
            Err(OpenError::WrongPassphrase)
        );
        // 1. a cost changed in the file: the associated data no longer matches
        let altered = SealedSeed {
            cost: Cost { passes: 2, ..CHEAP },
            ..sealed.clone()
        };
        assert_eq!(
            altered.open(&passphrase("right")),
            Err(OpenError::WrongPassphrase)
        );
        // 2. the same line under another label (another kind of key file)
        let relabelled = SealedSeed {
            label: "ren3-root-key-encrypted-v1:",
            ..sealed.clone()
        };
        assert_eq!(
            relabelled.open(&passphrase("right")),
            Err(OpenError::WrongPassphrase)
        );
        // 3. two seals of one seed differ (fresh salt and nonce)
        let again =
            SealedSeed::seal(SEALED_LABEL, &[7u8; 32], &passphrase("right"), CHEAP).unwrap();
        assert_ne!(again.line(), sealed.line());
    }

    #[test]
    fn parse_refuses_damage_and_unbounded_costs() {
        let line = SealedSeed::seal(SEALED_LABEL, &[7u8; 32], &passphrase("pw"), CHEAP)
            .unwrap()
            .line();
        let value = line.strip_prefix(SEALED_LABEL).unwrap().to_owned();
        let cases: [(&str, String); 6] = [
            ("1. a field missing", value.replace(" t=1", "")),
            ("2. another KDF", value.replace("argon2id", "scrypt")),
            (
                "3. memory cost too high",
                value.replace("m=64", "m=99999999"),
            ),
            ("4. zero passes", value.replace("t=1", "t=0")),
            ("5. short salt", value.replace("salt=", "salt=AA")),
            ("6. fields reordered", value.replace(" t=1 p=1", " p=1 t=1")),
        ];
        for (name, bad) in cases {
            assert!(
                SealedSeed::parse(SEALED_LABEL, &bad).is_err(),
                "{name}: {bad}"
            );
        }
    }
}
