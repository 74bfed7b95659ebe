//! `backup` and `restore` through the real binary: the copy is private
//! and checked, a file is replaced only with `--force`, `--out-dir` names
//! backups by the time and removes only the oldest of them, a bad backup, an
//! existing store without `--force` and a store the console holds are
//! refused with the store untouched, and serials never go backwards after
//! a restore, even while payloads are issued during the backup.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ren3_issuer_core::backup::rotation;
use ren3_shared::{DeviceId, LicenseKey};
use serde_json::Value;

use crate::support::{Workdir, request_token, start_serving, stderr, stdout};

impl Workdir {
    /// `--json issue` of installation 1's request `counter` for `device`.
    fn renew(&self, key: &LicenseKey, device: &DeviceId, counter: u64) -> Value {
        let request = self.token_file("request", &request_token(key, device, 1, counter));
        self.json(&["issue", "--request", &request])
    }

    /// Everything in the store, the audit log included.
    fn dump(&self) -> String {
        ren3_testkit::dump_sqlite_except(&self.db(), &[])
    }
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A store with a license, a device and one payload.
fn issued() -> (Workdir, LicenseKey, DeviceId) {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 5);
    let device = w.add_device(&key);
    w.renew(&key, &device, 1);
    (w, key, device)
}

#[test]
fn backup_writes_a_checked_copy_owner_only_and_replaces_a_file_only_with_force() {
    let (w, _, _) = issued();
    // Under the usual umask, the backup is still its owner's alone.
    let out = w
        .command_with_umask("022", &["backup", "--out", "issuer.backup"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("backup "), "{line}");
    for says in [
        "integrity ok",
        "schema version",
        "licenses 1",
        "devices 1",
        "issuances 1",
    ] {
        assert!(line.contains(says), "{says}: {line}");
    }
    assert!(stderr(&out).contains("key directory"), "{}", stderr(&out));
    let file = w.path("issuer.backup");
    assert_eq!(mode(&file), 0o600);
    let bytes = fs::read(&file).unwrap();

    let err = w.fails(&["backup", "--out", "issuer.backup"]);
    assert!(
        err.contains("--force") && err.contains("[file_exists]"),
        "{err}"
    );
    assert_eq!(fs::read(&file).unwrap(), bytes);

    let made = w.json(&["backup", "--out", "issuer.backup", "--force"]);
    assert_eq!(made["integrity"], "ok");
    assert_eq!(
        made["counts"][2],
        serde_json::json!({"table": "issuances", "rows": 1})
    );
    assert_eq!(mode(&file), 0o600);
    let leftovers: Vec<_> = fs::read_dir(w.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn restore_refuses_a_damaged_or_truncated_backup_and_leaves_the_store() {
    let (w, key, device) = issued();
    w.ok(&["backup", "--out", "issuer.backup"]);
    w.renew(&key, &device, 2);
    let bytes = fs::read(w.path("issuer.backup")).unwrap();
    let page = (1..bytes.len() / 4096)
        .rev()
        .find(|p| bytes[p * 4096] == 0x0d)
        .unwrap();
    let mut damaged = bytes.clone();
    damaged[page * 4096..page * 4096 + 8].copy_from_slice(&[0x42; 8]);
    let cases = [
        (
            "1. truncated",
            w.file("truncated.backup", &bytes[..bytes.len() / 2]),
        ),
        ("2. damaged", w.file("damaged.backup", &damaged)),
        (
            "3. not a database",
            w.file("mail.txt", b"REN3P2-not-a-backup\n"),
        ),
        ("4. empty", w.file("empty.backup", b"")),
    ];
    let before = w.dump();
    for (name, file) in cases {
        let err = w.fails(&["restore", &file, "--force"]);
        assert!(err.contains("[backup_invalid]"), "{name}: {err}");
        assert!(err.contains("nothing was changed"), "{name}: {err}");
        assert!(err.contains("use another backup file"), "{name}: {err}");
        assert_eq!(w.dump(), before, "{name}");
    }
}

#[test]
fn restore_refuses_an_existing_store_without_force_and_while_the_console_runs() {
    let (w, _, _) = issued();
    w.ok(&["backup", "--out", "issuer.backup"]);
    let before = w.dump();

    let err = w.fails(&["restore", "issuer.backup"]);
    assert!(
        err.contains("[store_exists]") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(w.dump(), before);

    let (mut serve, line) = start_serving(w.command(&["serve", "--listen", "127.0.0.1:0"]));
    let out = w.run(&["restore", "issuer.backup", "--force"]);
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(line.starts_with("listening on "), "serve: {line:?}");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("[store_in_use]") && err.contains("stop it"),
        "{err}"
    );
    assert_eq!(w.dump(), before);
}

#[test]
fn restore_brings_back_the_backup_and_records_it_in_the_verified_audit_log() {
    let (w, key, device) = issued();
    w.ok(&["backup", "--out", "issuer.backup"]);
    let at_backup = w.dump_without_audit();
    w.renew(&key, &device, 2);
    w.add_device(&key);
    assert_ne!(w.dump_without_audit(), at_backup);

    let out = w.run(&["restore", "issuer.backup", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("restored ") && line.contains("integrity ok"),
        "{line}"
    );
    assert!(stderr(&out).contains("store.restore"), "{}", stderr(&out));
    assert_eq!(w.dump_without_audit(), at_backup);
    assert_eq!(mode(&w.db()), 0o600);

    let rows = w.json(&["audit", "list", "--what", "store.restore"]);
    assert_eq!(rows["entries"].as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows["entries"][0]["result"], "ok");
    assert!(w.ok(&["audit", "verify"]).starts_with("verified"));
}

/// Issue 18's test through the binary: `issue` runs in a loop for new
/// requests of one installation while `backup` runs; the restored store
/// holds every payload acknowledged before the backup began, and the
/// installation, which imported a payload issued after the backup, is
/// given a higher serial than that one.
#[test]
fn a_backup_during_issuance_keeps_every_acknowledged_payload_and_serials_never_go_back() {
    let (w, key, device) = issued();
    let w = Arc::new(w);
    // (serial, payload) of each `issue` that exited 0, in order.
    let acknowledged: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let issuer = {
        let (w, key, device) = (Arc::clone(&w), key.clone(), device.clone());
        let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut counter = 2;
            while !stop.load(Ordering::SeqCst) {
                let issued = w.renew(&key, &device, counter);
                counter += 1;
                acknowledged.lock().unwrap().push((
                    issued["serial"].as_u64().unwrap(),
                    issued["payload"].as_str().unwrap().to_owned(),
                ));
            }
        })
    };
    let wait_for = |count: usize| {
        while acknowledged.lock().unwrap().len() < count {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(3);
    let before = acknowledged.lock().unwrap().clone();
    let made = w.json(&["backup", "--out", "issuer.backup"]);
    let after_backup = acknowledged.lock().unwrap().len();
    wait_for(after_backup + 2);
    stop.store(true, Ordering::SeqCst);
    issuer.join().unwrap();
    let all = acknowledged.lock().unwrap().clone();
    let (held_serial, held_payload) = all.last().unwrap().clone();
    let kept = made["counts"][2]["rows"].as_u64().unwrap() as usize;
    assert!(kept > before.len(), "{made}");
    assert!(kept <= all.len(), "{made}");

    w.ok(&["restore", "issuer.backup", "--force"]);
    let issuances = w.show(&key)["issuances"].as_array().unwrap().clone();
    let stored: Vec<&str> = issuances
        .iter()
        .map(|i| i["payload"].as_str().unwrap())
        .collect();
    for (n, (serial, payload)) in before.iter().enumerate() {
        assert!(
            stored.contains(&payload.as_str()),
            "payload {n} (serial {serial}) was acknowledged before the backup began"
        );
    }
    assert!(
        !stored.contains(&held_payload.as_str()),
        "issued after the backup"
    );

    let next = w.renew(&key, &device, 1000);
    let next_serial = next["serial"].as_u64().unwrap();
    assert!(
        next_serial > held_serial,
        "serial {next_serial} after the restore; the client holds {held_serial}"
    );
}

/// The backups in `dir` (files named as `--out-dir` names them), sorted.
fn backups_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| rotation::taken_at(std::ffi::OsStr::new(name)).is_some())
        .filter(|name| dir.join(name).is_file())
        .collect();
    names.sort();
    names
}

/// `ren3-issuer-<stamp>.db` for `at` seconds after the Unix epoch.
fn backup_name(at: i64) -> String {
    rotation::file_name(at).unwrap()
}

fn now() -> i64 {
    ren3_shared::timestamp::now()
}

#[test]
fn backup_out_dir_makes_the_directory_0700_and_a_0600_file_named_by_the_utc_time() {
    let (w, _, _) = issued();
    let before = now();
    let out = w
        .command_with_umask("022", &["backup", "--out-dir", "backups/daily"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let after = now();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = w.path("backups/daily");
    assert_eq!(mode(&w.path("backups")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let names = backups_in(&dir);
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "a temporary file left"
    );
    let at = rotation::taken_at(std::ffi::OsStr::new(&names[0])).unwrap();
    assert!(
        (before..=after).contains(&at),
        "{} at {before}..{after}",
        names[0]
    );
    let file = dir.join(&names[0]);
    assert_eq!(mode(&file), 0o600);

    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(&format!("backup backups/daily/{}: ", names[0]))
            && line.contains("integrity ok")
            && line.contains("issuances 1"),
        "{line}"
    );
    let note = stderr(&out);
    assert!(
        note.contains("holds 1 backup;") && note.contains("key directory"),
        "{note}"
    );
    w.ok(&["restore", file.to_str().unwrap(), "--force"]);
}

#[test]
fn backup_keep_removes_the_oldest_backups_beyond_n_and_nothing_else() {
    let (w, _, _) = issued();
    let dir = w.path("backups");
    fs::create_dir(&dir).unwrap();
    // Day 1 to day 4 of 2020, written newest first: the times in the
    // names order them, not the files' modification times.
    let old: Vec<String> = (0..4)
        .map(|d| backup_name(1_577_836_800 + d * 86_400))
        .collect();
    for name in old.iter().rev() {
        fs::write(dir.join(name), b"old").unwrap();
    }
    let others = [
        format!("{}.tmp", old[0]),
        format!("x-{}", old[0]),
        "ren3-issuer-keys-20200101T000000Z.tar".to_owned(),
        "notes.txt".to_owned(),
    ];
    for name in &others {
        fs::write(dir.join(name), b"not a backup").unwrap();
    }
    fs::create_dir(dir.join(backup_name(1_500_000_000))).unwrap();

    let out = w.run(&["backup", "--out-dir", "backups", "--keep", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with("backup backups/ren3-issuer-"),
        "{lines:?}"
    );
    for (line, name) in lines[1..].iter().zip(&old) {
        assert_eq!(*line, format!("pruned backups/{name}"));
    }
    assert!(stderr(&out).contains("holds 2 backups"), "{}", stderr(&out));
    let left = backups_in(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0], old[3]);
    for name in &others {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"not a backup", "{name}");
    }
    assert!(dir.join(backup_name(1_500_000_000)).is_dir());

    // --json: the backup's checks, what was removed and what is left. The
    // first backup may have been this second's: it goes first.
    fs::remove_file(dir.join(&left[1])).unwrap();
    let made = w.json(&["backup", "--out-dir", "backups", "--keep", "1"]);
    assert_eq!(made["integrity"], "ok", "{made}");
    assert_eq!(made["kept"], 1, "{made}");
    assert_eq!(
        made["pruned"],
        serde_json::json!([format!("backups/{}", old[3])])
    );
    let left = backups_in(&dir);
    assert_eq!(made["file"], format!("backups/{}", left[0]), "{made}");
}

#[test]
fn backup_out_dir_refuses_a_second_backup_in_the_same_second_and_removes_nothing() {
    let (w, _, _) = issued();
    let dir = w.path("backups");
    fs::create_dir(&dir).unwrap();
    // A backup for each of the next minute's seconds, as if taken already.
    let start = now();
    for at in start..start + 60 {
        fs::write(dir.join(backup_name(at)), b"taken").unwrap();
    }
    let before = backups_in(&dir);
    let err = w.fails(&["backup", "--out-dir", "backups", "--keep", "1"]);
    assert!(
        err.contains("one second") && err.contains("[file_exists]"),
        "{err}"
    );
    assert_eq!(backups_in(&dir), before);
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        60,
        "a temporary file left"
    );
    for name in &before {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"taken", "{name}");
    }
}

#[test]
fn backup_out_and_out_dir_together_or_neither_is_a_usage_error() {
    let (w, _, _) = issued();
    let cases: &[(&str, &[&str])] = &[
        ("1. both", &["backup", "--out", "f.db", "--out-dir", "d"]),
        ("2. neither", &["backup"]),
        (
            "3. --keep without --out-dir",
            &["backup", "--out", "f.db", "--keep", "2"],
        ),
        ("4. --keep 0", &["backup", "--out-dir", "d", "--keep", "0"]),
        (
            "5. --keep not a number",
            &["backup", "--out-dir", "d", "--keep", "all"],
        ),
        (
            "6. --force with --out-dir",
            &["backup", "--out-dir", "d", "--force"],
        ),
    ];
    for (case, args) in cases {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(2), "{case}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{case}");
        assert!(!w.path("f.db").exists() && !w.path("d").exists(), "{case}");
    }
}
