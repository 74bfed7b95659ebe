//! The issuer's signing keys as the rest of the tool sees them: the list,
//! the key that signs new payloads with its certificate and the installed
//! revocation list, and their lifecycle: rotation, certification,
//! retirement, encryption at rest.
//!
//! A key signs only with a certificate from the store's root. The newest
//! certified key that is not retired signs; a key made by rotation waits
//! for its certificate (`chain::install_certificate`), so rotating never
//! leaves the store unable to sign. A revoked key signs nothing. Payloads
//! carry their own certificate, so retiring a key never touches what it
//! signed before.

use ren3_shared::{
    Certificate, IssuerKey, KeyId, PayloadSigner, RandomSourceError, RootKey, SignerError,
    TokenError, VerifiedCertificationRequest, timestamp,
};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::chain::{self, CertificateWindow, ChainError, RevokedInfo};
use crate::error::{Coded, ErrorKind};
use crate::keystore::{AtRest, KeyStore, KeyStoreError};
use crate::store::{self, SigningKeyRecord, Store, StoreError};

/// How long a new key's certificate lasts unless told otherwise: five years.
pub const DEFAULT_KEY_VALID_DAYS: u32 = 1826;
/// A certificate starts this long before it is asked for, so a clock a
/// little behind the root's does not make a fresh key unusable.
pub const CERTIFICATE_BACKDATE_SECONDS: i64 = 300;
/// The longest certificate a key asks for: twenty years.
pub const MAX_KEY_VALID_DAYS: u32 = 7305;

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("the issuer store has no signing key; it was not made by `ren3-issuer init`")]
    NoKey,
    #[error(
        "the private key file of signing key `{key_id}` does not match the public key the \
         store records for it; restore the key directory from your backup"
    )]
    Mismatch { key_id: String },
    #[error("there is no signing key `{key_id}`; `ren3-issuer keys list` shows the keys")]
    Unknown { key_id: String },
    #[error("signing key `{key_id}` was retired already, at {}", timestamp::format(*.retired_at))]
    AlreadyRetired { key_id: String, retired_at: i64 },
    #[error(
        "signing key `{key_id}` is the only certified key that is not retired: retiring it \
         would leave nothing to sign with; rotate to a new key and install its certificate \
         first"
    )]
    LastUnretired { key_id: String },
    #[error("a key is certified for 1 to {MAX_KEY_VALID_DAYS} days, not {days}")]
    ValidDays { days: u32 },
    #[error("cannot make the request or certificate: {0}")]
    Token(TokenError),
    #[error("cannot sign with key `{key_id}`: {source}")]
    Signer { key_id: KeyId, source: SignerError },
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for SigningKeyError {
    fn code(&self) -> &'static str {
        match self {
            SigningKeyError::NoKey => "no_signing_key",
            SigningKeyError::Mismatch { .. } => "key_file_mismatch",
            SigningKeyError::Unknown { .. } => "key_unknown",
            SigningKeyError::AlreadyRetired { .. } => "key_already_retired",
            SigningKeyError::LastUnretired { .. } => "key_last_unretired",
            SigningKeyError::ValidDays { .. } => "valid_days_invalid",
            SigningKeyError::Token(_) => "token_invalid",
            SigningKeyError::Signer { .. } => "signing_failed",
            SigningKeyError::Chain(e) => e.code(),
            SigningKeyError::KeyStore(KeyStoreError::WrongPassphrase { .. }) => "wrong_passphrase",
            SigningKeyError::KeyStore(KeyStoreError::Passphrase(_)) => "passphrase_missing",
            SigningKeyError::KeyStore(KeyStoreError::AlreadyEncrypted(_)) => {
                "key_already_encrypted"
            }
            SigningKeyError::KeyStore(_) => "key_file_error",
            SigningKeyError::Random(_) => "random_source_failed",
            SigningKeyError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            SigningKeyError::Unknown { .. } => ErrorKind::NotFound,
            SigningKeyError::Signer { .. } | SigningKeyError::Random(_) => ErrorKind::Internal,
            SigningKeyError::Chain(e) => e.kind(),
            SigningKeyError::KeyStore(e) => e.kind(),
            SigningKeyError::Store(e) => e.kind(),
            _ => ErrorKind::Refused,
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
    /// The window of its certificate; `None` until one is installed.
    pub certificate: Option<CertificateWindow>,
    /// Its revocation in the installed list, if that revokes it.
    pub revoked: Option<RevokedInfo>,
}

/// All signing keys, oldest first, with their certificates and revocations.
pub fn list(store: &Store) -> Result<Vec<SigningKeyEntry>, StoreError> {
    store.read(|conn| {
        let current = store::current_signing_key(conn)?.map(|k| k.key_id);
        let trust = chain::overview_in(conn)?;
        Ok(store::signing_keys(conn)?
            .into_iter()
            .map(|key| {
                let revoked = trust.revoked(&key.key_id);
                SigningKeyEntry {
                    signs_new_payloads: Some(key.key_id) == current && revoked.is_none(),
                    certificate: trust.certificate(&key.key_id).map(|c| CertificateWindow {
                        not_before: c.body.not_before,
                        not_after: c.body.not_after,
                    }),
                    revoked,
                    key,
                }
            })
            .collect())
    })
}

/// What signs new payloads: the key of `chain` (the newest certified key
/// that is not retired, its certificate covering now and not revoked, as
/// `chain::signing_chain` found it), with its private key checked against
/// the public key the store recorded for it.
pub(crate) fn signer(
    keys: &KeyStore,
    chain: chain::SigningChain,
) -> Result<PayloadSigner, SigningKeyError> {
    let key = load_checked(keys, &chain.record)?;
    PayloadSigner::new(key, chain.certificate, chain.revocations).map_err(|source| {
        SigningKeyError::Signer {
            key_id: chain.record.key_id,
            source,
        }
    })
}

fn load_checked(keys: &KeyStore, record: &SigningKeyRecord) -> Result<IssuerKey, SigningKeyError> {
    let key = keys.load(&record.key_id)?;
    if key.public_key() != record.public_key {
        return Err(SigningKeyError::Mismatch {
            key_id: record.key_id.to_string(),
        });
    }
    Ok(key)
}

/// The certificate window a key asks for at `now`: from a few minutes
/// before `now`, for `valid_days`.
pub fn certificate_window(valid_days: u32, now: i64) -> Result<(i64, i64), SigningKeyError> {
    if !(1..=MAX_KEY_VALID_DAYS).contains(&valid_days) {
        return Err(SigningKeyError::ValidDays { days: valid_days });
    }
    Ok((
        now - CERTIFICATE_BACKDATE_SECONDS,
        now + i64::from(valid_days) * 24 * 60 * 60,
    ))
}

/// The certification request of signing key `key_id`, for the offline
/// root to certify (`root::certify`): signed with the key itself, which
/// proves the store holds it. Refuses an unknown or retired key.
pub fn certification_request(
    store: &Store,
    keys: &KeyStore,
    key_id: &KeyId,
    valid_days: u32,
    now: i64,
) -> Result<VerifiedCertificationRequest, SigningKeyError> {
    let (not_before, not_after) = certificate_window(valid_days, now)?;
    let all = store.read(|db| store::signing_keys(db))?;
    let key = load_checked(keys, unretired(&all, key_id)?)?;
    key.certification_request(not_before, not_after, now)
        .map_err(SigningKeyError::Token)
}

/// The record of `key_id` among `all`, refusing an unknown or retired key.
fn unretired<'a>(
    all: &'a [SigningKeyRecord],
    key_id: &KeyId,
) -> Result<&'a SigningKeyRecord, SigningKeyError> {
    let key = all
        .iter()
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
    Ok(key)
}

/// Creates a new signing key, kept `at_rest` in the key directory. It has
/// no certificate, so it signs nothing until one is installed; the key
/// that signs now keeps signing. A refusal (no passphrase to encrypt with,
/// an unwritable key directory) is audited.
pub fn rotate(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    at_rest: AtRest,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    rotate_with(store, keys, actor, at_rest, None, now)
}

/// [`rotate`], and certifies the new key at once with `root` (which must
/// be the store's root) for `valid_days`: for a vendor whose root sits on
/// the same machine. The new key signs from then on.
pub fn rotate_certified(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    at_rest: AtRest,
    root: &RootKey,
    valid_days: u32,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    rotate_with(store, keys, actor, at_rest, Some((root, valid_days)), now)
}

fn rotate_with(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    at_rest: AtRest,
    root: Option<(&RootKey, u32)>,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let result = rotate_audited(store, keys, actor, at_rest, root, now);
    let subject = || "(new key)".to_owned();
    audit::audited(store, actor, Action::KeyRotate, subject, now, result)
}

fn rotate_audited(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    at_rest: AtRest,
    root: Option<(&RootKey, u32)>,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let key = IssuerKey::generate()?;
    let certificate = root
        .map(|(root, valid_days)| certify_now(&key, root, valid_days, now))
        .transpose()?;
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
        let detail = match &certificate {
            Some(_) => format!(
                "new signing key {} ({}), certified now: it signs from now on{}",
                record.key_id,
                at_rest_text(at_rest),
                previous
                    .map(|p| format!(", instead of {}", p.key_id))
                    .unwrap_or_default()
            ),
            None => format!(
                "new signing key {} ({}); it signs once its certificate is installed",
                record.key_id,
                at_rest_text(at_rest)
            ),
        };
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::KeyRotate,
                subject: record.key_id.to_string(),
                outcome: Outcome::Ok,
                detail,
            },
            now,
        )?;
        if let Some(certificate) = &certificate {
            // Verified under the store's root: a root directory of another
            // root is refused here, before anything is committed.
            let certificate = Certificate::open(&certificate.token(), &chain::root(tx)?)
                .map_err(ChainError::Certificate)?;
            chain::install_certificate_in(tx, actor, &certificate, now)?;
        }
        Ok::<_, SigningKeyError>(record.clone())
    });
    if result.is_err() {
        // Best effort: a key file the store does not list signs nothing,
        // but it should not be left behind to confuse a later reader.
        let _ = std::fs::remove_file(file);
    }
    result
}

/// Certifies `key` with `root` in memory, through the same request the
/// offline round trip uses.
pub(crate) fn certify_now(
    key: &IssuerKey,
    root: &RootKey,
    valid_days: u32,
    now: i64,
) -> Result<Certificate, SigningKeyError> {
    let (not_before, not_after) = certificate_window(valid_days, now)?;
    let request = key
        .certification_request(not_before, not_after, now)
        .map_err(SigningKeyError::Token)?;
    root.certify(&request, now).map_err(SigningKeyError::Token)
}

/// Retires a signing key: it signs nothing from now on. Payloads it signed
/// carry its certificate and stay valid. Refuses an unknown key, a retired
/// one, and the only certified key that is not retired.
pub fn retire(
    store: &mut Store,
    actor: &Actor,
    key_id: &KeyId,
    now: i64,
) -> Result<SigningKeyRecord, SigningKeyError> {
    let result = store.write(|tx| {
        let all = store::signing_keys(tx)?;
        let key = unretired(&all, key_id)?;
        let certified: Vec<KeyId> = store::certificates(tx)?
            .into_iter()
            .map(|c| c.key_id)
            .collect();
        let signs_now = store::current_signing_key(tx)?.is_some_and(|k| k.key_id == *key_id);
        let another_can_sign = all.iter().any(|k| {
            k.key_id != *key_id && k.retired_at.is_none() && certified.contains(&k.key_id)
        });
        if signs_now && !another_can_sign {
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
    let subject = || key_id.to_string();
    audit::audited(store, actor, Action::KeyRetire, subject, now, result)
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
        .read(|db| store::signing_keys(db))?
        .into_iter()
        .find(|k| k.key_id == *key_id)
        .ok_or_else(|| SigningKeyError::Unknown {
            key_id: key_id.to_string(),
        })?;
    let result = keys.encrypt(key_id).map_err(SigningKeyError::from);
    let subject = || key_id.to_string();
    audit::audited(store, actor, Action::KeyEncrypt, subject, now, result)?;
    let entry = NewEntry {
        actor,
        action: Action::KeyEncrypt,
        subject: key_id.to_string(),
        outcome: Outcome::Ok,
        detail: "the private key is now encrypted with a passphrase".to_owned(),
    };
    audit::record(store, &entry, now)?;
    Ok(record)
}

fn at_rest_text(at_rest: AtRest) -> &'static str {
    match at_rest {
        AtRest::Plain => "private key in plain text",
        AtRest::Encrypted => "private key encrypted with a passphrase",
    }
}

#[cfg(test)]
mod tests {
    use ren3_shared::{DeviceKey, VerifiedPayload};

    use super::*;
    use crate::issuance;
    use crate::passphrase::{Passphrase, PassphraseSource};
    use crate::testing::{NOW, TestStore, actor, request};

    /// A request for a new license's new device, from installation `seed`.
    fn new_request(t: &mut TestStore, seed: u8) -> String {
        let key = t.license(1);
        let device = t.device(&key);
        request(&key, &device, &DeviceKey::from_seed(&[seed; 32]))
    }

    fn issue_at(t: &mut TestStore, seed: u8, at: i64) -> VerifiedPayload {
        let text = new_request(t, seed);
        issuance::issue(&mut t.store, &t.keys, &actor(), &text, at)
            .unwrap()
            .payload
    }

    fn first_key(t: &TestStore) -> KeyId {
        list(&t.store).unwrap()[0].key.key_id
    }

    /// Rotates to a plain key that `root` certifies for 10 days at once.
    fn rotate_under(
        t: &mut TestStore,
        root: &RootKey,
        at: i64,
    ) -> Result<SigningKeyRecord, SigningKeyError> {
        rotate_certified(&mut t.store, &t.keys, &actor(), AtRest::Plain, root, 10, at)
    }

    /// Rotates under the tests' own root.
    fn rotate_under_the_root(t: &mut TestStore, at: i64) -> SigningKeyRecord {
        rotate_under(t, &RootKey::from_seed(&crate::testing::ROOT_SEED), at).unwrap()
    }

    /// The number of files in the key directory.
    fn key_files(t: &TestStore) -> usize {
        std::fs::read_dir(t.keys.dir()).unwrap().count()
    }

    /// The refused audit rows of `action`.
    fn refusals(t: &TestStore, action: &str) -> Vec<audit::Entry> {
        audit::page(
            &t.store,
            &audit::Filter {
                action: Some(action.into()),
                result: Some("refused".into()),
                ..audit::Filter::default()
            },
            10,
        )
        .unwrap()
        .entries
    }

    fn install(t: &mut TestStore, key_id: &KeyId, at: i64) -> Certificate {
        let request = certification_request(&t.store, &t.keys, key_id, 30, at).unwrap();
        // The offline round trip: the request as a file, the root's answer.
        let answer = t
            .root
            .certify(
                &VerifiedCertificationRequest::open(&request.token()).unwrap(),
                at,
            )
            .unwrap();
        chain::install_certificate(&mut t.store, &actor(), &answer.token(), at).unwrap()
    }

    #[test]
    fn a_rotated_key_signs_only_once_its_certificate_is_installed() {
        let mut t = TestStore::new();
        let old = first_key(&t);
        let before = issue_at(&mut t, 1, NOW);
        let new = rotate(&mut t.store, &t.keys, &actor(), AtRest::Plain, NOW + 1).unwrap();
        let meanwhile = issue_at(&mut t, 2, NOW + 2);
        assert_eq!(before.key_id, old);
        assert_eq!(meanwhile.key_id, old, "an uncertified key does not sign");
        let listed = list(&t.store).unwrap();
        assert_eq!(listed[1].certificate, None);
        assert!(!listed[1].signs_new_payloads);

        let certificate = install(&mut t, &new.key_id, NOW + 3);
        assert_eq!(certificate.key_id(), new.key_id);
        let after = issue_at(&mut t, 3, NOW + 4);
        assert_eq!(after.key_id, new.key_id);
        let listed = list(&t.store).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|e| e.signs_new_payloads)
                .collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(
            listed[1].certificate.as_ref().unwrap().not_after,
            NOW + 3 + 30 * 86_400
        );
        // Each payload carries its own certificate: all verify under the root.
        for payload in [&before, &meanwhile, &after] {
            assert!(VerifiedPayload::open(&payload.token(), &t.trust_root()).is_ok());
        }
        assert_eq!(
            t.audited("key.certify")[0],
            ("ok".to_owned(), new.key_id.to_string())
        );
        assert_eq!(t.audited("key.rotate")[0].1, new.key_id.to_string());
    }

    #[test]
    fn rotate_certified_signs_at_once_but_only_with_the_stores_root() {
        let mut t = TestStore::new();
        let new = rotate_under_the_root(&mut t, NOW);
        assert_eq!(issue_at(&mut t, 1, NOW).key_id, new.key_id);

        let (before, files_before) = (t.snapshot(), key_files(&t));
        let stranger = RootKey::from_seed(&[7; 32]);
        let err = rotate_under(&mut t, &stranger, NOW).unwrap_err();
        assert_eq!(err.code(), "untrusted_root", "{err}");
        assert_eq!(t.snapshot(), before);
        assert_eq!(key_files(&t), files_before, "no key file is left behind");
    }

    #[test]
    fn install_certificate_refuses_another_roots_and_a_foreign_keys_changing_nothing() {
        let mut t = TestStore::new();
        let new = rotate(&mut t.store, &t.keys, &actor(), AtRest::Plain, NOW).unwrap();
        let request = certification_request(&t.store, &t.keys, &new.key_id, 30, NOW).unwrap();
        let stranger = IssuerKey::from_seed(&[9; 32]);
        let cases = [
            (
                "1. signed by another root",
                RootKey::from_seed(&[7; 32]).certify(&request, NOW).unwrap(),
                "untrusted_root",
            ),
            (
                "2. for a key of another store",
                t.root
                    .certify(
                        &stranger.certification_request(NOW, NOW + 99, NOW).unwrap(),
                        NOW,
                    )
                    .unwrap(),
                "certificate_unknown_key",
            ),
        ];
        for (name, certificate, code) in cases {
            let before = t.snapshot();
            let err = chain::install_certificate(&mut t.store, &actor(), &certificate.token(), NOW)
                .unwrap_err();
            assert_eq!(err.code(), code, "{name}: {err}");
            assert_eq!(t.snapshot(), before, "{name}");
        }
        let refusals: Vec<_> = t
            .audited("key.certify")
            .into_iter()
            .filter(|(result, _)| result == "refused")
            .collect();
        assert_eq!(refusals.len(), 2);
    }

    #[test]
    fn revocation_install_refuses_an_older_or_equal_version_and_another_roots_list() {
        let mut t = TestStore::new();
        let stranger = IssuerKey::from_seed(&[9; 32]).key_id();
        let v3 = t.revocations(3, &[stranger]);
        let list = chain::install_revocations(&mut t.store, &actor(), &v3.token(), NOW).unwrap();
        assert_eq!(list.version(), 3);
        assert_eq!(
            t.audited("revocations.install")[0],
            ("ok".to_owned(), "version 3".to_owned())
        );

        let other = RootKey::from_seed(&[7; 32])
            .sign_revocations(ren3_shared::RevocationListBody {
                version: 9,
                issued_at: NOW,
                revoked: Vec::new(),
            })
            .unwrap();
        let cases = [
            (
                "1. the same version",
                t.revocations(3, &[]),
                "revocations_not_newer",
            ),
            (
                "2. an older version",
                t.revocations(2, &[]),
                "revocations_not_newer",
            ),
            ("3. another root's list", other, "untrusted_root"),
            (
                "4. a version SQL would sort below the installed one",
                t.revocations(u64::MAX, &[]),
                "value_out_of_range",
            ),
        ];
        for (name, list, code) in cases {
            let before = t.snapshot();
            let err =
                chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW).unwrap_err();
            assert_eq!(err.code(), code, "{name}: {err}");
            if code == "revocations_not_newer" {
                assert!(
                    err.to_string().contains("version 3 is installed"),
                    "{name}: {err}"
                );
            }
            assert_eq!(t.snapshot(), before, "{name}");
        }
        let results: Vec<String> = t
            .audited("revocations.install")
            .into_iter()
            .map(|(result, _)| result)
            .collect();
        assert_eq!(
            results,
            ["refused", "refused", "refused", "refused", "ok", "ok"]
        );
    }

    #[test]
    fn keys_list_shows_a_revoked_key_and_it_stops_signing() {
        let mut t = TestStore::new();
        let old = first_key(&t);
        let new = rotate_under_the_root(&mut t, NOW);
        let list = t.revocations(2, &[new.key_id]);
        chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW).unwrap();
        let listed = list_keys(&t);
        assert_eq!(listed[1].revoked.as_ref().unwrap().version, 2);
        assert!(!listed[1].signs_new_payloads);
        assert!(listed[0].revoked.is_none());
        // The revoked key is the newest certified one: it refuses, and says so.
        let text = new_request(&mut t, 5);
        let err = issuance::issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap_err();
        assert_eq!(err.code(), "key_revoked", "{err}");
        // Retiring it lets the older certified key sign again.
        retire(&mut t.store, &actor(), &new.key_id, NOW).unwrap();
        assert_eq!(issue_at(&mut t, 6, NOW).key_id, old);
    }

    fn list_keys(t: &TestStore) -> Vec<SigningKeyEntry> {
        list(&t.store).unwrap()
    }

    #[test]
    fn retire_keeps_every_payload_the_key_signed_valid() {
        let mut t = TestStore::new();
        let old = first_key(&t);
        let signed_late = issue_at(&mut t, 1, NOW + 100);
        rotate_under_the_root(&mut t, NOW + 100);
        // Retired "now", which is before the last payload it signed: the
        // retirement moves past that payload.
        let retired = retire(&mut t.store, &actor(), &old, NOW + 50).unwrap();
        assert_eq!(retired.retired_at, Some(NOW + 101));
        assert!(VerifiedPayload::open(&signed_late.token(), &t.trust_root()).is_ok());
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
        // 3. the only certified key, beside an uncertified one
        let uncertified = rotate(&mut t.store, &t.keys, &actor(), AtRest::Plain, NOW).unwrap();
        let err = retire(&mut t.store, &actor(), &first, NOW).unwrap_err();
        assert_eq!(err.code(), "key_last_unretired", "3. {err}");
        // 4. a key retired already
        install(&mut t, &uncertified.key_id, NOW);
        retire(&mut t.store, &actor(), &first, NOW).unwrap();
        let before = t.snapshot();
        let err = retire(&mut t.store, &actor(), &first, NOW + 1).unwrap_err();
        assert_eq!(err.code(), "key_already_retired", "4. {err}");
        assert_eq!(t.snapshot(), before, "4.");
        assert_eq!(refusals(&t, "key.retire").len(), 4);
    }

    #[test]
    fn rotate_refuses_to_encrypt_without_a_passphrase_and_audits_the_refusal() {
        let mut t = TestStore::new();
        t.keys = t.keys.clone().with_passphrase(PassphraseSource::none());
        let (before, files_before) = (t.snapshot(), key_files(&t));
        let err = rotate(&mut t.store, &t.keys, &actor(), AtRest::Encrypted, NOW).unwrap_err();
        assert_eq!(err.code(), "passphrase_missing", "{err}");
        assert_eq!(t.snapshot(), before);
        assert_eq!(key_files(&t), files_before, "no key file is left behind");
        let refusals = refusals(&t, "key.rotate");
        assert_eq!(refusals.len(), 1);
        assert!(
            refusals[0].detail.starts_with("passphrase_missing: "),
            "{:?}",
            refusals[0]
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
        install(&mut t, &new.key_id, NOW);
        assert_eq!(issue_at(&mut t, 1, NOW).key_id, new.key_id);

        let text = new_request(&mut t, 2);
        let with_wrong = t.keys.clone().with_passphrase(wrong);
        let before = t.snapshot();
        let err = issuance::issue(&mut t.store, &with_wrong, &actor(), &text, NOW).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        assert_eq!(t.snapshot(), before);
    }
}
