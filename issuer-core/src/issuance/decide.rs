//! Deciding one request inside the writing transaction, then recording
//! the payload signed for it, with its audit row.

use super::*;

/// What the checks of an issuance decided, once they all passed.
pub(super) enum Decision {
    /// The request was answered before: its stored payload, changing
    /// nothing but an audit row.
    Repeated(Box<Issued>),
    /// A new payload, to be signed and then stored by [`record`].
    Sign(Box<Decided>),
}

/// An issuance whose device is bound and whose audit row is written, and
/// whose terms are checked and encoded: all it lacks is the signature and
/// its issuance row. Signing cannot fail, so it can happen on any thread.
pub(super) struct Decided {
    pub(super) signer: Arc<PayloadSigner>,
    pub(super) terms: PayloadTerms,
    pub(super) license: LicenseRecord,
    pub(super) device: DeviceRecord,
    pub(super) request_id: RequestId,
    /// The request's counter: the installation's sequence number.
    pub(super) request_counter: u64,
}

impl Decided {
    pub(super) fn sign(self) -> Signed {
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
pub(super) struct Signed {
    pub(super) payload: VerifiedPayload,
    pub(super) token: String,
    pub(super) license: LicenseRecord,
    pub(super) device: DeviceRecord,
    pub(super) request_id: RequestId,
    pub(super) request_counter: u64,
}

/// The checks and writes of an issuance but its issuance row, for [`issue`]
/// and [`issue_batch`]: what they decide is final once it returns, the
/// device bound and the audit row written in `tx`.
pub(super) fn decide(
    tx: &Db<'_>,
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

    let serial = next_serial(
        store::max_serial(tx, device.id)?,
        now,
        store::last_restore_at(tx)?,
    );
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

/// How many serials a second of the issuance time spans: a serial is at
/// least the issuance time in microseconds.
pub const SERIALS_PER_SECOND: u64 = 1_000_000;

/// The serial of a new issuance at `now` for a device whose highest serial
/// so far is `highest` (0 for none), in a store last restored from a
/// backup at `restored_at` (`docs/FORMAT.md` §5):
/// `max(highest + 1, T × 10^6)`, where `T` is `now`, or one second after
/// the restore if that is later.
///
/// The first term makes serials rise within one store whatever the clock
/// does. The second ties them to the vendor's clock, so that they do not
/// go backwards when the store does: a store restored from an older
/// backup has forgotten the payloads issued after it, and a client that
/// imported one of them refuses a payload with a lower serial
/// (`downgrade_rejected`). Every serial issued at a second `S` is below
/// `(S + 1) × 10^6` unless a device was given a million payloads within
/// that second, and the restore happened after every issuance the store
/// lost, so every serial issued after a restore is above all of them,
/// whatever time a command that waited for the restore was started at,
/// as long as the vendor's clock did not go back. A time beyond what the
/// store records (`i64::MAX` microseconds, the year 294247) adds nothing,
/// and `highest + 1` is then refused by the store as out of range.
pub fn next_serial(highest: u64, now: i64, restored_at: Option<i64>) -> u64 {
    let time = restored_at.map_or(now, |at| now.max(at.saturating_add(1)));
    let from_time = u64::try_from(time)
        .ok()
        .and_then(|seconds| seconds.checked_mul(SERIALS_PER_SECOND))
        .filter(|serial| *serial <= store::U64::SQL_ORDERED_MAX)
        .unwrap_or(0);
    highest.saturating_add(1).max(from_time)
}

/// Stores a signed payload as the issuance it answers: the last write of
/// an issuance, in the transaction [`decide`] wrote the rest of it in.
pub(super) fn record(tx: &Db<'_>, signed: Signed) -> Result<Issued, StoreError> {
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
