//! Start-up: opening the store, judging the clock's mark it holds, and
//! checking the stored license again before it is used.

use std::collections::HashSet;
use std::sync::Arc;

use ren3_shared::{DeviceKey, KeyId, RevocationList, VerifiedChain, VerifiedPayload, payload};

use crate::binding::{self, Installation, Mismatch};
use crate::config::{Config, OfflineConfig};
use crate::license::{
    Clock, ClockRules, InstalledLicense, LicenseHandle, MarkProblem, SECONDS_PER_DAY, system_clock,
};
use crate::licensing::{Licensing, Mirror, record_step};
use crate::revocations;
use crate::store::{self, Store, StoreError};
use crate::trust::{self, Trust};

/// Why the license in the store is not in use: found when it was checked
/// again at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicenseProblem {
    /// A stable code: `license_unverifiable` (its chain does not verify
    /// under this build's root: another root, an older format, a damaged
    /// row), `device_id_mismatch` or `device_key_mismatch`.
    pub code: &'static str,
    /// A sentence for the operator: what is wrong with it.
    pub message: String,
    /// The key that signed it, as its signer line says.
    pub key_id: Option<KeyId>,
    /// Whether it is bound to this device id and this installation's key;
    /// `None` when it could not be read that far.
    pub device_matches: Option<bool>,
}

impl Licensing {
    /// Opens the store (creating it and the device key on first start) and
    /// loads the active license, using the system clock.
    ///
    /// A stored license that no longer verifies under this build's root, or
    /// is bound to another device id or key, is not loaded: the ingestor
    /// runs unlicensed and [`Self::stored_problem`] says why.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be created, opened, migrated or
    /// read, for instance because the directory of
    /// [`Config::license_db_path`] does not exist.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn open(config: &Config) -> Result<Arc<Self>, StoreError> {
        Self::open_with_clock(config, system_clock()).await
    }

    /// As [`Licensing::open`], with an injected clock.
    ///
    /// Starts a background task on the current Tokio runtime that reads the
    /// clock every minute and records its high-water mark when due; it ends
    /// when the last `Arc` of the service is dropped.
    pub async fn open_with_clock(config: &Config, clock: Clock) -> Result<Arc<Self>, StoreError> {
        let store = Store::open(&config.license_db_path).await?;
        let now = clock();
        let step = record_step(config.clock_tolerance_seconds);
        let trust = config.trust().clone();
        log_trust(config);
        let store_trust = trust.clone();
        let (device_key, active, start_mark, effective) = store
            .call(move |conn| {
                let key = store::load_or_create_device_key(conn, now)?;
                let active = store::active_license(conn)?;
                // Every stored payload, read once for the two things its
                // signed part vouches for: its times, and its list (payloads
                // of one key and period share one).
                let mut vouched = None;
                let mut lists = HashSet::new();
                for token in store::license_tokens(conn)? {
                    if let Ok((_, l, _, list)) = payload::decode_unverified(&token) {
                        vouched = vouched.max(Some(l.issued_at.max(l.not_before)));
                        lists.insert(list);
                    }
                }
                let mark = start_mark(
                    active.is_some(),
                    store::high_water_mark(conn)?,
                    store::recorded_times(conn)?,
                    vouched,
                    now,
                    step,
                );
                if mark.problem.is_none()
                    && let Some(record) = mark.record
                {
                    store::raise_high_water_mark(conn, record)?;
                }
                let effective = revocations::effective_at_start(
                    conn,
                    &store_trust,
                    now,
                    lists.iter().map(String::as_str),
                )?;
                Ok::<_, StoreError>((key, active, mark, effective))
            })
            .await?;
        tracing::info!(
            version = effective.as_ref().map_or(0, RevocationList::version),
            floor = trust.floor_version(),
            "effective revocation list"
        );
        let (installed, stored_problem, chain) = match (&config.offline, active) {
            (Some(offline), Some(active)) => {
                match reverify(&active.token, offline, &trust, &device_key) {
                    Ok((mut installed, chain)) => {
                        installed.revocation = effective
                            .as_ref()
                            .and_then(|list| list.find(&installed.key_id))
                            .cloned();
                        installed.mark_problem = start_mark.problem;
                        (Some(installed), None, Some(chain))
                    }
                    Err(problem) => (None, Some(problem), None),
                }
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "offline licensing is disabled, so the license in the store is not used"
                );
                (None, None, None)
            }
            (_, None) => (None, None, None),
        };
        if let Some(installed) = &installed {
            tracing::info!(
                serial = installed.license.serial,
                key_id = %installed.key_id,
                "loaded the active license"
            );
            if let Some(problem) = installed.mark_problem {
                tracing::warn!(
                    ?problem,
                    "the store's record of the latest time this installation has seen is \
                     missing or was lowered; licensed work is refused until a new license \
                     payload is imported; GET /license says what to do"
                );
            }
            if let Some(revocation) = &installed.revocation {
                tracing::warn!(
                    key_id = %installed.key_id,
                    grace_until = %ren3_shared::timestamp::format(revocation.grace_until),
                    "the ReN3 team revoked the key that signed the active license; it works \
                     until the grace period ends; GET /license says what to do"
                );
            }
        }
        let rules = ClockRules {
            tolerance_seconds: config.clock_tolerance_seconds,
            warning_seconds: config.warning_days.saturating_mul(SECONDS_PER_DAY),
        };
        let recorded_mark = start_mark.recorded.unwrap_or(i64::MIN);
        let license = LicenseHandle::new(
            installed,
            Arc::clone(&clock),
            rules,
            start_mark.judged,
            start_mark.problem.is_some(),
        );
        // The first check at start-up: it logs a suspect clock or an open
        // warning window once.
        license.check_at(now);
        let mirror = Mirror::new(license, device_key, effective, recorded_mark, chain);
        Ok(Self::start(
            config.clone(),
            store,
            clock,
            stored_problem,
            mirror,
        ))
    }
}

/// The clock's mark at start-up, as the store leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StartMark {
    /// The mark recorded in the store, after start-up recorded one.
    recorded: Option<i64>,
    /// What start-up records, if it records anything (it does not when
    /// `problem` is set).
    record: Option<i64>,
    /// The mark the handle starts from: never below the vendor-signed
    /// times of the stored payloads, nor any other time the store records.
    judged: i64,
    problem: Option<MarkProblem>,
}

/// Judges the store's mark at start-up. `licensed`: whether a license is
/// active in the store; `recorded`: its mark; `newest_recorded`: the
/// newest other time it records ([`store::recorded_times`]); `vouched`: the
/// newest `issuedAt` or `notBefore` of its payloads, which the vendor
/// signed, so no edit lowers it short of deleting payloads.
///
/// A mark missing or below `newest_recorded` while a license is active
/// cannot happen without an edit (every write of a time writes a mark in
/// its transaction): it is a [`MarkProblem`], and nothing is recorded, so
/// that the next start finds it too.
///
/// The handle starts from the latest of all of these. Only `vouched` is a
/// floor no edit can lower: an editor can rewrite the device-written times
/// (and re-sign what the device signed, its key being in the store). They
/// count all the same, since in a store nobody edited they are never
/// above the mark; so they change nothing for an honest store, and after
/// an edit the next import or deactivation writes a mark no lower than
/// any of them, which leaves the store consistent again.
fn start_mark(
    licensed: bool,
    recorded: Option<i64>,
    newest_recorded: Option<i64>,
    vouched: Option<i64>,
    now: i64,
    step: i64,
) -> StartMark {
    let problem = match recorded {
        _ if !licensed => None,
        None => Some(MarkProblem::Missing),
        Some(recorded) => {
            newest_recorded
                .filter(|newest| recorded < *newest)
                .map(|newest_recorded| MarkProblem::Lowered {
                    recorded,
                    newest_recorded,
                })
        }
    };
    let judged = [recorded, newest_recorded, vouched]
        .into_iter()
        .flatten()
        .fold(now, i64::max);
    let due = recorded.is_none_or(|r| judged.saturating_sub(r) >= step);
    let record = (problem.is_none() && due).then_some(judged);
    StartMark {
        recorded: record.or(recorded),
        record,
        judged,
        problem,
    }
}

/// Logs the build's trust once at start-up, and every trust variable that
/// is set but not read.
fn log_trust(config: &Config) {
    let trust = config.trust();
    if trust.is_pinned() {
        tracing::info!(
            root = %trust.fingerprint(),
            pinned = true,
            revocation_floor = trust.floor_version(),
            "this build trusts only the root pinned into it"
        );
    } else {
        tracing::warn!(
            root = %trust.fingerprint(),
            pinned = false,
            "this is a development build: its trust root is taken at run time from {}, \
             and it must never ship",
            trust::DEV_TRUST_ROOT
        );
    }
    for variable in &config.ignored_variables {
        tracing::warn!(
            variable,
            root = %trust.fingerprint(),
            "{variable} is set but no longer read: this build trusts only its pinned root; \
             remove the variable"
        );
    }
}

/// Checks a stored license again at start-up: the configured device id may
/// have changed since it was imported, and a payload of an older format or
/// of another root does not verify under this build. Its binding is judged
/// by the import's own check ([`binding::check`]), without a license key.
/// Returns the license with the chain it verified through.
pub(crate) fn reverify(
    token: &str,
    offline: &OfflineConfig,
    trust: &Trust,
    device_key: &DeviceKey,
) -> Result<(InstalledLicense, VerifiedChain), StoredLicenseProblem> {
    let device_public_key = device_key.public_key();
    let this = Installation {
        license_key: None,
        device_id: &offline.client_device_id,
        device_key: &device_public_key,
    };
    let payload = match VerifiedPayload::open(token, trust.root()) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(
                code = UNVERIFIABLE,
                cause = e.code(),
                root = %trust.fingerprint(),
                "the stored license does not verify under this build's root ({e}); running \
                 unlicensed until a license is imported"
            );
            let unverified = payload::decode_unverified(token).ok();
            return Err(StoredLicenseProblem {
                code: UNVERIFIABLE,
                message: format!("this build cannot verify it: {e}"),
                key_id: unverified.as_ref().map(|(key_id, ..)| *key_id),
                device_matches: unverified.map(|(_, l, ..)| binding::check(&l, &this).is_ok()),
            });
        }
    };
    if let Err(mismatch) = binding::check(&payload.license, &this) {
        let message = match &mismatch {
            Mismatch::DeviceId {
                payload,
                configured,
            } => {
                tracing::warn!(
                    licensed = %payload,
                    configured = %configured,
                    "the stored license is for another client_device_id; running unlicensed"
                );
                format!(
                    "the stored license is for client device id `{payload}`, but this \
                     ingestor is configured with `{configured}`"
                )
            }
            Mismatch::DeviceKey => {
                tracing::warn!(
                    "the stored license is bound to another installation's key; running \
                     unlicensed"
                );
                "the stored license is bound to another installation's device key".into()
            }
            // Not compared at start-up (no key is given), but worded for
            // the operator all the same.
            Mismatch::LicenseKey => {
                tracing::warn!("the stored license is for another license key; running unlicensed");
                "the stored license was issued for another license key".into()
            }
        };
        return Err(StoredLicenseProblem {
            code: mismatch.code(),
            message,
            key_id: Some(payload.key_id),
            device_matches: Some(false),
        });
    }
    let chain = payload.chain();
    Ok((
        InstalledLicense {
            key_id: payload.key_id,
            license: payload.license,
            revocation: None,
            mark_problem: None,
        },
        chain,
    ))
}

/// The code of a stored license that does not verify under this build.
pub const UNVERIFIABLE: &str = "license_unverifiable";
