//! Many requests in one transaction (`issue_batch`), as a pipeline: helper
//! threads verify requests ahead of the writer, the writer decides each,
//! other helpers sign the decided terms, and the writer stores each
//! payload a few requests later, in order.

use super::*;

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
    let results = std::thread::scope(|scope| {
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
    })?;
    // Counted once committed, as a batch of one at a time would count.
    for result in &results {
        counted(result);
    }
    Ok(results)
}

/// How many helper threads each kind of a batch's work gets: none for a
/// few requests (a thread costs more than it saves) or on one core, where
/// this thread does everything itself.
pub(super) fn helper_threads(requests: usize) -> usize {
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
pub(super) enum Verified<'a, S> {
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

    pub(super) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        requests: &'a [S],
    ) -> Self
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
    pub(super) fn next(&mut self) -> Result<VerifiedRequest, TokenError> {
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
pub(super) struct Pending {
    pub(super) signing: Signing,
    /// Each one's place in the batch's results, and its device, oldest first.
    pub(super) queue: VecDeque<(usize, DeviceId)>,
}

impl Pending {
    pub(super) fn new(signing: Signing) -> Self {
        Self {
            signing,
            queue: VecDeque::with_capacity(Signing::AHEAD + 1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether an issuance of `device` is pending: its serial and request
    /// hash are not in the store yet.
    pub(super) fn holds(&self, device: &DeviceId) -> bool {
        self.queue.iter().any(|(_, pending)| pending == device)
    }

    /// Sends `decided`, the issuance of the batch's request `index`, to be
    /// signed.
    pub(super) fn push(&mut self, index: usize, decided: Decided) {
        self.queue
            .push_back((index, decided.device.client_device_id.clone()));
        self.signing.send(decided);
    }

    /// Stores the oldest pending issuance once signed, as result `index`.
    pub(super) fn store_oldest(
        &mut self,
        tx: &Db<'_>,
        results: &mut [Option<Result<Issued, IssueError>>],
    ) -> Result<(), StoreError> {
        if let Some((index, _)) = self.queue.pop_front() {
            results[index] = Some(Ok(record(tx, self.signing.receive())?));
        }
        Ok(())
    }

    pub(super) fn store_all(
        &mut self,
        tx: &Db<'_>,
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
pub(super) enum Signing {
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

    pub(super) fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        requests: usize,
    ) -> Self {
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

    pub(super) fn send(&mut self, decided: Decided) {
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
    pub(super) fn receive(&mut self) -> Signed {
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
