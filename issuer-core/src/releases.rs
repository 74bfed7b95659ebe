//! Giving a seat back: with the release receipt an installation signs when
//! it deactivates (`POST /license/deactivate` on the client), or by force
//! when the machine was lost.
//!
//! A receipt frees the seat only if it is signed by the very installation
//! the device is bound to, names that device's license, has a counter above
//! every counter accepted from that installation before (so it is accepted
//! once) and above the counter of every request of that installation the
//! vendor answered for the seat (so it was signed after the last payload
//! the vendor sent was asked for: FORMAT.md §6), and names a serial that
//! was issued to that installation. Every check and the write happen in one
//! immediate transaction. A freed device is unbound: a new installation can
//! bind the same device id, or another device of the license can take the
//! seat.

use crate::store::Db;
use ren3_shared::{DeviceId, PublicKey, TokenError, VerifiedPayload, VerifiedReceipt, timestamp};
use serde::Serialize;

use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::chain;
use crate::error::{Coded, ErrorKind};
use crate::store::{self, DeviceRecord, LicenseRecord, ReleaseRecord, Store, StoreError};

/// The longest reason for a forced release.
const MAX_REASON_CHARS: usize = 500;

/// Why a seat was not released. Each variant has a stable [`code`](Self::code).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Receipt(TokenError),
    #[error(
        "the receipt's client device id {client_device_id} is not registered with this \
         issuer; check that the receipt comes from one of your customers' installations"
    )]
    UnknownDevice { client_device_id: String },
    #[error(
        "the receipt names a license key (fingerprint {fingerprint}) that is not the license \
         {hint} of {customer} its device {client_device_id} belongs to; the receipt is not \
         for this device's license"
    )]
    WrongLicense {
        client_device_id: String,
        fingerprint: String,
        hint: String,
        customer: String,
    },
    #[error(
        "this receipt was used before: its counter {counter} is not above {last}, the last \
         counter accepted from this installation; ask the customer for a new receipt"
    )]
    Replayed { counter: u64, last: u64 },
    #[error(
        "the device {client_device_id} holds no seat (it is not bound to an installation), \
         so there is nothing to release"
    )]
    NotBound { client_device_id: String },
    #[error(
        "the receipt is signed by installation key {receipt_key}, but the device \
         {client_device_id} is bound to installation key {bound_key}: the receipt comes from \
         another installation and cannot free this seat"
    )]
    WrongDevice {
        client_device_id: String,
        bound_key: String,
        receipt_key: String,
    },
    #[error(
        "this receipt (counter {counter}) was signed before request {request_counter} of the \
         same installation, which was answered with serial {serial}: the installation \
         registered again after releasing, and may still use that payload on device \
         {client_device_id}. Ask the customer for the receipt of their latest deactivation; \
         if the machine is gone, free the seat by force (`ren3-issuer device release \
         --device {client_device_id} --force --reason TEXT`)"
    )]
    Stale {
        client_device_id: String,
        counter: u64,
        request_counter: u64,
        serial: u64,
    },
    #[error(
        "the receipt names serial {serial}, which was never issued to this installation of \
         device {client_device_id}"
    )]
    UnknownSerial {
        client_device_id: String,
        serial: u64,
    },
    #[error("{0}")]
    Reason(String),
    #[error("the seat changed while it was being released; run the release again")]
    Conflict,
    #[error("cannot check the serial the receipt names: {0}")]
    Trust(#[from] chain::ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for ReleaseError {
    fn code(&self) -> &'static str {
        match self {
            ReleaseError::Receipt(e) => e.code(),
            ReleaseError::UnknownDevice { .. } => "device_unknown",
            ReleaseError::WrongLicense { .. } => "receipt_wrong_license",
            ReleaseError::Replayed { .. } => "receipt_replayed",
            ReleaseError::NotBound { .. } => "device_not_bound",
            ReleaseError::WrongDevice { .. } => "receipt_wrong_device",
            ReleaseError::Stale { .. } => "receipt_stale",
            ReleaseError::UnknownSerial { .. } => "receipt_serial_unknown",
            ReleaseError::Reason(_) => "release_reason_invalid",
            ReleaseError::Conflict => "conflict",
            ReleaseError::Trust(e) => e.code(),
            ReleaseError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            ReleaseError::Conflict => ErrorKind::Conflict,
            ReleaseError::Trust(e) => e.kind(),
            ReleaseError::Store(e) => e.kind(),
            _ => ErrorKind::Refused,
        }
    }
}

/// A seat that was freed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Released {
    #[serde(skip)]
    pub license: LicenseRecord,
    /// The device after the release: unbound.
    pub device: DeviceRecord,
    pub release: ReleaseRecord,
}

/// Frees the seat a release receipt (pasted text: a token, wrapped or
/// armoured) gives back. Refuses, changing nothing but the audit log, a
/// receipt that is damaged or forged (`signature_invalid`), replayed, from
/// another installation, signed before a request of that installation that
/// was answered (`receipt_stale`), or for another license.
pub fn release(
    store: &mut Store,
    actor: &Actor,
    receipt_text: &str,
    now: i64,
) -> Result<Released, ReleaseError> {
    let result = VerifiedReceipt::open(receipt_text)
        .map_err(ReleaseError::Receipt)
        .and_then(|receipt| store.write(|tx| release_in(tx, actor, &receipt, now)));
    let subject = || {
        VerifiedReceipt::open(receipt_text).map_or_else(
            |_| "(unreadable receipt)".to_owned(),
            |r| r.receipt.client_device_id.to_string(),
        )
    };
    audit::audited(store, actor, Action::DeviceRelease, subject, now, result)
}

/// Runs every check of [`release`] without writing: `Ok(())` if the
/// receipt would free its seat now, else the error it would be refused
/// with (a refusal) or that stopped the check (the store's, of kind
/// internal). For `inspect` and the console's preview.
pub fn check(store: &Store, receipt_text: &str) -> Result<(), ReleaseError> {
    let receipt = VerifiedReceipt::open(receipt_text).map_err(ReleaseError::Receipt)?;
    store.read(|conn| evaluate(conn, &receipt).map(drop))
}

/// What a release goes ahead with once every check passed.
struct Ready {
    license: LicenseRecord,
    device: DeviceRecord,
    bound_key: PublicKey,
}

fn evaluate(conn: &Db<'_>, receipt: &VerifiedReceipt) -> Result<Ready, ReleaseError> {
    let fields = &receipt.receipt;
    // The replay and staleness checks compare counters in SQL too.
    store::ordered("the receipt's counter", fields.counter)?;
    store::ordered("the receipt's serial", fields.serial)?;
    let client_device_id = fields.client_device_id.to_string();
    let device = store::device_by_client_id(conn, &fields.client_device_id)?.ok_or_else(|| {
        ReleaseError::UnknownDevice {
            client_device_id: client_device_id.clone(),
        }
    })?;
    let license = store::license_of_row(conn, device.license_id)?;
    if license.key_fingerprint != fields.license_key_fingerprint {
        return Err(ReleaseError::WrongLicense {
            client_device_id,
            fingerprint: fields.license_key_fingerprint.to_string(),
            hint: license.key_hint,
            customer: license.customer,
        });
    }
    // A receipt seen before is refused as such, whatever the seat's state
    // now: the same receipt twice is a replay, not a "not bound".
    let last = store::last_receipt_counter(conn, &receipt.device_public_key)?;
    if fields.counter <= last {
        return Err(ReleaseError::Replayed {
            counter: fields.counter,
            last,
        });
    }
    let bound_key = device.public_key.ok_or_else(|| ReleaseError::NotBound {
        client_device_id: client_device_id.clone(),
    })?;
    if bound_key != receipt.device_public_key {
        return Err(ReleaseError::WrongDevice {
            client_device_id,
            bound_key: bound_key.to_string(),
            receipt_key: receipt.device_public_key.to_string(),
        });
    }
    // One sequence number counts the installation's requests and receipts:
    // a receipt not above an answered request was signed before that
    // request, and the payload answering it may be installed behind it.
    if let Some((request_counter, serial)) =
        store::last_answered_request(conn, device.id, &bound_key)?
        && fields.counter <= request_counter
    {
        return Err(ReleaseError::Stale {
            client_device_id,
            counter: fields.counter,
            request_counter,
            serial,
        });
    }
    let issued_to_this_installation =
        match store::issuance_by_serial(conn, device.id, fields.serial)? {
            None => false,
            Some(issuance) => {
                let root = chain::root(conn)?;
                VerifiedPayload::open(&issuance.payload, &root)
                    .is_ok_and(|p| p.license.device_public_key == receipt.device_public_key)
            }
        };
    if !issued_to_this_installation {
        return Err(ReleaseError::UnknownSerial {
            client_device_id,
            serial: fields.serial,
        });
    }
    Ok(Ready {
        license,
        device,
        bound_key,
    })
}

fn release_in(
    tx: &Db<'_>,
    actor: &Actor,
    receipt: &VerifiedReceipt,
    now: i64,
) -> Result<Released, ReleaseError> {
    let Ready {
        license,
        device,
        bound_key,
    } = evaluate(tx, receipt)?;
    let fields = &receipt.receipt;
    let record = ReleaseRecord {
        license_id: license.id,
        device_id: device.id,
        client_device_id: device.client_device_id.clone(),
        public_key: bound_key,
        forced: false,
        receipt: Some(receipt.token()),
        serial: Some(fields.serial),
        counter: Some(fields.counter),
        receipt_released_at: Some(fields.released_at),
        reason: None,
        actor: actor.to_string(),
        released_at: now,
    };
    let detail = format!(
        "license {} of {}: seat freed by a release receipt of installation {bound_key} \
         (serial {}, counter {}, released on the device at {})",
        license.key_hint,
        license.customer,
        fields.serial,
        fields.counter,
        timestamp::format(fields.released_at)
    );
    free_seat(
        tx,
        actor,
        Action::DeviceRelease,
        license,
        device,
        record,
        detail,
        now,
    )
}

/// Frees a device's seat without a receipt, when the installation cannot
/// give one (a lost or broken machine). It is recorded as forced, with
/// `reason`, in the release history and the audit log.
pub fn force_release(
    store: &mut Store,
    actor: &Actor,
    client_device_id: &DeviceId,
    reason: &str,
    now: i64,
) -> Result<Released, ReleaseError> {
    let result = reason_problem(reason)
        .map_or(Ok(()), |p| Err(ReleaseError::Reason(p)))
        .and_then(|()| {
            store.write(|tx| force_release_in(tx, actor, client_device_id, reason, now))
        });
    let subject = || client_device_id.to_string();
    audit::audited(
        store,
        actor,
        Action::DeviceForceRelease,
        subject,
        now,
        result,
    )
}

fn force_release_in(
    tx: &Db<'_>,
    actor: &Actor,
    client_device_id: &DeviceId,
    reason: &str,
    now: i64,
) -> Result<Released, ReleaseError> {
    let device = store::device_by_client_id(tx, client_device_id)?.ok_or_else(|| {
        ReleaseError::UnknownDevice {
            client_device_id: client_device_id.to_string(),
        }
    })?;
    let bound_key = device.public_key.ok_or_else(|| ReleaseError::NotBound {
        client_device_id: client_device_id.to_string(),
    })?;
    let license = store::license_of_row(tx, device.license_id)?;
    let record = ReleaseRecord {
        license_id: license.id,
        device_id: device.id,
        client_device_id: device.client_device_id.clone(),
        public_key: bound_key,
        forced: true,
        receipt: None,
        serial: None,
        counter: None,
        receipt_released_at: None,
        reason: Some(reason.to_owned()),
        actor: actor.to_string(),
        released_at: now,
    };
    let detail = format!(
        "license {} of {}: seat of installation {bound_key} FORCED free without a receipt; \
         reason: {reason}",
        license.key_hint, license.customer
    );
    free_seat(
        tx,
        actor,
        Action::DeviceForceRelease,
        license,
        device,
        record,
        detail,
        now,
    )
}

/// Unbinds the device, records the release and audits it.
#[allow(clippy::too_many_arguments)]
fn free_seat(
    tx: &Db<'_>,
    actor: &Actor,
    action: Action,
    license: LicenseRecord,
    device: DeviceRecord,
    record: ReleaseRecord,
    detail: String,
    now: i64,
) -> Result<Released, ReleaseError> {
    // The immediate transaction holds the write lock, so the binding
    // checked above still holds; refuse if it somehow did not.
    if !store::unbind_device(tx, device.id, &record.public_key)? {
        return Err(ReleaseError::Conflict);
    }
    store::insert_release(tx, &record)?;
    audit::record_in(
        tx,
        &NewEntry {
            actor,
            action,
            subject: device.client_device_id.to_string(),
            outcome: Outcome::Ok,
            detail,
        },
        now,
    )?;
    Ok(Released {
        license,
        device: DeviceRecord {
            public_key: None,
            bound_at: None,
            ..device
        },
        release: record,
    })
}

/// Why a reason for a forced release is refused, if it is.
pub fn reason_problem(reason: &str) -> Option<String> {
    let chars = reason.chars().count();
    if reason.trim().is_empty() {
        Some("give the reason the seat is forced free, e.g. \"machine stolen\"".into())
    } else if chars > MAX_REASON_CHARS {
        Some(format!(
            "the reason has {chars} characters; at most {MAX_REASON_CHARS} are allowed"
        ))
    } else if reason.chars().any(char::is_control) {
        Some("the reason contains a control character".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use ren3_shared::{DeviceKey, LicenseKey, ReleaseReceipt};

    use super::*;
    use crate::issuance;
    use crate::licenses;
    use crate::testing::{NOW, TestStore, actor, numbered_request, request, tamper};

    fn installation(n: u8) -> DeviceKey {
        DeviceKey::from_seed(&[n; 32])
    }

    /// The `n`-th serial of a device whose payloads were all issued at
    /// `NOW`: the time in microseconds, then one more each
    /// (`issuance::next_serial`).
    fn serial(n: u64) -> u64 {
        NOW as u64 * issuance::SERIALS_PER_SECOND + n - 1
    }

    /// A license with `seats` seats, one device bound to installation 1 by
    /// a payload of serial 1.
    fn bound(seats: u32) -> (TestStore, LicenseKey, DeviceId) {
        let mut t = TestStore::new();
        let key = t.license(seats);
        let device = t.device(&key);
        issue(&mut t, &key, &device, &installation(1)).unwrap();
        (t, key, device)
    }

    fn issue(
        t: &mut TestStore,
        key: &LicenseKey,
        device: &DeviceId,
        by: &DeviceKey,
    ) -> Result<issuance::Issued, issuance::IssueError> {
        issuance::issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &request(key, device, by),
            NOW,
        )
    }

    fn receipt(key: &LicenseKey, device: &DeviceId, serial: u64, counter: u64) -> ReleaseReceipt {
        ReleaseReceipt {
            released_at: NOW + 10,
            client_device_id: device.clone(),
            license_key_fingerprint: key.fingerprint(),
            serial,
            counter,
        }
    }

    fn signed(receipt: &ReleaseReceipt, by: &DeviceKey) -> String {
        receipt.sign(by).unwrap().token()
    }

    /// Releases and asserts the refusal changed nothing in the store.
    fn refused(t: &mut TestStore, text: &str) -> ReleaseError {
        let before = t.snapshot();
        let err = release(&mut t.store, &actor(), text, NOW + 20).unwrap_err();
        assert_eq!(t.snapshot(), before, "{err}");
        err
    }

    #[test]
    fn release_with_a_receipt_frees_the_seat_for_another_installation() {
        let (mut t, key, device) = bound(1);
        let other_device = t.device(&key);
        assert_eq!(
            issue(&mut t, &key, &other_device, &installation(2))
                .unwrap_err()
                .code(),
            "no_free_seat"
        );
        let text = signed(&receipt(&key, &device, serial(1), 2), &installation(1));
        assert_eq!(check(&t.store, &text).ok(), Some(()));

        let released = release(&mut t.store, &actor(), &text, NOW + 20).unwrap();
        assert!(!released.device.is_bound());
        assert!(!released.release.forced);
        assert_eq!(released.release.counter, Some(2));
        let details = licenses::show(&t.store, &key).unwrap();
        assert_eq!(details.bound_devices(), 0);
        assert_eq!(details.releases, vec![released.release]);

        // 1. the freed seat goes to another device of the license
        assert!(issue(&mut t, &key, &other_device, &installation(2)).is_ok());
        // 2. the first device id could take a new installation once a
        //    seat is free again; here the only seat is taken
        assert_eq!(
            issue(&mut t, &key, &device, &installation(3))
                .unwrap_err()
                .code(),
            "no_free_seat"
        );
    }

    #[test]
    fn a_released_device_id_binds_a_new_installation_with_the_next_serial() {
        let (mut t, key, device) = bound(1);
        let text = signed(&receipt(&key, &device, serial(1), 2), &installation(1));
        release(&mut t.store, &actor(), &text, NOW + 20).unwrap();
        let issued = issue(&mut t, &key, &device, &installation(2)).unwrap();
        assert_eq!(issued.payload.license.serial, serial(2));
        assert_eq!(issued.device.public_key, Some(installation(2).public_key()));
    }

    #[test]
    fn release_refuses_forged_replayed_foreign_and_wrong_receipts_changing_nothing() {
        let (mut t, key, device) = bound(2);
        let other_license = t.license_with(licenses::NewLicense {
            customer: "Globex".into(),
            ..licenses::NewLicense::default()
        });
        let unbound = t.device(&key);
        let stranger = ren3_shared::DeviceId::generate().unwrap();
        let good = signed(&receipt(&key, &device, serial(1), 5), &installation(1));
        // An earlier receipt of this installation, accepted; then rebound.
        release(&mut t.store, &actor(), &good, NOW + 20).unwrap();
        issue(&mut t, &key, &device, &installation(1)).unwrap();

        let cases: Vec<(&str, String, &str)> = vec![
            (
                "1. forged: content changed after signing",
                tamper(
                    &signed(&receipt(&key, &device, serial(2), 9), &installation(1)),
                    |m| m.replace("\"counter\":9", "\"counter\":10"),
                ),
                "signature_invalid",
            ),
            (
                "2. the same receipt again",
                good.clone(),
                "receipt_replayed",
            ),
            (
                "3. an older counter of the same installation",
                signed(&receipt(&key, &device, serial(2), 4), &installation(1)),
                "receipt_replayed",
            ),
            (
                "4. another installation with the same device id",
                signed(&receipt(&key, &device, serial(2), 6), &installation(9)),
                "receipt_wrong_device",
            ),
            (
                "5. another license's key",
                signed(
                    &receipt(&other_license, &device, serial(2), 6),
                    &installation(1),
                ),
                "receipt_wrong_license",
            ),
            (
                "6. a device id nobody registered",
                signed(&receipt(&key, &stranger, serial(1), 6), &installation(1)),
                "device_unknown",
            ),
            (
                "7. a device that holds no seat",
                signed(&receipt(&key, &unbound, serial(1), 6), &installation(1)),
                "device_not_bound",
            ),
            (
                "8. a serial never issued",
                signed(&receipt(&key, &device, serial(7), 6), &installation(1)),
                "receipt_serial_unknown",
            ),
            (
                "9. a counter SQL would sort below the last one",
                signed(
                    &receipt(&key, &device, serial(2), u64::MAX),
                    &installation(1),
                ),
                "value_out_of_range",
            ),
            (
                "10. a serial beyond what the store records",
                signed(&receipt(&key, &device, u64::MAX, 6), &installation(1)),
                "value_out_of_range",
            ),
            (
                "11. damaged in transit",
                good[..good.len() - 4].to_owned(),
                "token_damaged",
            ),
        ];
        for (name, text, code) in cases {
            let err = refused(&mut t, &text);
            assert_eq!(err.code(), code, "{name}: {err}");
            let checked = check(&t.store, &text).unwrap_err();
            assert_eq!(checked.code(), code, "{name}: check agrees");
        }
        // And the right one still works.
        let next = signed(&receipt(&key, &device, serial(2), 6), &installation(1));
        assert!(release(&mut t.store, &actor(), &next, NOW + 30).is_ok());
    }

    #[test]
    fn receipt_for_a_serial_issued_to_an_earlier_installation_is_refused() {
        let (mut t, key, device) = bound(1);
        release(
            &mut t.store,
            &actor(),
            &signed(&receipt(&key, &device, serial(1), 2), &installation(1)),
            NOW + 20,
        )
        .unwrap();
        issue(&mut t, &key, &device, &installation(2)).unwrap();
        // Serial 1 went to installation 1, not to installation 2.
        let err = refused(
            &mut t,
            &signed(&receipt(&key, &device, serial(1), 2), &installation(2)),
        );
        assert_eq!(err.code(), "receipt_serial_unknown", "{err}");
    }

    /// Issues the request of installation `by` with sequence number
    /// `counter`; returns the serial it was answered with.
    fn issue_numbered(
        t: &mut TestStore,
        key: &LicenseKey,
        device: &DeviceId,
        by: &DeviceKey,
        counter: u64,
    ) -> u64 {
        let text = numbered_request(key, device, by, counter);
        issuance::issue(&mut t.store, &t.keys, &actor(), &text, NOW)
            .unwrap()
            .payload
            .license
            .serial
    }

    #[test]
    fn a_receipt_kept_back_while_the_installation_registered_again_is_stale() {
        // Installation 1 imports serial 1 (request 1) and deactivates: its
        // receipt has counter 2 and is kept back. It registers again
        // (request 3) and is answered with serial 2.
        let (mut t, key, device) = bound(1);
        let kept_back = signed(&receipt(&key, &device, serial(1), 2), &installation(1));
        assert_eq!(
            issue_numbered(&mut t, &key, &device, &installation(1), 3),
            serial(2)
        );

        let err = refused(&mut t, &kept_back);
        assert_eq!(err.code(), "receipt_stale", "{err}");
        let message = err.to_string();
        for says in [
            "counter 2".to_owned(),
            "before request 3".to_owned(),
            format!("serial {}", serial(2)),
            "latest deactivation".to_owned(),
            "--force --reason TEXT".to_owned(),
        ] {
            assert!(message.contains(&says), "{says}: {message}");
        }
        assert_eq!(
            check(&t.store, &kept_back).unwrap_err().code(),
            "receipt_stale"
        );
        let (result, subject) = &t.audited("device.release")[0];
        assert_eq!(
            (result.as_str(), subject.as_str()),
            ("refused", device.as_str())
        );
        let audit = crate::audit::page(&t.store, &crate::audit::Filter::default(), 1).unwrap();
        assert!(
            audit.entries[0].detail.starts_with("receipt_stale: "),
            "{:?}",
            audit.entries[0]
        );
        // The seat stays bound; the other device of the license cannot take it.
        let other = t.device(&key);
        assert_eq!(
            issue(&mut t, &key, &other, &installation(2))
                .unwrap_err()
                .code(),
            "no_free_seat"
        );

        // The receipt of the latest deactivation (counter 4) frees it.
        let latest = signed(&receipt(&key, &device, serial(2), 4), &installation(1));
        assert!(release(&mut t.store, &actor(), &latest, NOW + 30).is_ok());
    }

    #[test]
    fn a_receipt_after_every_answered_request_frees_the_seat_though_a_payload_was_lost() {
        let cases: [(&str, &[u64], u64, u64); 3] = [
            // register (1), issue, the payload is lost; the receipt has 2
            ("1. the first payload lost", &[1], 1, 2),
            // serial 1 imported; a renewal (2) answered and lost; receipt 3
            ("2. a renewal lost", &[1, 2], 1, 3),
            // counters may skip: requests never sent use numbers too
            ("3. gaps in the sequence", &[1, 5], 2, 9),
        ];
        for (name, requests, n_serial, counter) in cases {
            let mut t = TestStore::new();
            let key = t.license(1);
            let device = t.device(&key);
            for &n in requests {
                issue_numbered(&mut t, &key, &device, &installation(1), n);
            }
            let text = signed(
                &receipt(&key, &device, serial(n_serial), counter),
                &installation(1),
            );
            assert_eq!(check(&t.store, &text).ok(), Some(()), "{name}");
            let released = release(&mut t.store, &actor(), &text, NOW + 20);
            assert!(released.is_ok(), "{name}: {:?}", released.err());
        }
    }

    #[test]
    fn answering_the_same_request_again_does_not_lower_the_answered_counter() {
        let mut t = TestStore::new();
        let key = t.license(1);
        let device = t.device(&key);
        let first = numbered_request(&key, &device, &installation(1), 1);
        issuance::issue(&mut t.store, &t.keys, &actor(), &first, NOW).unwrap();
        issue_numbered(&mut t, &key, &device, &installation(1), 3);
        // Request 1 again: its stored payload (serial 1), nothing recorded.
        let again = issuance::issue(&mut t.store, &t.keys, &actor(), &first, NOW).unwrap();
        assert!(again.repeated);
        assert_eq!(again.payload.license.serial, serial(1));

        let stale = signed(&receipt(&key, &device, serial(1), 3), &installation(1));
        assert_eq!(refused(&mut t, &stale).code(), "receipt_stale");
        let fresh = signed(&receipt(&key, &device, serial(2), 4), &installation(1));
        assert!(release(&mut t.store, &actor(), &fresh, NOW + 20).is_ok());
    }

    #[test]
    fn a_new_installation_on_the_seat_is_not_held_to_the_old_ones_counter() {
        let mut t = TestStore::new();
        let key = t.license(1);
        let device = t.device(&key);
        issue_numbered(&mut t, &key, &device, &installation(1), 40);
        force_release(&mut t.store, &actor(), &device, "machine stolen", NOW).unwrap();
        // A new machine with the same device id: its own sequence, from 1.
        assert_eq!(
            issue_numbered(&mut t, &key, &device, &installation(2), 1),
            serial(2)
        );
        let text = signed(&receipt(&key, &device, serial(2), 2), &installation(2));
        assert!(release(&mut t.store, &actor(), &text, NOW + 20).is_ok());
    }

    #[test]
    fn a_batch_records_the_answered_counters_as_single_issues_do() {
        let mut t = TestStore::new();
        let key = t.license(2);
        let device = t.device(&key);
        let other = t.device(&key);
        let requests = [
            numbered_request(&key, &device, &installation(1), 1),
            numbered_request(&key, &other, &installation(2), 7),
            numbered_request(&key, &device, &installation(1), 3),
        ];
        let results =
            issuance::issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
        assert!(results.iter().all(Result::is_ok));

        for (name, text, code) in [
            (
                "1. before request 3 of installation 1",
                signed(&receipt(&key, &device, serial(1), 2), &installation(1)),
                Some("receipt_stale"),
            ),
            (
                "2. before request 7 of installation 2",
                signed(&receipt(&key, &other, serial(1), 7), &installation(2)),
                Some("receipt_stale"),
            ),
            (
                "3. installation 1's other requests do not count for installation 2",
                signed(&receipt(&key, &other, serial(1), 8), &installation(2)),
                None,
            ),
            (
                "4. after request 3",
                signed(&receipt(&key, &device, serial(2), 4), &installation(1)),
                None,
            ),
        ] {
            match code {
                Some(code) => assert_eq!(refused(&mut t, &text).code(), code, "{name}"),
                None => assert!(
                    release(&mut t.store, &actor(), &text, NOW + 20).is_ok(),
                    "{name}"
                ),
            }
        }
    }

    #[test]
    fn force_release_frees_the_seat_and_is_recorded_as_forced() {
        let (mut t, key, device) = bound(1);
        let released =
            force_release(&mut t.store, &actor(), &device, "machine stolen", NOW + 5).unwrap();
        assert!(released.release.forced);
        assert_eq!(released.release.reason.as_deref(), Some("machine stolen"));
        assert_eq!(released.release.public_key, installation(1).public_key());
        let audit = crate::audit::page(&t.store, &crate::audit::Filter::default(), 1).unwrap();
        assert_eq!(audit.entries[0].action, "device.force-release");
        assert!(
            audit.entries[0].detail.contains("FORCED"),
            "{:?}",
            audit.entries[0]
        );
        assert!(issue(&mut t, &key, &device, &installation(2)).is_ok());
    }

    #[test]
    fn force_release_refuses_without_a_reason_an_unbound_or_unknown_device() {
        let (mut t, key, device) = bound(1);
        let unbound = t.device(&key);
        let stranger = ren3_shared::DeviceId::generate().unwrap();
        let cases = [
            ("1. empty reason", &device, " ", "release_reason_invalid"),
            (
                "2. control character",
                &device,
                "a\nb",
                "release_reason_invalid",
            ),
            ("3. unbound device", &unbound, "lost", "device_not_bound"),
            ("4. unknown device", &stranger, "lost", "device_unknown"),
        ];
        for (name, target, reason, code) in cases {
            let before = t.snapshot();
            let err = force_release(&mut t.store, &actor(), target, reason, NOW).unwrap_err();
            assert_eq!(err.code(), code, "{name}: {err}");
            assert_eq!(t.snapshot(), before, "{name}");
        }
    }
}
