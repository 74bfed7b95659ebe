//! Backups into a directory: names only this module makes are ever
//! removed, exactly the newest N stay, by the time in their names, and a
//! backup that fails removes nothing.

use std::os::unix::fs::{PermissionsExt as _, symlink};

use super::*;
use crate::error::Coded as _;
use crate::testing::{NOW, TestStore};

/// 2027-01-15T08:00:00Z.
const NOW_NAME: &str = "ren3-issuer-20270115T080000Z.db";

fn keep(n: usize) -> Option<NonZeroUsize> {
    Some(NonZeroUsize::new(n).unwrap())
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A file named as a backup of `at`, holding `bytes`.
fn placed(dir: &Path, at: i64, bytes: &[u8]) -> PathBuf {
    let path = dir.join(file_name(at).unwrap());
    fs::write(&path, bytes).unwrap();
    path
}

/// Things that look like backups and are not: a backup directory may hold
/// them, and pruning must leave them.
const LOOK_ALIKES: &[&str] = &[
    "ren3-issuer-20260101T000000Z.db.tmp",
    ".ren3-issuer-20260101T000000Z.db.a1B2c3.tmp",
    "x-ren3-issuer-20260101T000000Z.db",
    "ren3-issuer-20260101T000000Z.db-wal",
    "ren3-issuer-20260101T000000Z.db.gz",
    "ren3-issuer-20260101T000000Z",
    "ren3-issuer-20260101t000000z.db",
    "ren3-issuer.db",
    "ren3-issuer-keys-20260101T000000Z.tar",
];

#[test]
fn a_name_holds_the_utc_time_and_reads_back() {
    assert_eq!(file_name(0).unwrap(), "ren3-issuer-19700101T000000Z.db");
    assert_eq!(file_name(NOW).unwrap(), NOW_NAME);
    for at in [0, NOW, NOW + 86_399, 253_402_300_799] {
        let name = file_name(at).unwrap();
        assert_eq!(taken_at(OsStr::new(&name)), Some(at), "{name}");
    }
    assert_eq!(file_name(253_402_300_800), None, "year 10000");
    assert_eq!(file_name(-62_167_219_201), None, "before year 0");
}

#[test]
fn only_the_exact_pattern_with_a_real_time_is_a_backup_name() {
    let refused = [
        ("1. a temporary file", "ren3-issuer-20260101T000000Z.db.tmp"),
        ("2. a prefix", "x-ren3-issuer-20260101T000000Z.db"),
        ("3. hidden", ".ren3-issuer-20260101T000000Z.db"),
        ("4. no suffix", "ren3-issuer-20260101T000000Z"),
        ("5. another suffix", "ren3-issuer-20260101T000000Z.DB"),
        ("6. a WAL", "ren3-issuer-20260101T000000Z.db-wal"),
        ("7. lower case t and z", "ren3-issuer-20260101t000000z.db"),
        ("8. no Z", "ren3-issuer-20260101T000000.db"),
        ("9. a digit more", "ren3-issuer-202601011T000000Z.db"),
        ("10. a digit less", "ren3-issuer-2026011T000000Z.db"),
        ("11. a signed year", "ren3-issuer-+2026010T000000Z.db"),
        ("12. month 13", "ren3-issuer-20261301T000000Z.db"),
        ("13. 30 February", "ren3-issuer-20260230T000000Z.db"),
        ("14. hour 24", "ren3-issuer-20260101T240000Z.db"),
        ("15. second 60", "ren3-issuer-20260101T000060Z.db"),
        ("16. extended format", "ren3-issuer-2026-01-01T00:00:00Z.db"),
        ("17. other digits", "ren3-issuer-٢٠٢٦0101T000000Z.db"),
        ("18. a space", "ren3-issuer-20260101T000000Z.db "),
        ("19. the store", "ren3-issuer.db"),
        ("20. empty", ""),
    ];
    for (case, name) in refused {
        assert_eq!(taken_at(OsStr::new(name)), None, "{case}: {name:?}");
    }
    for name in LOOK_ALIKES {
        assert_eq!(taken_at(OsStr::new(name)), None, "{name}");
    }
    let not_utf8 =
        <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"ren3-issuer-20260101T000000Z\xff.db");
    assert_eq!(taken_at(not_utf8), None, "21. not UTF-8");
    assert_eq!(
        taken_at(OsStr::new("ren3-issuer-20240229T235959Z.db")),
        Some(1_709_251_199),
        "a leap day"
    );
}

#[test]
fn a_backup_into_a_missing_directory_makes_it_owner_only_and_the_file_0600() {
    let t = TestStore::new();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("backups").join("daily");
    let made = create_in(&t.paths.db, &dir, None, NOW).unwrap();
    assert_eq!(made.backup.file, dir.join(NOW_NAME));
    assert_eq!(made.backup.integrity, "ok");
    assert_eq!(made.backup.rows("licenses"), 0);
    assert_eq!((made.pruned.len(), made.kept), (0, 1));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&temp.path().join("backups")), 0o700);
    assert_eq!(mode(&made.backup.file), 0o600);
    assert_eq!(names(&dir), [NOW_NAME]);
    super::super::verify(&made.backup.file).unwrap();
}

#[test]
fn keep_leaves_exactly_the_newest_by_the_time_in_the_name_and_nothing_else() {
    let t = TestStore::new();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Written newest first, so the files' modification times run the
    // other way from the times in their names.
    let days: Vec<i64> = (1..=5).map(|d| NOW - d * 86_400).collect();
    let older: Vec<PathBuf> = days.iter().map(|&at| placed(dir, at, b"old")).collect();
    for name in LOOK_ALIKES {
        fs::write(dir.join(name), b"not a backup").unwrap();
    }
    fs::create_dir(dir.join(file_name(NOW - 10 * 86_400).unwrap())).unwrap();
    symlink(&older[4], dir.join(file_name(NOW - 20 * 86_400).unwrap())).unwrap();
    let before = names(dir);

    let made = create_in(&t.paths.db, dir, keep(3), NOW).unwrap();
    // The three oldest, oldest first; the new one and the two days
    // before it stay.
    assert_eq!(
        made.pruned,
        [older[4].clone(), older[3].clone(), older[2].clone()]
    );
    assert_eq!(made.kept, 3);
    let mut expected: Vec<String> = before
        .into_iter()
        .filter(|name| !made.pruned.iter().any(|p| p.ends_with(name)))
        .collect();
    expected.push(NOW_NAME.to_owned());
    expected.sort();
    assert_eq!(names(dir), expected);
    for name in LOOK_ALIKES {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"not a backup", "{name}");
    }

    // Keeping one leaves the newest alone.
    let next = create_in(&t.paths.db, dir, keep(1), NOW + 1).unwrap();
    assert_eq!(
        next.pruned,
        [older[1].clone(), older[0].clone(), dir.join(NOW_NAME)]
    );
    assert_eq!(next.kept, 1);
    let left = backups_in(dir).unwrap();
    assert_eq!(left, [(NOW + 1, next.backup.file.clone())]);
}

#[test]
fn without_keep_nothing_is_removed() {
    let t = TestStore::new();
    let temp = tempfile::tempdir().unwrap();
    for d in 1..=3 {
        placed(temp.path(), NOW - d * 86_400, b"old");
    }
    let made = create_in(&t.paths.db, temp.path(), None, NOW).unwrap();
    assert!(made.pruned.is_empty());
    assert_eq!(made.kept, 4);
    assert_eq!(backups_in(temp.path()).unwrap().len(), 4);
}

#[test]
fn the_new_backup_stays_even_when_older_ones_carry_later_names() {
    let t = TestStore::new();
    let temp = tempfile::tempdir().unwrap();
    // Taken before the clock was put back a day.
    let later = placed(temp.path(), NOW + 86_400, b"from the future");
    let made = create_in(&t.paths.db, temp.path(), keep(1), NOW).unwrap();
    assert_eq!(made.pruned, [later]);
    assert_eq!(names(temp.path()), [NOW_NAME]);
}

#[test]
fn a_backup_that_fails_removes_nothing() {
    let t = TestStore::new();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    for d in 0..=3 {
        placed(dir, NOW - d * 86_400, b"old");
    }
    let before = names(dir);

    // 1. A backup of this second is there already.
    let err = create_in(&t.paths.db, dir, keep(1), NOW).unwrap_err();
    assert!(matches!(err, BackupError::SameSecond { .. }), "{err}");
    assert_eq!(err.code(), "file_exists");
    assert!(err.to_string().contains("one second"), "{err}");
    assert_eq!(fs::read(dir.join(NOW_NAME)).unwrap(), b"old");
    assert_eq!(names(dir), before);

    // 2. The store is not an issuer store.
    let not_a_store = dir.join("not-a-store.db");
    fs::write(&not_a_store, b"not SQLite").unwrap();
    fs::set_permissions(&not_a_store, fs::Permissions::from_mode(0o600)).unwrap();
    create_in(&not_a_store, dir, keep(1), NOW + 1).unwrap_err();
    // 3. There is no store.
    create_in(&dir.join("missing.db"), dir, keep(1), NOW + 2).unwrap_err();
    let mut expected = before.clone();
    expected.push("not-a-store.db".to_owned());
    expected.sort();
    assert_eq!(names(dir), expected);
}

#[test]
fn a_file_where_the_directory_should_be_is_an_error_and_nothing_is_written() {
    let t = TestStore::new();
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("backups");
    fs::write(&file, b"a file").unwrap();
    let err = create_in(&t.paths.db, &file, keep(1), NOW).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot create the backup directory"),
        "{err}"
    );
    assert_eq!(names(temp.path()), ["backups"]);
}
