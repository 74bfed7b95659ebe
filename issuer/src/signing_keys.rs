//! The issuer's signing keys as the rest of the tool sees them: the list,
//! the trusted-keys file for clients, the key that signs new payloads, and
//! their lifecycle: rotation, retirement, encryption at rest.
//!
//! The newest key that is not retired signs. A retired key stays in the
//! trusted-keys file with its `retiredAt`, so **every payload a key signed
//! before it was retired keeps verifying**: `retiredAt` is always later
//! than the last payload it signed.

use ren3_shared::{IssuerKey, KeyId, RandomSourceError, TrustedKey, TrustedKeys, timestamp};
use rusqlite::Connection;
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::keystore::{AtRest, KeyStore, KeyStoreError};
use crate::store::{self, SigningKeyRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("the issuer store has no signing key; it was not made by `ren3-issuer init`")]
    NoKey,
    #[error(
        "the private key file of signing key `{key_id}` does not match the public key the \
         store records for it; restore the key directory from your backup"
    )]
    Mismatch { key_id: String },
    #[error("the store's signing keys do not form a valid trusted-keys file: {0}")]
    Trust(#[from] ren3_shared::TrustError),
    #[error("there is no signing key `{key_id}`; `ren3-issuer keys list` shows the keys")]
    Unknown { key_id: String },
    #[error("signing key `{key_id}` was retired already, at {}", timestamp::format(*.retired_at))]
    AlreadyRetired { key_id: String, retired_at: i64 },
    #[error(
        "signing key `{key_id}` is the only key that is not retired: retiring it would leave \
         nothing to sign with; run `ren3-issuer keys rotate` first"
    )]
    LastUnretired { key_id: String },
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SigningKeyError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SigningKeyError::NoKey => "no_signing_key",
            SigningKeyError::Mismatch { .. } => "key_file_mismatch",
            SigningKeyError::Trust(_) => "trusted_keys_invalid",
            SigningKeyError::Unknown { .. } => "key_unknown",
            SigningKeyError::AlreadyRetired { .. } => "key_already_retired",
            SigningKeyError::LastUnretired { .. } => "key_last_unretired",
            SigningKeyError::KeyStore(KeyStoreError::WrongPassphrase { .. }) => "wrong_passphrase",
            SigningKeyError::KeyStore(KeyStoreError::Passphrase(_)) => "passphrase_missing",
            SigningKeyError::KeyStore(KeyStoreError::AlreadyEncrypted(_)) => {
                "key_already_encrypted"
            }
            SigningKeyError::KeyStore(_) => "key_file_error",
            SigningKeyError::Random(_) => "random_source_failed",
            SigningKeyError::Store(_) => "store_error",
        }
    }
}

/// A signing key as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyEntry {
    #[serde(flatten)]
    pub key: SigningKeyRecord,
    /// Whether new payloads are signed with this key.
    pub signs_new_payloads: bool,
}

/// All signing keys, oldest first.
pub fn list(store: &Store) -> Result<Vec<SigningKeyEntry>, StoreError> {
    store.read(|conn| {
        let current = store::current_signing_key(conn)?.map(|k| k.key_id);
        Ok(store::signing_keys(conn)?
            .into_iter()
            .map(|key| SigningKeyEntry {
                signs_new_payloads: Some(key.key_id) == current,
                key,
            })
            .collect())
    })
}

/// The trusted-keys file content clients need: every key of the store.
/// Retired keys stay in it, so payloads they signed keep verifying.
pub fn trusted_keys(store: &Store) -> Result<TrustedKeys, SigningKeyError> {
    trusted_keys_of(&store.read(store::signing_keys)?)
}

pub(crate) fn trusted_keys_of(keys: &[SigningKeyRecord]) -> Result<TrustedKeys, SigningKeyError> {
    if keys.is_empty() {
        return Err(SigningKeyError::NoKey);
    }
    Ok(TrustedKeys::new(
        keys.iter()
            .map(|k| TrustedKey {
                key_id: k.key_id,
                public_key: k.public_key,
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect(),
    )?)
}

/// The private key that signs new payloads: the newest one not retired,
/// checked against the public key the store recorded for it.
pub(crate) fn current(conn: &Connection, keys: &KeyStore) -> Result<IssuerKey, SigningKeyError> {
    let record = store::current_signing_key(conn)?.ok_or(SigningKeyError::NoKey)?;
    let key = keys.load(&record.key_id)?;
    if key.public_key() != record.public_key {
        return Err(SigningKeyError::Mismatch {
            key_id: record.key_id.to_string(),
        });
    }
    Ok(key)
}

/// Creates a new signing key, kept `at_rest` in the key directory, which
/// signs every payload from now on. Older keys keep verifying; retire them
/// with [`retire`] when clients have the new trusted-keys file. A refusal
/// (no passphrase to encrypt with, an unwritable key directory) is audited.
pub fn rotate(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    at_rest: AtRest,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let result = rotate_audited(store, keys, actor, at_rest, now);
    if let Err(e) = &result {
        refused(store, actor, Action::KeyRotate, "(new key)", e, now);
    }
    result
}

fn rotate_audited(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    at_rest: AtRest,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let key = IssuerKey::generate()?;
    let record = SigningKeyRecord {
        key_id: key.key_id(),
        public_key: key.public_key(),
        created_at: now,
        retired_at: None,
    };
    let file = keys.save_as(&key, at_rest)?;
    let result = store.write(|tx| {
        let previous = store::current_signing_key(tx)?;
        store::insert_signing_key(tx, &record)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::KeyRotate,
                subject: record.key_id.to_string(),
                outcome: Outcome::Ok,
                detail: format!(
                    "new signing key {} ({}) signs from now on{}",
                    record.key_id,
                    at_rest_text(at_rest),
                    previous
                        .map(|p| format!(", instead of {}", p.key_id))
                        .unwrap_or_default()
                ),
            },
            now,
        )?;
        Ok::<_, SigningKeyError>(record.clone())
    });
    if result.is_err() {
        // Best effort: a key file the store does not list signs nothing,
        // but it should not be left behind to confuse a later reader.
        let _ = std::fs::remove_file(file);
    }
    result
}

/// Retires a signing key: it signs nothing from now on, and clients
/// refuse payloads it signs with an `issuedAt` from its `retiredAt` on.
/// `retiredAt` is now, or one second after the last payload the key
/// signed if that is later, so that every payload it signed stays valid.
/// Refuses an unknown key, a retired one, and the only unretired key.
pub fn retire(
    store: &mut Store,
    actor: &Actor,
    key_id: &KeyId,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let result = store.write(|tx| {
        let all = store::signing_keys(tx)?;
        let key =
            all.iter()
                .find(|k| k.key_id == *key_id)
                .ok_or_else(|| SigningKeyError::Unknown {
                    key_id: key_id.to_string(),
                })?;
        if let Some(retired_at) = key.retired_at {
            return Err(SigningKeyError::AlreadyRetired {
                key_id: key_id.to_string(),
                retired_at,
            });
        }
        if !all
            .iter()
            .any(|k| k.key_id != *key_id && k.retired_at.is_none())
        {
            return Err(SigningKeyError::LastUnretired {
                key_id: key_id.to_string(),
            });
        }
        let retired_at = store::last_issued_with_key(tx, key_id)?
            .map_or(now, |last| now.max(last.saturating_add(1)));
        store::retire_signing_key(tx, key_id, retired_at)?;
        let successor = store::current_signing_key(tx)?.map(|k| k.key_id);
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::KeyRetire,
                subject: key_id.to_string(),
                outcome: Outcome::Ok,
                detail: format!(
                    "retired at {}; {} signs from now on",
                    timestamp::format(retired_at),
                    successor.map_or_else(|| "no key".to_owned(), |k| k.to_string())
                ),
            },
            now,
        )?;
        Ok(SigningKeyRecord {
            retired_at: Some(retired_at),
            ..key.clone()
        })
    });
    if let Err(e) = &result {
        refused(store, actor, Action::KeyRetire, &key_id.to_string(), e, now);
    }
    result
}

/// Encrypts the private key of a signing key with a passphrase, in place.
pub fn encrypt(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    key_id: &KeyId,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let record = store
        .read(store::signing_keys)?
        .into_iter()
        .find(|k| k.key_id == *key_id)
        .ok_or_else(|| SigningKeyError::Unknown {
            key_id: key_id.to_string(),
        })?;
    let result = keys.encrypt(key_id).map_err(SigningKeyError::from);
    match &result {
        Ok(_) => {
            let entry = NewEntry {
                actor,
                action: Action::KeyEncrypt,
                subject: key_id.to_string(),
                outcome: Outcome::Ok,
                detail: "the private key is now encrypted with a passphrase".to_owned(),
            };
            audit::record(store, &entry, now)?;
        }
        Err(e) => refused(
            store,
            actor,
            Action::KeyEncrypt,
            &key_id.to_string(),
            e,
            now,
        ),
    }
    result.map(|_| record)
}

fn at_rest_text(at_rest: AtRest) -> &'static str {
    match at_rest {
        AtRest::Plain => "private key in plain text",
        AtRest::Encrypted => "private key encrypted with a passphrase",
    }
}

/// Records a refusal after its transaction rolled back; a failure to audit
/// it is only logged, the refusal is what the caller reports.
fn refused(
    store: &mut Store,
    actor: &Actor,
    action: Action,
    subject: &str,
    error: &SigningKeyError,
    now: i64,
) {
    let entry = NewEntry {
        actor,
        action,
        subject: subject.to_owned(),
        outcome: Outcome::Refused,
        detail: format!("{}: {error}", error.code()),
    };
    if let Err(e) = audit::record(store, &entry, now) {
        tracing::warn!("cannot audit a refused {}: {e}", action.as_str());
    }
}

#[cfg(test)]
mod tests {
    use ren3_shared::{DeviceKey, VerifiedPayload};

    use super::*;
    use crate::issuance;
    use crate::passphrase::{Passphrase, PassphraseSource};
    use crate::testing::{NOW, TestStore, actor, request};

    fn issue_at(t: &mut TestStore, seed: u8, at: i64) -> VerifiedPayload {
        let key = t.license(1);
        let device = t.device(&key);
        let text = request(&key, &device, &DeviceKey::from_seed(&[seed; 32]));
        issuance::issue(&mut t.store, &t.keys, &actor(), &text, at)
            .unwrap()
            .payload
    }

    fn first_key(t: &TestStore) -> KeyId {
        list(&t.store).unwrap()[0].key.key_id
    }

    #[test]
    fn rotate_makes_the_new_key_sign_and_keeps_the_old_one_trusted() {
        let mut t = TestStore::new();
        let old = first_key(&t);
        let before = issue_at(&mut t, 1, NOW);
        let new = rotate(&mut t.store, &t.keys, &actor(), AtRest::Plain, NOW + 1).unwrap();
        let after = issue_at(&mut t, 2, NOW + 2);
        assert_eq!(before.key_id, old);
        assert_eq!(after.key_id, new.key_id);
        let listed = list(&t.store).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|e| e.signs_new_payloads)
                .collect::<Vec<_>>(),
            [false, true]
        );
        let trust = trusted_keys(&t.store).unwrap();
        assert!(VerifiedPayload::open(&before.token(), &trust).is_ok());
        assert!(VerifiedPayload::open(&after.token(), &trust).is_ok());
        let rotations = audit::page(
            &t.store,
            &audit::Filter {
                action: Some("key.rotate".into()),
                ..audit::Filter::default()
            },
            10,
        )
        .unwrap();
        assert_eq!(rotations.entries.len(), 1);
        assert_eq!(rotations.entries[0].subject, new.key_id.to_string());
    }

    #[test]
    fn retire_keeps_every_payload_the_key_signed_valid() {
        let mut t = TestStore::new();
        let old = first_key(&t);
        let signed_late = issue_at(&mut t, 1, NOW + 100);
        rotate(&mut t.store, &t.keys, &actor(), AtRest::Plain, NOW + 100).unwrap();
        // Retired "now", which is before the last payload it signed: the
        // retirement moves past that payload.
        let retired = retire(&mut t.store, &actor(), &old, NOW + 50).unwrap();
        assert_eq!(retired.retired_at, Some(NOW + 101));
        let trust = TrustedKeys::parse(&trusted_keys(&t.store).unwrap().to_file()).unwrap();
        assert_eq!(trust.get(&old).unwrap().retired_at, Some(NOW + 101));
        assert!(VerifiedPayload::open(&signed_late.token(), &trust).is_ok());
    }

    #[test]
    fn retire_refuses_unknown_retired_and_last_keys_changing_nothing() {
        let mut t = TestStore::new();
        let first = first_key(&t);
        let stranger = IssuerKey::from_seed(&[9; 32]).key_id();
        // 1. the only key
        let before = t.snapshot();
        let err = retire(&mut t.store, &actor(), &first, NOW).unwrap_err();
        assert_eq!(err.code(), "key_last_unretired", "1. {err}");
        assert_eq!(t.snapshot(), before, "1.");
        // 2. a key the store does not have
        let err = retire(&mut t.store, &actor(), &stranger, NOW).unwrap_err();
        assert_eq!(err.code(), "key_unknown", "2. {err}");
        assert_eq!(t.snapshot(), before, "2.");
        // 3. a key retired already
        rotate(&mut t.store, &t.keys, &actor(), AtRest::Plain, NOW).unwrap();
        retire(&mut t.store, &actor(), &first, NOW).unwrap();
        let before = t.snapshot();
        let err = retire(&mut t.store, &actor(), &first, NOW + 1).unwrap_err();
        assert_eq!(err.code(), "key_already_retired", "3. {err}");
        assert_eq!(t.snapshot(), before, "3.");
        let refusals = audit::page(
            &t.store,
            &audit::Filter {
                action: Some("key.retire".into()),
                result: Some("refused".into()),
                ..audit::Filter::default()
            },
            10,
        )
        .unwrap();
        assert_eq!(refusals.entries.len(), 3);
    }

    #[test]
    fn rotate_refuses_to_encrypt_without_a_passphrase_and_audits_the_refusal() {
        let mut t = TestStore::new();
        t.keys = t.keys.clone().with_passphrase(PassphraseSource::none());
        let files = || std::fs::read_dir(t.keys.dir()).unwrap().count();
        let (before, files_before) = (t.snapshot(), files());
        let err = rotate(&mut t.store, &t.keys, &actor(), AtRest::Encrypted, NOW).unwrap_err();
        assert_eq!(err.code(), "passphrase_missing", "{err}");
        assert_eq!(t.snapshot(), before);
        assert_eq!(files(), files_before, "no key file is left behind");
        let refusals = audit::page(
            &t.store,
            &audit::Filter {
                action: Some("key.rotate".into()),
                result: Some("refused".into()),
                ..audit::Filter::default()
            },
            10,
        )
        .unwrap();
        assert_eq!(refusals.entries.len(), 1);
        assert!(
            refusals.entries[0]
                .detail
                .starts_with("passphrase_missing: "),
            "{:?}",
            refusals.entries[0]
        );
    }

    #[test]
    fn an_encrypted_key_signs_with_the_right_passphrase_and_nothing_with_a_wrong_one() {
        let mut t = TestStore::new();
        let right = PassphraseSource::fixed(Passphrase::new("right".into()).unwrap());
        let wrong = PassphraseSource::fixed(Passphrase::new("wrong".into()).unwrap());
        let cheap = crate::sealed_key::Cost {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        };
        t.keys = t.keys.clone().with_passphrase(right).with_cost(cheap);
        let new = rotate(&mut t.store, &t.keys, &actor(), AtRest::Encrypted, NOW).unwrap();
        assert_eq!(t.keys.at_rest(&new.key_id).unwrap(), AtRest::Encrypted);
        assert_eq!(issue_at(&mut t, 1, NOW).key_id, new.key_id);

        let key = t.license(1);
        let device = t.device(&key);
        let text = request(&key, &device, &DeviceKey::from_seed(&[2; 32]));
        let with_wrong = t.keys.clone().with_passphrase(wrong);
        let before = t.snapshot();
        let err = issuance::issue(&mut t.store, &with_wrong, &actor(), &text, NOW).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        assert_eq!(t.snapshot(), before);
    }
}
