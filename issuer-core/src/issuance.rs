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

use ren3_shared::{
    DeviceId, Digest, License, PayloadSigner, PayloadTerms, RequestId, TokenError, VerifiedPayload,
    VerifiedRequest, timestamp,
};
use rusqlite::Connection;
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::chain::{self, ChainError, SigningChain};
use crate::error::{Coded, ErrorKind};
use crate::inspect::{self, Fields, RequestFields};
use crate::keystore::KeyStore;
use crate::signing_keys::{self, SigningKeyError};
use crate::store::{
    self, DeviceRecord, IssuanceRecord, LicenseRecord, LicenseStatus, Store, StoreError,
};

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
            IssueError::Conflict => "conflict",
            IssueError::SigningKey(SigningKeyError::Chain(e)) | IssueError::Chain(e) => e.code(),
            IssueError::SigningKey(_) | IssueError::Sign(_) => "signing_failed",
            IssueError::StoredPayload(_) => "stored_payload_invalid",
            IssueError::Store(_) => "store_error",
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
    result
}

/// Issues the payloads that answer `requests`, in order, in ONE immediate
/// transaction, through the same checks and writes as [`issue`].
///
/// Each request succeeds or is refused on its own: a refused one changes
/// nothing but its audit row, and the others are issued. A request answered
/// earlier (before the batch or within it) returns its stored payload, as
/// [`issue`] does. A store error (the store busy or failing) rolls the
/// whole batch back and is returned: nothing of it was written.
///
/// Three kinds of work overlap, so the batch is not held to the pace of
/// one core (see `docs/PERFORMANCE.md`):
/// - helper threads verify the requests' signatures ahead of the writer;
/// - this thread checks each request and makes its writes except the
///   issuance row: it binds the device and records the audit row;
/// - other helpers sign the terms it decided, and this thread stores each
///   signed payload a few requests later, in request order.
///
/// A request of a device whose payload is still being signed waits until
/// every pending payload is stored, so it reads that issuance (its serial,
/// or the answer to the same request) as a batch of one at a time would.
pub fn issue_batch<S: AsRef<str> + Sync>(
    store: &mut Store,
    keys: &KeyStore,
    actor: &Actor,
    requests: &[S],
    now: i64,
) -> Result<Vec<Result<Issued, IssueError>>, StoreError> {
    std::thread::scope(|scope| {
        let mut opened = Verified::start(scope, requests);
        store.write(|tx| {
            let mut signer = Signer::new(keys);
            let mut pending = Pending::new(Signing::start(scope, requests.len()));
            let mut results = Vec::with_capacity(requests.len());
            for text in requests {
                let result = match opened.next() {
                    Ok(request) => {
                        if pending.holds(&request.request.client_device_id) {
                            pending.store_all(tx, &mut results)?;
                        }
                        store::in_savepoint(tx, |tx| decide(tx, &mut signer, actor, &request, now))
                    }
                    Err(e) => Err(IssueError::Request(e)),
                };
                match result {
                    Err(IssueError::Store(e)) => return Err(e),
                    Err(e) => {
                        audit::record_in(tx, &refusal_entry(actor, text.as_ref(), &e), now)?;
                        results.push(Some(Err(e)));
                    }
                    Ok(Decision::Repeated(issued)) => results.push(Some(Ok(*issued))),
                    Ok(Decision::Sign(decided)) => {
                        pending.push(results.len(), *decided);
                        results.push(None);
                        if pending.len() > Signing::AHEAD {
                            pending.store_oldest(tx, &mut results)?;
                        }
                    }
                }
            }
            pending.store_all(tx, &mut results)?;
            Ok(results
                .into_iter()
                .map(|result| result.expect("every pending payload is stored before the commit"))
                .collect())
        })
        // Returning drops `opened`: verifiers still running stop at their
        // next send. Signers stopped when `signing` was dropped.
    })
}

/// How many helper threads each kind of a batch's work gets: none for a
/// few requests (a thread costs more than it saves) or on one core, where
/// this thread does everything itself.
fn helper_threads(requests: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if requests < 64 {
        0
    } else {
        // One core is left to the writer.
        cores.saturating_sub(1)
    }
}

/// The requests of a batch, verified in order by helper threads that run
/// ahead of the writer by at most [`Verified::AHEAD`] requests each.
enum Verified<'a, S> {
    /// Few requests, or one core: verified as they are taken.
    Inline(std::slice::Iter<'a, S>),
    /// Request `i` comes from helper `i % n`, which verifies every n-th.
    Helpers {
        lanes: Vec<Receiver<Result<VerifiedRequest, TokenError>>>,
        next: usize,
    },
}

impl<'a, S: AsRef<str> + Sync> Verified<'a, S> {
    const AHEAD: usize = 64;

    fn start<'scope>(scope: &'scope std::thread::Scope<'scope, '_>, requests: &'a [S]) -> Self
    where
        'a: 'scope,
    {
        let helpers = helper_threads(requests.len());
        if helpers == 0 {
            return Self::Inline(requests.iter());
        }
        let lanes = (0..helpers)
            .map(|lane| {
                let (send, receive) = sync_channel(Self::AHEAD);
                scope.spawn(move || {
                    for text in requests.iter().skip(lane).step_by(helpers) {
                        if send.send(VerifiedRequest::open(text.as_ref())).is_err() {
                            return; // the writer stopped early
                        }
                    }
                });
                receive
            })
            .collect();
        Self::Helpers { lanes, next: 0 }
    }

    /// The next request, verified. Called once per request, in order.
    fn next(&mut self) -> Result<VerifiedRequest, TokenError> {
        match self {
            Self::Inline(texts) => {
                let text = texts
                    .next()
                    .expect("the writer takes exactly one result per request");
                VerifiedRequest::open(text.as_ref())
            }
            Self::Helpers { lanes, next } => {
                let lane = &lanes[*next % lanes.len()];
                *next += 1;
                lane.recv()
                    .expect("a helper sends one result per request of its lane, then stops")
            }
        }
    }
}

/// The issuances of a batch that are decided and not yet stored: their
/// payloads are being signed.
struct Pending {
    signing: Signing,
    /// Each one's place in the batch's results, and its device, oldest first.
    queue: VecDeque<(usize, DeviceId)>,
}

impl Pending {
    fn new(signing: Signing) -> Self {
        Self {
            signing,
            queue: VecDeque::with_capacity(Signing::AHEAD + 1),
        }
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether an issuance of `device` is pending: its serial and request
    /// hash are not in the store yet.
    fn holds(&self, device: &DeviceId) -> bool {
        self.queue.iter().any(|(_, pending)| pending == device)
    }

    /// Sends `decided`, the issuance of the batch's request `index`, to be
    /// signed.
    fn push(&mut self, index: usize, decided: Decided) {
        self.queue
            .push_back((index, decided.device.client_device_id.clone()));
        self.signing.send(decided);
    }

    /// Stores the oldest pending issuance once signed, as result `index`.
    fn store_oldest(
        &mut self,
        tx: &Connection,
        results: &mut [Option<Result<Issued, IssueError>>],
    ) -> Result<(), StoreError> {
        if let Some((index, _)) = self.queue.pop_front() {
            results[index] = Some(Ok(record(tx, self.signing.receive())?));
        }
        Ok(())
    }

    fn store_all(
        &mut self,
        tx: &Connection,
        results: &mut [Option<Result<Issued, IssueError>>],
    ) -> Result<(), StoreError> {
        while !self.queue.is_empty() {
            self.store_oldest(tx, results)?;
        }
        Ok(())
    }
}

/// The payloads a batch decided, signed in the order they were decided by
/// helper threads, at most [`Signing::AHEAD`] at a time.
enum Signing {
    /// Few requests, or one core: signed as they are sent.
    Inline(VecDeque<Signed>),
    /// The n-th payload sent goes to helper `n % lanes`, and comes back
    /// from it in the same order.
    Helpers {
        lanes: Vec<(SyncSender<Decided>, Receiver<Signed>)>,
        sent: usize,
        received: usize,
    },
}

impl Signing {
    const AHEAD: usize = 32;

    fn start<'scope>(scope: &'scope std::thread::Scope<'scope, '_>, requests: usize) -> Self {
        let helpers = helper_threads(requests);
        if helpers == 0 {
            return Self::Inline(VecDeque::new());
        }
        let lanes = (0..helpers)
            .map(|_| {
                // Each lane holds at most every payload pending, so neither
                // side ever waits for room.
                let (send_job, jobs) = sync_channel::<Decided>(Self::AHEAD + 1);
                let (send_signed, signed) = sync_channel(Self::AHEAD + 1);
                scope.spawn(move || {
                    for decided in jobs {
                        if send_signed.send(decided.sign()).is_err() {
                            return; // the writer stopped early
                        }
                    }
                });
                (send_job, signed)
            })
            .collect();
        Self::Helpers {
            lanes,
            sent: 0,
            received: 0,
        }
    }

    fn send(&mut self, decided: Decided) {
        match self {
            Self::Inline(signed) => signed.push_back(decided.sign()),
            Self::Helpers { lanes, sent, .. } => {
                let (lane, _) = &lanes[*sent % lanes.len()];
                *sent += 1;
                lane.send(decided)
                    .expect("a signer runs until the writer drops its lane");
            }
        }
    }

    /// The oldest payload sent and not yet received, signed.
    fn receive(&mut self) -> Signed {
        match self {
            Self::Inline(signed) => signed
                .pop_front()
                .expect("the writer receives only payloads it sent"),
            Self::Helpers {
                lanes, received, ..
            } => {
                let (_, lane) = &lanes[*received % lanes.len()];
                *received += 1;
                lane.recv()
                    .expect("a signer answers every payload of its lane")
            }
        }
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

    fn get(&mut self, tx: &Connection, now: i64) -> Result<Arc<PayloadSigner>, IssueError> {
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
    fn chain(&mut self, conn: &Connection, now: i64) -> Result<&SigningChain, ChainError> {
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

/// One check of an issuance, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    DeviceSignature,
    License,
    LicenseState,
    Expiry,
    DeviceMembership,
    Installation,
    Seats,
    /// A signing key with a certificate covering now, not revoked.
    SigningKey,
}

impl Check {
    pub const ALL: [Check; 8] = [
        Check::DeviceSignature,
        Check::License,
        Check::LicenseState,
        Check::Expiry,
        Check::DeviceMembership,
        Check::Installation,
        Check::Seats,
        Check::SigningKey,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Check::DeviceSignature => "device signature",
            Check::License => "license",
            Check::LicenseState => "license state",
            Check::Expiry => "expiry",
            Check::DeviceMembership => "device membership",
            Check::Installation => "installation binding",
            Check::Seats => "seats",
            Check::SigningKey => "signing key",
        }
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Verdict {
    Pass {
        reason: String,
    },
    /// `message` is the error [`issue`] would refuse with.
    Fail {
        code: &'static str,
        message: String,
    },
    /// An earlier failure left nothing to check.
    NotChecked {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    pub check: Check,
    pub verdict: Verdict,
}

/// Every check of an issuance, run without writing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueReport {
    /// The request's fields; decoded without the signature check if that
    /// failed, and absent if even that is impossible.
    pub request: Option<RequestFields>,
    pub checks: Vec<CheckLine>,
    /// The license the request names, if it exists.
    #[serde(skip)]
    pub license: Option<LicenseRecord>,
    /// This exact request was issued before: issuing returns that payload.
    pub answered_before: bool,
}

impl IssueReport {
    /// Whether [`issue`] would issue now (barring a private key that cannot
    /// be read, which only signing reveals).
    pub fn all_passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.verdict, Verdict::Pass { .. }))
    }

    /// The first failure: the code and message [`issue`] refuses with.
    pub fn first_failure(&self) -> Option<(&'static str, &str)> {
        self.checks.iter().find_map(|c| match &c.verdict {
            Verdict::Fail { code, message } => Some((*code, message.as_str())),
            _ => None,
        })
    }
}

/// Runs every check [`issue`] makes on `request_text` at `now`, in a read
/// transaction, and reports each one. Nothing is written.
pub fn check(store: &Store, request_text: &str, now: i64) -> Result<IssueReport, StoreError> {
    let request_fields = match inspect::request(request_text).fields {
        Some(Fields::Request(fields)) => Some(fields),
        _ => None,
    };
    let request = match VerifiedRequest::open(request_text) {
        Ok(request) => request,
        Err(e) => {
            let e = IssueError::Request(e);
            let mut checks = vec![CheckLine {
                check: Check::DeviceSignature,
                verdict: Verdict::Fail {
                    code: e.code(),
                    message: e.to_string(),
                },
            }];
            checks.extend(Check::ALL[1..].iter().map(|&check| CheckLine {
                check,
                verdict: Verdict::NotChecked {
                    reason: "the request could not be read".to_owned(),
                },
            }));
            return Ok(IssueReport {
                request: request_fields,
                checks,
                license: None,
                answered_before: false,
            });
        }
    };
    store.read(|conn| {
        let evaluation = evaluate(conn, &request, now, &mut ChainCheck::default())?;
        Ok(IssueReport {
            request: request_fields,
            answered_before: matches!(&evaluation.outcome, Ok(r) if r.answered.is_some()),
            checks: evaluation.checks,
            license: evaluation.license,
        })
    })
}

/// The checks of one issuance, recorded in order; the first failure is
/// the error an issuance refuses with.
struct Checks {
    lines: Vec<CheckLine>,
    first_failure: Option<IssueError>,
}

impl Checks {
    fn pass(&mut self, check: Check, reason: String) {
        self.lines.push(CheckLine {
            check,
            verdict: Verdict::Pass { reason },
        });
    }

    fn fail(&mut self, check: Check, error: IssueError) {
        self.lines.push(CheckLine {
            check,
            verdict: Verdict::Fail {
                code: error.code(),
                message: error.to_string(),
            },
        });
        self.first_failure.get_or_insert(error);
    }

    fn not_checked(&mut self, check: Check, reason: &str) {
        self.lines.push(CheckLine {
            check,
            verdict: Verdict::NotChecked {
                reason: reason.to_owned(),
            },
        });
    }
}

/// What an issuance may go ahead with once every check passed.
struct Ready {
    license: LicenseRecord,
    device: DeviceRecord,
    /// The earlier answer to this very request, if there is one.
    answered: Option<IssuanceRecord>,
}

struct Evaluation {
    checks: Vec<CheckLine>,
    license: Option<LicenseRecord>,
    outcome: Result<Ready, IssueError>,
}

/// Every check of an issuance of `request` at `now`, reading `conn`: the
/// one code path of [`issue`] and [`check`].
fn evaluate(
    conn: &Connection,
    request: &VerifiedRequest,
    now: i64,
    chain: &mut ChainCheck,
) -> Result<Evaluation, StoreError> {
    let fields = &request.request;
    let mut checks = Checks {
        lines: Vec::new(),
        first_failure: None,
    };
    checks.pass(
        Check::DeviceSignature,
        format!(
            "signed by the installation key {} it carries",
            request.device_public_key
        ),
    );

    let license = store::license_by_fingerprint(conn, &fields.license_key_fingerprint)?;
    match &license {
        None => {
            checks.fail(
                Check::License,
                IssueError::UnknownLicense {
                    fingerprint: fields.license_key_fingerprint,
                },
            );
            checks.not_checked(Check::LicenseState, "no license to check");
            checks.not_checked(Check::Expiry, "no license to check");
        }
        Some(license) => {
            checks.pass(
                Check::License,
                format!("license {} of {}", license.key_hint, license.customer),
            );
            match check_status(license) {
                Ok(()) => checks.pass(Check::LicenseState, "active".to_owned()),
                Err(e) => checks.fail(Check::LicenseState, e),
            }
            match check_expiry(license, now) {
                Ok(()) => checks.pass(
                    Check::Expiry,
                    match license.expires_at {
                        Some(at) => format!("valid until {}", timestamp::format(at)),
                        None => "never expires".to_owned(),
                    },
                ),
                Err(e) => checks.fail(Check::Expiry, e),
            }
        }
    }

    let device = store::device_by_client_id(conn, &fields.client_device_id)?;
    let member = match (&device, &license) {
        (None, _) => {
            checks.fail(
                Check::DeviceMembership,
                IssueError::UnknownDevice {
                    client_device_id: fields.client_device_id.to_string(),
                },
            );
            None
        }
        (Some(_), None) => {
            checks.not_checked(Check::DeviceMembership, "no license to compare with");
            None
        }
        (Some(device), Some(license)) if device.license_id != license.id => {
            let owner = store::license_of_row(conn, device.license_id)?;
            checks.fail(
                Check::DeviceMembership,
                IssueError::ForeignDevice {
                    client_device_id: device.client_device_id.to_string(),
                    license: format!("{} of {}", license.key_hint, license.customer),
                    owner: format!("{} of {}", owner.key_hint, owner.customer),
                },
            );
            None
        }
        (Some(device), Some(license)) => {
            checks.pass(
                Check::DeviceMembership,
                format!("{} is a device of this license", device.client_device_id),
            );
            Some((device, license))
        }
    };

    let mut answered = None;
    match member {
        None => {
            checks.not_checked(Check::Installation, "no device of this license");
            checks.not_checked(Check::Seats, "no device of this license");
        }
        Some((device, license)) => {
            answered = store::issuance_by_request_hash(conn, &request.hash())?;
            if let Some(done) = &answered {
                let reason = format!(
                    "this request was answered before (serial {}): the same payload is \
                     returned, no seat or serial is used",
                    done.serial
                );
                checks.pass(Check::Installation, reason.clone());
                checks.pass(Check::Seats, reason);
            } else {
                check_binding_and_seat(conn, &mut checks, request, license, device)?;
            }
        }
    }

    if answered.is_some() {
        checks.pass(
            Check::SigningKey,
            "not needed: the stored payload is returned".to_owned(),
        );
    } else {
        match chain.chain(conn, now) {
            Ok(chain) => checks.pass(
                Check::SigningKey,
                format!(
                    "key {}, certified until {}; revocation list version {}",
                    chain.record.key_id,
                    timestamp::format(chain.certificate.body.not_after),
                    chain.revocations.version()
                ),
            ),
            Err(ChainError::Store(e)) => return Err(e),
            Err(e) => checks.fail(Check::SigningKey, IssueError::Chain(e)),
        }
    }

    let outcome = match (checks.first_failure, &license, &device) {
        (Some(error), _, _) => Err(error),
        (None, Some(license), Some(device)) => Ok(Ready {
            license: license.clone(),
            device: device.clone(),
            answered,
        }),
        // Unreachable: every path that leaves the license or the device
        // unknown records a failure above. Refusing is the safe answer.
        (None, _, _) => Err(IssueError::Conflict),
    };
    Ok(Evaluation {
        checks: checks.lines,
        license,
        outcome,
    })
}

/// The device must be bound to the request's installation, or unbound with
/// a seat of the license free.
fn check_binding_and_seat(
    conn: &Connection,
    checks: &mut Checks,
    request: &VerifiedRequest,
    license: &LicenseRecord,
    device: &DeviceRecord,
) -> Result<(), StoreError> {
    match device.public_key {
        Some(bound_key) if bound_key != request.device_public_key => {
            checks.fail(
                Check::Installation,
                IssueError::BoundElsewhere {
                    client_device_id: device.client_device_id.to_string(),
                    bound_key: bound_key.to_string(),
                    request_key: request.device_public_key.to_string(),
                },
            );
            checks.not_checked(Check::Seats, "the device is bound to another installation");
        }
        Some(_) => {
            checks.pass(
                Check::Installation,
                "already bound to this installation".to_owned(),
            );
            checks.pass(Check::Seats, "the device already holds its seat".to_owned());
        }
        None => {
            checks.pass(
                Check::Installation,
                "unbound: this payload binds it to this installation".to_owned(),
            );
            let bound = store::bound_device_count(conn, license.id)?;
            if bound >= license.max_devices {
                checks.fail(
                    Check::Seats,
                    IssueError::NoFreeSeat {
                        hint: license.key_hint.clone(),
                        customer: license.customer.clone(),
                        max_devices: license.max_devices,
                        client_device_id: device.client_device_id.to_string(),
                    },
                );
            } else {
                checks.pass(
                    Check::Seats,
                    format!(
                        "{bound} of {} seats in use; this device takes one",
                        license.max_devices
                    ),
                );
            }
        }
    }
    Ok(())
}

/// What the checks of an issuance decided, once they all passed.
enum Decision {
    /// The request was answered before: its stored payload, changing
    /// nothing but an audit row.
    Repeated(Box<Issued>),
    /// A new payload, to be signed and then stored by [`record`].
    Sign(Box<Decided>),
}

/// An issuance whose device is bound and whose audit row is written, and
/// whose terms are checked and encoded: all it lacks is the signature and
/// its issuance row. Signing cannot fail, so it can happen on any thread.
struct Decided {
    signer: Arc<PayloadSigner>,
    terms: PayloadTerms,
    license: LicenseRecord,
    device: DeviceRecord,
    request_id: RequestId,
    /// The request's counter: the installation's sequence number.
    request_counter: u64,
}

impl Decided {
    fn sign(self) -> Signed {
        let payload = self.signer.sign_terms(self.terms);
        let token = payload.token();
        Signed {
            payload,
            token,
            license: self.license,
            device: self.device,
            request_id: self.request_id,
            request_counter: self.request_counter,
        }
    }
}

/// A decided issuance, signed, with its token encoded.
struct Signed {
    payload: VerifiedPayload,
    token: String,
    license: LicenseRecord,
    device: DeviceRecord,
    request_id: RequestId,
    request_counter: u64,
}

/// The checks and writes of an issuance but its issuance row, for [`issue`]
/// and [`issue_batch`]: what they decide is final once it returns, the
/// device bound and the audit row written in `tx`.
fn decide(
    tx: &Connection,
    signer: &mut Signer<'_>,
    actor: &Actor,
    request: &VerifiedRequest,
    now: i64,
) -> Result<Decision, IssueError> {
    let fields = &request.request;
    let Ready {
        license,
        device,
        answered,
    } = evaluate(tx, request, now, &mut signer.chain)?.outcome?;
    if let Some(done) = answered {
        let root = chain::root(tx)?;
        let payload =
            VerifiedPayload::open(&done.payload, &root).map_err(IssueError::StoredPayload)?;
        audit::record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::Issue,
                subject: device.client_device_id.to_string(),
                outcome: Outcome::Ok,
                detail: format!(
                    "license {}: request {} was answered before; the same payload \
                     (serial {}) was returned",
                    license.key_hint, fields.request_id, done.serial
                ),
            },
            now,
        )?;
        return Ok(Decision::Repeated(Box::new(Issued {
            payload,
            license,
            device,
            request_id: fields.request_id,
            repeated: true,
        })));
    }

    let serial = store::max_serial(tx, device.id)? + 1;
    let signer = signer.get(tx, now)?;
    let terms = signer
        .terms(License {
            customer: license.customer.clone(),
            features: license.features.clone(),
            limits: license.limits.clone(),
            issued_at: now,
            not_before: now,
            expires_at: license.expires_at,
            grace_seconds: license.grace_seconds,
            clock_policy: license.clock_policy,
            serial,
            license_key_fingerprint: fields.license_key_fingerprint,
            client_device_id: fields.client_device_id.clone(),
            device_public_key: request.device_public_key.into(),
            request_hash: request.hash(),
        })
        .map_err(IssueError::Sign)?;

    let device = if device.is_bound() {
        device
    } else {
        // The immediate transaction holds the write lock, so nothing can bind
        // the device between the check above and here; refuse if it did.
        if !store::bind_device(tx, device.id, &request.device_public_key, now)? {
            return Err(IssueError::Conflict);
        }
        DeviceRecord {
            public_key: Some(request.device_public_key),
            bound_at: Some(now),
            ..device
        }
    };
    audit::record_in(
        tx,
        &NewEntry {
            actor,
            action: Action::Issue,
            subject: device.client_device_id.to_string(),
            outcome: Outcome::Ok,
            detail: format!(
                "license {} of {}: serial {serial} for request {}, signed with key {} \
                 (revocation list version {})",
                license.key_hint,
                license.customer,
                fields.request_id,
                signer.key_id(),
                signer.revocations().version()
            ),
        },
        now,
    )?;
    Ok(Decision::Sign(Box::new(Decided {
        signer,
        terms,
        license,
        device,
        request_id: fields.request_id,
        request_counter: fields.counter,
    })))
}

/// Stores a signed payload as the issuance it answers: the last write of
/// an issuance, in the transaction [`decide`] wrote the rest of it in.
fn record(tx: &Connection, signed: Signed) -> Result<Issued, StoreError> {
    let Signed {
        payload,
        token,
        license,
        device,
        request_id,
        request_counter,
    } = signed;
    let terms = &payload.license;
    store::insert_issuance(
        tx,
        &IssuanceRecord {
            license_id: license.id,
            device_id: device.id,
            client_device_id: device.client_device_id.clone(),
            request_hash: terms.request_hash,
            request_id,
            serial: terms.serial,
            key_id: payload.key_id,
            payload: token,
            issued_at: terms.issued_at,
            // What a release receipt of this installation must come after
            // (`releases`): the seat's highest answered counter.
            public_key: device.public_key,
            request_counter: Some(request_counter),
        },
    )?;
    Ok(Issued {
        payload,
        license,
        device,
        request_id,
        repeated: false,
    })
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

fn check_status(license: &LicenseRecord) -> Result<(), IssueError> {
    let (hint, customer) = (license.key_hint.clone(), license.customer.clone());
    match license.status {
        LicenseStatus::Active => Ok(()),
        LicenseStatus::Suspended => Err(IssueError::Suspended { hint, customer }),
        LicenseStatus::Revoked => Err(IssueError::Revoked { hint, customer }),
    }
}

fn check_expiry(license: &LicenseRecord, now: i64) -> Result<(), IssueError> {
    let (hint, customer) = (license.key_hint.clone(), license.customer.clone());
    match license.expires_at {
        Some(expired_at) if now >= expired_at => Err(IssueError::Expired {
            hint,
            customer,
            expired_at,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use ren3_shared::{DeviceKey, LicenseKey};

    use super::*;
    use crate::licenses::{self, NewLicense};
    use crate::store::StoreError;
    use crate::testing::{NOW, TestStore, actor, request};
    use crate::{chain, devices, signing_keys};

    /// A store with one license of `max_devices` seats and one device.
    fn one_device(max_devices: u32) -> (TestStore, LicenseKey, ren3_shared::DeviceId) {
        let mut t = TestStore::new();
        let key = t.license(max_devices);
        let device = t.device(&key);
        (t, key, device)
    }

    fn installation(n: u8) -> DeviceKey {
        DeviceKey::from_seed(&[n; 32])
    }

    /// Issues and asserts the refusal changed nothing in the store.
    fn refused(t: &mut TestStore, text: &str, at: i64) -> IssueError {
        let before = t.snapshot();
        let err = issue(&mut t.store, &t.keys, &actor(), text, at).unwrap_err();
        assert_eq!(t.snapshot(), before, "{err}");
        err
    }

    #[test]
    fn issue_produces_a_payload_that_verifies_under_the_exported_root() {
        let (mut t, key, device) = one_device(1);
        let installation = installation(1);
        let text = request(&key, &device, &installation);
        let issued = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
        assert!(!issued.repeated);

        let exported = chain::stored_root(&t.store)
            .unwrap()
            .unwrap()
            .to_public_file();
        let root = ren3_shared::TrustRoot::parse_public_file(&exported).unwrap();
        assert_eq!(root, t.trust_root());
        let opened = VerifiedPayload::open(&issued.payload.token(), &root).unwrap();
        assert_eq!(opened.revocations.version(), 1);
        assert_eq!(opened.certificate.key_id(), opened.key_id);
        let license = &opened.license;
        let request = VerifiedRequest::open(&text).unwrap();
        assert_eq!(license.customer, "ACME GmbH");
        assert_eq!(license.features, ["ingest"]);
        assert_eq!(license.limits.get("max-sources"), Some(&10));
        assert_eq!(license.serial, 1);
        assert_eq!((license.issued_at, license.not_before), (NOW, NOW));
        assert_eq!(license.expires_at, None);
        assert_eq!(license.license_key_fingerprint, key.fingerprint());
        assert_eq!(license.client_device_id, device);
        assert_eq!(license.device_public_key, installation.public_key());
        assert_eq!(license.request_hash, request.hash());

        let details = licenses::show(&t.store, &key).unwrap();
        assert_eq!(
            details.devices[0].public_key,
            Some(installation.public_key())
        );
        assert_eq!(details.issuances.len(), 1);
        assert_eq!(details.issuances[0].payload, issued.payload.token());
    }

    #[test]
    fn issue_carries_grace_and_clock_policy_and_a_renewal_carries_the_new_terms() {
        let mut t = TestStore::new();
        let key = t.license_with(NewLicense {
            customer: "ACME GmbH".into(),
            expires_at: Some(NOW + 86_400),
            grace_seconds: 3 * 86_400,
            clock_policy: ren3_shared::ClockPolicy::Enforcing,
            ..NewLicense::default()
        });
        let device = t.device(&key);
        let first = issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(&key, &device, &installation(1)),
            NOW,
        )
        .unwrap()
        .payload
        .license;
        assert_eq!(first.grace_seconds, 3 * 86_400);
        assert_eq!(first.clock_policy, ren3_shared::ClockPolicy::Enforcing);

        licenses::update_with(
            &mut t.store,
            &actor(),
            &key,
            |current| licenses::TermsChange {
                features: vec!["ingest".into(), "reports".into()],
                expires_at: Some(NOW + 400 * 86_400),
                grace_seconds: Some(0),
                clock_policy: Some(ren3_shared::ClockPolicy::Advisory),
                ..licenses::TermsChange::keeping(current)
            },
            NOW + 10,
        )
        .unwrap();
        let renewed = issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(&key, &device, &installation(1)),
            NOW + 20,
        )
        .unwrap()
        .payload
        .license;
        assert_eq!(renewed.serial, 2);
        assert_eq!(renewed.features, ["ingest", "reports"]);
        assert_eq!(renewed.expires_at, Some(NOW + 400 * 86_400));
        assert_eq!(
            (renewed.grace_seconds, renewed.clock_policy),
            (0, ren3_shared::ClockPolicy::Advisory)
        );
    }

    #[test]
    fn issue_accepts_an_armoured_and_wrapped_request() {
        let (mut t, key, device) = one_device(1);
        let token = request(&key, &device, &installation(1));
        let mail = format!(
            "Hello,\n\n{}\nRegards\n",
            ren3_shared::Kind::Request.armor(&token)
        );
        assert!(issue(&mut t.store, &t.keys, &actor(), &mail, NOW).is_ok());
    }

    #[test]
    fn issue_twice_returns_same_payload() {
        let (mut t, key, device) = one_device(1);
        let text = request(&key, &device, &installation(1));
        let first = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
        let before = t.snapshot();
        let again = issue(&mut t.store, &t.keys, &actor(), &text, NOW + 3_600).unwrap();
        assert!(again.repeated);
        assert_eq!(again.payload.token(), first.payload.token());
        assert_eq!(t.snapshot(), before);
    }

    /// The dry run of a request answered before says so in one sentence.
    /// (Its reason once lost a `\` at a line break, and the console showed
    /// "is" followed by 22 spaces.)
    #[test]
    fn the_dry_run_of_an_answered_request_reads_as_one_sentence() {
        let (mut t, key, device) = one_device(1);
        let text = request(&key, &device, &installation(1));
        issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
        let report = check(&t.store, &text, NOW + 60).unwrap();
        assert!(report.answered_before);
        let seats = report
            .checks
            .iter()
            .find(|c| c.check == Check::Seats)
            .unwrap();
        assert_eq!(
            seats.verdict,
            Verdict::Pass {
                reason: "this request was answered before (serial 1): the same payload is \
                         returned, no seat or serial is used"
                    .to_owned()
            }
        );
        for line in &report.checks {
            let text = format!("{:?}", line.verdict);
            assert!(!text.contains("  "), "a run of spaces in {text}");
        }
    }

    #[test]
    fn issue_gives_the_next_serial_to_a_new_request_from_the_same_installation() {
        // One seat, already taken by this very device: a new request from
        // the same installation still gets a payload.
        let (mut t, key, device) = one_device(1);
        let installation = installation(1);
        let first = request(&key, &device, &installation);
        let second = request(&key, &device, &installation);
        assert_eq!(
            issue(&mut t.store, &t.keys, &actor(), &first, NOW)
                .unwrap()
                .payload
                .license
                .serial,
            1
        );
        let next = issue(&mut t.store, &t.keys, &actor(), &second, NOW + 60).unwrap();
        assert!(!next.repeated);
        assert_eq!(next.payload.license.serial, 2);
        assert_eq!(next.payload.license.issued_at, NOW + 60);
    }

    #[test]
    fn issue_refuses_a_damaged_request() {
        let (mut t, key, device) = one_device(1);
        let text = request(&key, &device, &installation(1));
        let err = refused(&mut t, &text[..text.len() - 5], NOW);
        assert_eq!(err.code(), "token_damaged", "{err}");
    }

    #[test]
    fn issue_refuses_unknown_license() {
        let (mut t, _, device) = one_device(1);
        let stranger = LicenseKey::generate().unwrap();
        let err = refused(&mut t, &request(&stranger, &device, &installation(1)), NOW);
        assert_eq!(err.code(), "license_unknown", "{err}");
    }

    #[test]
    fn issue_refuses_suspended_license() {
        let (mut t, key, device) = one_device(1);
        licenses::set_status(&mut t.store, &actor(), &key, LicenseStatus::Suspended, NOW).unwrap();
        let err = refused(&mut t, &request(&key, &device, &installation(1)), NOW);
        assert_eq!(err.code(), "license_suspended", "{err}");
        assert!(err.to_string().contains("ACME GmbH"));
    }

    #[test]
    fn issue_refuses_revoked_license_even_for_a_request_answered_before() {
        let (mut t, key, device) = one_device(1);
        let text = request(&key, &device, &installation(1));
        issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
        licenses::set_status(&mut t.store, &actor(), &key, LicenseStatus::Revoked, NOW).unwrap();
        let err = refused(&mut t, &text, NOW);
        assert_eq!(err.code(), "license_revoked", "{err}");
    }

    #[test]
    fn issue_refuses_expired_license_from_its_expiry_on() {
        let mut t = TestStore::new();
        let key = t.license_with(NewLicense {
            customer: "ACME GmbH".into(),
            expires_at: Some(NOW + 100),
            max_devices: 1,
            ..NewLicense::default()
        });
        let device = t.device(&key);
        let text = request(&key, &device, &installation(1));
        let err = refused(&mut t, &text, NOW + 100);
        assert_eq!(err.code(), "license_expired", "{err}");
        // One second earlier it is still valid, and the payload expires with
        // the license.
        let issued = issue(&mut t.store, &t.keys, &actor(), &text, NOW + 99).unwrap();
        assert_eq!(issued.payload.license.expires_at, Some(NOW + 100));
    }

    #[test]
    fn issue_refuses_unregistered_device() {
        let mut t = TestStore::new();
        let key = t.license(1);
        let never_added = ren3_shared::DeviceId::generate().unwrap();
        let err = refused(&mut t, &request(&key, &never_added, &installation(1)), NOW);
        assert_eq!(err.code(), "device_unknown", "{err}");
    }

    #[test]
    fn issue_refuses_device_of_another_license() {
        let mut t = TestStore::new();
        let ours = t.license(1);
        let theirs = t.license_with(NewLicense {
            customer: "Globex".into(),
            max_devices: 1,
            ..NewLicense::default()
        });
        let their_device = t.device(&theirs);
        let err = refused(
            &mut t,
            &request(&ours, &their_device, &installation(1)),
            NOW,
        );
        assert_eq!(err.code(), "device_of_other_license", "{err}");
        assert!(err.to_string().contains("Globex"), "{err}");
    }

    #[test]
    fn issue_refuses_other_installation_with_the_same_device_id() {
        let (mut t, key, device) = one_device(2);
        issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(&key, &device, &installation(1)),
            NOW,
        )
        .unwrap();
        let err = refused(&mut t, &request(&key, &device, &installation(2)), NOW);
        assert_eq!(err.code(), "device_bound_to_other_installation", "{err}");
        let details = licenses::show(&t.store, &key).unwrap();
        assert_eq!(
            details.devices[0].public_key,
            Some(installation(1).public_key())
        );
    }

    #[test]
    fn issue_refuses_when_no_seat_is_free() {
        let (mut t, key, first) = one_device(1);
        let second = t.device(&key);
        issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(&key, &first, &installation(1)),
            NOW,
        )
        .unwrap();
        let err = refused(&mut t, &request(&key, &second, &installation(2)), NOW);
        assert_eq!(err.code(), "no_free_seat", "{err}");
        let details = licenses::show(&t.store, &key).unwrap();
        assert!(!details.devices[1].is_bound());
    }

    #[test]
    fn issue_refuses_without_the_private_key_and_changes_nothing() {
        let (mut t, key, device) = one_device(1);
        for entry in std::fs::read_dir(&t.paths.keys_dir).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let err = refused(&mut t, &request(&key, &device, &installation(1)), NOW);
        assert_eq!(err.code(), "signing_failed", "{err}");
    }

    /// Issues, expecting a refusal with `code` that changed nothing, and
    /// the dry run to report the same failure on its signing-key line.
    fn refused_for_signing(t: &mut TestStore, at: i64, code: &str, says: &str) {
        let key = t.license(1);
        let device = t.device(&key);
        let text = request(&key, &device, &installation(7));
        let err = refused(t, &text, at);
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(says), "{err}");
        let report = check(&t.store, &text, at).unwrap();
        let line = report
            .checks
            .iter()
            .find(|c| c.check == Check::SigningKey)
            .unwrap();
        assert!(
            matches!(&line.verdict, Verdict::Fail { code: c, .. } if *c == code),
            "{line:?}"
        );
        assert_eq!(report.first_failure().unwrap().0, code);
    }

    #[test]
    fn a_key_without_a_certificate_cannot_issue_and_says_how_to_get_one() {
        let mut t = TestStore::new();
        // A store whose only key has no certificate (as one made before
        // keys were certified would be).
        t.store
            .write(|tx| {
                tx.execute("DELETE FROM certificates", [])
                    .map_err(StoreError::from)
            })
            .unwrap();
        refused_for_signing(
            &mut t,
            NOW,
            "key_not_certified",
            "keys certification-request",
        );
    }

    #[test]
    fn a_revoked_signing_key_cannot_issue() {
        let mut t = TestStore::new();
        let current = signing_keys::list(&t.store).unwrap()[0].key.key_id;
        let list = t.revocations(2, &[current]);
        chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW).unwrap();
        refused_for_signing(&mut t, NOW, "key_revoked", "revoked");
    }

    #[test]
    fn a_key_whose_certificate_has_ended_cannot_issue() {
        let mut t = TestStore::new();
        let after = NOW + i64::from(signing_keys::DEFAULT_KEY_VALID_DAYS) * 86_400;
        refused_for_signing(
            &mut t,
            after,
            "certificate_not_current",
            "does not cover now",
        );
        // One second before its end it still signs.
        let key = t.license(1);
        let device = t.device(&key);
        let text = request(&key, &device, &installation(8));
        issue(&mut t.store, &t.keys, &actor(), &text, after - 1).unwrap();
    }

    #[test]
    fn a_payload_issued_after_a_revocation_list_install_carries_it() {
        let (mut t, key, device) = one_device(2);
        let text = request(&key, &device, &installation(1));
        let before = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
        assert_eq!(before.payload.revocations.version(), 1);
        let stranger = ren3_shared::IssuerKey::from_seed(&[9; 32]).key_id();
        let list = t.revocations(2, &[stranger]);
        chain::install_revocations(&mut t.store, &actor(), &list.token(), NOW).unwrap();
        let second = ren3_shared::LicenseRequest::new(
            device.clone(),
            &key,
            ren3_shared::Product {
                name: "ren3-ingestor".into(),
                version: "1.0.1".into(),
            },
            NOW + 1,
        )
        .unwrap()
        .sign(&installation(1))
        .unwrap()
        .token();
        assert_ne!(text, second);
        let after = issue(&mut t.store, &t.keys, &actor(), &second, NOW + 1).unwrap();
        let opened = VerifiedPayload::open(&after.payload.token(), &t.trust_root()).unwrap();
        assert_eq!(opened.revocations.version(), 2);
        assert!(opened.revocations.find(&stranger).is_some());
        // The request answered before the install gets its stored payload,
        // with the list it was signed with.
        let again = issue(&mut t.store, &t.keys, &actor(), &text, NOW + 2).unwrap();
        assert!(again.repeated);
        assert_eq!(again.payload.revocations.version(), 1);
    }

    #[test]
    fn registering_more_devices_than_seats_is_allowed_but_binding_them_is_not() {
        let (mut t, key, first) = one_device(2);
        let second = t.device(&key);
        let third = devices::add(&mut t.store, &actor(), &key, None, NOW)
            .unwrap()
            .device
            .client_device_id;
        issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(&key, &first, &installation(1)),
            NOW,
        )
        .unwrap();
        issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(&key, &second, &installation(2)),
            NOW,
        )
        .unwrap();
        let err = refused(&mut t, &request(&key, &third, &installation(3)), NOW);
        assert_eq!(err.code(), "no_free_seat", "{err}");
    }

    fn audit_rows(t: &TestStore, outcome: &str) -> i64 {
        t.store
            .read(|conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM audit WHERE action = 'issue' AND result = ?1",
                    [outcome],
                    |row| row.get(0),
                )
                .map_err(StoreError::from)
            })
            .unwrap()
    }

    #[test]
    fn batch_issues_every_request_in_one_transaction() {
        let mut t = TestStore::new();
        let key = t.license(3);
        let requests: Vec<String> = (1..=3)
            .map(|n| request(&key, &t.device(&key), &installation(n)))
            .collect();
        let commits = t.store.committed_writes();
        let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
        assert_eq!(t.store.committed_writes(), commits + 1);

        let trust = t.trust_root();
        for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
            let issued = result.as_ref().unwrap();
            assert!(!issued.repeated, "{n}");
            assert_eq!(issued.payload.license.serial, 1, "{n}");
            assert_eq!(
                issued.request_id,
                VerifiedRequest::open(text).unwrap().request.request_id,
                "{n}"
            );
            assert!(
                VerifiedPayload::open(&issued.payload.token(), &trust).is_ok(),
                "{n}"
            );
        }
        let details = licenses::show(&t.store, &key).unwrap();
        assert!(details.devices.iter().all(|d| d.is_bound()));
        assert_eq!(details.issuances.len(), 3);
    }

    #[test]
    fn a_large_batch_verified_on_other_threads_answers_in_request_order() {
        // Above the size at which helper threads verify (64), with damaged
        // requests scattered among good ones: every result is the answer to
        // the request at its own position.
        let mut t = TestStore::new();
        let key = t.license(200);
        let requests: Vec<String> = (0..150u8)
            .map(|n| {
                let text = request(&key, &t.device(&key), &installation(n));
                if n % 7 == 3 {
                    text[..text.len() - 4].to_owned()
                } else {
                    text
                }
            })
            .collect();
        let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
        assert_eq!(results.len(), requests.len());
        for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
            match result {
                Ok(issued) => {
                    assert_ne!(n % 7, 3, "{n}: a damaged request was issued");
                    let expected = VerifiedRequest::open(text).unwrap();
                    assert_eq!(issued.request_id, expected.request.request_id, "{n}");
                    assert_eq!(issued.payload.license.request_hash, expected.hash(), "{n}");
                }
                Err(e) => {
                    assert_eq!(n % 7, 3, "{n}: {e}");
                    assert_eq!(e.code(), "token_damaged", "{n}");
                }
            }
        }
    }

    #[test]
    fn batch_refuses_some_issues_the_rest_and_the_refused_leave_no_trace() {
        let mut t = TestStore::new();
        let key = t.license(2);
        let (first, second, third) = (t.device(&key), t.device(&key), t.device(&key));
        let stranger = LicenseKey::generate().unwrap();
        let good_one = request(&key, &first, &installation(1));
        let cases = [
            ("1. issued", good_one.clone(), None),
            (
                "2. unknown license",
                request(&stranger, &second, &installation(2)),
                Some("license_unknown"),
            ),
            (
                "3. damaged",
                good_one[..good_one.len() - 4].to_owned(),
                Some("token_damaged"),
            ),
            ("4. issued", request(&key, &second, &installation(2)), None),
            (
                "5. no seat left",
                request(&key, &third, &installation(3)),
                Some("no_free_seat"),
            ),
            (
                "6. the first device from another installation, within the batch",
                request(&key, &first, &installation(9)),
                Some("device_bound_to_other_installation"),
            ),
            ("7. the first again", good_one.clone(), None),
        ];
        let texts: Vec<&str> = cases.iter().map(|(_, text, _)| text.as_str()).collect();
        let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();
        for ((name, _, expected), result) in cases.iter().zip(&results) {
            match (expected, result) {
                (None, Ok(_)) => {}
                (Some(code), Err(e)) => assert_eq!(e.code(), *code, "{name}: {e}"),
                (expected, result) => panic!("{name}: expected {expected:?}, got {result:?}"),
            }
        }
        assert!(
            results[6].as_ref().unwrap().repeated,
            "7. answered within the batch"
        );

        let details = licenses::show(&t.store, &key).unwrap();
        assert_eq!(details.issuances.len(), 2);
        assert!(!details.devices[2].is_bound());
        assert_eq!(
            details.devices[0].public_key,
            Some(installation(1).public_key())
        );
        assert_eq!(audit_rows(&t, "refused"), 4);
    }

    #[test]
    fn a_batch_of_refused_requests_changes_nothing_but_the_audit_log() {
        let (mut t, key, device) = one_device(1);
        let stranger = LicenseKey::generate().unwrap();
        let texts = [
            request(&stranger, &device, &installation(1)),
            "not a request".to_owned(),
        ];
        let before = t.snapshot();
        let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();
        assert!(results.iter().all(Result::is_err));
        assert_eq!(t.snapshot(), before);
        assert_eq!(audit_rows(&t, "refused"), 2);
        assert!(licenses::show(&t.store, &key).unwrap().issuances.is_empty());
    }

    #[test]
    fn batch_run_again_returns_the_same_payloads_and_changes_nothing() {
        let mut t = TestStore::new();
        let key = t.license(2);
        let requests: Vec<String> = (1..=2)
            .map(|n| request(&key, &t.device(&key), &installation(n)))
            .collect();
        let first = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
        let before = t.snapshot();
        let again = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW + 60).unwrap();
        assert_eq!(t.snapshot(), before);
        for (one, two) in first.iter().zip(&again) {
            let (one, two) = (one.as_ref().unwrap(), two.as_ref().unwrap());
            assert!(two.repeated);
            assert_eq!(one.payload.token(), two.payload.token());
        }
    }

    #[test]
    fn batch_and_single_issue_give_the_same_answer_to_the_same_request() {
        let (mut t, key, device) = one_device(1);
        let text = request(&key, &device, &installation(1));
        let single = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
        let batch = issue_batch(&mut t.store, &t.keys, &actor(), &[&text], NOW + 1).unwrap();
        let batch = batch[0].as_ref().unwrap();
        assert!(batch.repeated);
        assert_eq!(batch.payload.token(), single.payload.token());
    }

    #[test]
    fn a_pipelined_batch_answers_as_one_request_at_a_time_would() {
        // A batch large enough for helper threads, where devices come back
        // within the signing window: new requests from the same
        // installation (the next serial), the very same request again (its
        // stored answer), and devices beyond the seats (refused). A model
        // of one-at-a-time issuance predicts every answer.
        const SEATS: usize = 30;
        let mut t = TestStore::new();
        let key = t.license(SEATS as u32);
        let devices: Vec<DeviceId> = (0..40).map(|_| t.device(&key)).collect();
        let mut made: Vec<Vec<String>> = vec![Vec::new(); devices.len()];
        let mut requests = Vec::new();
        for i in 0..240usize {
            let d = (i * 7 + i / 40) % devices.len();
            let text = match made[d].last() {
                Some(earlier) if i % 5 == 4 => earlier.clone(),
                _ => {
                    let fresh = request(&key, &devices[d], &installation(d as u8));
                    made[d].push(fresh.clone());
                    fresh
                }
            };
            requests.push((d, text));
        }
        let texts: Vec<&str> = requests.iter().map(|(_, text)| text.as_str()).collect();
        let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();

        // The model: the first SEATS devices to ask are bound; each new
        // request of a bound device takes the next serial; a request asked
        // again gets its first answer's serial.
        let mut bound: Vec<Option<u64>> = vec![None; devices.len()];
        let mut answered: std::collections::HashMap<&str, u64> = Default::default();
        let mut stored = 0;
        for (n, ((d, text), result)) in requests.iter().zip(&results).enumerate() {
            let seats_taken = bound.iter().filter(|b| b.is_some()).count();
            match (answered.get(text.as_str()), bound[*d], result) {
                (Some(serial), _, Ok(issued)) => {
                    assert!(issued.repeated, "{n}: asked again, answered anew");
                    assert_eq!(issued.payload.license.serial, *serial, "{n}");
                }
                (None, Some(last), Ok(issued)) => {
                    assert!(!issued.repeated, "{n}");
                    assert_eq!(issued.payload.license.serial, last + 1, "{n}");
                    bound[*d] = Some(last + 1);
                    answered.insert(text, last + 1);
                    stored += 1;
                }
                (None, None, Ok(issued)) if seats_taken < SEATS => {
                    assert!(!issued.repeated, "{n}");
                    assert_eq!(issued.payload.license.serial, 1, "{n}");
                    bound[*d] = Some(1);
                    answered.insert(text, 1);
                    stored += 1;
                }
                (None, None, Err(e)) if seats_taken == SEATS => {
                    assert_eq!(e.code(), "no_free_seat", "{n}");
                }
                (_, _, other) => panic!("{n}: the model did not expect {other:?}"),
            }
        }
        assert!(
            stored > 100 && answered.len() < requests.len(),
            "the mix is varied"
        );

        // Every new answer is stored as it was returned, and nothing else.
        let rows: Vec<(i64, String)> = t
            .store
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT serial, payload FROM issuances ORDER BY id")?;
                let rows = stmt
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, rusqlite::Error>>()?;
                Ok::<_, StoreError>(rows)
            })
            .unwrap();
        let new_answers: Vec<(i64, String)> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|issued| !issued.repeated)
            .map(|issued| (issued.payload.license.serial as i64, issued.payload.token()))
            .collect();
        assert_eq!(rows, new_answers);
        assert_eq!(
            audit_rows(&t, "ok") + audit_rows(&t, "refused"),
            requests.len() as i64
        );
    }

    #[test]
    fn batch_verifies_requests_in_parallel_and_keeps_their_order() {
        // Enough requests that verification is split over threads.
        let mut t = TestStore::new();
        let key = t.license(100);
        let requests: Vec<String> = (0..100)
            .map(|n| request(&key, &t.device(&key), &installation(n)))
            .collect();
        let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
        for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
            let issued = result.as_ref().unwrap();
            assert_eq!(
                issued.payload.license.request_hash,
                VerifiedRequest::open(text).unwrap().hash(),
                "{n}"
            );
        }
    }
}
