//! The issuer store's side of the trust chain: the root's public key, the
//! certificate of each signing key and the revocation lists the root
//! signed, all installed from files the offline root produced.
//!
//! Nothing here holds or needs the root key. Every certificate and list is
//! verified under the store's root when it is installed **and** when it is
//! read back, so an altered row can never make a payload carry a chain the
//! root did not sign. Every install, and every refused one, is audited.

use crate::store::Db;
use ren3_shared::{
    Certificate, KeyId, Revocation, RevocationList, TokenError, TrustRoot, timestamp,
};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::error::{Coded, ErrorKind};
use crate::rfc3339;
use crate::store::{self, SigningKeyRecord, Store, StoreError};

/// What to run when no key can sign: the certification round trip.
const CERTIFY_STEPS: &str = "`ren3-issuer keys certification-request KEY_ID --out req.token`, \
     then on the root's machine `ren3-issuer root certify --root-dir DIR --request req.token \
     --out cert.token`, then `ren3-issuer keys install-certificate cert.token`";

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(
        "the issuer store has no trust root: it was made before payloads were certified; \
         make a new store with `ren3-issuer init --root-dir DIR`"
    )]
    NoRoot,
    #[error(
        "the issuer store has no revocation list; install the root's with \
         `ren3-issuer revocations install FILE`"
    )]
    NoRevocations,
    #[error(
        "no signing key can sign: none that is not retired has a certificate{}; have the \
         root certify one: {CERTIFY_STEPS}",
        uncertified.map(|k| format!(" (key `{k}` is waiting for one)")).unwrap_or_default()
    )]
    NoCertifiedKey { uncertified: Option<KeyId> },
    #[error(
        "the certificate of signing key `{key_id}` is valid from {} to {}, which does not \
         cover now ({}); have the root certify it again ({CERTIFY_STEPS}), or rotate to a \
         new key",
        timestamp::format(*.not_before), timestamp::format(*.not_after), timestamp::format(*.now)
    )]
    NotCurrent {
        key_id: KeyId,
        not_before: i64,
        not_after: i64,
        now: i64,
    },
    #[error(
        "signing key `{key_id}` is revoked (revocation list version {version}): it signs \
         nothing more; make and certify a new key (`ren3-issuer keys rotate --root-dir DIR` \
         on one machine, or `keys rotate` and {CERTIFY_STEPS}), then retire this one"
    )]
    Revoked { key_id: KeyId, version: u64 },
    #[error(
        "the certificate does not verify under this store's root: {0}; install a certificate \
         the store's root signed (`ren3-issuer trust export-root` shows which root that is)"
    )]
    Certificate(TokenError),
    #[error(
        "the certificate is for key `{key_id}`, which is not a signing key of this store; \
         install it on the store whose `ren3-issuer keys list` shows that key"
    )]
    ForeignKey { key_id: KeyId },
    #[error(
        "the revocation list does not verify under this store's root: {0}; install a list \
         the store's root signed"
    )]
    RevocationList(TokenError),
    #[error(
        "this revocation list is version {version}, and version {installed} is installed \
         already; a list is installed only if it is newer (each list repeats every earlier \
         revocation, so the newest is all that is needed)"
    )]
    NotNewer { version: u64, installed: u64 },
    #[error(
        "the store's {what} no longer verifies ({source}); the store was altered: restore it \
         from your backup"
    )]
    Stored {
        what: &'static str,
        source: TokenError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for ChainError {
    fn code(&self) -> &'static str {
        match self {
            ChainError::NoRoot => "no_trust_root",
            ChainError::NoRevocations => "no_revocation_list",
            ChainError::NoCertifiedKey { .. } => "key_not_certified",
            ChainError::NotCurrent { .. } => "certificate_not_current",
            ChainError::Revoked { .. } => "key_revoked",
            ChainError::Certificate(e) | ChainError::RevocationList(e) => match e {
                TokenError::UntrustedRoot { .. } => "untrusted_root",
                _ => "token_refused",
            },
            ChainError::ForeignKey { .. } => "certificate_unknown_key",
            ChainError::NotNewer { .. } => "revocations_not_newer",
            ChainError::Stored { .. } => "store_altered",
            ChainError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            ChainError::Stored { .. } => ErrorKind::Internal,
            ChainError::Store(e) => e.kind(),
            _ => ErrorKind::Refused,
        }
    }
}

/// The store's root.
pub(crate) fn root(conn: &Db<'_>) -> Result<TrustRoot, ChainError> {
    store::trust_root(conn)?
        .map(TrustRoot::new)
        .ok_or(ChainError::NoRoot)
}

/// The store's root, if it has one: for readers that can do without.
pub fn stored_root(store: &Store) -> Result<Option<TrustRoot>, StoreError> {
    Ok(store.read(|db| store::trust_root(db))?.map(TrustRoot::new))
}

/// The newest installed revocation list, verified under `root`.
pub(crate) fn revocations(conn: &Db<'_>, root: &TrustRoot) -> Result<RevocationList, ChainError> {
    let (_, token) = store::newest_revocation_list(conn)?.ok_or(ChainError::NoRevocations)?;
    RevocationList::open(&token, root).map_err(|source| ChainError::Stored {
        what: "revocation list",
        source,
    })
}

/// The stored certificate of `key_id`, verified under `root`.
pub(crate) fn certificate(
    conn: &Db<'_>,
    root: &TrustRoot,
    key_id: &KeyId,
) -> Result<Option<Certificate>, ChainError> {
    store::certificate_of(conn, key_id)?
        .map(|token| {
            Certificate::open(&token, root).map_err(|source| ChainError::Stored {
                what: "certificate",
                source,
            })
        })
        .transpose()
}

/// What signs new payloads, checked, without its private key: the newest
/// certified key that is not retired, its certificate (covering `now`) and
/// the newest revocation list (not revoking it).
#[derive(Debug, Clone)]
pub(crate) struct SigningChain {
    pub record: SigningKeyRecord,
    pub certificate: Certificate,
    pub revocations: RevocationList,
}

/// The chain new payloads are signed with at `now`, or why there is none.
pub(crate) fn signing_chain(conn: &Db<'_>, now: i64) -> Result<SigningChain, ChainError> {
    let root = root(conn)?;
    let Some(record) = store::current_signing_key(conn)? else {
        let uncertified = store::signing_keys(conn)?
            .into_iter()
            .rev()
            .find(|k| k.retired_at.is_none())
            .map(|k| k.key_id);
        return Err(ChainError::NoCertifiedKey { uncertified });
    };
    let certificate =
        certificate(conn, &root, &record.key_id)?.ok_or(ChainError::NoCertifiedKey {
            uncertified: Some(record.key_id),
        })?;
    let revocations = revocations(conn, &root)?;
    if revocations.find(&record.key_id).is_some() {
        return Err(ChainError::Revoked {
            key_id: record.key_id,
            version: revocations.version(),
        });
    }
    if !certificate.body.covers(now) {
        return Err(ChainError::NotCurrent {
            key_id: record.key_id,
            not_before: certificate.body.not_before,
            not_after: certificate.body.not_after,
            now,
        });
    }
    Ok(SigningChain {
        record,
        certificate,
        revocations,
    })
}

/// Installs a certificate (pasted text: a token, wrapped or armoured) the
/// store's root signed for one of the store's signing keys, replacing any
/// it had. From then on the newest certified key that is not retired signs.
pub fn install_certificate(
    store: &mut Store,
    actor: &Actor,
    text: &str,
    now: i64,
) -> Result<Certificate, ChainError> {
    install(
        store,
        actor,
        text,
        now,
        (Action::KeyCertify, "(certificate)"),
        |text, root| Certificate::open(text, root).map_err(ChainError::Certificate),
        install_certificate_in,
    )
}

/// Opens `text` under the store's root and installs it with `install_in`,
/// in one transaction; a refusal is audited as `action` on `subject` once
/// the transaction rolled back.
fn install<T>(
    store: &mut Store,
    actor: &Actor,
    text: &str,
    now: i64,
    (action, subject): (Action, &str),
    open: impl FnOnce(&str, &TrustRoot) -> Result<T, ChainError>,
    install_in: impl FnOnce(&Db<'_>, &Actor, &T, i64) -> Result<(), ChainError>,
) -> Result<T, ChainError> {
    let result: Result<T, ChainError> = store.write(|tx| {
        let value = open(text, &root(tx)?)?;
        install_in(tx, actor, &value, now)?;
        Ok(value)
    });
    audit::audited(store, actor, action, || subject.to_owned(), now, result)
}

/// Stores a verified certificate and audits it, in the caller's transaction.
pub(crate) fn install_certificate_in(
    tx: &Db<'_>,
    actor: &Actor,
    certificate: &Certificate,
    now: i64,
) -> Result<(), ChainError> {
    let key_id = certificate.key_id();
    let known = store::signing_keys(tx)?
        .into_iter()
        .any(|k| k.key_id == key_id && k.public_key == certificate.body.public_key);
    if !known {
        return Err(ChainError::ForeignKey { key_id });
    }
    if let Ok(list) = revocations(tx, &root(tx)?)
        && list.find(&key_id).is_some()
    {
        return Err(ChainError::Revoked {
            key_id,
            version: list.version(),
        });
    }
    store::upsert_certificate(tx, &certificate.body, &certificate.token(), now)?;
    audit::record_in(
        tx,
        &NewEntry {
            actor,
            action: Action::KeyCertify,
            subject: key_id.to_string(),
            outcome: Outcome::Ok,
            detail: format!(
                "certificate installed: valid from {} to {}, signed by the root at {}",
                timestamp::format(certificate.body.not_before),
                timestamp::format(certificate.body.not_after),
                timestamp::format(certificate.body.issued_at)
            ),
        },
        now,
    )?;
    Ok(())
}

/// Installs a revocation list the store's root signed, newer than the one
/// installed. Every payload issued from then on carries it, and a key it
/// revokes signs nothing more.
pub fn install_revocations(
    store: &mut Store,
    actor: &Actor,
    text: &str,
    now: i64,
) -> Result<RevocationList, ChainError> {
    install(
        store,
        actor,
        text,
        now,
        (Action::RevocationsInstall, "(revocation list)"),
        |text, root| RevocationList::open(text, root).map_err(ChainError::RevocationList),
        install_revocations_in,
    )
}

/// Stores a verified revocation list and audits it, in the caller's
/// transaction; refuses one that is not newer than the installed one.
pub(crate) fn install_revocations_in(
    tx: &Db<'_>,
    actor: &Actor,
    list: &RevocationList,
    now: i64,
) -> Result<(), ChainError> {
    if let Some((installed, _)) = store::newest_revocation_list(tx)?
        && list.version() <= installed
    {
        return Err(ChainError::NotNewer {
            version: list.version(),
            installed,
        });
    }
    store::insert_revocation_list(tx, list.version(), &list.token(), now)?;
    let revoked = revoked_key_ids(list);
    audit::record_in(
        tx,
        &NewEntry {
            actor,
            action: Action::RevocationsInstall,
            subject: format!("version {}", list.version()),
            outcome: Outcome::Ok,
            detail: if revoked.is_empty() {
                "installed; it revokes no key".to_owned()
            } else {
                format!("installed; it revokes {}", revoked.join(", "))
            },
        },
        now,
    )?;
    Ok(())
}

/// The key ids `list` revokes, as audit rows and the CLI show them.
pub fn revoked_key_ids(list: &RevocationList) -> Vec<String> {
    list.body
        .revoked
        .iter()
        .map(|r| r.key_id.to_string())
        .collect()
}

/// A certificate's window, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateWindow {
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_before: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub not_after: i64,
}

/// A key's revocation, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedInfo {
    pub version: u64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub revoked_at: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub grace_until: i64,
}

impl RevokedInfo {
    pub(crate) fn new(list: &RevocationList, revocation: &Revocation) -> Self {
        Self {
            version: list.version(),
            revoked_at: revocation.revoked_at,
            grace_until: revocation.grace_until,
        }
    }
}

/// The store's trust as the console and `trust` commands show it.
#[derive(Debug, Clone)]
pub struct TrustOverview {
    pub root: Option<TrustRoot>,
    pub revocations: Option<RevocationList>,
    /// The stored certificates that verify, by key.
    pub certificates: Vec<Certificate>,
}

impl TrustOverview {
    pub fn certificate(&self, key_id: &KeyId) -> Option<&Certificate> {
        self.certificates.iter().find(|c| c.key_id() == *key_id)
    }

    pub fn revoked(&self, key_id: &KeyId) -> Option<RevokedInfo> {
        let list = self.revocations.as_ref()?;
        list.find(key_id).map(|r| RevokedInfo::new(list, r))
    }
}

/// The store's root, newest list and certificates. A row that does not
/// verify is left out (and logged): the overview shows what can be trusted.
pub(crate) fn overview_in(conn: &Db<'_>) -> Result<TrustOverview, StoreError> {
    let Some(root) = store::trust_root(conn)?.map(TrustRoot::new) else {
        return Ok(TrustOverview {
            root: None,
            revocations: None,
            certificates: Vec::new(),
        });
    };
    let revocations = match revocations(conn, &root) {
        Ok(list) => Some(list),
        Err(ChainError::Store(e)) => return Err(e),
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    };
    let mut certificates = Vec::new();
    for row in store::certificates(conn)? {
        match Certificate::open(&row.token, &root) {
            Ok(certificate) => certificates.push(certificate),
            Err(e) => tracing::warn!(
                "the stored certificate of key {} does not verify: {e}",
                row.key_id
            ),
        }
    }
    Ok(TrustOverview {
        root: Some(root),
        revocations,
        certificates,
    })
}

/// `overview_in` in a read transaction of its own.
pub fn overview(store: &Store) -> Result<TrustOverview, StoreError> {
    store.read(overview_in)
}
