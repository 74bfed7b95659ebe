//! A model-based property of the seats (issue 14): under any sequence of
//! registrations, issuances, lost mail, imports, deactivations, releases
//! of fresh, kept-back and replayed receipts, forced releases and new
//! installations on a device id, the issuer library answers what a
//! reference model predicts, and the world it leaves never has more
//! installations licensed than the license has seats.
//!
//! The world is a license with one or two seats, one device id more than
//! seats, and two to five installations. An installation behaves as the
//! client does: one sequence number for everything it signs; a payload is
//! imported only for a request it still waits for, under its current key;
//! deactivating needs an installed license, forgets every request it waits
//! for, and signs a receipt. Then it either takes a new device key (as the
//! client will) or keeps its key (as today's client does): only a kept key
//! can sign a request after its receipt, the one way a client makes a
//! receipt stale.
//!
//! After every operation:
//! - (a) the installations holding an installed payload whose seat was not
//!   forced free are never more than the seats;
//! - the store's bindings are the model's, and a refusal changed nothing
//!   of the license (a refused release is audited with its code);
//! - every answer (ok, with its serial, or a refusal code) is the model's,
//!   and `releases::check` agrees with `releases::release`;
//! - (b) an honest receipt (its installation's latest, signed after that
//!   key's last request, sent for the first time, its seat not forced free
//!   since) is never refused.
//!
//! The world follows what the issuer answered, not what the model
//! predicted, so (a) holds the issuer to account on its own.
//!
//! 64 cases by default; `PROPTEST_CASES=2000 cargo test -p ren3-issuer-core
//! --test seats` runs more.

// clippy's allow-unwrap-in-tests covers `#[test]` functions only, not the
// helpers they share here.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ren3_issuer_core::audit::{self, Actor};
use ren3_issuer_core::{
    Coded as _, InitOptions, KeyStore, LicenseDetails, NewLicense, Store, StorePaths, devices,
    issuance, licenses, releases, setup,
};
use ren3_shared::{
    DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product, PublicKey, ReleaseReceipt, binary,
};

const NOW: i64 = 1_800_000_000;
/// The test root's seed, which is public: it guards nothing.
const ROOT_SEED: [u8; 32] = [42; 32];
const MAX_INSTALLATIONS: usize = 5;

#[derive(Debug, Clone, Copy)]
enum Op {
    /// An installation (`pick` counts from the one that acted last) signs
    /// a license request with its next counter.
    Register {
        pick: usize,
    },
    /// The vendor answers a request (`pick` counts from the newest): one
    /// not answered yet, or with `again` any one ever made, so also one
    /// answered before.
    Issue {
        pick: usize,
        again: bool,
    },
    /// A payload in the mail never arrives.
    LoseMail {
        pick: usize,
    },
    /// A payload in the mail reaches the installation that asked for it.
    Import {
        pick: usize,
    },
    /// A licensed installation (`pick` counts from the one that acted
    /// last) deactivates, and then takes a new device key or keeps its own.
    Deactivate {
        pick: usize,
        new_key: bool,
    },
    /// The vendor receives a receipt (`pick` counts from the newest):
    /// fresh, kept back, or sent again.
    Release {
        pick: usize,
    },
    ForceRelease {
        device: usize,
    },
    /// Another machine configured with an existing device id.
    NewInstallation {
        device: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let pick = || prop_oneof![3 => 0usize..2, 1 => 0usize..8];
    prop_oneof![
        5 => pick().prop_map(|pick| Op::Register { pick }),
        6 => pick().prop_map(|pick| Op::Issue { pick, again: false }),
        1 => pick().prop_map(|pick| Op::Issue { pick, again: true }),
        1 => pick().prop_map(|pick| Op::LoseMail { pick }),
        5 => pick().prop_map(|pick| Op::Import { pick }),
        4 => (pick(), any::<bool>()).prop_map(|(pick, new_key)| Op::Deactivate { pick, new_key }),
        3 => pick().prop_map(|pick| Op::Release { pick }),
        1 => (0usize..3).prop_map(|device| Op::ForceRelease { device }),
        1 => (0usize..3).prop_map(|device| Op::NewInstallation { device }),
    ]
}

/// The default case count, unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn seats_never_hold_more_installations_than_the_license_allows(
        max_devices in 1u32..=2,
        installations in 2usize..=3,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut world = World::new(max_devices, installations);
        for (step, op) in ops.iter().enumerate() {
            world
                .apply(*op)
                .and_then(|()| world.check_invariants())
                .map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
        }
    }
}

// ---- the world: installations, the mail, and the vendor's store

struct Installation {
    device: usize,
    key: DeviceKey,
    /// The last sequence number it used, across its device keys.
    counter: u64,
    /// The requests it signed with its current key and waits for.
    waiting: BTreeSet<usize>,
    installed: Option<Installed>,
    /// Its latest receipt.
    last_receipt: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Installed {
    serial: u64,
    /// The binding the payload was issued under.
    binding: u64,
}

struct Request {
    token: String,
    installation: usize,
    device: usize,
    key: PublicKey,
    counter: u64,
}

struct Receipt {
    token: String,
    installation: usize,
    device: usize,
    key: PublicKey,
    counter: u64,
    serial: u64,
    /// The binding of the payload it gives back.
    binding: u64,
    sent: bool,
}

/// A payload on its way to the installation that asked for it.
struct Mail {
    request: usize,
    payload: Installed,
}

/// The vendor's side as the model expects it.
#[derive(Default)]
struct Vendor {
    /// Per device: the installation key it is bound to, and the binding's
    /// number (each binding of a seat gets a new one).
    bound: Vec<Option<(PublicKey, u64)>>,
    bindings: u64,
    /// Per request answered: its payload.
    answered: HashMap<usize, Installed>,
    /// Per device: its highest serial.
    serials: Vec<u64>,
    /// Per device and serial: the installation it was issued to.
    issued_to: HashMap<(usize, u64), PublicKey>,
    /// Per device and installation: the highest counter among the requests
    /// answered with a new payload.
    answered_counter: HashMap<(usize, PublicKey), u64>,
    /// Per installation key: the highest receipt counter accepted.
    accepted: HashMap<PublicKey, u64>,
    /// The bindings forced free.
    forced: BTreeSet<u64>,
}

/// What an issuance answered, or is predicted to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    New { serial: u64 },
    Repeated { serial: u64 },
    Refused(&'static str),
}

struct World {
    _temp: tempfile::TempDir,
    store: Store,
    keys: KeyStore,
    license: LicenseKey,
    max_devices: u32,
    devices: Vec<DeviceId>,
    installations: Vec<Installation>,
    /// The installations, the one that acted last first: an installation
    /// that just registered or imported is likely to act again.
    by_activity: Vec<usize>,
    /// Seeds of device keys handed out so far.
    device_keys: u8,
    requests: Vec<Request>,
    receipts: Vec<Receipt>,
    mail: Vec<Mail>,
    vendor: Vendor,
}

fn actor() -> Actor {
    Actor::console("model")
}

impl World {
    /// A fresh store with a license of `max_devices` seats, one device id
    /// more than that, and `installations` installations spread over them.
    fn new(max_devices: u32, installations: usize) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let paths = StorePaths::new(temp.path().join("issuer.db"), None);
        let root_dir = temp.path().join("root");
        place_root(&root_dir);
        setup::init(&paths, &InitOptions::new(root_dir), &Actor::cli(), NOW).unwrap();
        let mut store = setup::open_store(&paths).unwrap();
        let keys = setup::open_keys(&paths).unwrap();
        let license = licenses::create(
            &mut store,
            &actor(),
            &NewLicense {
                customer: "ACME GmbH".into(),
                max_devices,
                ..NewLicense::default()
            },
            NOW,
        )
        .unwrap()
        .key;
        let device_count = max_devices as usize + 1;
        let devices = (0..device_count)
            .map(|_| {
                devices::add(&mut store, &actor(), &license, None, NOW)
                    .unwrap()
                    .device
                    .client_device_id
            })
            .collect();
        let mut world = Self {
            _temp: temp,
            store,
            keys,
            license,
            max_devices,
            devices,
            installations: Vec::new(),
            by_activity: Vec::new(),
            device_keys: 0,
            requests: Vec::new(),
            receipts: Vec::new(),
            mail: Vec::new(),
            vendor: Vendor {
                bound: vec![None; device_count],
                serials: vec![0; device_count],
                ..Vendor::default()
            },
        };
        for n in 0..installations {
            world.add_installation(n % device_count);
        }
        world
    }

    fn new_device_key(&mut self) -> DeviceKey {
        self.device_keys += 1;
        DeviceKey::from_seed(&[self.device_keys; 32])
    }

    fn add_installation(&mut self, device: usize) {
        let key = self.new_device_key();
        self.installations.push(Installation {
            device,
            key,
            counter: 0,
            waiting: BTreeSet::new(),
            installed: None,
            last_receipt: None,
        });
        self.by_activity.insert(0, self.installations.len() - 1);
    }

    /// The installation `pick` places from the one that acted last; it is
    /// now the one that acted last.
    fn recent(&mut self, pick: usize) -> usize {
        let index = self.by_activity[pick % self.by_activity.len()];
        self.touch(index);
        index
    }

    fn touch(&mut self, index: usize) {
        self.by_activity.retain(|&i| i != index);
        self.by_activity.insert(0, index);
    }

    fn details(&self) -> LicenseDetails {
        licenses::show(&self.store, &self.license).unwrap()
    }

    fn apply(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Register { pick } => {
                let index = self.recent(pick);
                self.register(index);
                Ok(())
            }
            Op::Issue { pick, again } => {
                let candidates: Vec<usize> = (0..self.requests.len())
                    .filter(|r| again || !self.vendor.answered.contains_key(r))
                    .collect();
                match newest(candidates.len(), pick) {
                    Some(n) => self.issue(candidates[n]),
                    None => Ok(()),
                }
            }
            Op::LoseMail { pick } => {
                if let Some(index) = newest(self.mail.len(), pick) {
                    self.mail.remove(index);
                }
                Ok(())
            }
            Op::Import { pick } => {
                if let Some(index) = newest(self.mail.len(), pick) {
                    let mail = self.mail.remove(index);
                    self.import(&mail);
                }
                Ok(())
            }
            Op::Deactivate { pick, new_key } => {
                let licensed: Vec<usize> = (self.by_activity.iter().copied())
                    .filter(|&i| self.installations[i].installed.is_some())
                    .collect();
                if !licensed.is_empty() {
                    let index = licensed[pick % licensed.len()];
                    self.touch(index);
                    self.deactivate(index, new_key);
                }
                Ok(())
            }
            Op::Release { pick } => match newest(self.receipts.len(), pick) {
                Some(receipt) => self.release(receipt),
                None => Ok(()),
            },
            Op::ForceRelease { device } => self.force_release(device % self.devices.len()),
            Op::NewInstallation { device } => {
                if self.installations.len() < MAX_INSTALLATIONS {
                    self.add_installation(device % self.devices.len());
                }
                Ok(())
            }
        }
    }

    // ---- the installations (the client's side, modelled)

    fn register(&mut self, index: usize) {
        let product = Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        };
        let installation = &mut self.installations[index];
        installation.counter += 1;
        let device = installation.device;
        let token = LicenseRequest::new(self.devices[device].clone(), &self.license, product, NOW)
            .unwrap()
            .with_counter(installation.counter)
            .sign(&installation.key)
            .unwrap()
            .token();
        installation.waiting.insert(self.requests.len());
        self.requests.push(Request {
            token,
            installation: index,
            device,
            key: installation.key.public_key(),
            counter: installation.counter,
        });
    }

    /// The client imports a payload for a request it still waits for, and
    /// not one older than its license.
    fn import(&mut self, mail: &Mail) {
        let index = self.requests[mail.request].installation;
        self.touch(index);
        let installation = &mut self.installations[index];
        let newer = installation
            .installed
            .is_none_or(|installed| installed.serial < mail.payload.serial);
        if installation.waiting.contains(&mail.request) && newer {
            installation.waiting.remove(&mail.request);
            installation.installed = Some(mail.payload);
        }
    }

    fn deactivate(&mut self, index: usize, new_key: bool) {
        let Some(installed) = self.installations[index].installed else {
            return; // the client refuses: no active license
        };
        let replacement = new_key.then(|| self.new_device_key());
        let installation = &mut self.installations[index];
        installation.counter += 1;
        let token = ReleaseReceipt {
            released_at: NOW,
            client_device_id: self.devices[installation.device].clone(),
            license_key_fingerprint: self.license.fingerprint(),
            serial: installed.serial,
            counter: installation.counter,
        }
        .sign(&installation.key)
        .unwrap()
        .token();
        self.receipts.push(Receipt {
            token,
            installation: index,
            device: installation.device,
            key: installation.key.public_key(),
            counter: installation.counter,
            serial: installed.serial,
            binding: installed.binding,
            sent: false,
        });
        installation.installed = None;
        installation.waiting.clear();
        installation.last_receipt = Some(self.receipts.len() - 1);
        if let Some(key) = replacement {
            installation.key = key;
        }
    }

    // ---- the vendor (the system under test, against the model)

    fn predict_issue(&self, index: usize) -> Answer {
        let request = &self.requests[index];
        let vendor = &self.vendor;
        if let Some(payload) = vendor.answered.get(&index) {
            return Answer::Repeated {
                serial: payload.serial,
            };
        }
        // The serial rule (docs/FORMAT.md §5): one more than the device's
        // last, and at least the issuance time in microseconds.
        let next = Answer::New {
            serial: (vendor.serials[request.device] + 1).max(NOW as u64 * 1_000_000),
        };
        match vendor.bound[request.device] {
            Some((key, _)) if key != request.key => {
                Answer::Refused("device_bound_to_other_installation")
            }
            Some(_) => next,
            None if self.bound_seats() >= self.max_devices as usize => {
                Answer::Refused("no_free_seat")
            }
            None => next,
        }
    }

    fn bound_seats(&self) -> usize {
        self.vendor.bound.iter().flatten().count()
    }

    fn issue(&mut self, index: usize) -> Result<(), String> {
        let expected = self.predict_issue(index);
        let before = self.details();
        let result = issuance::issue(
            &mut self.store,
            &self.keys,
            &actor(),
            &self.requests[index].token,
            NOW,
        );
        let answer = match &result {
            Ok(issued) if issued.repeated => Answer::Repeated {
                serial: issued.payload.license.serial,
            },
            Ok(issued) => Answer::New {
                serial: issued.payload.license.serial,
            },
            Err(e) => Answer::Refused(e.code()),
        };
        let request = &self.requests[index];
        let (device, key, counter) = (request.device, request.key, request.counter);
        let vendor = &mut self.vendor;
        match answer {
            Answer::Refused(_) => {
                if self.details() != before {
                    return Err(format!("the refusal {answer:?} changed the license"));
                }
            }
            Answer::Repeated { .. } => {
                let payload = vendor.answered[&index];
                self.mail.push(Mail {
                    request: index,
                    payload,
                });
            }
            Answer::New { serial } => {
                let binding = match vendor.bound[device] {
                    Some((_, binding)) => binding,
                    None => {
                        vendor.bindings += 1;
                        vendor.bound[device] = Some((key, vendor.bindings));
                        vendor.bindings
                    }
                };
                let payload = Installed { serial, binding };
                vendor.answered.insert(index, payload);
                vendor.serials[device] = serial;
                vendor.issued_to.insert((device, serial), key);
                let highest = vendor.answered_counter.entry((device, key)).or_default();
                *highest = (*highest).max(counter);
                self.mail.push(Mail {
                    request: index,
                    payload,
                });
            }
        }
        if answer != expected {
            return Err(format!(
                "issued {answer:?}, the model expected {expected:?}"
            ));
        }
        Ok(())
    }

    fn predict_release(&self, receipt: &Receipt) -> Result<(), &'static str> {
        let vendor = &self.vendor;
        if vendor
            .accepted
            .get(&receipt.key)
            .is_some_and(|&last| receipt.counter <= last)
        {
            return Err("receipt_replayed");
        }
        match vendor.bound[receipt.device] {
            None => return Err("device_not_bound"),
            Some((key, _)) if key != receipt.key => return Err("receipt_wrong_device"),
            Some(_) => {}
        }
        if vendor
            .answered_counter
            .get(&(receipt.device, receipt.key))
            .is_some_and(|&answered| receipt.counter <= answered)
        {
            return Err("receipt_stale");
        }
        if vendor.issued_to.get(&(receipt.device, receipt.serial)) != Some(&receipt.key) {
            return Err("receipt_serial_unknown");
        }
        Ok(())
    }

    /// The latest receipt of its installation, signed after that key's
    /// last request, never sent before, its seat not forced free since.
    fn is_honest(&self, index: usize) -> bool {
        let receipt = &self.receipts[index];
        !receipt.sent
            && self.installations[receipt.installation].last_receipt == Some(index)
            && !self
                .requests
                .iter()
                .any(|r| r.key == receipt.key && r.counter > receipt.counter)
            && self.vendor.bound[receipt.device] == Some((receipt.key, receipt.binding))
    }

    fn release(&mut self, index: usize) -> Result<(), String> {
        let receipt = &self.receipts[index];
        let expected = self.predict_release(receipt);
        let honest = self.is_honest(index);
        let checked = releases::check(&self.store, &receipt.token).map_err(|e| e.code());
        let before = self.details();
        let answer = releases::release(&mut self.store, &actor(), &receipt.token, NOW)
            .map(drop)
            .map_err(|e| e.code());
        let (device, key, counter) = (receipt.device, receipt.key, receipt.counter);
        self.receipts[index].sent = true;
        match answer {
            Ok(()) => {
                self.vendor.bound[device] = None;
                self.vendor.accepted.insert(key, counter);
            }
            Err(code) => {
                if self.details() != before {
                    return Err(format!("the refusal {code} changed the license"));
                }
                let newest = &audit::page(&self.store, &audit::Filter::default(), 1)
                    .unwrap()
                    .entries[0];
                if newest.action != "device.release"
                    || newest.result != "refused"
                    || !newest.detail.starts_with(&format!("{code}: "))
                {
                    return Err(format!("the refusal {code} was not audited: {newest:?}"));
                }
            }
        }
        if honest && answer.is_err() {
            return Err(format!("(b) an honest receipt was refused: {answer:?}"));
        }
        if checked != answer {
            return Err(format!("check said {checked:?}, release {answer:?}"));
        }
        if answer != expected {
            return Err(format!(
                "released {answer:?}, the model expected {expected:?}"
            ));
        }
        Ok(())
    }

    fn force_release(&mut self, device: usize) -> Result<(), String> {
        let expected = match self.vendor.bound[device] {
            None => Err("device_not_bound"),
            Some(_) => Ok(()),
        };
        let answer = releases::force_release(
            &mut self.store,
            &actor(),
            &self.devices[device],
            "machine lost",
            NOW,
        )
        .map(drop)
        .map_err(|e| e.code());
        if answer.is_ok()
            && let Some((_, binding)) = self.vendor.bound[device].take()
        {
            self.vendor.forced.insert(binding);
        }
        if answer != expected {
            return Err(format!(
                "forced {answer:?}, the model expected {expected:?}"
            ));
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), String> {
        let licensed = self
            .installations
            .iter()
            .filter_map(|i| i.installed)
            .filter(|payload| !self.vendor.forced.contains(&payload.binding))
            .count();
        if licensed > self.max_devices as usize {
            return Err(format!(
                "(a) {licensed} installations hold a payload whose seat was not forced free, \
                 for {} seats",
                self.max_devices
            ));
        }
        let details = self.details();
        for (n, device) in self.devices.iter().enumerate() {
            let stored = details
                .devices
                .iter()
                .find(|d| &d.client_device_id == device)
                .and_then(|d| d.public_key);
            let modelled = self.vendor.bound[n].map(|(key, _)| key);
            if stored != modelled {
                return Err(format!(
                    "device {n} is bound to {stored:?} in the store, {modelled:?} in the model"
                ));
            }
        }
        Ok(())
    }
}

/// The index `pick` places from the newest of `len` items, if any.
fn newest(len: usize, pick: usize) -> Option<usize> {
    (len > 0).then(|| len - 1 - pick % len)
}

/// Places the test root, plain, for `init` to adopt: no passphrase, no
/// key derivation.
fn place_root(dir: &std::path::Path) {
    fs::DirBuilder::new().mode(0o700).create(dir).unwrap();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(ren3_issuer_core::root::ROOT_KEY_FILE))
        .unwrap();
    writeln!(
        file,
        "# TEST-ONLY root\nren3-root-key-seed-v1: {}",
        binary::encode(&ROOT_SEED)
    )
    .unwrap();
}
