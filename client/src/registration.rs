//! The two steps of the customer's registration guide: export a signed
//! license request, and import the payload the ReN3 team answers with.
//!
//! Every check that can refuse an import runs before anything is written,
//! and the checks that read the store run inside the same `BEGIN IMMEDIATE`
//! transaction as the write, so two imports cannot interleave. The one
//! exception: a payload whose chain verifies and that carries a revocation
//! list newer than the effective one, revoking a key that one does not, has
//! that list stored first, whether the import is accepted or not (see
//! [`crate::revocations`]).
//!
//! One piece, a little over the usual size: register and import share the
//! pending requests and the checks that read them.

use std::sync::Arc;

use ren3_shared::{
    CodeError, DeviceId, Digest, KeyId, License, LicenseKey, LicenseRequest, Product, PublicKey,
    RandomSourceError, RevocationList, TokenError, VerifiedPayload, VerifiedRequest, timestamp,
};

use ren3_shared::payload::Window;

use crate::binding::{self, Installation, Mismatch};
use crate::config::OfflineConfig;
use crate::license::{InstalledLicense, window_with_skew};
use crate::licensing::Licensing;
use crate::monitoring::{self, Operation};
use crate::store::{self, StoreError, Summary};

/// The product name a license request carries.
pub const PRODUCT_NAME: &str = "ren3-ingestor";

/// Why registering, importing or deactivating was refused. Each variant has a stable
/// [`code`](Self::code); the message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum LicensingError {
    /// `enable_offline_license` is off: nothing can be registered,
    /// imported or deactivated.
    #[error(
        "offline licensing is disabled in this ingestor; set enable_offline_license=true and \
         client_device_id=<the id the ReN3 team sent you> in the ingestor's environment, \
         then restart it"
    )]
    OfflineDisabled,
    /// The license key is malformed or has a typo (its check character).
    #[error("{0}")]
    InvalidLicenseKey(CodeError),
    /// The payload's chain does not verify, its key is revoked
    /// (`key_revoked`), or it is not a payload at all.
    #[error("{0}")]
    Payload(TokenError),
    /// The payload was issued for another license key than the one given.
    #[error(
        "the license payload was issued for a different license key than the one given; \
         send the license key the payload was issued for, or ask the ReN3 team for a \
         payload for this key"
    )]
    LicenseKeyMismatch,
    /// The payload is for another client device id than the configured
    /// one.
    #[error(
        "the license payload is for client device id `{payload}`, but this ingestor is \
         configured with `{configured}`; check client_device_id, or ask the ReN3 team for \
         a payload for this device"
    )]
    DeviceIdMismatch {
        /// The device id the payload was issued for.
        payload: DeviceId,
        /// The device id this ingestor is configured with.
        configured: DeviceId,
    },
    /// The payload is bound to another device key: another installation
    /// with the same device id, or this one before a deactivation replaced
    /// its key.
    #[error(
        "the license payload is bound to another device key: that of another installation \
         with the same client device id, or this installation's own before a deactivation \
         replaced it; export a new request from this installation with \
         POST /license/register and send it to the ReN3 team"
    )]
    DeviceKeyMismatch,
    /// The payload answers no pending request of this installation: one it
    /// never made, or one a later import or a deactivation forgot.
    #[error(
        "this payload answers a request this installation did not make, or one that a newer \
         import superseded; export a new request with POST /license/register"
    )]
    UnknownRequest,
    /// The payload's `notBefore` is more than the skew tolerance after the
    /// latest time seen.
    #[error(
        "the license takes effect at {not_before}, and this machine's clock says {now}; \
         import it after that time, or correct the clock"
    )]
    NotYetValid {
        /// The payload's `notBefore` (RFC 3339).
        not_before: String,
        /// The time it was judged at (RFC 3339).
        now: String,
    },
    /// The payload's `expiresAt` has passed, judged at the latest time
    /// seen. One in its grace period is refused too: grace keeps an
    /// installed license working, it does not admit a new one.
    #[error(
        "the license expired at {expires_at} (this machine's clock says {now}); ask the \
         ReN3 team for a renewed license"
    )]
    Expired {
        /// The payload's `expiresAt` (RFC 3339).
        expires_at: String,
        /// The time it was judged at (RFC 3339).
        now: String,
    },
    /// The active license for the same license key has a serial at least
    /// as high as the payload's.
    #[error(
        "the active license for this license key has serial {active}, and this payload has \
         serial {offered}; a license is only replaced by a newer one, so import the newest \
         payload the ReN3 team sent"
    )]
    Downgrade {
        /// The active license's serial.
        active: u64,
        /// The payload's serial.
        offered: u64,
    },
    /// A deactivation named a license key that is not the active
    /// license's.
    #[error(
        "the active license was issued for a different license key than the one given; \
         send the license key of the active license to deactivate it"
    )]
    NotTheActiveLicenseKey,
    /// A deactivation found no active license.
    #[error(
        "no license is active on this installation, so there is nothing to deactivate; \
         GET /license shows the state"
    )]
    NoActiveLicense,
    /// A register for a new license key while [`store::MAX_PENDING_REQUESTS`]
    /// other keys each have a pending request; a key's newest request is
    /// never forgotten to make room.
    #[error(
        "this installation already keeps {pending} license requests awaiting the ReN3 team's \
         payloads, the newest of {max} different license keys, and it never forgets a \
         license key's newest request to make room for another key's; so no request is \
         made for this key now. Import the payloads the ReN3 team sends for the requests \
         already made (POST /license/import; each import also forgets every older request), \
         or deactivate the active license (POST /license/deactivate forgets every pending \
         request), then register again; a new request for a license key that already has \
         one pending is still accepted. GET /license shows how many are pending. If your \
         operators did not make these requests, something else reaches this port: keep \
         listen_addr on a loopback address"
    )]
    TooManyPendingRequests {
        /// How many requests are pending.
        pending: u64,
        /// The most license keys that may have a pending request.
        max: i64,
    },
    /// The store could not be read or written; the cause goes to the log,
    /// not to the HTTP answer.
    #[error("the license store failed: {0}")]
    Store(#[from] StoreError),
    /// The operating system's secure random source failed.
    #[error(transparent)]
    RandomSource(#[from] RandomSourceError),
    /// Signing with the device key failed.
    #[error("the license request or release receipt could not be signed: {0}")]
    Signing(TokenError),
}

impl From<Mismatch> for LicensingError {
    fn from(mismatch: Mismatch) -> Self {
        match mismatch {
            Mismatch::LicenseKey => LicensingError::LicenseKeyMismatch,
            Mismatch::DeviceId {
                payload,
                configured,
            } => LicensingError::DeviceIdMismatch {
                payload,
                configured,
            },
            Mismatch::DeviceKey => LicensingError::DeviceKeyMismatch,
        }
    }
}

impl LicensingError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LicensingError::OfflineDisabled => "offline_licensing_disabled",
            LicensingError::InvalidLicenseKey(_) => "invalid_license_key",
            LicensingError::Payload(e) => e.code(),
            LicensingError::LicenseKeyMismatch | LicensingError::NotTheActiveLicenseKey => {
                "license_key_mismatch"
            }
            LicensingError::DeviceIdMismatch { .. } => "device_id_mismatch",
            LicensingError::DeviceKeyMismatch => "device_key_mismatch",
            LicensingError::UnknownRequest => "unknown_request",
            LicensingError::NotYetValid { .. } => "license_not_yet_valid",
            LicensingError::Expired { .. } => "license_expired",
            LicensingError::Downgrade { .. } => "downgrade_rejected",
            LicensingError::NoActiveLicense => "no_active_license",
            LicensingError::TooManyPendingRequests { .. } => "too_many_pending_requests",
            LicensingError::Store(_) => "storage_error",
            LicensingError::RandomSource(_) | LicensingError::Signing(_) => "internal_error",
        }
    }
}

/// An exported license request, recorded as pending.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The signed request; its token is what the operator sends to the
    /// ReN3 team.
    pub request: VerifiedRequest,
    /// The license key with all but its first group masked.
    pub license_key_hint: String,
}

/// What an accepted import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// The payload is now the active license.
    Installed,
    /// The payload already was the active license; nothing changed.
    AlreadyActive,
}

impl Licensing {
    /// Creates a license request for `license_key`, signed with the device
    /// key and the installation's next sequence number, and records it
    /// durably before returning it, with the number it took and the clock's
    /// mark (a request's time is one the store records, so the mark is never
    /// below it). Refused, with nothing written and no number taken, when
    /// recording it would forget another license key's newest request.
    ///
    /// # Errors
    ///
    /// [`LicensingError::OfflineDisabled`],
    /// [`LicensingError::InvalidLicenseKey`],
    /// [`LicensingError::TooManyPendingRequests`]; [`LicensingError::Store`],
    /// [`LicensingError::RandomSource`] or [`LicensingError::Signing`] on an
    /// internal failure.
    pub async fn register(&self, license_key: &str) -> Result<Registration, LicensingError> {
        let registered = self.register_unrecorded(license_key).await;
        monitoring::record(Operation::Register, &registered);
        self.republish_metrics(registered.is_ok()).await;
        registered
    }

    async fn register_unrecorded(&self, license_key: &str) -> Result<Registration, LicensingError> {
        let offline = self.offline().ok_or(LicensingError::OfflineDisabled)?;
        let key = LicenseKey::parse(license_key).map_err(LicensingError::InvalidLicenseKey)?;
        let license_key_hint = key.hint();
        let now = self.now();
        let product = Product {
            name: PRODUCT_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        // Made outside the store's lock (it reads the OS's random source);
        // numbered and signed inside, where the sequence is taken.
        let unsigned = LicenseRequest::new(offline.client_device_id.clone(), &key, product, now)?;
        let seen = self.license().check_at(now).high_water_mark;
        let mirror = Arc::clone(self.mirror());
        let request = self
            .store()
            .call(move |conn| {
                // Read under the connection's lock, which the import or
                // deactivation that clears a doubted mark holds, and which a
                // deactivation holds while it replaces the device key.
                let mark = (!mirror.license.mark_doubted()).then_some(seen);
                let device_key = mirror.device_key();
                let sign = |counter| {
                    unsigned
                        .with_counter(counter)
                        .sign(&device_key)
                        .map_err(LicensingError::Signing)
                };
                match store::insert_pending_request(conn, now, mark, sign)? {
                    store::PendingOutcome::Recorded(request) => {
                        if let Some(mark) = mark {
                            mirror.note_recorded_mark(mark);
                        }
                        Ok(*request)
                    }
                    store::PendingOutcome::Refused { pending } => {
                        Err(LicensingError::TooManyPendingRequests {
                            pending,
                            max: store::MAX_PENDING_REQUESTS,
                        })
                    }
                }
            })
            .await?;
        tracing::info!(
            request_id = %request.request.request_id,
            counter = request.request.counter,
            "exported a license request"
        );
        Ok(Registration {
            request,
            license_key_hint,
        })
    }

    /// Verifies `payload` and, if every check passes, makes it the active
    /// license. On any refusal the license, the pending requests and the
    /// published license are unchanged; only a newer revocation list the
    /// payload carried is kept (it is applied before any other check).
    ///
    /// Importing the active license again changes nothing and returns
    /// [`Imported::AlreadyActive`].
    ///
    /// # Errors
    ///
    /// [`LicensingError::OfflineDisabled`],
    /// [`LicensingError::InvalidLicenseKey`], [`LicensingError::Payload`]
    /// (the token's own code, such as `signature_invalid` or
    /// `key_revoked`), [`LicensingError::LicenseKeyMismatch`],
    /// [`LicensingError::DeviceIdMismatch`],
    /// [`LicensingError::DeviceKeyMismatch`],
    /// [`LicensingError::UnknownRequest`], [`LicensingError::NotYetValid`],
    /// [`LicensingError::Expired`], [`LicensingError::Downgrade`];
    /// [`LicensingError::Store`] on an internal failure.
    pub async fn import(
        &self,
        license_key: &str,
        payload: &str,
    ) -> Result<Imported, LicensingError> {
        let imported = self.import_unrecorded(license_key, payload).await;
        monitoring::record(Operation::Import, &imported);
        self.republish_metrics(imported.is_ok()).await;
        imported
    }

    async fn import_unrecorded(
        &self,
        license_key: &str,
        payload: &str,
    ) -> Result<Imported, LicensingError> {
        let offline = self.offline().ok_or(LicensingError::OfflineDisabled)?;
        let key = LicenseKey::parse(license_key).map_err(LicensingError::InvalidLicenseKey)?;
        let known = self.mirror().known_chain();
        let payload = VerifiedPayload::open_after(payload, self.trust().root(), known.as_deref())
            .map_err(LicensingError::Payload)?;
        // Before any other check: a newer list that revokes a key the
        // effective list does not is kept even when this import is refused
        // below. A newer list with no new revocation changes no verdict; it
        // becomes effective with the import that stores its payload, so a
        // refusal leaves the store as it was.
        if revokes_more(&payload.revocations, self.revocation_list().as_deref()) {
            self.apply_newer_revocations(&payload.revocations).await?;
        }
        if let Some(list) = self.revocation_list() {
            check_not_revoked(&payload, &list)?;
        }
        let license = &payload.license;
        let fingerprint = key.fingerprint();
        check_bound(license, &fingerprint, offline, &self.device_public_key())?;

        let (serial, key_id) = (license.serial, payload.key_id);
        let device_id = offline.client_device_id.clone();
        let carried = payload.revocations.clone();
        let now = self.now();
        let handle = self.license();
        // Judged at the latest time seen, so that winding the clock back
        // does not let an expired payload in.
        let seen = handle.check_at(now).high_water_mark;
        // The payload's vendor-signed times are times this installation
        // can vouch for from now on: the mark never stays below them.
        let mark = seen
            .max(payload.license.issued_at)
            .max(payload.license.not_before);
        let mirror = Arc::clone(self.mirror());
        let imported = self
            .store()
            .call_summarized(move |conn, before| {
                let tx = store::write_transaction(conn)?;
                let token = payload.token();
                let license = &payload.license;
                // Read under the connection's lock, which every change of
                // the effective list holds: a list applied by a concurrent
                // import is seen here.
                let revocations = mirror.revocation_list();
                if let Some(list) = &revocations {
                    check_not_revoked(&payload, list)?;
                }
                // Again under the lock: a deactivation that committed since
                // the check above replaced the key this payload names.
                let this = Installation {
                    license_key: Some(&fingerprint),
                    device_id: &device_id,
                    device_key: &mirror.device_public_key(),
                };
                binding::check(license, &this)?;
                let active = store::active_license(&tx)?;
                if active.as_ref().is_some_and(|a| a.token == token) {
                    return Ok((Imported::AlreadyActive, None));
                }
                let answered = store::pending_request_seq(&tx, &license.request_hash)?
                    .ok_or(LicensingError::UnknownRequest)?;
                check_window(license, seen)?;
                // Serials are compared only with a payload of a key that is
                // not revoked: one signed with a leaked key, whatever its
                // serial, must not lock genuine later payloads out.
                if let Some(active) = &active
                    && active.license_key_fingerprint == Some(license.license_key_fingerprint)
                    && active.serial >= license.serial
                    && !is_revoked(revocations.as_deref(), &active.key_id()?)
                {
                    return Err(LicensingError::Downgrade {
                        active: active.serial,
                        offered: license.serial,
                    });
                }
                let forgotten = store::install_license(&tx, &payload, &token, answered, now)?;
                store::raise_high_water_mark(&tx, mark)?;
                tx.commit().map_err(StoreError::from)?;
                handle.raise_mark(mark);
                mirror.note_recorded_mark(mark);
                mirror.remember_chain(payload.chain());
                // Published while the connection is still held, so concurrent
                // imports publish in the order they committed.
                handle.replace(InstalledLicense {
                    key_id: payload.key_id,
                    license: payload.license,
                    // Checked above: its key is not revoked.
                    revocation: None,
                    // The mark was just written with it.
                    mark_problem: None,
                });
                // What a status reports after this import, known without
                // counting the pending requests again: the ones it forgot
                // are gone, and the newest license is not deactivated.
                let after = before.and_then(|before| {
                    Some(Summary {
                        pending_requests: before.pending_requests.checked_sub(forgotten)?,
                        deactivated_at: None,
                    })
                });
                Ok((Imported::Installed, after))
            })
            .await?;
        tracing::info!(
            serial,
            key_id = %key_id,
            already_active = imported == Imported::AlreadyActive,
            "imported a license payload"
        );
        // The stored payload now carries its list: make it effective too.
        self.apply_newer_revocations(&carried).await?;
        Ok(imported)
    }
}

/// Refuses a payload that is not bound to this installation: issued for
/// another license key than the one of `fingerprint`, another device id
/// than the configured one, or another device key than `device_key`
/// ([`binding::check`], as at start-up).
pub(crate) fn check_bound(
    license: &License,
    fingerprint: &Digest,
    offline: &OfflineConfig,
    device_key: &PublicKey,
) -> Result<(), LicensingError> {
    let this = Installation {
        license_key: Some(fingerprint),
        device_id: &offline.client_device_id,
        device_key,
    };
    Ok(binding::check(license, &this)?)
}

/// Whether `carried` is newer than `effective` and revokes a key that
/// `effective` does not: a list that changes some verdict.
fn revokes_more(carried: &RevocationList, effective: Option<&RevocationList>) -> bool {
    match effective {
        None => !carried.body.revoked.is_empty(),
        Some(effective) => {
            carried.version() > effective.version()
                && carried
                    .body
                    .revoked
                    .iter()
                    .any(|r| effective.find(&r.key_id).is_none())
        }
    }
}

/// Refuses a payload whose key `list` (the effective list) revokes.
fn check_not_revoked(
    payload: &VerifiedPayload,
    list: &RevocationList,
) -> Result<(), LicensingError> {
    match payload.revocation_in(list) {
        Some(revocation) => Err(LicensingError::Payload(payload.revoked_error(revocation))),
        None => Ok(()),
    }
}

fn is_revoked(list: Option<&RevocationList>, key_id: &KeyId) -> bool {
    list.is_some_and(|list| list.find(key_id).is_some())
}

/// A payload is imported only inside `[notBefore - skew, expiresAt)`
/// (docs/FORMAT.md §5): one already in its grace period is refused too.
fn check_window(license: &License, now: i64) -> Result<(), LicensingError> {
    match window_with_skew(license, now) {
        Window::Valid => Ok(()),
        Window::NotYetValid => Err(LicensingError::NotYetValid {
            not_before: timestamp::format(license.not_before),
            now: timestamp::format(now),
        }),
        Window::Grace | Window::Expired => Err(LicensingError::Expired {
            expires_at: license
                .expires_at
                .map(timestamp::format)
                .unwrap_or_default(),
            now: timestamp::format(now),
        }),
    }
}
