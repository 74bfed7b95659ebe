//! Signing keys: their public halves, and retirement.

use super::*;

pub(super) const SIGNING_KEY_COLUMNS: &str = "key_id, public_key, created_at, retired_at";

pub(super) fn signing_key_from_row(row: &Row<'_>) -> rusqlite::Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        key_id: parsed(row, 0)?,
        public_key: parsed(row, 1)?,
        created_at: row.get(2)?,
        retired_at: row.get(3)?,
    })
}

pub(crate) fn insert_signing_key(
    conn: &Connection,
    key: &SigningKeyRecord,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO signing_keys (key_id, public_key, created_at, retired_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            key.key_id.to_string(),
            key.public_key.to_string(),
            key.created_at,
            key.retired_at
        ],
    )?;
    Ok(())
}

/// All signing keys, oldest first.
pub(crate) fn signing_keys(conn: &Connection) -> Result<Vec<SigningKeyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([], signing_key_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The key new payloads are signed with: the newest one that is not
/// retired and has a certificate. A key made by rotation signs only once
/// its certificate is installed.
pub(crate) fn current_signing_key(
    conn: &Connection,
) -> Result<Option<SigningKeyRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT k.key_id, k.public_key, k.created_at, k.retired_at
           FROM signing_keys k JOIN certificates c ON c.key_id = k.key_id
          WHERE k.retired_at IS NULL
          ORDER BY k.created_at DESC, k.rowid DESC LIMIT 1",
        [],
        signing_key_from_row,
    )
    .optional()?)
}

/// Marks a key retired at `at`. Returns false if it was not an unretired
/// key, in which case nothing changed.
pub(crate) fn retire_signing_key(
    conn: &Connection,
    key_id: &KeyId,
    at: i64,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE signing_keys SET retired_at = ?1 WHERE key_id = ?2 AND retired_at IS NULL",
        params![at, key_id.to_string()],
    )?;
    Ok(changed == 1)
}

/// The latest `issued_at` of the payloads a key signed, if it signed any.
pub(crate) fn last_issued_with_key(
    conn: &Connection,
    key_id: &KeyId,
) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT MAX(issued_at) FROM issuances WHERE key_id = ?1",
        [key_id.to_string()],
        |row| row.get(0),
    )?)
}
