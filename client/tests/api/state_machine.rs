//! A state-machine property: under any sequence of registrations (under
//! our keys and floods of strangers' keys), imports (fresh, older, replayed
//! and forged), deactivations, status reads, restarts (some after an
//! operator deleted or lowered the clock's mark in the store) and clock
//! changes, the client answers what a small reference model predicts and
//! never reaches an illegal state.
//!
//! After every operation the test checks the reply's status and code
//! against the model, and then, without reading the clock (a read would
//! move the high-water mark), the `LicenseHandle` and the store: at most
//! one active license and only the newest; a license replaced by one for
//! the same key only by a higher serial; history and receipts append-only;
//! pending requests under the cap, each license key's newest kept; one
//! sequence number across requests and receipts, each taking the next one
//! and a refusal none; every request and receipt signed with the device key
//! of the moment, which each deactivation replaces by a new one; the
//! recorded high-water mark never lower (but by an edit) and never ahead
//! of the handle's, and never below another time the store records unless
//! an edit lowered it; the handle's license is the stored one. A refusal changes nothing in the store or the handle (the
//! vendor's lists here revoke nothing, so no refusal keeps one); the first
//! accepted import stores the revocation list its payload carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ren3_client::store::MAX_PENDING_REQUESTS;
use ren3_client::{InstalledLicense, LicenseCheck, StoreError};
use ren3_shared::binary::Bytes;
use ren3_shared::{
    ClockPolicy, DeviceId, DeviceKey, Digest, License, LicenseKey, PayloadSigner, PublicKey,
    VerifiedReceipt, VerifiedRequest, payload, timestamp,
};
use serde_json::{Value, json};

use crate::support::{
    DAY, DEVICE_ID, Dump, KEY, NOW, Reply, TestApp, issuer, key, other_device_id, other_key,
    rogue_issuer,
};

const HOUR: i64 = 3_600;
/// The default `license_clock_tolerance`.
const TOLERANCE: i64 = DAY;
/// How far the high-water mark moves on before it is recorded again: half
/// the tolerance, at most an hour.
const RECORD_STEP: i64 = HOUR;
/// How early a license may be used before its `notBefore`.
const SKEW: i64 = 300;
/// The default `license_warning_days`.
const WARNING: i64 = 30 * DAY;
const PENDING_CAP: usize = MAX_PENDING_REQUESTS as usize;

/// A license key as the operator sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Ours,
    Other,
    /// Fails its check character.
    Typo,
    /// A well-formed key someone who reaches the port made up.
    Stranger(u8),
}

/// The `n`th made-up key: well formed, with its check character.
fn stranger_key(n: u8) -> LicenseKey {
    for last in b"0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
        let text = format!("REN3K1-22222-22222-22222-{n:05}-2222{}", char::from(*last));
        if let Ok(key) = LicenseKey::parse(&text) {
            return key;
        }
    }
    unreachable!("one check character fits")
}

impl Key {
    fn text(self) -> String {
        match self {
            Key::Ours => KEY.to_owned(),
            Key::Other => other_key().reveal().to_owned(),
            Key::Typo => "REN3K1-00000-00000-00000-00000-00001".to_owned(),
            Key::Stranger(n) => stranger_key(n).reveal().to_owned(),
        }
    }

    /// The fingerprint a payload for this key carries; a typo has none.
    fn fingerprint(self) -> Option<Digest> {
        match self {
            Key::Ours => Some(key().fingerprint()),
            Key::Other => Some(other_key().fingerprint()),
            Key::Typo => None,
            Key::Stranger(n) => Some(stranger_key(n).fingerprint()),
        }
    }

    fn swapped(self) -> Key {
        match self {
            Key::Ours => Key::Other,
            _ => Key::Ours,
        }
    }
}

/// When a payload's window starts, relative to the client's clock.
#[derive(Debug, Clone, Copy)]
enum Start {
    Now,
    /// As early as the skew tolerance allows.
    WithinSkew,
    /// A second too early for the tolerance, unless the clock was wound back.
    BeyondSkew,
    ThreeDaysAgo,
}

#[derive(Debug, Clone, Copy)]
enum Life {
    Year,
    TwoDays,
    Perpetual,
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    start: Start,
    life: Life,
    /// Three days of grace, when the license expires.
    grace: bool,
    enforcing: bool,
}

const PLAIN: Shape = Shape {
    start: Start::Now,
    life: Life::Year,
    grace: false,
    enforcing: false,
};

/// What is wrong with a forged import.
#[derive(Debug, Clone, Copy)]
enum Forgery {
    NeverRequested,
    OtherDevice,
    OtherInstallation,
    RogueIssuer,
    /// Sent with the other valid license key.
    WrongKey,
    /// Sent with a license key that fails its check character.
    TypoKey,
}

/// An edit of the store's clock mark with an SQLite shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tamper {
    /// `DELETE FROM clock`.
    Delete,
    /// `UPDATE clock SET high_water_mark = 0`.
    Lower,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Minute,
    Hour,
    Day,
    ThreeDays,
    PastAYear,
    BackAnHour,
    /// Back by exactly the tolerance: forgiven.
    BackByTolerance,
    BackBeyondTolerance,
    BackThreeDays,
}

impl Step {
    fn seconds(self) -> i64 {
        match self {
            Step::Minute => 60,
            Step::Hour => HOUR,
            Step::Day => DAY,
            Step::ThreeDays => 3 * DAY,
            Step::PastAYear => 400 * DAY,
            Step::BackAnHour => -HOUR,
            Step::BackByTolerance => -TOLERANCE,
            Step::BackBeyondTolerance => -(TOLERANCE + 1),
            Step::BackThreeDays => -3 * DAY,
        }
    }
}

/// One operation. `pick` chooses among the pending requests or the built
/// payloads, modulo their number.
#[derive(Debug, Clone, Copy)]
enum Op {
    Register {
        key: Key,
        times: usize,
    },
    /// Answers a pending request with a serial above every one issued.
    ImportFresh {
        pick: usize,
        bump: u64,
        shape: Shape,
    },
    /// Answers a pending request with a serial `back` below the active
    /// license's (or the highest installed).
    ImportOlder {
        pick: usize,
        back: u64,
        shape: Shape,
    },
    /// Imports again a payload built earlier, with its own key: the active
    /// one, a replaced one or a refused one.
    Replay {
        pick: usize,
    },
    ImportForged {
        forgery: Forgery,
        pick: usize,
    },
    Deactivate(Key),
    Status,
    Restart {
        /// Whether the clock is persisted first, as `serve` does on shutdown.
        clean: bool,
        /// What an operator does to the clock's mark while it is stopped.
        tamper: Option<Tamper>,
    },
    /// Registers `count` strangers' keys, one request each, from `first`.
    Flood {
        first: u8,
        count: usize,
    },
    Clock(Step),
}

fn op() -> impl Strategy<Value = Op> {
    let valid_key = || prop_oneof![3 => Just(Key::Ours), 1 => Just(Key::Other)];
    let pick = || 0usize..16;
    let shape = || {
        (
            prop_oneof![
                6 => Just(Start::Now),
                1 => Just(Start::WithinSkew),
                1 => Just(Start::BeyondSkew),
                1 => Just(Start::ThreeDaysAgo),
            ],
            prop_oneof![4 => Just(Life::Year), 2 => Just(Life::TwoDays), 1 => Just(Life::Perpetual)],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(start, life, grace, enforcing)| Shape {
                start,
                life,
                grace,
                enforcing,
            })
    };
    prop_oneof![
        // Sometimes a burst, up to one more than the cap.
        4 => (valid_key(), prop_oneof![5 => Just(1), 1 => 2..=PENDING_CAP + 1])
            .prop_map(|(key, times)| Op::Register { key, times }),
        1 => (0u8..24).prop_map(|n| Op::Register { key: Key::Stranger(n), times: 1 }),
        1 => (0u8..8, 1..=PENDING_CAP + 2).prop_map(|(first, count)| Op::Flood { first, count }),
        1 => Just(Op::Register { key: Key::Typo, times: 1 }),
        6 => (pick(), 1u64..=3, shape())
            .prop_map(|(pick, bump, shape)| Op::ImportFresh { pick, bump, shape }),
        2 => (pick(), 0u64..=2, shape())
            .prop_map(|(pick, back, shape)| Op::ImportOlder { pick, back, shape }),
        2 => pick().prop_map(|pick| Op::Replay { pick }),
        2 => (
            prop::sample::select(vec![
                Forgery::NeverRequested,
                Forgery::OtherDevice,
                Forgery::OtherInstallation,
                Forgery::RogueIssuer,
                Forgery::WrongKey,
                Forgery::TypoKey,
            ]),
            pick(),
        )
            .prop_map(|(forgery, pick)| Op::ImportForged { forgery, pick }),
        2 => prop_oneof![3 => Just(Key::Ours), 1 => Just(Key::Other), 1 => Just(Key::Typo)]
            .prop_map(Op::Deactivate),
        3 => Just(Op::Status),
        1 => (
            any::<bool>(),
            prop_oneof![
                3 => Just(None),
                1 => Just(Some(Tamper::Delete)),
                1 => Just(Some(Tamper::Lower)),
            ],
        )
            .prop_map(|(clean, tamper)| Op::Restart { clean, tamper }),
        4 => prop::sample::select(vec![
            Step::Minute,
            Step::Hour,
            Step::Day,
            Step::ThreeDays,
            Step::PastAYear,
            Step::BackAnHour,
            Step::BackByTolerance,
            Step::BackBeyondTolerance,
            Step::BackThreeDays,
        ])
        .prop_map(Op::Clock),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn client_state_machine_never_reaches_an_illegal_state(
        ops in prop::collection::vec(op(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(&ops))?;
    }
}

#[derive(Debug, Clone)]
struct Pending {
    token: String,
    hash: Digest,
    key: Key,
}

/// A payload signed by the trusted issuer for a request of this
/// installation, whatever became of it.
#[derive(Debug, Clone)]
struct Payload {
    token: String,
    license: License,
    key: Key,
}

/// What an import sends.
struct Offer {
    sent: Key,
    token: String,
    license: License,
    trusted: bool,
}

type Refusal = (StatusCode, &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imported {
    Installed,
    AlreadyActive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    NotYetValid,
    Valid,
    Grace,
    Expired,
}

/// The window at `at`, allowing the skew before `notBefore`
/// (docs/FORMAT.md §5).
fn window(license: &License, at: i64) -> Window {
    if at + SKEW < license.not_before {
        return Window::NotYetValid;
    }
    let at = at.max(license.not_before);
    match license.expires_at {
        None => Window::Valid,
        Some(expires) if at < expires => Window::Valid,
        Some(expires) if at < expires + i64::try_from(license.grace_seconds).unwrap() => {
            Window::Grace
        }
        Some(_) => Window::Expired,
    }
}

/// What the model says the client shows.
#[derive(Debug)]
struct View {
    /// `LicenseState::as_str`.
    state: &'static str,
    /// The status endpoint's `state`.
    status_state: &'static str,
    reason_code: &'static str,
    licensed: bool,
    warning: bool,
    in_grace: bool,
    suspect: bool,
    days_remaining: Option<i64>,
    serial: Option<u64>,
}

/// The reference model.
#[derive(Debug)]
struct Model {
    device: PublicKey,
    now: i64,
    /// The handle's high-water mark.
    mark: i64,
    /// The high-water mark recorded in the store; `None` once deleted.
    recorded: Option<i64>,
    /// Whether an edit lowered the recorded mark and nothing wrote one since.
    lowered: bool,
    /// The mark start-up found missing or lowered with a license active
    /// (`clock_mark_missing` or `clock_mark_lowered`), until an import or a
    /// deactivation writes one.
    doubt: Option<&'static str>,
    /// The newest `issuedAt` or `notBefore` of the payloads installed.
    vouched: i64,
    /// Oldest first.
    pending: Vec<Pending>,
    active: Option<Payload>,
    /// When the newest license was deactivated, if it was.
    deactivated_at: Option<i64>,
    /// The sequence number taken last (docs/FORMAT.md §6), by a request
    /// or a receipt.
    counter: u64,
    /// The counters of the receipts signed, oldest first.
    receipts: Vec<u64>,
    /// The device keys deactivations retired, oldest first.
    retired: Vec<PublicKey>,
    /// The vendor's last serial for this device.
    last_serial: u64,
    highest_installed: u64,
    built: Vec<Payload>,
    /// Whether the revocation list (the fixtures', version 1, which every
    /// payload of the vendor carries) is stored.
    list_stored: bool,
}

impl Model {
    fn new(device: PublicKey) -> Self {
        Self {
            device,
            now: NOW,
            mark: NOW,
            recorded: Some(NOW),
            lowered: false,
            doubt: None,
            vouched: i64::MIN,
            pending: Vec::new(),
            active: None,
            deactivated_at: None,
            counter: 0,
            receipts: Vec::new(),
            retired: Vec::new(),
            last_serial: 0,
            highest_installed: 0,
            built: Vec::new(),
            list_stored: false,
        }
    }

    /// A check reads the clock: the mark rises to it.
    fn observe(&mut self) {
        self.mark = self.mark.max(self.now);
    }

    /// Writes the mark `at` to the store, unless it is doubted.
    fn record(&mut self, at: i64) {
        if self.doubt.is_none() {
            self.recorded = Some(self.recorded.map_or(at, |r| r.max(at)));
            self.lowered = false;
        }
    }

    /// `GET /license` (also the answer to an accepted import).
    fn read_status(&mut self) {
        self.observe();
        if self.recorded.is_some_and(|r| self.mark - r >= RECORD_STEP) {
            self.record(self.mark);
        }
    }

    /// A register under a valid key: the rules of `insert_pending_request`.
    /// Each key's newest request stays; the oldest other one goes beyond the
    /// cap; a request for one more key than the cap is refused.
    fn register(&mut self, pending: Pending) -> Result<(), Refusal> {
        self.observe();
        self.pending.push(pending);
        let mut keys: Vec<Key> = self.pending.iter().map(|p| p.key).collect();
        keys.sort_by_key(|k| k.fingerprint());
        keys.dedup();
        if keys.len() > PENDING_CAP {
            self.pending.pop();
            return Err((StatusCode::CONFLICT, "too_many_pending_requests"));
        }
        while self.pending.len() > PENDING_CAP {
            let oldest_superseded = (0..self.pending.len())
                .find(|&i| {
                    self.pending[i + 1..]
                        .iter()
                        .any(|p| p.key == self.pending[i].key)
                })
                .expect("beyond the cap some key has two requests");
            self.pending.remove(oldest_superseded);
        }
        self.counter += 1;
        self.record(self.mark);
        Ok(())
    }

    /// The rules of `AppState::import`, in their order.
    fn import(&mut self, offer: &Offer) -> Result<Imported, Refusal> {
        let Some(sent) = offer.sent.fingerprint() else {
            return Err((StatusCode::BAD_REQUEST, "invalid_license_key"));
        };
        if !offer.trusted {
            return Err((StatusCode::BAD_REQUEST, "untrusted_root"));
        }
        let l = &offer.license;
        if l.license_key_fingerprint != sent {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "license_key_mismatch"));
        }
        if l.client_device_id.as_str() != DEVICE_ID {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "device_id_mismatch"));
        }
        if l.device_public_key != self.device {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "device_key_mismatch"));
        }
        self.observe();
        let seen = self.mark;
        if self.active.as_ref().is_some_and(|a| a.token == offer.token) {
            self.read_status();
            return Ok(Imported::AlreadyActive);
        }
        let Some(answered) = self.pending.iter().position(|p| p.hash == l.request_hash) else {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "unknown_request"));
        };
        match window(l, seen) {
            Window::Valid => {}
            Window::NotYetValid => {
                return Err((StatusCode::UNPROCESSABLE_ENTITY, "license_not_yet_valid"));
            }
            Window::Grace | Window::Expired => {
                return Err((StatusCode::UNPROCESSABLE_ENTITY, "license_expired"));
            }
        }
        if let Some(active) = &self.active
            && active.license.license_key_fingerprint == l.license_key_fingerprint
            && active.license.serial >= l.serial
        {
            return Err((StatusCode::CONFLICT, "downgrade_rejected"));
        }
        // The answered request goes, and every older one with it.
        self.pending.drain(..=answered);
        self.active = Some(Payload {
            token: offer.token.clone(),
            license: l.clone(),
            key: key_of(l),
        });
        self.highest_installed = self.highest_installed.max(l.serial);
        self.deactivated_at = None;
        // The payload's signed times count from now on; the import ends a
        // doubted mark by writing one.
        let vouched = l.issued_at.max(l.not_before);
        self.vouched = self.vouched.max(vouched);
        self.mark = self.mark.max(vouched);
        self.doubt = None;
        self.record(self.mark);
        self.read_status();
        // The list it carries revokes nothing: it becomes effective, and
        // is stored, with the import that stores its payload.
        self.list_stored = true;
        Ok(Imported::Installed)
    }

    /// The rules of `AppState::deactivate`: the receipt's serial, counter
    /// and time. The caller then tells the new device key
    /// ([`Model::replace_device`]).
    fn deactivate(&mut self, sent: Key) -> Result<(u64, u64, i64), Refusal> {
        let Some(sent) = sent.fingerprint() else {
            return Err((StatusCode::BAD_REQUEST, "invalid_license_key"));
        };
        self.observe();
        let released_at = self.mark;
        let Some(active) = &self.active else {
            return Err((StatusCode::CONFLICT, "no_active_license"));
        };
        if active.license.license_key_fingerprint != sent {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "license_key_mismatch"));
        }
        let serial = active.license.serial;
        self.counter += 1;
        self.receipts.push(self.counter);
        self.active = None;
        self.pending.clear();
        self.deactivated_at = Some(released_at);
        self.doubt = None;
        self.record(released_at);
        Ok((serial, self.counter, released_at))
    }

    /// The key a deactivation made: new, and never one retired before.
    fn replace_device(&mut self, next: PublicKey) -> Result<(), TestCaseError> {
        prop_assert_ne!(next, self.device);
        prop_assert!(!self.retired.contains(&next));
        self.retired.push(self.device);
        self.device = next;
        Ok(())
    }

    /// A restart, after `tamper` if any; `newest_recorded` is the newest
    /// other time the store records, read from it.
    fn restart(&mut self, clean: bool, tamper: Option<Tamper>, newest_recorded: Option<i64>) {
        if clean {
            self.record(self.mark);
        }
        match tamper {
            None => {}
            Some(Tamper::Delete) => self.recorded = None,
            // An UPDATE finds no row to lower once the mark is deleted.
            Some(Tamper::Lower) if self.recorded.is_some() => {
                self.recorded = Some(0);
                self.lowered = true;
            }
            Some(Tamper::Lower) => {}
        }
        // A missing or lowered mark is doubted while a license is active.
        self.doubt = match (&self.active, self.recorded) {
            (None, _) => None,
            (Some(_), None) => Some("clock_mark_missing"),
            (Some(_), Some(_)) if self.lowered => Some("clock_mark_lowered"),
            (Some(_), Some(_)) => None,
        };
        // The mark starts from the store's, every other time it records,
        // the payloads' signed times and the clock.
        let judged = [self.recorded, newest_recorded, Some(self.vouched)]
            .into_iter()
            .flatten()
            .fold(self.now, i64::max);
        // Start-up records it if it moved on by a step since, unless doubted.
        if self.recorded.is_none_or(|r| judged - r >= RECORD_STEP) {
            self.record(judged);
        }
        self.mark = judged;
    }

    /// What a check would say now, without raising the mark.
    fn view(&self) -> View {
        let mark = self.mark.max(self.now);
        let Some(active) = &self.active else {
            let (status_state, reason_code) = if !self.pending.is_empty() {
                ("pending", "awaiting_payload")
            } else if self.deactivated_at.is_some() {
                ("unlicensed", "deactivated")
            } else {
                ("unlicensed", "no_license")
            };
            return View {
                state: "unlicensed",
                status_state,
                reason_code,
                licensed: false,
                warning: false,
                in_grace: false,
                suspect: false,
                days_remaining: None,
                serial: None,
            };
        };
        let l = &active.license;
        let suspicion = if let Some(code) = self.doubt {
            Some(code)
        } else if self.now < mark - TOLERANCE {
            Some("clock_behind_high_water_mark")
        } else if self.now < l.issued_at - SKEW {
            Some("clock_before_issued_at")
        } else {
            None
        };
        let window = window(l, mark);
        let working = matches!(window, Window::Valid | Window::Grace);
        // A doubted mark refuses under either policy.
        let licensed = working
            && self.doubt.is_none()
            && !(suspicion.is_some() && l.clock_policy == ClockPolicy::Enforcing);
        let warning = working && l.expires_at.is_some_and(|e| mark >= e - WARNING);
        let (state, reason_code) = match (suspicion, window) {
            (Some(code), _) => ("clock_suspect", code),
            (None, Window::Valid) if warning => ("active", "expiry_warning"),
            (None, Window::Valid) => ("active", "valid"),
            (None, Window::Grace) => ("grace", "in_grace"),
            (None, Window::Expired) => ("expired", "expired"),
            (None, Window::NotYetValid) => ("not_yet_valid", "not_yet_valid"),
        };
        View {
            state,
            status_state: state,
            reason_code,
            licensed,
            warning,
            in_grace: window == Window::Grace,
            suspect: suspicion.is_some(),
            days_remaining: l.expires_at.map(|e| ((e - mark).max(0) + DAY - 1) / DAY),
            serial: Some(l.serial),
        }
    }

    /// The vendor's answer to `request_token`, starting at `shape.start`
    /// by the client's clock.
    fn answer(&self, request_token: &str, serial: u64, shape: Shape) -> License {
        let request = VerifiedRequest::open(request_token).unwrap();
        let start = match shape.start {
            Start::Now => self.now,
            Start::WithinSkew => self.now + SKEW,
            Start::BeyondSkew => self.now + SKEW + 1,
            Start::ThreeDaysAgo => self.now - 3 * DAY,
        };
        let expires_at = match shape.life {
            Life::Year => Some(start + 365 * DAY),
            Life::TwoDays => Some(start + 2 * DAY),
            Life::Perpetual => None,
        };
        License {
            customer: "ACME Logistics GmbH".into(),
            features: vec!["ingest".into(), "reports".into()],
            limits: BTreeMap::from([("max-sources".into(), 12)]),
            issued_at: start,
            not_before: start,
            expires_at,
            grace_seconds: if shape.grace && expires_at.is_some() {
                (3 * DAY).cast_unsigned()
            } else {
                0
            },
            clock_policy: if shape.enforcing {
                ClockPolicy::Enforcing
            } else {
                ClockPolicy::Advisory
            },
            serial,
            license_key_fingerprint: request.request.license_key_fingerprint,
            client_device_id: request.request.client_device_id.clone(),
            device_public_key: request.device_public_key.into(),
            request_hash: request.hash(),
        }
    }

    /// A payload for our key bound to this installation, answering a
    /// request it never made.
    fn answer_to_nothing(&self, serial: u64) -> License {
        License {
            customer: "ACME Logistics GmbH".into(),
            features: vec!["ingest".into()],
            limits: BTreeMap::new(),
            issued_at: self.now,
            not_before: self.now,
            expires_at: Some(self.now + 365 * DAY),
            grace_seconds: 0,
            clock_policy: ClockPolicy::Advisory,
            serial,
            license_key_fingerprint: key().fingerprint(),
            client_device_id: DeviceId::parse(DEVICE_ID).unwrap(),
            device_public_key: self.device.into(),
            request_hash: Bytes([9u8; 32]),
        }
    }
}

/// The store as the invariants need it.
#[derive(Debug, Default)]
struct Stored {
    licenses: Vec<LicenseRow>,
    /// Request hashes, oldest first.
    pending: Vec<String>,
    clock: Option<i64>,
    /// (counter, serial)
    receipts: Vec<(i64, i64)>,
    /// The sequence number taken last.
    sequence: u64,
    /// The stored device key's public half.
    device: String,
    /// The stored revocation list's version.
    list_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LicenseRow {
    id: i64,
    token: String,
    serial: u64,
    fingerprint: String,
    replaced_at: Option<i64>,
    deactivated_at: Option<i64>,
}

async fn read_store(app: &TestApp) -> Stored {
    app.state
        .store()
        .call(|conn| {
            let licenses = conn
                .prepare(
                    "SELECT id, token, serial, license_key_fingerprint, replaced_at, \
                     deactivated_at FROM licenses ORDER BY id",
                )?
                .query_map([], |row| {
                    Ok(LicenseRow {
                        id: row.get(0)?,
                        token: row.get(1)?,
                        serial: row.get::<_, i64>(2)?.cast_unsigned(),
                        fingerprint: row.get(3)?,
                        replaced_at: row.get(4)?,
                        deactivated_at: row.get(5)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            // Forgotten requests may stay stored until a batch of them is
            // deleted; the pending ones are those above the mark.
            let pending = ren3_client::store::pending_request_hashes(conn)?;
            let receipts = conn
                .prepare("SELECT counter, serial FROM release_receipts ORDER BY counter")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let list_version = conn
                .prepare("SELECT version FROM revocation_list")?
                .query_map([], |row| row.get(0))?
                .next()
                .transpose()?;
            let device =
                conn.query_row("SELECT public_key FROM device_key", [], |row| row.get(0))?;
            Ok::<_, StoreError>(Stored {
                licenses,
                pending,
                clock: ren3_client::store::high_water_mark(conn)?,
                receipts,
                sequence: ren3_client::store::last_sequence_number(conn)?,
                device,
                list_version,
            })
        })
        .await
        .unwrap()
}

/// Every invariant, after every step; returns the store for the next.
async fn check_invariants(
    app: &TestApp,
    model: &Model,
    previous: &Stored,
    edited: bool,
    context: &str,
) -> Result<Stored, TestCaseError> {
    let stored = read_store(app).await;
    let licenses = &stored.licenses;

    // At most one active license, and only the newest can be.
    let active: Vec<&LicenseRow> = licenses
        .iter()
        .filter(|r| r.replaced_at.is_none())
        .collect();
    prop_assert!(active.len() <= 1, "{}: {:?}", context, licenses);
    if let Some((_, older)) = licenses.split_last() {
        prop_assert!(
            older.iter().all(|r| r.replaced_at.is_some()),
            "{}: an older license is active: {:?}",
            context,
            licenses
        );
    }
    prop_assert_eq!(
        active.first().map(|r| r.token.as_str()),
        model.active.as_ref().map(|a| a.token.as_str()),
        "{}: the active license",
        context
    );

    // The handle publishes exactly the stored active license.
    let installed: Option<Arc<InstalledLicense>> = app.installed();
    let stored_license = active
        .first()
        .map(|r| payload::decode_unverified(&r.token).unwrap().1);
    prop_assert_eq!(
        installed.as_ref().map(|i| &i.license),
        stored_license.as_ref(),
        "{}: the handle disagrees with the store",
        context
    );
    if let Some(installed) = &installed {
        prop_assert_eq!(installed.key_id, issuer().key_id(), "{}", context);
    }

    // A license replaced (not deactivated) by one for the same key was
    // replaced by a higher serial.
    for pair in licenses.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        if old.deactivated_at.is_none() && old.fingerprint == new.fingerprint {
            prop_assert!(
                new.serial > old.serial,
                "{}: serial {} replaced by {}",
                context,
                old.serial,
                new.serial
            );
        }
    }

    // History and receipts are append-only; a row is ended once.
    prop_assert!(licenses.len() >= previous.licenses.len(), "{}", context);
    for (old, new) in previous.licenses.iter().zip(licenses) {
        prop_assert_eq!(
            (old.id, &old.token, old.serial, &old.fingerprint),
            (new.id, &new.token, new.serial, &new.fingerprint),
            "{}: a stored license changed",
            context
        );
        if old.replaced_at.is_some() {
            prop_assert_eq!(old.replaced_at, new.replaced_at, "{}", context);
            prop_assert_eq!(old.deactivated_at, new.deactivated_at, "{}", context);
        }
    }
    prop_assert_eq!(
        licenses.last().and_then(|r| r.deactivated_at),
        model.deactivated_at,
        "{}: deactivation",
        context
    );
    prop_assert!(
        stored.receipts.starts_with(&previous.receipts),
        "{}: receipts {:?} then {:?}",
        context,
        previous.receipts,
        stored.receipts
    );
    let counters: Vec<u64> = stored
        .receipts
        .iter()
        .map(|r| u64::try_from(r.0).unwrap())
        .collect();
    prop_assert_eq!(&counters, &model.receipts, "{}: receipt counters", context);

    // One sequence: it never goes down, and is where the model says.
    prop_assert!(stored.sequence >= previous.sequence, "{}", context);
    prop_assert_eq!(stored.sequence, model.counter, "{}: sequence", context);
    prop_assert!(
        counters.last().is_none_or(|&last| last <= stored.sequence),
        "{}",
        context
    );

    // The device key: the model's, in the store and in the state alike.
    prop_assert_eq!(app.state.device_public_key(), model.device, "{}", context);
    prop_assert_eq!(&stored.device, &model.device.to_string(), "{}", context);

    // Pending requests: the model's, under the cap, and every key's newest
    // still there (the model forgets only older ones beyond the cap).
    prop_assert!(stored.pending.len() <= PENDING_CAP, "{}", context);
    let pending: Vec<String> = model.pending.iter().map(|p| p.hash.to_string()).collect();
    prop_assert_eq!(&stored.pending, &pending, "{}: pending requests", context);

    // The clock's high-water mark: recorded never goes down but by an
    // edit, never passes the handle's, and is never below another time the
    // store records unless an edit lowered or deleted it.
    if !edited {
        prop_assert!(stored.clock >= previous.clock, "{}", context);
    }
    prop_assert_eq!(stored.clock, model.recorded, "{}: recorded", context);
    prop_assert_eq!(
        app.state.recorded_high_water_mark(),
        model.recorded.unwrap_or(i64::MIN),
        "{}",
        context
    );
    let handle = app.state.license();
    prop_assert_eq!(handle.high_water_mark(), model.mark, "{}: mark", context);
    prop_assert!(model.recorded <= Some(model.mark), "{}", context);
    if let Some(recorded) = stored.clock
        && !model.lowered
    {
        let newest = newest_recorded_time(app).await;
        prop_assert!(
            newest.is_none_or(|newest| newest <= recorded),
            "{}: the store records {:?}, after the mark {}",
            context,
            newest,
            recorded
        );
    }

    // What a check would say now.
    let check = LicenseCheck::evaluate(
        handle.installed(),
        model.now,
        handle.high_water_mark(),
        handle.clock_rules(),
    );
    let view = model.view();
    prop_assert_eq!(
        check.state().as_str(),
        view.state,
        "{}: {:?}",
        context,
        view
    );
    prop_assert_eq!(
        check.is_licensed(),
        view.licensed,
        "{}: {:?}",
        context,
        view
    );
    prop_assert!(app.state.stored_problem().is_none(), "{}", context);

    // The revocation list: stored once a verified chain brought it; it
    // revokes nothing, and the effective version matches it.
    prop_assert_eq!(
        stored.list_version,
        model.list_stored.then_some(1),
        "{}: the stored list",
        context
    );
    prop_assert_eq!(
        app.state.revocation_list_version(),
        u64::from(model.list_stored),
        "{}: the effective list",
        context
    );
    prop_assert!(
        installed.as_ref().is_none_or(|i| i.revocation.is_none()),
        "{}",
        context
    );
    Ok(stored)
}

/// The status (`GET /license`, or an accepted import's answer) against the
/// model.
fn check_status(json: &Value, model: &Model, context: &str) -> Result<(), TestCaseError> {
    let view = model.view();
    let installed = view.serial.is_some();
    let key_id = installed.then(|| issuer().key_id().to_string());
    let actual = json!({
        "state": json["state"],
        "reasonCode": json["reasonCode"],
        "licensed": json["licensed"],
        "pendingRequests": json["pendingRequests"],
        "warning": json["warning"],
        "inGrace": json["grace"]["inGrace"],
        "suspect": json["clock"]["suspect"],
        "highWaterMark": json["clock"]["highWaterMark"],
        "daysRemaining": json["daysRemaining"],
        "serial": json["license"]["serial"],
        "keyId": json["keyId"],
        "deviceMatches": json["deviceMatches"],
    });
    let expected = json!({
        "state": view.status_state,
        "reasonCode": view.reason_code,
        "licensed": view.licensed,
        "pendingRequests": model.pending.len(),
        "warning": view.warning,
        "inGrace": view.in_grace,
        "suspect": view.suspect,
        "highWaterMark": model.recorded.map(timestamp::format),
        "daysRemaining": view.days_remaining,
        "serial": view.serial,
        "keyId": key_id,
        "deviceMatches": installed.then_some(true),
    });
    prop_assert_eq!(actual, expected, "{}: status {}", context, json);
    Ok(())
}

fn check_refusal(reply: &Reply, refusal: Refusal, context: &str) -> Result<(), TestCaseError> {
    let (status, code) = refusal;
    prop_assert_eq!(reply.status, status, "{}: {}", context, reply.text);
    prop_assert_eq!(reply.code(), code, "{}: {}", context, reply.text);
    prop_assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "{}",
        context
    );
    Ok(())
}

/// The store and the published license, to prove a step changed nothing
/// (or nothing but some tables).
type Before = (Dump, Option<Arc<InstalledLicense>>);

async fn before(app: &TestApp) -> Before {
    (app.dump().await, app.installed())
}

/// Asserts that nothing but the rows of `tables` changed since `before`.
async fn unchanged_but(
    app: &TestApp,
    before: &Before,
    tables: &[&str],
    context: &str,
) -> Result<(), TestCaseError> {
    let others = |dump: &Dump| -> Dump {
        dump.iter()
            .filter(|row| !tables.iter().any(|t| row.starts_with(&format!("{t}: "))))
            .cloned()
            .collect()
    };
    let after = app.dump().await;
    prop_assert_eq!(
        others(&after),
        others(&before.0),
        "{}: the store changed",
        context
    );
    prop_assert_eq!(
        &app.installed(),
        &before.1,
        "{}: the published license changed",
        context
    );
    Ok(())
}

async fn import(
    app: &TestApp,
    model: &mut Model,
    offer: &Offer,
    context: &str,
) -> Result<(), TestCaseError> {
    let before = before(app).await;
    let expected = model.import(offer);
    let reply = app
        .post(
            "/license/import",
            json!({"licenseKey": offer.sent.text(), "licensePayload": offer.token}),
        )
        .await;
    match expected {
        Ok(imported) => {
            prop_assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}: expected {:?}: {}",
                context,
                imported,
                reply.text
            );
            check_status(&reply.json, model, context)?;
            if imported == Imported::AlreadyActive {
                unchanged_but(app, &before, &["clock"], context).await?;
            }
        }
        Err(refusal) => {
            check_refusal(&reply, refusal, context)?;
            unchanged_but(app, &before, &[], context).await?;
        }
    }
    Ok(())
}

/// One `POST /license/register` under `key`, against the model.
async fn register(
    app: &TestApp,
    model: &mut Model,
    key: Key,
    context: &str,
) -> Result<(), TestCaseError> {
    let before = before(app).await;
    let reply = app
        .post(
            "/license/register",
            json!({"licenseKey": key.text(), "export": true}),
        )
        .await;
    let Some(fingerprint) = key.fingerprint() else {
        check_refusal(
            &reply,
            (StatusCode::BAD_REQUEST, "invalid_license_key"),
            context,
        )?;
        return unchanged_but(app, &before, &[], context).await;
    };
    if reply.status != StatusCode::OK {
        // The model decides whether it must be refused.
        let pending = Pending {
            token: String::new(),
            hash: Bytes([0; 32]),
            key,
        };
        let expected = model.register(pending);
        prop_assert!(expected.is_err(), "{}: {}", context, reply.text);
        check_refusal(&reply, expected.unwrap_err(), context)?;
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        prop_assert!(
            detail.contains("POST /license/import"),
            "{}: {}",
            context,
            detail
        );
        return unchanged_but(app, &before, &[], context).await;
    }
    let token = reply.json["licenseRequest"].as_str().unwrap().to_owned();
    let request = VerifiedRequest::open(&token).unwrap();
    prop_assert_eq!(
        request.request.license_key_fingerprint,
        fingerprint,
        "{}",
        context
    );
    prop_assert_eq!(request.device_public_key, model.device, "{}", context);
    prop_assert_eq!(request.request.created_at, model.now, "{}", context);
    let expected = model.register(Pending {
        hash: request.hash(),
        token,
        key,
    });
    prop_assert!(
        expected.is_ok(),
        "{}: accepted, expected {:?}",
        context,
        expected
    );
    prop_assert_eq!(request.request.counter, model.counter, "{}", context);
    unchanged_but(
        app,
        &before,
        &["pending_requests", "clock", "signing_sequence"],
        context,
    )
    .await
}

/// The newest time the store records besides the mark: the columns written
/// in the same transaction as a mark, read here on their own.
async fn newest_recorded_time(app: &TestApp) -> Option<i64> {
    app.state
        .store()
        .call(|conn| {
            let mut newest: Option<i64> = None;
            for sql in [
                "SELECT max(imported_at) FROM licenses",
                "SELECT max(replaced_at) FROM licenses",
                "SELECT max(deactivated_at) FROM licenses",
                "SELECT max(released_at) FROM release_receipts",
                "SELECT max(created_at) FROM pending_requests",
            ] {
                let at: Option<i64> = conn.query_row(sql, [], |row| row.get(0))?;
                newest = newest.max(at);
            }
            Ok::<_, StoreError>(newest)
        })
        .await
        .unwrap()
}

async fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut app = TestApp::new().await;
    prop_assert_eq!(
        app.state.license().clock_rules().tolerance_seconds,
        TOLERANCE
    );
    prop_assert_eq!(app.state.record_step(), RECORD_STEP);
    let trusted = issuer();
    let rogue: PayloadSigner = rogue_issuer();
    let mut model = Model::new(app.state.device_public_key());
    let mut stored = check_invariants(&app, &model, &Stored::default(), false, "start").await?;

    for (n, op) in ops.iter().enumerate() {
        let context = format!("{n}. {op:?}");
        let context = context.as_str();
        match *op {
            Op::Register { key, times } => {
                for _ in 0..times {
                    register(&app, &mut model, key, context).await?;
                }
            }
            Op::Flood { first, count } => {
                for n in 0..count {
                    let n = first.wrapping_add(u8::try_from(n).unwrap());
                    register(&app, &mut model, Key::Stranger(n), context).await?;
                }
            }
            Op::ImportFresh { pick, bump, shape } => {
                let Some(pending) = pick_from(&model.pending, pick) else {
                    continue;
                };
                model.last_serial += bump;
                let license = model.answer(&pending.token, model.last_serial, shape);
                let offer = built(&mut model, trusted, license);
                import(&app, &mut model, &offer, context).await?;
            }
            Op::ImportOlder { pick, back, shape } => {
                let Some(pending) = pick_from(&model.pending, pick) else {
                    continue;
                };
                let base = model
                    .active
                    .as_ref()
                    .map_or(model.highest_installed, |a| a.license.serial);
                let serial = base.saturating_sub(back).max(1);
                let license = model.answer(&pending.token, serial, shape);
                let offer = built(&mut model, trusted, license);
                import(&app, &mut model, &offer, context).await?;
            }
            Op::Replay { pick } => {
                let Some(payload) = pick_from(&model.built, pick) else {
                    continue;
                };
                let offer = Offer {
                    sent: payload.key,
                    token: payload.token,
                    license: payload.license,
                    trusted: true,
                };
                import(&app, &mut model, &offer, context).await?;
            }
            Op::ImportForged { forgery, pick } => {
                let serial = model.last_serial + 1;
                let (mut license, payload_key) = match pick_from(&model.pending, pick) {
                    Some(pending) => {
                        let license = model.answer(&pending.token, serial, PLAIN);
                        let key = key_of(&license);
                        (license, key)
                    }
                    None => (model.answer_to_nothing(serial), Key::Ours),
                };
                let mut sent = payload_key;
                let mut signer = trusted;
                match forgery {
                    Forgery::NeverRequested => license.request_hash = Bytes([9u8; 32]),
                    Forgery::OtherDevice => license.client_device_id = other_device_id(),
                    Forgery::OtherInstallation => {
                        license.device_public_key =
                            DeviceKey::from_seed(&[5u8; 32]).public_key().into();
                    }
                    Forgery::RogueIssuer => signer = &rogue,
                    Forgery::WrongKey => sent = payload_key.swapped(),
                    Forgery::TypoKey => sent = Key::Typo,
                }
                let offer = Offer {
                    sent,
                    token: signer.sign_payload(&license).unwrap().token(),
                    license,
                    trusted: !matches!(forgery, Forgery::RogueIssuer),
                };
                import(&app, &mut model, &offer, context).await?;
            }
            Op::Deactivate(key) => {
                let before = before(&app).await;
                let signer = model.device;
                let expected = model.deactivate(key);
                let reply = app.deactivate(&key.text()).await;
                match expected {
                    Ok((serial, counter, released_at)) => {
                        prop_assert_eq!(
                            reply.status,
                            StatusCode::OK,
                            "{}: {}",
                            context,
                            reply.text
                        );
                        let receipt =
                            VerifiedReceipt::open(reply.json["releaseReceipt"].as_str().unwrap())
                                .unwrap();
                        // The key bound at the vendor signs; a new one
                        // takes over.
                        prop_assert_eq!(receipt.device_public_key, signer, "{}", context);
                        model.replace_device(app.state.device_public_key())?;
                        let r = &receipt.receipt;
                        prop_assert_eq!(
                            (r.serial, r.counter, r.released_at),
                            (serial, counter, released_at),
                            "{}",
                            context
                        );
                        prop_assert_eq!(
                            Some(r.license_key_fingerprint),
                            key.fingerprint(),
                            "{}",
                            context
                        );
                        prop_assert_eq!(
                            (&reply.json["serial"], &reply.json["counter"]),
                            (&json!(serial), &json!(counter)),
                            "{}",
                            context
                        );
                    }
                    Err(refusal) => {
                        check_refusal(&reply, refusal, context)?;
                        unchanged_but(&app, &before, &[], context).await?;
                    }
                }
            }
            Op::Status => {
                let before = before(&app).await;
                model.read_status();
                let reply = app.get_status().await;
                check_status(&reply.json, &model, context)?;
                unchanged_but(&app, &before, &["clock"], context).await?;
            }
            Op::Restart { clean, tamper } => {
                let before = before(&app).await;
                if clean {
                    app.state.persist_clock().await.unwrap();
                }
                let newest_recorded = newest_recorded_time(&app).await;
                model.restart(clean, tamper, newest_recorded);
                app = match tamper {
                    None => app.restart().await,
                    Some(tamper) => {
                        app.restart_after_editing(|conn| {
                            let sql = match tamper {
                                Tamper::Delete => "DELETE FROM clock",
                                Tamper::Lower => "UPDATE clock SET high_water_mark = 0",
                            };
                            conn.execute(sql, []).unwrap();
                        })
                        .await
                    }
                };
                // The license published is the same, doubted or not.
                let installed = app.installed();
                let problem = installed.as_ref().and_then(|i| i.mark_problem);
                prop_assert_eq!(
                    problem.is_some(),
                    model.doubt.is_some(),
                    "{}: {:?}",
                    context,
                    problem
                );
                let strip = |i: Option<Arc<InstalledLicense>>| {
                    i.map(|i| InstalledLicense {
                        mark_problem: None,
                        ..(*i).clone()
                    })
                };
                prop_assert_eq!(strip(installed), strip(before.1.clone()), "{}", context);
                let before = (before.0, app.installed());
                unchanged_but(&app, &before, &["clock"], context).await?;
            }
            Op::Clock(step) => {
                let before = before(&app).await;
                model.now += step.seconds();
                app.set_now(model.now);
                unchanged_but(&app, &before, &[], context).await?;
            }
        }
        let edited = matches!(
            op,
            Op::Restart {
                tamper: Some(_),
                ..
            }
        );
        stored = check_invariants(&app, &model, &stored, edited, context).await?;
    }
    Ok(())
}

/// The license key a payload was issued for.
fn key_of(license: &License) -> Key {
    [Key::Ours, Key::Other]
        .into_iter()
        .chain((0..32).map(Key::Stranger))
        .find(|k| k.fingerprint() == Some(license.license_key_fingerprint))
        .expect("every payload here is for a key the test made")
}

/// The element `pick` chooses, modulo their number.
fn pick_from<T: Clone>(items: &[T], pick: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[pick % items.len()].clone())
}

/// Signs `license` with the trusted issuer and remembers it for replays.
fn built(model: &mut Model, issuer: &PayloadSigner, license: License) -> Offer {
    let key = key_of(&license);
    let token = issuer.sign_payload(&license).unwrap().token();
    model.built.push(Payload {
        token: token.clone(),
        license: license.clone(),
        key,
    });
    Offer {
        sent: key,
        token,
        license,
        trusted: true,
    }
}
