//! Backups and restores: the copies are whole, checked and private, and
//! every refusal leaves the store, its files and the destination as they
//! were.
//!
//! One file, over the usual size: the scenarios share the stores, dumps
//! and damaged copies they are built from, and read as one list of what a
//! backup and a restore must never do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ren3_shared::{DeviceId, DeviceKey, LicenseKey};

use super::*;
use crate::audit::chain::{self, Verdict};
use crate::testing::{NOW, TestStore, actor, numbered_request, request};
use crate::{KeyStore, devices, issuance};

fn installation(n: u32) -> DeviceKey {
    let mut seed = [7; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    DeviceKey::from_seed(&seed)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A store with a license, a device and a payload.
fn populated() -> (TestStore, LicenseKey, DeviceId) {
    let mut t = TestStore::new();
    let key = t.license(1000);
    let device = t.device(&key);
    issuance::issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &device, &installation(1)),
        NOW,
    )
    .unwrap();
    (t, key, device)
}

/// Closes the test's own connection to the store (a restore refuses a
/// store in use), by pointing it at a scratch store in `dir`.
fn close_store(t: &mut TestStore, dir: &Path) {
    let scratch = dir.join("scratch.db");
    create(&t.paths.db, &scratch, Existing::Replace).unwrap();
    t.store = Store::open(&scratch).unwrap();
}

fn reopen_store(t: &mut TestStore) {
    t.store = Store::open(&t.paths.db).unwrap();
}

/// The store's files (database, WAL, shared memory) and their bytes, to
/// prove a refusal touched none of them.
fn files_of(db: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let path = beside(db, suffix);
            let bytes = fs::read(&path).ok();
            (path, bytes)
        })
        .collect()
}

/// The temporary files a backup or restore left in `dir`.
fn strays(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp") || name.contains(".tmp-"))
        .collect()
}

fn issuances_count(store: &Store) -> i64 {
    store
        .read(|conn| {
            Ok::<_, StoreError>(conn.query_row("SELECT COUNT(*) FROM issuances", [], |r| r.get(0))?)
        })
        .unwrap()
}

#[test]
fn a_backup_is_a_checked_single_file_copy_made_owner_only() {
    let (t, _, _) = populated();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("issuer.backup");
    let made = create(&t.paths.db, &out, Existing::Keep).unwrap();

    assert_eq!(made.file, out);
    assert_eq!(mode(&out), 0o600);
    assert_eq!(made.integrity, "ok");
    assert_eq!(made.schema_version, store::schema_version());
    assert_eq!(made.rows("licenses"), 1);
    assert_eq!(made.rows("devices"), 1);
    assert_eq!(made.rows("issuances"), 1);
    assert_eq!(made.rows("signing_keys"), 1);
    assert!(made.rows("audit") >= 5, "{made:?}");
    assert_eq!(made.bytes, fs::metadata(&out).unwrap().len());
    // One file: its header says rollback journal (1), not WAL (2), and
    // nothing else was left beside it.
    let header = fs::read(&out).unwrap();
    assert_eq!((header[18], header[19]), (1, 1));
    let names: Vec<_> = fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [OsString::from("issuer.backup")]);
    // What `verify` says of it later is what `create` said.
    assert_eq!(verify(&out).unwrap(), made);
}

#[test]
fn a_backup_refuses_an_existing_file_unless_told_to_replace_it() {
    let (t, _, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("issuer.backup");
    fs::write(&out, b"an older backup").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o640)).unwrap();

    let err = create(&t.paths.db, &out, Existing::Keep).unwrap_err();
    assert_eq!(err.code(), "file_exists", "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"an older backup");
    assert_eq!(mode(&out), 0o640);
    assert!(strays(dir.path()).is_empty());

    create(&t.paths.db, &out, Existing::Replace).unwrap();
    assert_eq!(mode(&out), 0o600);
    assert_eq!(verify(&out).unwrap().rows("issuances"), 1);
}

#[test]
fn a_backup_refuses_to_write_over_the_store_or_its_files() {
    let (t, _, _) = populated();
    let before = t.snapshot();
    let db = &t.paths.db;
    let dir = db.parent().unwrap();
    let cases = [
        ("1. the store", db.clone()),
        ("2. its WAL", beside(db, "-wal")),
        ("3. its shared memory", beside(db, "-shm")),
        ("4. the store, through ..", dir.join("root/../issuer.db")),
    ];
    for (name, out) in cases {
        let err = create(db, &out, Existing::Replace).unwrap_err();
        assert_eq!(err.code(), "backup_is_the_store", "{name}: {err}");
        assert_eq!(t.snapshot(), before, "{name}");
    }
}

#[test]
fn verify_refuses_what_is_not_a_whole_issuer_store_with_the_reason() {
    let (t, _, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.backup");
    create(&t.paths.db, &good, Existing::Keep).unwrap();
    let bytes = fs::read(&good).unwrap();
    let write = |name: &str, contents: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, contents).unwrap();
        path
    };
    // The header of the last leaf page of a table (type 0x0d): its type,
    // free block, cell count and content start overwritten.
    let page = (1..bytes.len() / 4096)
        .rev()
        .find(|p| bytes[p * 4096] == 0x0d)
        .unwrap();
    let mut flipped = bytes.clone();
    flipped[page * 4096..page * 4096 + 8].copy_from_slice(&[0x42; 8]);
    let other_db = dir.path().join("other.db");
    rusqlite::Connection::open(&other_db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('hi')")
        .unwrap();
    let cases: [(&str, PathBuf, &str); 8] = [
        (
            "1. missing",
            dir.path().join("nothing-here"),
            "no such file",
        ),
        ("2. a directory", dir.path().to_path_buf(), "not a file"),
        ("3. empty", write("empty", b""), "empty"),
        (
            "4. text",
            write("text", b"not a database at all\n"),
            "not an SQLite database",
        ),
        (
            "5. cut in half",
            write("half", &bytes[..bytes.len() / 2]),
            "SQLite",
        ),
        (
            "6. cut at a page",
            write("page", &bytes[..4096 * 2]),
            "SQLite",
        ),
        ("7. damaged inside", write("flipped", &flipped), "SQLite"),
        ("8. another database", other_db, "not an issuer store"),
    ];
    for (name, path, says) in cases {
        let err = verify(&path).unwrap_err();
        assert_eq!(err.code(), "backup_invalid", "{name}: {err}");
        let message = err.to_string();
        assert!(message.contains(says), "{name}: {message}");
        assert!(message.contains("nothing was changed"), "{name}: {message}");
    }
    assert!(verify(&good).is_ok());
}

#[test]
fn restore_refusals_change_nothing() {
    let (mut t, key, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("issuer.backup");
    create(&t.paths.db, &backup, Existing::Keep).unwrap();
    // The store moves on after the backup.
    let later = t.device(&key);
    issuance::issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &later, &installation(2)),
        NOW + 5,
    )
    .unwrap();
    let bytes = fs::read(&backup).unwrap();
    let truncated = dir.path().join("truncated.backup");
    fs::write(&truncated, &bytes[..bytes.len() - 4096]).unwrap();
    let clock = || NOW + 10;

    let before = t.snapshot();
    let files = files_of(&t.paths.db);
    let cases: [(&str, &Path, Existing, &str); 4] = [
        (
            "1. a truncated backup, even with force",
            &truncated,
            Existing::Replace,
            "backup_invalid",
        ),
        ("2. without force", &backup, Existing::Keep, "store_exists"),
        (
            "3. the store in use (this test's own connection)",
            &backup,
            Existing::Replace,
            "store_in_use",
        ),
        (
            "4. the store itself as the backup",
            &t.paths.db.clone(),
            Existing::Replace,
            "backup_is_the_store",
        ),
    ];
    for (name, file, existing, code) in cases {
        let err = restore(&t.paths.db, file, existing, &actor(), clock).unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err}");
        assert_eq!(t.snapshot(), before, "{name}");
        assert_eq!(files_of(&t.paths.db), files, "{name}");
        assert!(strays(t.paths.db.parent().unwrap()).is_empty(), "{name}");
        if code == "store_in_use" {
            assert!(err.to_string().contains("stop it"), "{name}: {err}");
        }
    }
}

#[test]
fn restore_brings_back_the_backup_and_appends_to_its_audit_chain() {
    let (mut t, key, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("issuer.backup");
    let made = create(&t.paths.db, &backup, Existing::Keep).unwrap();
    let at_backup = t.snapshot();
    let later = t.device(&key);
    issuance::issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &request(&key, &later, &installation(2)),
        NOW + 5,
    )
    .unwrap();
    assert_ne!(t.snapshot(), at_backup);

    close_store(&mut t, dir.path());
    let restored = restore(&t.paths.db, &backup, Existing::Replace, &actor(), || {
        NOW + 10
    })
    .unwrap();
    assert_eq!(restored.replaced, Replaced::Store);
    assert_eq!(restored.at, NOW + 10);
    assert_eq!(restored.backup, made);
    reopen_store(&mut t);

    assert_eq!(t.snapshot(), at_backup);
    let rows = t.audited("store.restore");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "ok");
    assert_eq!(rows[0].1, backup.display().to_string());
    match chain::verify(&t.store, None).unwrap() {
        Verdict::Verified { rows, .. } => assert_eq!(rows, made.rows("audit") + 1),
        Verdict::Broken(broken) => panic!("{broken}"),
    }
    // The store's files are still its owner's, and nothing is left beside.
    for (path, _) in files_of(&t.paths.db) {
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(strays(t.paths.db.parent().unwrap()).is_empty());
}

#[test]
fn restore_replaces_a_store_sqlite_cannot_read_and_drops_its_wal() {
    let (mut t, _, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("issuer.backup");
    create(&t.paths.db, &backup, Existing::Keep).unwrap();
    let at_backup = t.snapshot();
    close_store(&mut t, dir.path());
    // A damaged store, with a WAL that is not its own: applied to the
    // restored database, it would damage that too.
    fs::write(&t.paths.db, vec![0xa5; 8192]).unwrap();
    fs::write(beside(&t.paths.db, "-wal"), vec![0x5a; 4096]).unwrap();

    let restored = restore(&t.paths.db, &backup, Existing::Replace, &actor(), || NOW).unwrap();
    assert_eq!(restored.replaced, Replaced::UnreadableStore);
    assert!(!beside(&t.paths.db, "-wal").exists());
    assert_eq!(mode(&t.paths.db), 0o600);
    reopen_store(&mut t);
    assert_eq!(t.snapshot(), at_backup);
}

#[test]
fn restore_over_a_store_left_with_a_wal_by_a_crash_never_applies_that_wal() {
    let (mut t, key, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("issuer.backup");
    let made = create(&t.paths.db, &backup, Existing::Keep).unwrap();
    let at_backup = t.snapshot();
    // Written after the backup and still only in the WAL; the files are
    // then copied as a killed console leaves them, WAL and shared memory
    // included.
    t.store
        .write(|tx| {
            tx.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let later = t.device(&key);
    let crashed = dir.path().join("crashed");
    fs::create_dir(&crashed).unwrap();
    let db = crashed.join("issuer.db");
    let crash = || {
        for (suffix, (_, bytes)) in ["", "-wal", "-shm"].iter().zip(files_of(&t.paths.db)) {
            fs::write(beside(&db, suffix), bytes.unwrap()).unwrap();
            fs::set_permissions(beside(&db, suffix), fs::Permissions::from_mode(0o600)).unwrap();
        }
    };
    crash();
    assert!(fs::metadata(beside(&db, "-wal")).unwrap().len() > 0);
    // The crashed copy holds the device added after the backup (opening
    // it folds its WAL in, so it is crashed again after).
    let devices_in = |store: &Store| -> i64 {
        store
            .read(|conn| {
                Ok::<_, StoreError>(
                    conn.query_row("SELECT COUNT(*) FROM devices", [], |r| r.get(0))?,
                )
            })
            .unwrap()
    };
    let backed_up = i64::try_from(made.rows("devices")).unwrap();
    assert_eq!(
        devices_in(&Store::open(&db).unwrap()),
        backed_up + 1,
        "{later}"
    );
    crash();

    let restored = restore(&db, &backup, Existing::Replace, &actor(), || NOW).unwrap();
    assert_eq!(restored.replaced, Replaced::Store);
    assert!(!beside(&db, "-wal").exists());
    close_store(&mut t, dir.path());
    t.store = Store::open(&db).unwrap();
    assert_eq!(t.snapshot(), at_backup);
    assert!(strays(&crashed).is_empty());
}

#[test]
fn restore_where_there_is_no_store_makes_one() {
    let (t, _, _) = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("issuer.backup");
    create(&t.paths.db, &backup, Existing::Keep).unwrap();
    let db = dir.path().join("new.db");
    let restored = restore(&db, &backup, Existing::Keep, &actor(), || NOW).unwrap();
    assert_eq!(restored.replaced, Replaced::Nothing);
    assert_eq!(mode(&db), 0o600);
    let store = Store::open(&db).unwrap();
    assert_eq!(issuances_count(&store), 1);
}

/// Issue 18's test: a backup taken while a thread issues payloads for new
/// requests in a loop holds every issuance acknowledged before the backup
/// began; once restored, a device whose later payload (issued after the
/// backup, so forgotten by the restored store) a client holds is given a
/// higher serial still, so the client accepts it.
#[test]
fn a_backup_during_issuance_keeps_every_acknowledged_payload_and_serials_never_go_back() {
    let (mut t, key, renewed) = populated();
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    // The vendor's clock: it moves on as the test runs.
    let clock = move || NOW + i64::try_from(start.elapsed().as_secs()).unwrap();

    // (payload token, its serial, whether it renewed `renewed`), in the
    // order acknowledged.
    let acknowledged: Arc<Mutex<Vec<(String, u64, bool)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let issuer = {
        let (paths, key, renewed) = (t.paths.clone(), key.clone(), renewed.clone());
        let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut store = Store::open(&paths.db).unwrap();
            let keys = KeyStore::open(&paths.keys_dir).unwrap();
            let mut n = 2u32;
            let mut counter = 1;
            while !stop.load(Ordering::SeqCst) {
                // New devices' first requests, and now and then a renewal
                // of the first device's installation.
                let (text, renewal) = if n.is_multiple_of(4) {
                    counter += 1;
                    let text = numbered_request(&key, &renewed, &installation(1), counter);
                    (text, true)
                } else {
                    let device = devices::add(&mut store, &actor(), &key, None, clock())
                        .unwrap()
                        .device
                        .client_device_id;
                    (request(&key, &device, &installation(n)), false)
                };
                n += 1;
                let issued = issuance::issue(&mut store, &keys, &actor(), &text, clock()).unwrap();
                acknowledged.lock().unwrap().push((
                    issued.payload.token(),
                    issued.payload.license.serial,
                    renewal,
                ));
            }
        })
    };
    let wait_for = |count: usize| {
        while acknowledged.lock().unwrap().len() < count {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    wait_for(20);
    let before: Vec<_> = acknowledged.lock().unwrap().clone();
    let backup = dir.path().join("issuer.backup");
    let made = create(&t.paths.db, &backup, Existing::Keep).unwrap();
    let after_backup = acknowledged.lock().unwrap().len();
    // Go on until the first device was renewed after the backup ended.
    wait_for(after_backup + 8);
    stop.store(true, Ordering::SeqCst);
    issuer.join().unwrap();
    let all = acknowledged.lock().unwrap().clone();
    // The store had one payload before the thread began.
    assert!(made.rows("issuances") as usize > before.len());
    assert!(
        (made.rows("issuances") as usize) <= all.len(),
        "the backup was taken during issuance, not after it"
    );
    let (held_token, held_serial, _) = all[after_backup..]
        .iter()
        .rfind(|(_, _, renewal)| *renewal)
        .cloned()
        .unwrap();

    close_store(&mut t, dir.path());
    restore(&t.paths.db, &backup, Existing::Replace, &actor(), clock).unwrap();
    reopen_store(&mut t);

    let stored = |token: &str| -> bool {
        t.store
            .read(|conn| {
                Ok::<_, StoreError>(conn.query_row(
                    "SELECT COUNT(*) FROM issuances WHERE payload = ?1",
                    [token],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap()
            == 1
    };
    for (n, (token, serial, _)) in before.iter().enumerate() {
        assert!(
            stored(token),
            "issuance {n} (serial {serial}) was acknowledged before the backup"
        );
    }
    assert!(!stored(&held_token), "issued after the backup ended");
    // Consistent: each issuance the backup kept has its audit row, written
    // in the same transaction.
    let audited_issues = t
        .audited("issue")
        .iter()
        .filter(|(result, _)| result == "ok")
        .count();
    assert_eq!(audited_issues as i64, issuances_count(&t.store));

    // The client holds `held_serial`; the restored store never saw it.
    let next = issuance::issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &numbered_request(&key, &renewed, &installation(1), 10_000),
        clock(),
    )
    .unwrap();
    assert!(!next.repeated);
    assert!(
        next.payload.license.serial > held_serial,
        "serial {} after the restore, {held_serial} held by the client",
        next.payload.license.serial
    );
}

#[test]
fn a_serial_issued_after_a_restore_is_above_the_forgotten_ones_even_in_the_same_second() {
    let (mut t, key, device) = populated();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("issuer.backup");
    create(&t.paths.db, &backup, Existing::Keep).unwrap();
    // After the backup, within one second: three renewals the client imports.
    let mut held = 0;
    for counter in 2..5 {
        held = issuance::issue(
            &mut t.store,
            &t.keys,
            &actor(),
            &numbered_request(&key, &device, &installation(1), counter),
            NOW + 30,
        )
        .unwrap()
        .payload
        .license
        .serial;
    }
    close_store(&mut t, dir.path());
    restore(&t.paths.db, &backup, Existing::Replace, &actor(), || {
        NOW + 30
    })
    .unwrap();
    reopen_store(&mut t);
    // A command that read the clock before the restore and waited for it.
    let next = issuance::issue(
        &mut t.store,
        &t.keys,
        &actor(),
        &numbered_request(&key, &device, &installation(1), 9),
        NOW + 29,
    )
    .unwrap();
    assert!(next.payload.license.serial > held);
    assert_eq!(
        next.payload.license.serial,
        (NOW + 31) as u64 * issuance::SERIALS_PER_SECOND
    );
}
