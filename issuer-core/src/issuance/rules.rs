//! The rules of one issuance: the license's status and expiry, the
//! device's membership, its binding to one installation and the seats.
//! `evaluate` runs them all for `issue` and for the dry run alike.

use super::*;

/// What an issuance may go ahead with once every check passed.
pub(super) struct Ready {
    pub(super) license: LicenseRecord,
    pub(super) device: DeviceRecord,
    /// The earlier answer to this very request, if there is one.
    pub(super) answered: Option<IssuanceRecord>,
}

pub(super) struct Evaluation {
    pub(super) checks: Vec<CheckLine>,
    pub(super) license: Option<LicenseRecord>,
    pub(super) outcome: Result<Ready, IssueError>,
}

/// Every check of an issuance of `request` at `now`, reading `conn`: the
/// one code path of [`issue`] and [`check`].
pub(super) fn evaluate(
    conn: &Db<'_>,
    request: &VerifiedRequest,
    now: i64,
    chain: &mut ChainCheck,
) -> Result<Evaluation, StoreError> {
    let fields = &request.request;
    let mut checks = Checks {
        lines: Vec::new(),
        first_failure: None,
    };
    // The seat's answered counters are compared in SQL (`releases`).
    match store::ordered("the request's counter", fields.counter) {
        Ok(_) => checks.pass(
            Check::DeviceSignature,
            format!(
                "signed by the installation key {} it carries",
                request.device_public_key
            ),
        ),
        Err(e) => checks.fail(Check::DeviceSignature, e.into()),
    }

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

    if let Some(done) = &answered {
        match stale_answer(conn, done)? {
            None => checks.pass(
                Check::SigningKey,
                "not needed: the stored payload is returned".to_owned(),
            ),
            Some(refusal) => checks.fail(Check::SigningKey, refusal),
        }
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
pub(super) fn check_binding_and_seat(
    conn: &Db<'_>,
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

pub(super) fn check_status(license: &LicenseRecord) -> Result<(), IssueError> {
    let (hint, customer) = (license.key_hint.clone(), license.customer.clone());
    match license.status {
        LicenseStatus::Active => Ok(()),
        LicenseStatus::Suspended => Err(IssueError::Suspended { hint, customer }),
        LicenseStatus::Revoked => Err(IssueError::Revoked { hint, customer }),
    }
}

pub(super) fn check_expiry(license: &LicenseRecord, now: i64) -> Result<(), IssueError> {
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

/// Why the stored answer to a request must not be returned again: the key
/// that signed it is revoked in the store's newest list, so the client
/// would refuse it (`key_revoked`). The request's hash is the answer's
/// key in the store, so a new answer needs a new request.
fn stale_answer(conn: &Db<'_>, done: &IssuanceRecord) -> Result<Option<IssueError>, StoreError> {
    let list = match chain::root(conn).and_then(|root| chain::revocations(conn, &root)) {
        Ok(list) => list,
        Err(ChainError::Store(e)) => return Err(e),
        Err(e) => return Ok(Some(IssueError::Chain(e))),
    };
    Ok(list
        .find(&done.key_id)
        .map(|_| IssueError::AnsweredByRevokedKey {
            request_id: done.request_id.to_string(),
            serial: done.serial,
            key_id: done.key_id.to_string(),
            version: list.version(),
        }))
}
