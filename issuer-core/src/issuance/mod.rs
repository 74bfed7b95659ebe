//! Turning a verified license request into a signed license payload.
//!
//! Every check and every write of one issuance happen in a single
//! immediate transaction, so two issuances running at once cannot both
//! take the last seat or bind one device id to two installations.
//!
//! [`check`] runs the very same checks (`evaluate`) without writing, and
//! reports each one, for the console's "check before you issue" page.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::store::Db;
use ren3_shared::{
    DeviceId, Digest, License, PayloadSigner, PayloadTerms, RequestId, TokenError, VerifiedPayload,
    VerifiedRequest, timestamp,
};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::chain::{self, ChainError, SigningChain};
use crate::error::{Coded, ErrorKind};
use crate::inspect::{self, Fields, RequestFields};
use crate::keystore::KeyStore;
use crate::monitoring;
use crate::signing_keys::{self, SigningKeyError};
use crate::store::{
    self, DeviceRecord, IssuanceRecord, LicenseRecord, LicenseStatus, Store, StoreError,
};

mod batch;
mod decide;
mod report;
mod rules;
#[cfg(test)]
mod tests;

pub use batch::issue_batch;
use decide::*;
pub use decide::{SERIALS_PER_SECOND, next_serial};
use report::*;
pub use report::{Check, CheckLine, IssueReport, Verdict, check};
use rules::*;

/// Why no payload was issued. Each variant has a stable [`code`](Self::code).
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Request(TokenError),
    #[error(
        "no license has the key this request was made with (key fingerprint {fingerprint}); \
         check that the customer configured the license key you gave them \
         (`ren3-issuer license list` shows the licenses)"
    )]
    UnknownLicense { fingerprint: Digest },
    #[error(
        "the license {hint} of {customer} is suspended; no payload is issued for it until \
         it is active again"
    )]
    Suspended { hint: String, customer: String },
    #[error("the license {hint} of {customer} is revoked; no payload can be issued for it")]
    Revoked { hint: String, customer: String },
    #[error(
        "the license {hint} of {customer} expired at {}; no payload is issued for an expired \
         license (create a new license if the customer renewed)",
        timestamp::format(*.expired_at)
    )]
    Expired {
        hint: String,
        customer: String,
        expired_at: i64,
    },
    #[error(
        "the request's client device id {client_device_id} is not registered; check that the \
         customer configured the device id you gave them, or register one with \
         `ren3-issuer device add --license KEY`"
    )]
    UnknownDevice { client_device_id: String },
    #[error(
        "the request's client device id {client_device_id} belongs to the license {owner}, \
         not to the request's license {license}; the customer must configure a device id of \
         their own license (`ren3-issuer device add --license KEY` makes one)"
    )]
    ForeignDevice {
        client_device_id: String,
        /// The request's license: "`KEY-HINT` of `CUSTOMER`".
        license: String,
        /// The license the device belongs to, the same way.
        owner: String,
    },
    #[error(
        "the client device id {client_device_id} is already bound to another installation \
         (device key {bound_key}), and this request comes from a different one (device key \
         {request_key}) using the same device id; give this installation its own device id \
         with `ren3-issuer device add --license KEY`"
    )]
    BoundElsewhere {
        client_device_id: String,
        bound_key: String,
        request_key: String,
    },
    #[error(
        "the license {hint} of {customer} has no free seat: all {max_devices} of its allowed \
         devices are bound to installations, and {client_device_id} is not one of them; the \
         customer must use a device id that is already bound"
    )]
    NoFreeSeat {
        hint: String,
        customer: String,
        max_devices: u32,
        client_device_id: String,
    },
    #[error(
        "request {request_id} was answered before (serial {serial}) with a payload signed by \
         key {key_id}, which revocation list version {version} revokes, so the client would \
         refuse it; ask the customer for a new request (`ren3-client request`, or POST \
         /license/register with \"export\": true) and issue that one"
    )]
    AnsweredByRevokedKey {
        request_id: String,
        serial: u64,
        key_id: String,
        version: u64,
    },
    #[error("another issuance bound this device at the same moment; run the issue again")]
    Conflict,
    #[error("cannot sign the payload: {0}")]
    SigningKey(#[from] SigningKeyError),
    #[error("cannot sign the payload: {0}")]
    Chain(#[from] ChainError),
    #[error("cannot sign the payload: {0}")]
    Sign(TokenError),
    #[error(
        "this request was answered before, but the stored payload does not verify ({0}); \
         the store was altered"
    )]
    StoredPayload(TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for IssueError {
    fn code(&self) -> &'static str {
        match self {
            IssueError::Request(e) => e.code(),
            IssueError::UnknownLicense { .. } => "license_unknown",
            IssueError::Suspended { .. } => "license_suspended",
            IssueError::Revoked { .. } => "license_revoked",
            IssueError::Expired { .. } => "license_expired",
            IssueError::UnknownDevice { .. } => "device_unknown",
            IssueError::ForeignDevice { .. } => "device_of_other_license",
            IssueError::BoundElsewhere { .. } => "device_bound_to_other_installation",
            IssueError::NoFreeSeat { .. } => "no_free_seat",
            IssueError::AnsweredByRevokedKey { .. } => "answered_by_revoked_key",
            IssueError::Conflict => "conflict",
            IssueError::SigningKey(SigningKeyError::Chain(e)) | IssueError::Chain(e) => e.code(),
            IssueError::SigningKey(_) | IssueError::Sign(_) => "signing_failed",
            IssueError::StoredPayload(_) => "stored_payload_invalid",
            IssueError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            IssueError::Conflict => ErrorKind::Conflict,
            IssueError::SigningKey(e) => e.kind(),
            IssueError::Chain(e) => e.kind(),
            IssueError::Store(e) => e.kind(),
            IssueError::Sign(_) | IssueError::StoredPayload(_) => ErrorKind::Internal,
            _ => ErrorKind::Refused,
        }
    }
}

/// A payload and what it was issued for.
#[derive(Debug, Clone)]
pub struct Issued {
    pub payload: VerifiedPayload,
    pub license: LicenseRecord,
    /// The device after the issuance: bound to the request's installation.
    pub device: DeviceRecord,
    /// The id of the request this answers, as the client made it.
    pub request_id: RequestId,
    /// The request had been answered before, and `payload` is that answer:
    /// no seat was taken and no serial used.
    pub repeated: bool,
}

/// Issues the payload that answers a license request (pasted text: a
/// token, wrapped or armoured), at time `now`.
///
/// Refuses, changing nothing, unless the request's license exists, is
/// active and not expired, its device id belongs to that license, and the
/// device is either bound to the request's installation key or unbound
/// with a seat free. The same request issued again, while the license is
/// still active and unexpired, returns the stored payload unchanged: no
/// seat is taken and no serial used.
pub fn issue(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    request_text: &str,
    now: i64,
) -> Result<Issued, IssueError> {
    let result = VerifiedRequest::open(request_text)
        .map_err(IssueError::Request)
        .and_then(|request| {
            store.write(
                |tx| match decide(tx, &mut Signer::new(keys), actor, &request, now)? {
                    Decision::Repeated(issued) => Ok(*issued),
                    Decision::Sign(decided) => Ok(record(tx, decided.sign())?),
                },
            )
        });
    if let Err(e) = &result {
        // The refusal rolled back; its audit row gets a transaction of its own.
        if let Err(audit_error) = audit::record(store, &refusal_entry(actor, request_text, e), now)
        {
            tracing::warn!("cannot audit a refused issuance: {audit_error}");
        }
    }
    counted(&result);
    result
}

/// Counts an issuance's result in the metrics: a payload issued (again,
/// for a repeated request), or a refusal under its code.
fn counted(result: &Result<Issued, IssueError>) {
    match result {
        Ok(issued) => monitoring::issued(issued.repeated),
        Err(e) => monitoring::refused(Action::Issue, e.code()),
    }
}

/// The audit row of a refused issuance.
fn refusal_entry<'a>(actor: &'a Actor, request_text: &str, e: &IssueError) -> NewEntry<'a> {
    NewEntry {
        actor,
        action: Action::Issue,
        subject: request_subject(request_text),
        outcome: Outcome::Refused,
        detail: audit::coded(e),
    }
}

/// The current signing key with its certificate and the installed
/// revocation list, loaded at most once per write transaction: the
/// transaction holds the write lock, so no rotation, certificate or list
/// install can change them meanwhile, and a batch does not read (or
/// decrypt) the key file once per request. All requests of a transaction
/// share one `now`, so the certificate check made on loading holds for all.
struct Signer<'k> {
    keys: &'k KeyStore,
    loaded: Option<Arc<PayloadSigner>>,
    /// The signing key's check, for every request of the transaction.
    chain: ChainCheck,
}

impl<'k> Signer<'k> {
    fn new(keys: &'k KeyStore) -> Self {
        Self {
            keys,
            loaded: None,
            chain: ChainCheck::default(),
        }
    }

    fn get(&mut self, tx: &Db<'_>, now: i64) -> Result<Arc<PayloadSigner>, IssueError> {
        if let Some(signer) = &self.loaded {
            return Ok(Arc::clone(signer));
        }
        // The chain the transaction's checks verified: it is not read and
        // verified a second time to sign.
        let chain = self
            .chain
            .chain(tx, now)
            .map_err(SigningKeyError::from)?
            .clone();
        let signer = Arc::new(signing_keys::signer(self.keys, chain)?);
        Ok(Arc::clone(self.loaded.insert(signer)))
    }
}

/// The check that a key can sign now (a current certificate, not revoked),
/// made once per transaction and kept while it passes: reading the chain
/// verifies the certificate and the revocation list under the root, two
/// signature checks, which a batch must not repeat for every request. A
/// transaction holds its lock and one `now`, so the verdict holds for all
/// its requests, and the signer is built from the same verified chain; a
/// failing check is made again, with its error, for each request.
#[derive(Default)]
struct ChainCheck {
    passed: Option<SigningChain>,
}

impl ChainCheck {
    /// The chain that signs now, or why no key can sign.
    fn chain(&mut self, conn: &Db<'_>, now: i64) -> Result<&SigningChain, ChainError> {
        let chain = match self.passed.take() {
            Some(chain) => chain,
            None => chain::signing_chain(conn, now)?,
        };
        Ok(self.passed.insert(chain))
    }
}

/// What an issuance is audited under: the request's device id, if the
/// request can be read at all.
fn request_subject(request_text: &str) -> String {
    match inspect::request(request_text).fields {
        Some(Fields::Request(fields)) => fields.client_device_id,
        _ => "(unreadable request)".to_owned(),
    }
}

/// A payload issued before, with its license, by the hash of the request
/// it answers.
pub fn find(
    store: &Store,
    request_hash: &Digest,
) -> Result<Option<(IssuanceRecord, LicenseRecord)>, StoreError> {
    store.read(|conn| {
        let Some(issuance) = store::issuance_by_request_hash(conn, request_hash)? else {
            return Ok(None);
        };
        let license = store::license_of_row(conn, issuance.license_id)?;
        Ok(Some((issuance, license)))
    })
}
