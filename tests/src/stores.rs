//! The binaries' SQLite stores read directly and read-only: an integrity
//! check, and what the client's store holds.

use std::path::Path;

/// `PRAGMA integrity_check` of an SQLite file, read-only: `"ok"` when sound.
pub fn sqlite_integrity(path: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

/// One row of the client's `licenses` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLicense {
    pub id: i64,
    pub token: String,
    pub serial: u64,
    pub active: bool,
    pub deactivated: bool,
}

/// One row of the client's `release_receipts` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub counter: u64,
    pub license_id: i64,
    pub serial: u64,
    pub token: String,
}

/// What the client's store holds, read directly and read-only: licenses
/// by `id` (commit order), pending request hashes by `seq`, receipts by
/// counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStoreSnapshot {
    pub licenses: Vec<StoredLicense>,
    pub pending_hashes: Vec<String>,
    pub receipts: Vec<StoredReceipt>,
}

impl ClientStoreSnapshot {
    pub fn read(path: &Path) -> Self {
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        // One read transaction, so the three tables are one moment's state.
        conn.execute_batch("BEGIN").unwrap();
        let licenses = conn
            .prepare(
                "SELECT id, token, serial, replaced_at IS NULL, deactivated_at IS NOT NULL
                 FROM licenses ORDER BY id",
            )
            .unwrap()
            .query_map([], |row| {
                Ok(StoredLicense {
                    id: row.get(0)?,
                    token: row.get(1)?,
                    serial: row.get::<_, i64>(2)?.cast_unsigned(),
                    active: row.get(3)?,
                    deactivated: row.get(4)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // The pending requests: those above the newest license's
        // `answered_seq` (client migration 3). Forgotten ones may stay
        // stored until a batch of them is deleted.
        let pending_hashes = conn
            .prepare(
                "SELECT request_hash FROM pending_requests
                 WHERE seq > coalesce((SELECT answered_seq FROM licenses ORDER BY id DESC LIMIT 1), 0)
                 ORDER BY seq",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let receipts = conn
            .prepare(
                "SELECT counter, license_id, serial, token FROM release_receipts
                 ORDER BY counter",
            )
            .unwrap()
            .query_map([], |row| {
                Ok(StoredReceipt {
                    counter: row.get::<_, i64>(0)?.cast_unsigned(),
                    license_id: row.get(1)?,
                    serial: row.get::<_, i64>(2)?.cast_unsigned(),
                    token: row.get(3)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        Self {
            licenses,
            pending_hashes,
            receipts,
        }
    }

    /// The active license's token, if one is active.
    pub fn active_token(&self) -> Option<&str> {
        let active: Vec<&StoredLicense> = self.licenses.iter().filter(|l| l.active).collect();
        assert!(
            active.len() <= 1,
            "more than one active license: {active:?}"
        );
        active.first().map(|l| l.token.as_str())
    }
}
