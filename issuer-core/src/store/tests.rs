//! The store's own tests: opening, migrations and each table's queries.

use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn pragma(store: &Store, name: &str) -> String {
    store
        .conn
        .query_row(&format!("PRAGMA {name}"), [], |row| {
            row.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| format!("{v:?}"))
        .unwrap()
}

#[test]
fn every_connection_gets_wal_full_sync_foreign_keys_and_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    drop(Store::create_new(&path).unwrap());
    let store = Store::open(&path).unwrap();
    assert_eq!(pragma(&store, "journal_mode"), "Text(\"wal\")");
    // FULL is 2.
    assert_eq!(pragma(&store, "synchronous"), "Integer(2)");
    assert_eq!(pragma(&store, "foreign_keys"), "Integer(1)");
    assert_eq!(pragma(&store, "busy_timeout"), "Integer(5000)");
}

#[test]
fn triggers_keep_each_licenses_bound_device_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    drop(Store::create_new(&path).unwrap());
    let mut store = Store::open(&path).unwrap();
    let kept_and_counted = |store: &Store| -> Vec<(i64, i64)> {
        store
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT l.bound_devices,
                            (SELECT COUNT(*) FROM devices d
                             WHERE d.license_id = l.id AND d.public_key IS NOT NULL)
                     FROM licenses l ORDER BY l.id",
                )?;
                let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok::<_, StoreError>(rows.collect::<rusqlite::Result<_>>()?)
            })
            .unwrap()
    };
    let steps = [
        "INSERT INTO licenses (key_fingerprint, key_hint, customer, features, limits,
                               max_devices, created_at)
         VALUES ('f1', 'REN3K1-AAAAA-…', 'A', '[]', '{}', 9, 0),
                ('f2', 'REN3K1-BBBBB-…', 'B', '[]', '{}', 9, 0)",
        // Inserted unbound, then bound; inserted bound (as fill-issuer does).
        "INSERT INTO devices (license_id, client_device_id, created_at) VALUES (1, 'd1', 0)",
        "UPDATE devices SET public_key = 'k1', bound_at = 1 WHERE client_device_id = 'd1'",
        "INSERT INTO devices (license_id, client_device_id, public_key, created_at, bound_at)
         VALUES (1, 'd2', 'k2', 0, 0), (2, 'd3', 'k3', 0, 0)",
        // Rebinding a bound device to another key changes no count.
        "UPDATE devices SET public_key = 'k1b' WHERE client_device_id = 'd1'",
        // A release, then a device moved to the other license.
        "UPDATE devices SET public_key = NULL, bound_at = NULL WHERE client_device_id = 'd2'",
        "UPDATE devices SET license_id = 2 WHERE client_device_id = 'd1'",
        "DELETE FROM devices WHERE client_device_id = 'd3'",
    ];
    let expected = [
        [(0, 0), (0, 0)],
        [(0, 0), (0, 0)],
        [(1, 1), (0, 0)],
        [(2, 2), (1, 1)],
        [(2, 2), (1, 1)],
        [(1, 1), (1, 1)],
        [(0, 0), (2, 2)],
        [(0, 0), (1, 1)],
    ];
    for (step, want) in steps.iter().zip(expected) {
        store
            .write(|tx| Ok::<_, StoreError>(tx.execute_batch(step)?))
            .unwrap();
        assert_eq!(kept_and_counted(&store), want, "after {step}");
    }
}

#[test]
fn open_names_a_missing_store_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let err = Store::open(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no issuer store at {}; run `ren3-issuer init` first",
            path.display()
        )
    );
    assert!(!path.exists());
}

#[test]
fn open_refuses_files_that_are_not_issuer_stores() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "x".repeat(4096)).unwrap();
    assert!(matches!(
        Store::open(&text),
        Err(StoreError::NotAStore { .. })
    ));
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .unwrap();
    assert!(matches!(
        Store::open(&other),
        Err(StoreError::NotAStore { .. })
    ));
}

#[test]
fn open_refuses_a_store_from_a_newer_build() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    let store = Store::create_new(&path).unwrap();
    store
        .conn
        .pragma_update(
            None,
            "user_version",
            i64::try_from(SCHEMA_VERSION).unwrap() + 1,
        )
        .unwrap();
    drop(store);
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
}

#[test]
fn create_new_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Store::create_new(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { source, .. }
            if matches!(&**source, OpenError::Io(e) if e.kind() == io::ErrorKind::AlreadyExists)),
        "{err}"
    );
}

#[test]
fn issuances_from_before_sequence_numbers_migrate_without_a_counter() {
    let mut conn = Connection::open_in_memory().unwrap();
    MIGRATIONS.to_version(&mut conn, 6).unwrap();
    conn.execute_batch(
        "INSERT INTO signing_keys (key_id, public_key, created_at) VALUES ('k', 'kp', 0);
         INSERT INTO licenses (id, key_fingerprint, key_hint, customer, features, limits,
                               max_devices, created_at)
             VALUES (1, 'f', 'h', 'c', '[]', '{}', 1, 0);
         INSERT INTO devices (id, license_id, client_device_id, public_key, created_at,
                              bound_at)
             VALUES (1, 1, 'd', 'p', 0, 0);
         INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                key_id, payload, issued_at)
             VALUES (1, 1, 'h1', 'r1', 1, 'k', 'token', 0);",
    )
    .unwrap();
    MIGRATIONS.to_latest(&mut conn).unwrap();
    let migrated: (Option<String>, Option<i64>) = conn
        .query_row(
            "SELECT public_key, request_counter FROM issuances",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(migrated, (None, None));

    let cases = [
        (
            "1. a counter with its installation",
            Some("p"),
            Some(1),
            true,
        ),
        ("2. neither, as before", None, None, true),
        ("3. a counter of 0", Some("p"), Some(0), false),
        ("4. a counter without an installation", None, Some(1), false),
    ];
    for (serial, (name, key, counter, allowed)) in (2..).zip(cases) {
        let inserted = conn.execute(
            "INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                    key_id, payload, issued_at, public_key,
                                    request_counter)
             VALUES (1, 1, ?1, 'r', ?2, 'k', 'token', 0, ?3, ?4)",
            params![format!("h{serial}"), serial, key, counter],
        );
        assert_eq!(inserted.is_ok(), allowed, "{name}: {inserted:?}");
    }
}

#[test]
fn migrations_apply_and_schema_version_counts_them() {
    MIGRATIONS.validate().unwrap();
    let empty = Connection::open_in_memory().unwrap();
    let pending = MIGRATIONS.pending_migrations(&empty).unwrap();
    assert_eq!(usize::try_from(pending).unwrap(), SCHEMA_VERSION);
}

#[test]
fn users_from_before_roles_migrate_with_no_role_and_new_roles_are_checked() {
    let mut conn = Connection::open_in_memory().unwrap();
    MIGRATIONS.to_version(&mut conn, 7).unwrap();
    conn.execute(
        "INSERT INTO users (name, password_hash, created_at) VALUES ('old', 'h', 0)",
        [],
    )
    .unwrap();
    MIGRATIONS.to_latest(&mut conn).unwrap();
    let role: Option<String> = conn
        .query_row("SELECT role FROM users WHERE name = 'old'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(role, None);
    for (role, allowed) in [
        ("admin", true),
        ("issuer", true),
        ("viewer", true),
        ("root", false),
    ] {
        let set = conn.execute("UPDATE users SET role = ?1", [role]);
        assert_eq!(set.is_ok(), allowed, "{role}: {set:?}");
    }
}

/// The rows written before the chain are chained by the migration, in id
/// order from the genesis value, so that the log verifies at once and a
/// row edited later shows.
#[test]
fn audit_rows_from_before_the_chain_are_chained_by_the_migration() {
    use crate::audit::chain::{self, ChainHash};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("issuer.db");
    drop(Store::create_new(&path).unwrap());
    {
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("DELETE FROM audit; PRAGMA user_version = 8;")
            .unwrap();
        conn.execute_batch(
            "ALTER TABLE audit DROP COLUMN prev_hash; ALTER TABLE audit DROP COLUMN hash;",
        )
        .unwrap();
        // Ids as an old store may have them: not from 1, with a gap.
        for id in [3, 4, 6] {
            conn.execute(
                "INSERT INTO audit (id, at, actor, action, subject, result, detail)
                 VALUES (?1, ?1, 'cli:old', 'login', 's', 'ok', 'd')",
                [id],
            )
            .unwrap();
        }
        MIGRATIONS.to_latest(&mut conn).unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    let verdict = chain::verify(&store, None).unwrap();
    assert!(
        matches!(verdict, chain::Verdict::Verified { rows: 3, head } if head.id == 6),
        "{verdict:?}"
    );
    let first: String = store
        .read(|conn| {
            query_row_cached(conn, "SELECT prev_hash FROM audit WHERE id = 3", [], |r| {
                r.get(0)
            })
            .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!(first, ChainHash::GENESIS.to_string());
    // A new row chains on; the migration's step never runs again, so a
    // hash removed now stays removed.
    store
        .write(|tx| {
            insert_audit(
                tx,
                &NewAuditRow {
                    actor: "cli:new",
                    action: "login",
                    subject: "s",
                    result: "ok",
                    detail: "",
                },
                7,
            )?;
            tx.execute("UPDATE audit SET hash = NULL WHERE id = 4", [])?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let verdict = chain::verify(&store, None).unwrap();
    assert!(
        matches!(&verdict, chain::Verdict::Broken(b) if b.id == 4
            && b.problem == chain::Problem::NoHash),
        "{verdict:?}"
    );
}
