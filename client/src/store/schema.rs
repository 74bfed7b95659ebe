//! Opening the store: the file created owner-only, the pragmas every
//! connection gets, and the migrations, one SQL file each in
//! `src/migrations/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::{StoreError, execute_cached};

/// How long a statement waits for another connection's lock (an operator's
/// `sqlite3` shell, a second process) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Append-only: never edit a migration that has shipped, add a new one.
/// Each file holds the exact text that shipped inline before the files
/// existed (SQLite keeps a table's `CREATE` text as written), and
/// `shipped_migrations_are_never_edited` holds each to its hash.
const MIGRATION_STEPS: &[M<'static>] = &[
    M::up(include_str!("../migrations/0001_initial.sql")),
    M::up(include_str!(
        "../migrations/0002_deactivation_clock_and_receipts.sql"
    )),
    M::up(include_str!("../migrations/0003_answered_requests.sql")),
    M::up(include_str!("../migrations/0004_revocation_list.sql")),
    M::up(include_str!(
        "../migrations/0005_mark_above_recorded_times.sql"
    )),
    M::up(include_str!("../migrations/0006_signing_sequence.sql")),
];
pub(super) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_STEPS);

pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    MIGRATIONS.to_latest(&mut conn)?;
    // A store of the first schema never had a mark (migration 2 made the
    // table): its first one is the newest time it records, so that an
    // upgrade is not taken for a deleted mark.
    if version == 1 {
        execute_cached(
            &conn,
            concat!(
                "INSERT INTO clock (id, high_water_mark)
                 SELECT 1, t FROM (SELECT ",
                newest_recorded_time!(),
                " AS t) WHERE t > -9223372036854775808
                 ON CONFLICT (id) DO NOTHING"
            ),
            [],
        )?;
    }
    Ok(conn)
}

/// Pragmas are per connection, so they are set at every open and not in a
/// migration.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    // Room for every statement of the store's modules (about twenty).
    Ok(ren3_sqlite::configure(conn, BUSY_TIMEOUT, 32)?)
}

/// Creates the database file readable by its owner only, and takes group
/// and other access away from an existing one. SQLite gives the `-wal` and
/// `-shm` files it creates the database file's permissions.
#[cfg(unix)]
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let error = |source| StoreError::Create {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(error)?;
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the license store was readable by others; restricting it to its owner"
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(error)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> Result<(), StoreError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|source| StoreError::Create {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use ren3_shared::DeviceKey;
    use rusqlite::params;

    use super::*;
    use crate::store::test_requests::request;
    use crate::store::{
        Store, high_water_mark, last_sequence_number, load_or_create_device_key,
        pending_request_count, pending_request_hashes, pending_request_seq, raise_high_water_mark,
        recorded_times, take_sequence_number, write_transaction,
    };

    /// The schema version a store has once opened: one per migration.
    const SCHEMA_VERSION: usize = MIGRATION_STEPS.len();

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn migrations_apply_and_schema_version_counts_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        let pending = MIGRATIONS.pending_migrations(&conn).unwrap();
        assert_eq!(usize::try_from(pending).unwrap(), SCHEMA_VERSION);
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let version: usize = MIGRATIONS.current_version(&conn).unwrap().into();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// Each migration file, in order, with the SHA-256 of the text that
    /// shipped. A store migrated by an earlier build holds what these made,
    /// so a file is never edited: a change goes into a new one.
    const SHIPPED_MIGRATIONS: [(&str, &str); 6] = [
        (
            "0001_initial.sql",
            "d7032a7fc91811aac036f2f6398ac06ab7bc1939ce0ab848e6545fb718b36800",
        ),
        (
            "0002_deactivation_clock_and_receipts.sql",
            "568b35caa881e7137fcefa1b92336e489ffb1d8b4fa29da10ec3b9ca9b928614",
        ),
        (
            "0003_answered_requests.sql",
            "3523bbb13f1b6edefbd1256f4f07b8eed30a71d81fcb6c346e2fc5da511f6b93",
        ),
        (
            "0004_revocation_list.sql",
            "604987a4596090572c80a08c051ef00de014fec67f9563b1ca25af073e1ffdd8",
        ),
        (
            "0005_mark_above_recorded_times.sql",
            "45f196c06a876bdcc733f612efdabdef755117d6ff47f52e32c05c73879951a4",
        ),
        (
            "0006_signing_sequence.sql",
            "e82cd5bf7d0bd32ba39594807efdaa19f08fc8c69384f9403baf362ba30da4c6",
        ),
    ];

    #[test]
    fn shipped_migrations_are_never_edited() {
        use sha2::Digest as _;

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        // Every file is a step: one left out of MIGRATION_STEPS would
        // never run.
        assert_eq!(files.len(), SCHEMA_VERSION, "{files:?}");
        // A migration added later is pinned here once it ships.
        for (n, (name, hash)) in SHIPPED_MIGRATIONS.into_iter().enumerate() {
            assert_eq!(files.get(n).map(String::as_str), Some(name), "{n}.");
            let digest = sha2::Sha256::digest(std::fs::read(dir.join(name)).unwrap());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, hash, "{n}. {name} was edited after it shipped");
        }
    }

    #[test]
    fn requests_pending_before_the_forgotten_mark_existed_stay_pending() {
        // A store of migration 2, with a license imported then and two
        // requests made since: its answered requests were deleted at once,
        // so every stored request is pending after the upgrade.
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = MIGRATIONS;
        migrations.to_version(&mut conn, 2).unwrap();
        conn.execute(
            "INSERT INTO licenses
                 (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
             VALUES ('t', 1, 'f', 'k', NULL, 1)",
            [],
        )
        .unwrap();
        let device = DeviceKey::from_seed(&[4; 32]);
        let requests = [request(&device, 10), request(&device, 20)];
        for (seq, request) in [7, 8].into_iter().zip(&requests) {
            conn.execute(
                "INSERT INTO pending_requests
                     (seq, request_id, token, request_hash, license_key_fingerprint, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    seq,
                    request.request.request_id.to_string(),
                    request.token(),
                    request.hash().to_string(),
                    "f",
                    1
                ],
            )
            .unwrap();
        }
        migrations.to_latest(&mut conn).unwrap();
        assert_eq!(pending_request_count(&conn).unwrap(), 2);
        assert_eq!(pending_request_hashes(&conn).unwrap().len(), 2);
        assert_eq!(
            pending_request_seq(&conn, &requests[0].hash()).unwrap(),
            Some(7)
        );
    }

    #[test]
    fn an_upgrade_leaves_the_mark_no_lower_than_any_recorded_time() {
        let dir = tempfile::tempdir().unwrap();
        let device = DeviceKey::from_seed(&[4; 32]);
        // (schema before the upgrade, mark then, the mark after)
        let cases = [
            (1, None, Some(500)),
            (4, Some(100), Some(500)),
            (4, None, None),
        ];
        for (n, (version, mark, expected)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("{n}.db"));
            let mut conn = Connection::open(&path).unwrap();
            MIGRATIONS.to_version(&mut conn, version).unwrap();
            conn.execute(
                "INSERT INTO licenses
                     (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
                 VALUES ('t', 1, 'f', 'k', NULL, 300)",
                [],
            )
            .unwrap();
            // The columns of that schema.
            let pending = request(&device, 500);
            conn.execute(
                "INSERT INTO pending_requests
                     (request_id, token, request_hash, license_key_fingerprint, created_at)
                 VALUES (?1, ?2, ?3, 'f', 500)",
                params![
                    pending.request.request_id.to_string(),
                    pending.token(),
                    pending.hash().to_string()
                ],
            )
            .unwrap();
            if let Some(mark) = mark {
                raise_high_water_mark(&conn, mark).unwrap();
            }
            drop(conn);
            // Only the first schema had no mark: a later store without
            // one lost it, and keeps it lost.
            let conn = open_connection(&path).unwrap();
            assert_eq!(high_water_mark(&conn).unwrap(), expected, "{n}.");
            assert_eq!(recorded_times(&conn).unwrap(), Some(500), "{n}.");
        }
    }

    #[test]
    fn an_upgrade_continues_the_sequence_above_every_receipt() {
        // (receipt counters before the upgrade, the next number after it)
        let cases: [(&[i64], u64); 3] = [(&[], 1), (&[1], 2), (&[1, 2, 5], 6)];
        for (n, (counters, next)) in cases.into_iter().enumerate() {
            let mut conn = Connection::open_in_memory().unwrap();
            let migrations = MIGRATIONS;
            migrations.to_version(&mut conn, 5).unwrap();
            conn.execute(
                "INSERT INTO licenses
                     (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
                 VALUES ('t', 1, 'f', 'k', NULL, 1)",
                [],
            )
            .unwrap();
            for counter in counters {
                conn.execute(
                    "INSERT INTO release_receipts
                         (counter, license_id, token, serial, license_key_fingerprint,
                          released_at)
                     VALUES (?1, 1, 'r', 1, 'f', 1)",
                    [counter],
                )
                .unwrap();
            }
            // A request of the old format, which carried no counter.
            conn.execute(
                "INSERT INTO pending_requests
                     (request_id, token, request_hash, license_key_fingerprint, created_at)
                 VALUES ('i', 't', 'h', 'f', 1)",
                [],
            )
            .unwrap();
            migrations.to_latest(&mut conn).unwrap();
            assert_eq!(last_sequence_number(&conn).unwrap(), next - 1, "{n}.");
            let tx = write_transaction(&mut conn).unwrap();
            assert_eq!(take_sequence_number(&tx).unwrap(), next, "{n}.");
            assert_eq!(take_sequence_number(&tx).unwrap(), next + 1, "{n}.");
            drop(tx);
            assert_eq!(
                last_sequence_number(&conn).unwrap(),
                next - 1,
                "{n}. rolled back"
            );
        }
    }

    #[tokio::test]
    async fn every_connection_gets_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("license.db")).await.unwrap();
        let (mode, synchronous, foreign_keys, timeout) = store
            .call(|conn| {
                let get = |name: &str| -> Result<String, StoreError> {
                    Ok(conn.pragma_query_value(None, name, |row| {
                        row.get::<_, rusqlite::types::Value>(0)
                            .map(|v| format!("{v:?}"))
                    })?)
                };
                Ok::<_, StoreError>((
                    get("journal_mode")?,
                    get("synchronous")?,
                    get("foreign_keys")?,
                    get("busy_timeout")?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "Text(\"wal\")");
        // FULL is 2.
        assert_eq!(synchronous, "Integer(2)");
        assert_eq!(foreign_keys, "Integer(1)");
        assert_eq!(timeout, "Integer(5000)");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn store_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.db");
        let store = Store::open(&path).await.unwrap();
        store
            .call(|conn| load_or_create_device_key(conn, 1))
            .await
            .unwrap();
        for file in [path.clone(), dir.path().join("license.db-wal")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        drop(store);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = Store::open(&path).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
