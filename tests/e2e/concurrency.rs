//! Concurrency: 64 callers on one `ren3-client`, and issuers racing for the
//! last seats of one license. Each prints its seed; `REN3_TEST_SEED=<seed>`
//! replays the choice of operations (not the interleaving).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use ren3_shared::{DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product};
use ren3_tests::{
    Client, ClientStoreSnapshot, Issuer, fixture, issuer_command, request_hash, sqlite_integrity,
    test_only_payload,
};
use serde_json::{Value, json};

const CALLERS: usize = 64;
const MAX_PENDING_REQUESTS: usize = 16;

fn load_duration() -> Duration {
    Duration::from_secs(
        std::env::var("REN3_LOAD_SECONDS")
            .map(|v| v.parse().expect("REN3_LOAD_SECONDS is a number"))
            .unwrap_or(6),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    Import,
    Deactivate,
    Status,
}

/// One acknowledged call: when it was sent and when its answer was read,
/// so that "A was answered before B was sent" orders A before B.
#[derive(Debug)]
struct Call {
    kind: Kind,
    sent: Instant,
    answered: Instant,
    status: u16,
    body: Value,
    /// The payload of an import; the request of a register.
    token: Option<String>,
    /// For an import: the index of the register call it answers.
    answers: Option<usize>,
    /// For an import: the payload's serial.
    serial: u64,
}

impl Call {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Certainly committed before `other` began.
    fn before(&self, other: &Call) -> bool {
        self.answered < other.sent
    }
}

fn send(agent: &ureq::Agent, base: &str, kind: Kind, body: &Value) -> (u16, Value) {
    let path = match kind {
        Kind::Register => "register",
        Kind::Import => "import",
        Kind::Deactivate => "deactivate",
        Kind::Status => "",
    };
    let response = if kind == Kind::Status {
        agent.get(format!("{base}/license")).call()
    } else {
        agent.post(format!("{base}/license/{path}")).send_json(body)
    };
    let mut response = response.unwrap_or_else(|e| panic!("{kind:?} failed: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    assert!(
        !text.to_ascii_lowercase().contains("database is locked"),
        "{kind:?}: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

/// One caller's connection and its acknowledged calls.
struct Caller<'a> {
    agent: ureq::Agent,
    base: &'a str,
    calls: Vec<Call>,
}

impl Caller<'_> {
    fn call(&mut self, kind: Kind, body: &Value, token: Option<String>) -> &mut Call {
        let sent = Instant::now();
        let (status, body) = send(&self.agent, self.base, kind, body);
        self.calls.push(Call {
            kind,
            sent,
            answered: Instant::now(),
            status,
            body,
            token,
            answers: None,
            serial: 0,
        });
        self.calls.last_mut().unwrap()
    }
}

/// One caller: a mix of register (mostly followed by the import of its
/// payload), status and deactivate until `deadline`. `answers` of an
/// import is, until the calls are merged, the index of its register call
/// in this caller's own list.
fn caller(base: &str, key: &str, seed: u64, deadline: Instant, serials: &AtomicU64) -> Vec<Call> {
    let mut me = Caller {
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into(),
        base,
        calls: Vec::new(),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    while Instant::now() < deadline {
        match rng.random_range(0..20) {
            0..=7 => {
                let register = me.call(
                    Kind::Register,
                    &json!({ "licenseKey": key, "export": true }),
                    None,
                );
                assert_eq!(register.status, 200, "{}", register.body);
                let request = register.body["licenseRequest"].as_str().unwrap().to_owned();
                register.token = Some(request.clone());
                let index = me.calls.len() - 1;
                if rng.random_bool(0.8) {
                    let serial = serials.fetch_add(1, Ordering::SeqCst) + 1;
                    let payload = test_only_payload(&request, serial);
                    let body = json!({ "licenseKey": key, "licensePayload": payload });
                    let import = me.call(Kind::Import, &body, Some(payload));
                    import.answers = Some(index);
                    import.serial = serial;
                }
            }
            8..=14 => {
                me.call(Kind::Status, &Value::Null, None);
            }
            _ => {
                me.call(Kind::Deactivate, &json!({ "licenseKey": key }), None);
            }
        }
    }
    me.calls
}

/// Every answer is one the rules allow: never a 5xx.
fn check_answer(call: &Call) {
    let allowed: &[(u16, &str)] = match call.kind {
        Kind::Register | Kind::Status => &[(200, "")],
        Kind::Import => &[
            (200, ""),
            (409, "downgrade_rejected"),
            (422, "unknown_request"),
            // A payload answering a request made before a deactivation,
            // which replaced the device key it is bound to.
            (422, "device_key_mismatch"),
        ],
        Kind::Deactivate => &[(200, ""), (409, "no_active_license")],
    };
    assert!(
        allowed.contains(&(call.status, call.code())),
        "{:?} answered {}: {}",
        call.kind,
        call.status,
        call.body
    );
}

#[test]
fn sixty_four_concurrent_callers_get_no_5xx_and_a_state_a_sequential_replay_gives() {
    let mut rng = ren3_tests::seeded_rng("64 callers");
    let key = std::fs::read_to_string(fixture("license-key.txt")).unwrap();
    let key = key.trim();
    let device = std::fs::read_to_string(fixture("device-id.txt")).unwrap();
    let client = Client::start(device.trim());
    let serials = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + load_duration();
    let seeds: Vec<u64> = (0..CALLERS).map(|_| rng.random()).collect();
    let per_caller: Vec<Vec<Call>> = std::thread::scope(|scope| {
        let workers: Vec<_> = seeds
            .iter()
            .map(|&seed| {
                let (base, serials) = (&client.base, &serials);
                scope.spawn(move || caller(base, key, seed, deadline, serials))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let mut calls: Vec<Call> = Vec::new();
    for mut mine in per_caller {
        let offset = calls.len();
        for call in &mut mine {
            if let Some(index) = &mut call.answers {
                *index += offset;
            }
        }
        calls.extend(mine);
    }
    calls.iter().for_each(check_answer);

    assert_eq!(sqlite_integrity(&client.store_path()), "ok");
    let store = ClientStoreSnapshot::read(&client.store_path());
    let active = check_licenses_replay(&calls, &store);
    check_pending(&calls, &store);
    let status = client.get("/license").body;
    match active {
        Some(serial) => {
            assert_eq!(status["licensed"], true, "{status}");
            assert_eq!(status["license"]["serial"], serial, "{status}");
        }
        None => assert_eq!(status["licensed"], false, "{status}"),
    }
    assert_eq!(status["pendingRequests"], store.pending_hashes.len());

    let count = |kind, status: u16| {
        calls
            .iter()
            .filter(|c| c.kind == kind && c.status == status)
            .count()
    };
    eprintln!(
        "64 callers: {} calls in {elapsed:.1?} ({} register, {} import ok / {} refused, \
         {} deactivate ok / {} refused, {} status)",
        calls.len(),
        count(Kind::Register, 200),
        count(Kind::Import, 200),
        calls
            .iter()
            .filter(|c| c.kind == Kind::Import && c.status != 200)
            .count(),
        count(Kind::Deactivate, 200),
        count(Kind::Deactivate, 409),
        count(Kind::Status, 200),
    );
    assert!(
        count(Kind::Import, 200) >= 10 && count(Kind::Deactivate, 200) >= 5,
        "too few imports and deactivations succeeded to prove anything"
    );
}

/// The licenses and receipts the store holds are exactly the acknowledged
/// imports and deactivations, and replaying them one at a time in the
/// order they committed obeys every rule and ends in the store's state.
///
/// The commit order is not visible to the callers, but the store records
/// it: `licenses.id` grows with each import, a receipt's `counter` with
/// each deactivation, and a deactivation of license L falls between L's
/// import and the next one (only the active license can be deactivated,
/// and an import replaces it for good). Returns the active serial.
fn check_licenses_replay(calls: &[Call], store: &ClientStoreSnapshot) -> Option<u64> {
    let imported: HashMap<&str, &Call> = calls
        .iter()
        .filter(|c| c.kind == Kind::Import && c.status == 200)
        .map(|c| (c.token.as_deref().unwrap(), c))
        .collect();
    let stored: HashSet<&str> = store.licenses.iter().map(|l| l.token.as_str()).collect();
    assert_eq!(
        stored,
        imported.keys().copied().collect(),
        "the stored licenses are not the acknowledged imports"
    );
    let deactivated: HashMap<u64, &Call> = calls
        .iter()
        .filter(|c| c.kind == Kind::Deactivate && c.status == 200)
        .map(|c| (c.body["counter"].as_u64().unwrap(), c))
        .collect();
    assert_eq!(
        store
            .receipts
            .iter()
            .map(|r| r.counter)
            .collect::<HashSet<_>>(),
        deactivated.keys().copied().collect(),
        "the stored receipts are not the acknowledged deactivations"
    );
    for receipt in &store.receipts {
        let call = deactivated[&receipt.counter];
        assert_eq!(call.body["releaseReceipt"], receipt.token);
        assert_eq!(call.body["serial"], receipt.serial);
    }

    let mut active: Option<&ren3_tests::StoredLicense> = None;
    let mut receipts = store.receipts.iter().peekable();
    for license in &store.licenses {
        if let Some(previous) = active {
            assert!(
                previous.serial < license.serial,
                "serial {} replaced the newer {}",
                license.serial,
                previous.serial
            );
        }
        active = Some(license);
        if let Some(receipt) = receipts.next_if(|r| r.license_id == license.id) {
            assert_eq!(receipt.serial, license.serial);
            active = None;
        }
        assert_eq!(license.deactivated, active.is_none());
    }
    assert!(
        receipts.next().is_none(),
        "receipts are out of commit order, or name a license that was not active"
    );
    assert_eq!(
        store.active_token(),
        active.map(|l| l.token.as_str()),
        "the active license is not the replay's"
    );
    // A refused downgrade saw a license at least as new: one whose import
    // began before the refusal was answered.
    for refusal in calls.iter().filter(|c| c.code() == "downgrade_rejected") {
        assert!(
            calls.iter().any(|c| c.kind == Kind::Import
                && c.status == 200
                && c.serial >= refusal.serial
                && c.sent < refusal.answered),
            "serial {} refused as a downgrade with nothing newer imported",
            refusal.serial
        );
    }
    active.map(|l| l.serial)
}

/// The pending requests are what the rules leave, as far as the callers'
/// clocks can order the calls: A certainly committed before B when A was
/// answered before B was sent. An acknowledged request R
///
/// - must be gone when an acknowledged import answered R, or a request
///   registered certainly after R (an import deletes the request it answers
///   and every older one), when an acknowledged deactivation began
///   certainly after R (a deactivation forgets every pending request), or
///   when 16 requests were registered certainly after R (only the newest
///   16 are kept);
/// - may be gone only when an acknowledged import answered a request that
///   was perhaps registered after R and perhaps committed after R, when an
///   acknowledged deactivation perhaps committed after R, or when 16 other
///   requests were perhaps registered after R.
///
/// Anything else the store holds or lacks contradicts every sequential
/// order of the acknowledged calls.
fn check_pending(calls: &[Call], store: &ClientStoreSnapshot) {
    assert!(store.pending_hashes.len() <= MAX_PENDING_REQUESTS);
    let present: HashSet<&str> = store.pending_hashes.iter().map(String::as_str).collect();
    let registers: Vec<(usize, String)> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == Kind::Register)
        .map(|(i, c)| (i, request_hash(c.token.as_deref().unwrap())))
        .collect();
    let known: HashSet<&str> = registers.iter().map(|(_, h)| h.as_str()).collect();
    assert!(
        present.iter().all(|h| known.contains(h)),
        "a pending request nobody registered"
    );
    let imports: Vec<&Call> = calls
        .iter()
        .filter(|c| c.kind == Kind::Import && c.status == 200)
        .collect();
    let deactivations: Vec<&Call> = calls
        .iter()
        .filter(|c| c.kind == Kind::Deactivate && c.status == 200)
        .collect();
    for (r, hash) in &registers {
        let request = &calls[*r];
        let certainly_deactivated = deactivations.iter().any(|d| request.before(d));
        let perhaps_deactivated = deactivations.iter().any(|d| !d.before(request));
        let certainly_answered = imports.iter().any(|i| {
            let answered = i.answers.unwrap();
            answered == *r || request.before(&calls[answered])
        });
        let perhaps_answered = imports.iter().any(|i| {
            let answered = i.answers.unwrap();
            answered == *r || (!calls[answered].before(request) && !i.before(request))
        });
        let certainly_later = registers
            .iter()
            .filter(|(x, _)| request.before(&calls[*x]))
            .count();
        let perhaps_later = registers
            .iter()
            .filter(|(x, _)| x != r && !calls[*x].before(request))
            .count();
        let is_present = present.contains(hash.as_str());
        if certainly_answered || certainly_deactivated || certainly_later >= MAX_PENDING_REQUESTS {
            assert!(!is_present, "request {r} is pending though it was removed");
        } else if !is_present {
            assert!(
                perhaps_answered || perhaps_deactivated || perhaps_later >= MAX_PENDING_REQUESTS,
                "acknowledged request {r} was lost"
            );
        }
    }
}

/// `max-devices` 3, eight installations of eight devices asking at once:
/// real `ren3-issuer issue` processes on one store.
#[test]
fn concurrent_issuance_for_one_license_never_binds_more_devices_than_max_devices() {
    const SEATS: usize = 3;
    const RACERS: usize = 8;
    let issuer = Issuer::init();
    for round in 0..4u8 {
        let key = issuer.create_license(
            &format!("Seat Race {round}"),
            &["--max-devices", &SEATS.to_string()],
        );
        let license_key = LicenseKey::parse(&key).unwrap();
        let requests: Vec<String> = (0..RACERS)
            .map(|n| {
                let device = DeviceId::parse(&issuer.add_device(&key)).unwrap();
                let mut seed = [0xC3u8; 32];
                seed[0] = round;
                seed[1] = u8::try_from(n).unwrap();
                LicenseRequest::new(
                    device,
                    &license_key,
                    Product {
                        name: "ren3-ingestor".into(),
                        version: "0.1.0".into(),
                    },
                    ren3_shared::timestamp::now(),
                )
                .unwrap()
                .sign(&DeviceKey::from_seed(&seed))
                .unwrap()
                .token()
            })
            .collect();
        // Every process is started before any gets its request, so that
        // they all reach the store together.
        let mut children: Vec<_> = requests
            .iter()
            .map(|_| {
                issuer_command()
                    .arg("--db")
                    .arg(issuer.db())
                    .args(["issue", "--request", "-"])
                    .env("RUST_LOG", "off")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let inputs: Vec<_> = children
            .iter_mut()
            .map(|c| c.stdin.take().unwrap())
            .collect();
        for (mut input, request) in inputs.into_iter().zip(&requests) {
            input.write_all(request.as_bytes()).unwrap();
        }
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut issued = Vec::new();
        for out in &outputs {
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => issued.push(String::from_utf8(out.stdout.clone()).unwrap()),
                Some(1) => assert!(stderr.contains("no free seat"), "round {round}: {stderr}"),
                other => panic!("round {round}: exit {other:?}: {stderr}"),
            }
        }
        assert_eq!(issued.len(), SEATS, "round {round}: payloads issued");

        let conn = rusqlite::Connection::open_with_flags(
            issuer.db(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let (bound, issuances): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM devices d WHERE d.license_id = l.id
                             AND d.public_key IS NOT NULL),
                        (SELECT COUNT(*) FROM issuances i WHERE i.license_id = l.id)
                 FROM licenses l WHERE l.customer = ?1",
                [format!("Seat Race {round}")],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (bound, issuances),
            (SEATS as i64, SEATS as i64),
            "round {round}"
        );
    }
}
