//! Crashes lose nothing: the real `ren3-client` and `ren3-issuer` are
//! SIGKILLed at random moments in the middle of their work, and what they
//! acknowledged is still in their store afterwards, whole.
//!
//! The kill loops run `REN3_KILL_ROUNDS` rounds (200 by default; 2000 for
//! the long run). Each prints its seed; `REN3_TEST_SEED=<seed>` replays its
//! choices (operations, requests, kill delays; not the OS's scheduling).
//!
//! The console loop SIGKILLs `ren3-issuer serve` while a session submits
//! issuance forms (the check step, pasted or uploaded, then the confirm
//! step) and downloads payloads, and restarts it on the same store each
//! round. A round costs 30 to 80 ms in a debug build, so its 200 default
//! rounds take 6 to 16 s on a busy 2-core machine (the same default as the
//! other loops: a round is cheaper than feared, the store being small).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use ren3_shared::{DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product, VerifiedPayload};
use ren3_tests::{
    Client, ClientStoreSnapshot, ConsoleSession, Issuer, console_agent, fixture, issuer_command,
    request_hash, sqlite_integrity, test_only_payload, test_only_root_key,
};
use serde_json::{Value, json};

/// The client keeps at most this many pending requests (client/src/store.rs).
const MAX_PENDING_REQUESTS: usize = 16;

fn kill_rounds() -> usize {
    std::env::var("REN3_KILL_ROUNDS")
        .map(|v| v.parse().expect("REN3_KILL_ROUNDS is a number"))
        .unwrap_or(200)
}

/// When to kill, from the start of a burst of work: often within the
/// first operation, sometimes after a few.
fn kill_delay(rng: &mut StdRng, scale_micros: u64) -> Duration {
    let micros = match rng.random_range(0..10) {
        0..=3 => rng.random_range(0..scale_micros / 4),
        4..=7 => rng.random_range(scale_micros / 4..scale_micros),
        _ => rng.random_range(scale_micros..scale_micros * 3),
    };
    Duration::from_micros(micros)
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------
// The client kill loop.

/// A request sent to the client, in the order they were sent: one process
/// at a time and one operation at a time, so that is also the order they
/// committed in. `token` is `None` when the process was killed before it
/// answered: the request may or may not be in the store.
struct Registration {
    token: Option<String>,
    hash: Option<String>,
}

#[derive(Debug)]
enum Op {
    Register,
    Import {
        token: String,
    },
    /// With the number of registrations sent before it.
    Deactivate {
        after: usize,
    },
    Status,
}

/// What the test knows the client's store must hold.
#[derive(Default)]
struct ClientModel {
    registrations: Vec<Registration>,
    /// Every payload sent: its registration index and serial.
    payloads: HashMap<String, (usize, u64)>,
    /// The active license's token.
    active: Option<String>,
    /// Every import known to have committed (answered 200, or found in the
    /// store after a kill hit it): the store must hold exactly these.
    committed_imports: HashSet<String>,
    /// The counters of every deactivation known to have committed.
    committed_receipts: HashSet<u64>,
    /// How many registrations were sent before the latest deactivation
    /// known to have committed.
    registrations_before_deactivation: usize,
    next_serial: u64,
    acknowledged: usize,
    register_heavy: bool,
    /// Rows of `licenses` up to this id have been verified whole; a row
    /// never changes but for its `replaced_at` and `deactivated_at`.
    verified_up_to: i64,
}

impl ClientModel {
    fn serial_of(&self, token: &str) -> u64 {
        self.payloads[token].1
    }

    fn choose(&mut self, rng: &mut StdRng) -> Op {
        let acked: Vec<usize> = (0..self.registrations.len())
            .filter(|&i| self.registrations[i].token.is_some())
            .collect();
        // A third of the rounds mostly register, so that the cap on pending
        // requests comes into play.
        let roll = if self.register_heavy && rng.random_bool(0.7) {
            0
        } else {
            rng.random_range(0..20)
        };
        if acked.is_empty() || roll < 6 {
            return Op::Register;
        }
        if roll < 14 {
            if roll == 13
                && let Some(active) = &self.active
            {
                // Importing the active license again changes nothing.
                return Op::Import {
                    token: active.clone(),
                };
            }
            // Mostly the newest request; sometimes an older one, which an
            // import or the cap may have made unknown.
            let reg = if rng.random_bool(0.8) {
                *acked.last().unwrap()
            } else {
                acked[rng.random_range(0..acked.len())]
            };
            // Sometimes a serial below the active one: a downgrade.
            let serial = if rng.random_bool(0.1) {
                1
            } else {
                self.next_serial += 1;
                self.next_serial
            };
            let request = self.registrations[reg].token.clone().unwrap();
            let token = test_only_payload(&request, serial);
            self.payloads.insert(token.clone(), (reg, serial));
            return Op::Import { token };
        }
        if roll < 18 {
            Op::Deactivate {
                after: self.registrations.len(),
            }
        } else {
            Op::Status
        }
    }

    /// Applies an answered operation, checking the answer against the model.
    fn apply(&mut self, op: &Op, status: u16, body: &Value) {
        let code = body["code"].as_str().unwrap_or_default();
        assert!(status < 500, "{op:?} answered {status}: {body}");
        self.acknowledged += 1;
        match op {
            Op::Register => {
                assert_eq!(status, 200, "{body}");
                let token = body["licenseRequest"].as_str().unwrap().to_owned();
                let last = self.registrations.last_mut().unwrap();
                last.hash = Some(request_hash(&token));
                last.token = Some(token);
            }
            Op::Import { token } => {
                let serial = self.serial_of(token);
                let active_serial = self.active.as_deref().map(|t| self.serial_of(t));
                match (status, code) {
                    (200, _) => {
                        if self.active.as_ref() != Some(token) {
                            assert!(
                                active_serial.is_none_or(|a| a < serial),
                                "serial {serial} replaced {active_serial:?}"
                            );
                        }
                        assert_eq!(body["license"]["serial"], serial, "{body}");
                        self.active = Some(token.clone());
                        self.committed_imports.insert(token.clone());
                    }
                    (409, "downgrade_rejected") => {
                        assert!(active_serial.is_some_and(|a| a >= serial), "{body}");
                    }
                    // Or bound to the key a deactivation replaced.
                    (422, "unknown_request") | (422, "device_key_mismatch") => {}
                    _ => panic!("import answered {status}: {body}"),
                }
            }
            Op::Deactivate { after } => match (status, code) {
                (200, _) => {
                    self.registrations_before_deactivation = *after;
                    let active = self.active.take().expect("deactivated with none active");
                    assert_eq!(body["serial"], self.serial_of(&active), "{body}");
                    let counter = body["counter"].as_u64().unwrap();
                    self.committed_receipts.insert(counter);
                }
                (409, "no_active_license") => assert!(self.active.is_none(), "{body}"),
                _ => panic!("deactivate answered {status}: {body}"),
            },
            Op::Status => {
                assert_eq!(status, 200, "{body}");
                self.check_status(body);
            }
        }
    }

    /// `GET /license` agrees with the model.
    fn check_status(&self, body: &Value) {
        match &self.active {
            Some(token) => {
                assert_eq!(body["state"], "active", "{body}");
                assert_eq!(body["licensed"], true, "{body}");
                assert_eq!(body["license"]["serial"], self.serial_of(token), "{body}");
            }
            None => {
                assert_eq!(body["licensed"], false, "{body}");
                assert!(body["license"].is_null(), "{body}");
            }
        }
    }

    /// After a kill: decides from the store whether the operation the kill
    /// interrupted committed, and updates the model if it did.
    fn resolve(&mut self, in_flight: &Op, store: &ClientStoreSnapshot) {
        match in_flight {
            Op::Import { token } => {
                // A token committed before (the active one imported again)
                // says nothing about this attempt.
                if !self.committed_imports.contains(token)
                    && store.licenses.iter().any(|l| &l.token == token)
                {
                    self.active = Some(token.clone());
                    self.committed_imports.insert(token.clone());
                }
            }
            Op::Deactivate { after } => {
                for receipt in &store.receipts {
                    if self.committed_receipts.insert(receipt.counter) {
                        // The interrupted deactivation committed.
                        self.active = None;
                        self.registrations_before_deactivation = *after;
                    }
                }
            }
            Op::Register | Op::Status => {}
        }
    }

    /// Every invariant a crash must not break, against the store read
    /// directly.
    fn check_store(&mut self, store: &ClientStoreSnapshot, trust: &ren3_shared::TrustRoot) {
        // The active license is wholly the old one or wholly the new one:
        // the model says which, from the answers and from `resolve`.
        assert_eq!(
            store.active_token(),
            self.active.as_deref(),
            "the active license is not the one the acknowledged operations left"
        );
        // Every import answered 200 is there, and nothing else is.
        let stored: HashSet<String> = store.licenses.iter().map(|l| l.token.clone()).collect();
        assert_eq!(
            stored, self.committed_imports,
            "the license history differs"
        );
        // Every row is whole: its token verifies and its columns match it.
        let verified_up_to = self.verified_up_to;
        for row in store.licenses.iter().filter(|l| l.id > verified_up_to) {
            let payload = VerifiedPayload::open(&row.token, trust).unwrap();
            assert_eq!(payload.license.serial, row.serial);
            self.verified_up_to = row.id;
        }
        let receipts: HashSet<u64> = store.receipts.iter().map(|r| r.counter).collect();
        assert_eq!(receipts, self.committed_receipts, "the receipts differ");
        for receipt in &store.receipts {
            let license = store
                .licenses
                .iter()
                .find(|l| l.id == receipt.license_id)
                .unwrap();
            assert!(license.deactivated && !license.active, "{receipt:?}");
            assert_eq!(license.serial, receipt.serial);
        }
        self.check_pending(store);
    }

    /// Every pending request answered 200 is still there, unless a later
    /// operation removed it by the documented rules (client/src/store.rs):
    ///
    /// 1. an import deletes the request it answers and every older one, so
    ///    an acknowledged request `i` is gone once an import answering a
    ///    request `j >= i` committed (and must then be gone);
    /// 2. a deactivation forgets every pending request, so `i` is gone once
    ///    a deactivation sent after it committed (and must then be gone);
    /// 3. a registration keeps only the newest 16, so `i` may be gone once
    ///    16 later registrations were sent (some of them killed before they
    ///    answered, so perhaps not committed), and must be gone once 16
    ///    later ones were acknowledged.
    ///
    /// Operations run one at a time on one process at a time, so the order
    /// they were sent in is the order they committed in.
    fn check_pending(&self, store: &ClientStoreSnapshot) {
        assert!(store.pending_hashes.len() <= MAX_PENDING_REQUESTS);
        let present: HashSet<&str> = store.pending_hashes.iter().map(String::as_str).collect();
        let newest_answered = store
            .licenses
            .iter()
            .map(|l| self.payloads[&l.token].0)
            .max();
        let count = self.registrations.len();
        let mut later_acked = 0;
        let mut unknown = 0;
        for i in (0..count).rev() {
            let registration = &self.registrations[i];
            let later_sent = count - i - 1;
            let Some(hash) = &registration.hash else {
                unknown += 1;
                continue;
            };
            let is_present = present.contains(hash.as_str());
            let answered = newest_answered.is_some_and(|j| j >= i)
                || i < self.registrations_before_deactivation;
            if answered || later_acked >= MAX_PENDING_REQUESTS {
                assert!(
                    !is_present,
                    "request {i} is pending though an import, a deactivation or 16 later \
                     requests removed it"
                );
            } else {
                assert!(
                    is_present || later_sent >= MAX_PENDING_REQUESTS,
                    "acknowledged request {i} of {count} was lost"
                );
            }
            later_acked += 1;
        }
        let known: HashSet<&str> = self
            .registrations
            .iter()
            .filter_map(|r| r.hash.as_deref())
            .collect();
        let strangers = present.iter().filter(|h| !known.contains(*h)).count();
        assert!(
            strangers <= unknown,
            "{strangers} pending requests nobody sent"
        );
    }
}

/// A licensing endpoint called from the thread that the kill interrupts:
/// `None` when the process died before it answered.
fn call(agent: &ureq::Agent, base: &str, op: &Op, key: &str) -> Option<(u16, Value)> {
    let response = match op {
        Op::Register => agent
            .post(format!("{base}/license/register"))
            .send_json(json!({ "licenseKey": key, "export": true })),
        Op::Import { token } => agent
            .post(format!("{base}/license/import"))
            .send_json(json!({ "licenseKey": key, "licensePayload": token })),
        Op::Deactivate { .. } => agent
            .post(format!("{base}/license/deactivate"))
            .send_json(json!({ "licenseKey": key })),
        Op::Status => agent.get(format!("{base}/license")).call(),
    };
    let mut response = response.ok()?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some((status, serde_json::from_str(&text).unwrap()))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Runs operations until the process dies; returns the one it interrupted.
fn drive(base: &str, key: &str, model: &mut ClientModel, rng: &mut StdRng) -> Op {
    let agent = agent();
    loop {
        let op = model.choose(rng);
        if matches!(op, Op::Register) {
            model.registrations.push(Registration {
                token: None,
                hash: None,
            });
        }
        match call(&agent, base, &op, key) {
            Some((status, body)) => model.apply(&op, status, &body),
            None => return op,
        }
    }
}

#[test]
fn client_killed_at_random_moments_loses_no_acknowledged_operation() {
    let rounds = kill_rounds();
    let mut rng = ren3_tests::seeded_rng("client kill loop");
    let trust = test_only_root_key().trust_root();
    let key = fixture_text("license-key.txt");
    let mut client = Client::start(&fixture_text("device-id.txt"));
    let mut model = ClientModel::default();
    let started = Instant::now();
    let mut interrupted: HashMap<&'static str, usize> = HashMap::new();
    for round in 0..rounds {
        let delay = kill_delay(&mut rng, 25_000);
        let mut op_rng = StdRng::seed_from_u64(rng.random());
        model.register_heavy = rng.random_bool(0.33);
        let base = client.base.clone();
        let in_flight = std::thread::scope(|scope| {
            let worker = scope.spawn(|| drive(&base, &key, &mut model, &mut op_rng));
            std::thread::sleep(delay);
            client.kill();
            worker.join().unwrap()
        });
        *interrupted
            .entry(match in_flight {
                Op::Register => "register",
                Op::Import { .. } => "import",
                Op::Deactivate { .. } => "deactivate",
                Op::Status => "status",
            })
            .or_default() += 1;
        client = client.restart();

        assert_eq!(
            sqlite_integrity(&client.store_path()),
            "ok",
            "round {round}"
        );
        let store = ClientStoreSnapshot::read(&client.store_path());
        model.resolve(&in_flight, &store);
        model.check_store(&store, &trust);
        let status = client.get("/license").body;
        model.check_status(&status);
        assert_eq!(
            status["pendingRequests"],
            store.pending_hashes.len(),
            "round {round}: {status}"
        );
    }
    eprintln!(
        "client kill loop: {rounds} rounds, {} acknowledged operations, {} licenses and {} \
         receipts committed, interrupted {interrupted:?}, in {:.1?}",
        model.acknowledged,
        model.committed_imports.len(),
        model.committed_receipts.len(),
        started.elapsed()
    );
    assert!(
        model.committed_imports.len() >= rounds / 10,
        "too few imports to prove anything"
    );
}

// ---------------------------------------------------------------------------
// The issuer kill loop.

/// One customer installation: a device id of a license and its own key.
struct Installation {
    license: usize,
    device_id: DeviceId,
    key: DeviceKey,
}

/// A fixed key per installation, so that a failure replays.
fn installation_key(license: usize, device: usize, copy: u8) -> DeviceKey {
    let mut seed = [0x5Au8; 32];
    seed[0] = u8::try_from(license).unwrap() + 1;
    seed[1] = u8::try_from(device).unwrap() + 1;
    seed[2] = copy;
    DeviceKey::from_seed(&seed)
}

struct IssuerRun {
    issuer: Issuer,
    license_keys: Vec<LicenseKey>,
    installations: Vec<Installation>,
    /// Every request sent, and the payload of those answered with exit 0.
    requests: Vec<(String, Option<String>)>,
}

impl IssuerRun {
    fn new() -> Self {
        let issuer = Issuer::init();
        let mut license_keys = Vec::new();
        let mut installations = Vec::new();
        for (n, (seats, devices)) in [(2, 4usize), (3, 5)].into_iter().enumerate() {
            let key = issuer.create_license(
                &format!("Crash Test {n}"),
                &["--max-devices", &seats.to_string()],
            );
            for d in 0..devices {
                let device_id = DeviceId::parse(&issuer.add_device(&key)).unwrap();
                // A second installation with the same device id, refused
                // once the first is bound.
                for copy in 0..2u8 {
                    installations.push(Installation {
                        license: n,
                        device_id: device_id.clone(),
                        key: installation_key(n, d, copy),
                    });
                }
            }
            license_keys.push(LicenseKey::parse(&key).unwrap());
        }
        Self {
            issuer,
            license_keys,
            installations,
            requests: Vec::new(),
        }
    }

    fn new_request(&self, rng: &mut StdRng) -> String {
        let installation = &self.installations[rng.random_range(0..self.installations.len())];
        LicenseRequest::new(
            installation.device_id.clone(),
            &self.license_keys[installation.license],
            Product {
                name: "ren3-ingestor".into(),
                version: "0.1.0".into(),
            },
            ren3_shared::timestamp::now(),
        )
        .unwrap()
        .sign(&installation.key)
        .unwrap()
        .token()
    }

    fn db(&self) -> PathBuf {
        self.issuer.db()
    }

    /// Every invariant a crash must not break, read directly.
    fn check_store(&self, round: usize) {
        let db = self.db();
        assert_eq!(sqlite_integrity(&db), "ok", "round {round}");
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        conn.execute_batch("BEGIN").unwrap();
        // Every payload printed is stored as the answer to its request.
        for (request, payload) in &self.requests {
            let Some(payload) = payload else { continue };
            let stored: String = conn
                .query_row(
                    "SELECT payload FROM issuances WHERE request_hash = ?1",
                    [request_hash(request)],
                    |row| row.get(0),
                )
                .unwrap_or_else(|e| panic!("round {round}: a printed payload is lost: {e}"));
            assert_eq!(&stored, payload, "round {round}");
        }
        // No license has more bound devices than seats.
        let over: Vec<(i64, i64, i64)> = conn
            .prepare(
                "SELECT l.id, l.max_devices, COUNT(d.id) FROM licenses l
                 LEFT JOIN devices d ON d.license_id = l.id AND d.public_key IS NOT NULL
                 GROUP BY l.id HAVING COUNT(d.id) > l.max_devices",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            over.is_empty(),
            "round {round}: seats over max-devices: {over:?}"
        );
        // The seat count the triggers keep (migration 0005) is the count.
        let drifted: Vec<(i64, i64, i64)> = conn
            .prepare(
                "SELECT l.id, l.bound_devices, COUNT(d.id) FROM licenses l
                 LEFT JOIN devices d ON d.license_id = l.id AND d.public_key IS NOT NULL
                 GROUP BY l.id HAVING COUNT(d.id) != l.bound_devices",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            drifted.is_empty(),
            "round {round}: kept seat counts differ from the devices: {drifted:?}"
        );
        // Binding and issuing are one transaction: a device is bound iff it
        // has an issuance, to the key its payloads name.
        let rows: Vec<(Option<String>, Option<String>)> = conn
            .prepare(
                "SELECT d.public_key, (SELECT i.payload FROM issuances i
                                       WHERE i.device_id = d.id ORDER BY i.serial LIMIT 1)
                 FROM devices d",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (public_key, payload) in rows {
            match (public_key, payload) {
                (None, None) => {}
                (Some(public_key), Some(payload)) => {
                    let (_, license, _, _) =
                        ren3_shared::payload::decode_unverified(&payload).unwrap();
                    assert_eq!(license.device_public_key.to_string(), public_key);
                }
                other => panic!("round {round}: a half-done issuance: {other:?}"),
            }
        }
        // Each issuance row is whole: its payload says what its columns say.
        let issuances: Vec<(String, i64, String)> = conn
            .prepare("SELECT payload, serial, request_hash FROM issuances")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (payload, serial, hash) in issuances {
            let (_, license, _, _) = ren3_shared::payload::decode_unverified(&payload).unwrap();
            assert_eq!(license.serial, serial.cast_unsigned(), "round {round}");
            assert_eq!(license.request_hash.to_string(), hash, "round {round}");
        }
        conn.execute_batch("COMMIT").unwrap();
    }
}

#[test]
fn issuer_killed_during_issuance_keeps_every_printed_payload_and_the_seat_limit() {
    let rounds = kill_rounds();
    let mut rng = ren3_tests::seeded_rng("issuer kill loop");
    let mut run = IssuerRun::new();
    let started = Instant::now();
    let (mut printed, mut refused, mut killed) = (0, 0, 0);
    // How long one issuance takes here, so that the kills land before,
    // during and after its transaction.
    let mut durations = Vec::new();
    for _ in 0..3 {
        let request = run.new_request(&mut rng);
        let begun = Instant::now();
        let out = run.issuer.run(&["issue", "--request", "-"], Some(&request));
        durations.push(begun.elapsed());
        let payload = out.status.success().then(|| {
            printed += 1;
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        });
        run.requests.push((request, payload));
    }
    durations.sort();
    let scale = u64::try_from(durations[1].as_micros()).unwrap();
    for round in 0..rounds {
        // Mostly a new request; sometimes one sent before, which must get
        // the same payload if it was answered.
        let earlier = !run.requests.is_empty() && rng.random_bool(0.25);
        let index = if earlier {
            rng.random_range(0..run.requests.len())
        } else {
            let request = run.new_request(&mut rng);
            run.requests.push((request, None));
            run.requests.len() - 1
        };
        let mut child = issuer_command()
            .arg("--db")
            .arg(run.db())
            .args(["issue", "--request", "-"])
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The process may already be dead when its input is written.
        let _ = stdin.write_all(run.requests[index].0.as_bytes());
        drop(stdin);
        std::thread::sleep(kill_delay(&mut rng, scale));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {
                printed += 1;
                let payload = String::from_utf8(out.stdout).unwrap().trim().to_owned();
                let answer = &mut run.requests[index].1;
                if let Some(before) = answer {
                    assert_eq!(
                        &payload, before,
                        "round {round}: a repeated request got another payload"
                    );
                }
                *answer = Some(payload);
            }
            Some(1) => {
                refused += 1;
                assert!(out.stdout.is_empty(), "round {round}");
                assert!(
                    ["no free seat", "already bound to another installation"]
                        .iter()
                        .any(|why| stderr.contains(why)),
                    "round {round}: unexpected refusal: {stderr}"
                );
                assert!(
                    run.requests[index].1.is_none(),
                    "round {round}: an answered request was refused: {stderr}"
                );
            }
            Some(other) => panic!("round {round}: exit {other}: {stderr}"),
            None => killed += 1,
        }
        run.check_store(round);
    }
    // Each answered request answered again gives the same payload.
    let answered: Vec<&(String, Option<String>)> =
        run.requests.iter().filter(|(_, p)| p.is_some()).collect();
    for (request, payload) in answered.iter().take(40) {
        assert_eq!(&run.issuer.issue(request), payload.as_ref().unwrap());
    }
    eprintln!(
        "issuer kill loop: {rounds} rounds, {printed} payloads printed, {refused} refused, \
         {killed} killed mid-way (one issuance takes {scale} µs), in {:.1?}",
        started.elapsed()
    );
    assert!(
        printed + refused >= rounds / 10 && printed >= rounds / 40 && killed >= rounds / 10,
        "the kills missed the issuances"
    );
}

// ---------------------------------------------------------------------------
// The console kill loop.

const CONSOLE_USER: &str = "alice";
const CONSOLE_PASSWORD: &str = "a long console passphrase";

/// A request sent through the console, and what the console said of it.
struct ConsoleRequest {
    token: String,
    hash: String,
    /// The console answered the confirmed form with the payload's page.
    acknowledged: bool,
    /// The payload as downloaded from the console, once it was.
    downloaded: Option<String>,
    /// Found in the store after a round: every later answer must be this
    /// payload.
    stored: bool,
}

#[derive(Debug, Clone, Copy)]
enum ConsoleOp {
    /// The check step (multipart, the request pasted or uploaded), then
    /// the confirm step.
    CheckThenConfirm {
        index: usize,
        upload: bool,
    },
    /// The confirm step alone; `wrapped`: the request as a mail client
    /// wraps it.
    Confirm {
        index: usize,
        wrapped: bool,
    },
    Download {
        index: usize,
    },
}

#[derive(Default)]
struct ConsoleCounts {
    acknowledged: usize,
    refused: usize,
    checks: usize,
    downloads: usize,
}

struct ConsoleModel {
    requests: Vec<ConsoleRequest>,
    counts: ConsoleCounts,
}

fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----ren3crashloop";
    let mut body = Vec::new();
    for (name, value) in fields {
        let disposition = if *name == "file" {
            "form-data; name=\"file\"; filename=\"request.txt\"\r\nContent-Type: text/plain"
                .to_owned()
        } else {
            format!("form-data; name=\"{name}\"")
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A form as a browser sends it: urlencoded, or multipart with its
/// content type (the boundary).
enum Form<'a> {
    Urlencoded(Vec<(&'a str, &'a str)>),
    Multipart(String, Vec<u8>),
}

/// One answer of the console: status, `Location`, page. `None` when the
/// process died before it answered.
fn console_call(
    agent: &ureq::Agent,
    base: &str,
    session: &ConsoleSession,
    path: &str,
    form: Option<Form<'_>>,
) -> Option<(u16, String, String)> {
    let url = format!("{base}{path}");
    let response = match form {
        None => agent.get(&url).header("cookie", &session.cookie).call(),
        Some(Form::Urlencoded(fields)) => agent
            .post(&url)
            .header("cookie", &session.cookie)
            .send_form(fields.iter().copied()),
        Some(Form::Multipart(content_type, body)) => agent
            .post(&url)
            .header("cookie", &session.cookie)
            .header("content-type", content_type)
            .send(body),
    };
    let mut response = response.ok()?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if status == 303 {
        // The answer is decided once the status line arrived.
        return Some((status, location, String::new()));
    }
    let page = response.body_mut().read_to_string().ok()?;
    Some((status, location, page))
}

impl ConsoleModel {
    fn choose(&mut self, run: &IssuerRun, rng: &mut StdRng) -> ConsoleOp {
        let acknowledged: Vec<usize> = (0..self.requests.len())
            .filter(|&i| self.requests[i].acknowledged)
            .collect();
        let roll = rng.random_range(0..20);
        if roll < 3 && !acknowledged.is_empty() {
            let index = acknowledged[rng.random_range(0..acknowledged.len())];
            return ConsoleOp::Download { index };
        }
        let index = if roll < 7 && !self.requests.is_empty() {
            // A request sent before: answered with its payload if it was
            // issued, else checked again from scratch.
            rng.random_range(0..self.requests.len())
        } else {
            let token = run.new_request(rng);
            self.requests.push(ConsoleRequest {
                hash: request_hash(&token),
                token,
                acknowledged: false,
                downloaded: None,
                stored: false,
            });
            self.requests.len() - 1
        };
        if rng.random_bool(0.3) {
            ConsoleOp::CheckThenConfirm {
                index,
                upload: rng.random_bool(0.5),
            }
        } else {
            ConsoleOp::Confirm {
                index,
                wrapped: rng.random_bool(0.2),
            }
        }
    }

    /// Runs `op`, checking every answer; `false` when the process died
    /// before it answered.
    fn run(
        &mut self,
        op: ConsoleOp,
        agent: &ureq::Agent,
        base: &str,
        session: &ConsoleSession,
    ) -> bool {
        match op {
            ConsoleOp::Download { index } => self.download(index, agent, base, session),
            ConsoleOp::Confirm { index, wrapped } => {
                self.confirm(index, wrapped, None, agent, base, session)
            }
            ConsoleOp::CheckThenConfirm { index, upload } => {
                let token = self.requests[index].token.clone();
                let field = if upload { "file" } else { "request" };
                let (content_type, body) = multipart(&[("csrf", &session.csrf), (field, &token)]);
                let Some((status, _, page)) = console_call(
                    agent,
                    base,
                    session,
                    "/issue/check",
                    Some(Form::Multipart(content_type, body)),
                ) else {
                    return false;
                };
                self.counts.checks += 1;
                assert!(
                    status == 200 || status == 422,
                    "the check step answered {status}: {page}"
                );
                let request_id = ren3_shared::VerifiedRequest::open(&token)
                    .unwrap()
                    .request
                    .request_id
                    .to_string();
                assert!(
                    page.contains("verdict") && page.contains(&request_id),
                    "no check report of this request: {page}"
                );
                self.confirm(index, false, Some(status == 200), agent, base, session)
            }
        }
    }

    /// The confirm step. `check_passed`: what the check step just said,
    /// which the real issuance must agree with.
    fn confirm(
        &mut self,
        index: usize,
        wrapped: bool,
        check_passed: Option<bool>,
        agent: &ureq::Agent,
        base: &str,
        session: &ConsoleSession,
    ) -> bool {
        let request = &self.requests[index];
        let text = if wrapped {
            ren3_tests::wrap_like_a_mail_client(&request.token, 76)
        } else {
            request.token.clone()
        };
        let form = Form::Urlencoded(vec![("csrf", &session.csrf), ("request", &text)]);
        let Some((status, location, page)) =
            console_call(agent, base, session, "/issue", Some(form))
        else {
            return false;
        };
        let request = &mut self.requests[index];
        match status {
            303 => {
                assert_eq!(
                    location,
                    format!("/payloads/{}", request.hash),
                    "an issuance answered with another request's payload"
                );
                assert_ne!(
                    check_passed,
                    Some(false),
                    "the check refused what was issued"
                );
                request.acknowledged = true;
                self.counts.acknowledged += 1;
            }
            422 => {
                assert!(
                    ["(no_free_seat)", "(device_bound_to_other_installation)"]
                        .iter()
                        .any(|why| page.contains(why)),
                    "unexpected refusal: {page}"
                );
                assert!(
                    !request.acknowledged && !request.stored,
                    "a request issued before was refused: {page}"
                );
                assert_ne!(
                    check_passed,
                    Some(true),
                    "the check passed what was refused"
                );
                self.counts.refused += 1;
            }
            _ => panic!("the confirm step answered {status}: {page}"),
        }
        true
    }

    fn download(
        &mut self,
        index: usize,
        agent: &ureq::Agent,
        base: &str,
        session: &ConsoleSession,
    ) -> bool {
        let path = format!("/payloads/{}/download", self.requests[index].hash);
        let Some((status, _, page)) = console_call(agent, base, session, &path, None) else {
            return false;
        };
        assert_eq!(
            status, 200,
            "an acknowledged payload cannot be downloaded: {page}"
        );
        let payload = page.trim().to_owned();
        let (_, license, _, _) = ren3_shared::payload::decode_unverified(&payload).unwrap();
        let request = &mut self.requests[index];
        assert_eq!(license.request_hash.to_string(), request.hash);
        if let Some(before) = &request.downloaded {
            assert_eq!(&payload, before, "a payload changed");
        }
        request.downloaded = Some(payload);
        self.counts.downloads += 1;
        true
    }

    /// Every invariant of the console's issuances, against the store read
    /// directly, on top of [`IssuerRun::check_store`].
    fn check_store(&mut self, db: &Path, round: usize) {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let stored: HashMap<String, (String, String)> = conn
            .prepare("SELECT request_hash, request_id, payload FROM issuances")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Every issuance the console acknowledged is there, with the
        // payload it gave for download.
        for (i, request) in self.requests.iter_mut().enumerate() {
            match stored.get(&request.hash) {
                Some((_, payload)) => {
                    if let Some(downloaded) = &request.downloaded {
                        assert_eq!(downloaded, payload, "round {round}: request {i}");
                    }
                    request.stored = true;
                }
                None => assert!(
                    !request.acknowledged && !request.stored,
                    "round {round}: acknowledged request {i} is not in the store"
                ),
            }
        }
        // The audit row is written in the issuance's transaction: each
        // issuance has exactly one `ok` row recording it (issuer/src/
        // issuance.rs: "serial N for request ID, signed with key K"), and
        // every `ok` row, a repeated request's among them ("request ID was
        // answered before"), names an issuance that exists.
        let details: Vec<String> = conn
            .prepare("SELECT detail FROM audit WHERE action = 'issue' AND result = 'ok'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut recorded: HashMap<&str, usize> = HashMap::new();
        let issued: HashSet<&str> = stored.values().map(|(id, _)| id.as_str()).collect();
        for detail in &details {
            let (_, rest) = detail.split_once("request ").unwrap_or_else(|| {
                panic!("round {round}: an issue row without its request: {detail}")
            });
            let id = rest.split([',', ' ']).next().unwrap_or_default();
            assert!(
                issued.contains(id),
                "round {round}: an audited issuance is not in the store: {detail}"
            );
            if !detail.contains("answered before") {
                *recorded.entry(id).or_default() += 1;
            }
        }
        for id in &issued {
            assert_eq!(
                recorded.get(id),
                Some(&1),
                "round {round}: issuance of request {id} is not audited exactly once"
            );
        }
        conn.execute_batch("COMMIT").unwrap();
    }
}

#[test]
fn console_killed_during_issuance_keeps_every_acknowledged_payload_and_the_seat_limit() {
    let rounds = kill_rounds();
    let mut rng = ren3_tests::seeded_rng("console kill loop");
    let mut run = IssuerRun::new();
    run.issuer.add_user(CONSOLE_USER, CONSOLE_PASSWORD);
    let mut console = run.issuer.serve();
    let session = console.login(CONSOLE_USER, CONSOLE_PASSWORD);
    let agent = console_agent();
    let mut model = ConsoleModel {
        requests: Vec::new(),
        counts: ConsoleCounts::default(),
    };
    // How long one confirmed issuance takes here, so that the kills land
    // before, during and after its transaction.
    let mut durations = Vec::new();
    for _ in 0..3 {
        let token = run.new_request(&mut rng);
        model.requests.push(ConsoleRequest {
            hash: request_hash(&token),
            token,
            acknowledged: false,
            downloaded: None,
            stored: false,
        });
        let begun = Instant::now();
        let index = model.requests.len() - 1;
        assert!(model.confirm(index, false, None, &agent, &console.base, &session));
        durations.push(begun.elapsed());
    }
    durations.sort();
    let issuance = u64::try_from(durations[1].as_micros()).unwrap();
    let started = Instant::now();
    // Forms the kill interrupted: committed but unanswered, or not committed.
    let (mut committed_unanswered, mut not_committed) = (0, 0);
    for round in 0..rounds {
        let delay = kill_delay(&mut rng, issuance * 5);
        let mut op_rng = StdRng::seed_from_u64(rng.random());
        let base = console.base.clone();
        let in_flight = std::thread::scope(|scope| {
            let worker = scope.spawn(|| {
                let agent = console_agent();
                loop {
                    let op = model.choose(&run, &mut op_rng);
                    if !model.run(op, &agent, &base, &session) {
                        return op;
                    }
                }
            });
            std::thread::sleep(delay);
            console.kill();
            worker.join().unwrap()
        });
        console = run.issuer.serve();
        assert_eq!(sqlite_integrity(&run.db()), "ok", "round {round}");
        for request in &model.requests {
            if let Some(payload) = &request.downloaded
                && !run
                    .requests
                    .iter()
                    .any(|(token, _)| *token == request.token)
            {
                run.requests
                    .push((request.token.clone(), Some(payload.clone())));
            }
        }
        run.check_store(round);
        let interrupted = match in_flight {
            ConsoleOp::Confirm { index, .. } | ConsoleOp::CheckThenConfirm { index, .. } => {
                let request = &model.requests[index];
                (!request.acknowledged && !request.stored).then_some(index)
            }
            ConsoleOp::Download { .. } => None,
        };
        model.check_store(&run.db(), round);
        if let Some(index) = interrupted {
            if model.requests[index].stored {
                committed_unanswered += 1;
            } else {
                not_committed += 1;
            }
        }
    }
    // Each acknowledged request confirmed again gets the same payload.
    let acknowledged: Vec<usize> = (0..model.requests.len())
        .filter(|&i| model.requests[i].acknowledged)
        .collect();
    for &index in acknowledged.iter().take(40) {
        assert!(model.confirm(index, false, None, &agent, &console.base, &session));
        assert!(model.download(index, &agent, &console.base, &session));
    }
    model.check_store(&run.db(), rounds);
    let counts = &model.counts;
    eprintln!(
        "console kill loop: {rounds} rounds, {} issuances acknowledged ({} requests issued), \
         {} refused, {} check steps, {} downloads; a kill interrupted {} forms of new \
         requests, {committed_unanswered} of them committed but unanswered (one issuance \
         takes {issuance} µs), in {:.1?}",
        counts.acknowledged,
        model.requests.iter().filter(|r| r.stored).count(),
        counts.refused,
        counts.checks,
        counts.downloads,
        committed_unanswered + not_committed,
        started.elapsed()
    );
    assert!(
        counts.acknowledged >= rounds / 10 && committed_unanswered + not_committed >= rounds / 4,
        "the kills missed the issuances"
    );
}

// ---------------------------------------------------------------------------
// The full disk.

/// A size-limited tmpfs mounted on a temporary directory, unmounted on
/// drop (also when the test panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when this machine cannot mount one (not root, or no
    /// permission in this container).
    fn mount(size_kib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k,mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        matches!(status, Ok(s) if s.success()).then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes junk until the filesystem refuses another byte.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0xA5u8; 4096];
    loop {
        if let Err(e) = file.write_all(&block).and_then(|()| file.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC: {e}");
            break;
        }
    }
    // Whatever partial block still fits.
    for _ in 0..4096 {
        if file.write_all(&[0]).and_then(|()| file.sync_all()).is_err() {
            break;
        }
    }
}

#[test]
#[ignore = "needs root to mount a tmpfs: run with --ignored as root (.ci/run does)"]
fn a_full_disk_refuses_the_import_with_storage_error_and_keeps_the_license() {
    let Some(disk) = Tmpfs::mount(512) else {
        panic!("the full-disk test needs root, to mount a tmpfs: run it as root");
    };
    let store = disk.path().join("license.db");
    let key = fixture_text("license-key.txt");
    let client = Client::start_with(&[
        ("enable_offline_license", "true"),
        ("client_device_id", &fixture_text("device-id.txt")),
        ("license_db_path", store.to_str().unwrap()),
    ]);
    let first = test_only_payload(&client.register(&key), 1);
    assert_eq!(client.import(&key, &first).status, 200);
    let renewal = test_only_payload(&client.register(&key), 2);
    let before = client.get("/license").body;
    assert_eq!(before["license"]["serial"], 1, "{before}");

    let junk = disk.path().join("junk");
    fill(&junk);
    let answer = client.import(&key, &renewal);
    assert!(
        (500..600).contains(&answer.status),
        "an import on a full disk answered {}: {}",
        answer.status,
        answer.body
    );
    assert_eq!(answer.code(), "storage_error", "{}", answer.body);
    assert!(answer.content_type.starts_with("application/problem+json"));
    let during = client.get("/license").body;
    assert_eq!(during["state"], "active", "{during}");
    assert_eq!(during["licensed"], true, "{during}");
    assert_eq!(during, before, "the full disk changed the status");

    std::fs::remove_file(&junk).unwrap();
    assert_eq!(sqlite_integrity(&store), "ok");
    let store_after = ClientStoreSnapshot::read(&store);
    assert_eq!(store_after.active_token(), Some(first.as_str()));
    assert_eq!(
        store_after.pending_hashes.len(),
        1,
        "the renewal's request is still pending"
    );
    let answer = client.import(&key, &renewal);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let client = client.restart();
    assert_eq!(client.get("/license").body["license"]["serial"], 2);
    assert_eq!(sqlite_integrity(&store), "ok");
    drop(client);
    drop(disk);
}
