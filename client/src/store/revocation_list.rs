//! The newest revocation list this installation has seen, one row.

use ren3_shared::RevocationList;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::{StoreError, U64, execute_cached, query_row_cached};

/// The stored revocation list's token, if one is stored. The caller
/// verifies it: a row is never trusted for what it says.
pub fn stored_revocation_list(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT token FROM revocation_list WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .optional()?)
}

/// Stores `list` in place of the stored one. The caller has checked that
/// it is newer than the effective list, which is never older than a stored
/// row that verifies; a row that does not verify is overwritten whatever
/// version it claims. Runs inside the caller's transaction, or alone.
pub fn store_revocation_list(
    conn: &Connection,
    list: &RevocationList,
    now: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO revocation_list (id, version, token, stored_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET
             version = excluded.version, token = excluded.token, stored_at = excluded.stored_at",
        params![U64(list.version()), list.token(), now],
    )?;
    Ok(())
}
