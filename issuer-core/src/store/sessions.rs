//! Console sessions and failed logins. Sessions are found by the SHA-256
//! of their id (`sessions::hash_id`): the store never holds an id itself.

use super::*;

/// A session as stored.
pub(crate) struct SessionRow {
    pub user_id: i64,
    pub user_name: String,
    /// `None`: a user from before roles whose role no one has set.
    pub user_role: Option<String>,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// Deletes the sessions last seen at or before `idle_before`, or created
/// at or before `created_before`.
pub(crate) fn delete_stale_sessions(
    conn: &Connection,
    idle_before: i64,
    created_before: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "DELETE FROM sessions WHERE last_seen <= ?1 OR created_at <= ?2",
        params![idle_before, created_before],
    )?;
    Ok(())
}

pub(crate) fn insert_session(
    conn: &Connection,
    id_hash: &str,
    user_id: i64,
    csrf_token: &str,
    now: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id_hash, user_id, csrf_token, now],
    )?;
    Ok(())
}

pub(crate) fn session_by_hash(
    conn: &Connection,
    id_hash: &str,
) -> Result<Option<SessionRow>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT s.user_id, u.name, s.csrf_token, s.created_at, s.last_seen, u.role
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
        [id_hash],
        |row| {
            Ok(SessionRow {
                user_id: row.get(0)?,
                user_name: row.get(1)?,
                csrf_token: row.get(2)?,
                created_at: row.get(3)?,
                last_seen: row.get(4)?,
                user_role: row.get(5)?,
            })
        },
    )
    .optional()?)
}

pub(crate) fn delete_session(conn: &Connection, id_hash: &str) -> Result<(), StoreError> {
    execute_cached(conn, "DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

pub(crate) fn touch_session(conn: &Connection, id_hash: &str, now: i64) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "UPDATE sessions SET last_seen = ?1 WHERE id_hash = ?2",
        params![now, id_hash],
    )?;
    Ok(())
}

/// The failed logins of `key` after `since`.
pub(crate) fn login_failures_since(
    conn: &Connection,
    key: &str,
    since: i64,
) -> Result<u32, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT COUNT(*) FROM login_failures WHERE throttle_key = ?1 AND at > ?2",
        params![key, since],
        |row| row.get(0),
    )?)
}

/// Forgets the failed logins at or before `before`.
pub(crate) fn delete_login_failures_before(
    conn: &Connection,
    before: i64,
) -> Result<(), StoreError> {
    execute_cached(conn, "DELETE FROM login_failures WHERE at <= ?1", [before])?;
    Ok(())
}

/// Inserts a failed login and returns its id.
pub(crate) fn insert_login_failure(
    conn: &Connection,
    key: &str,
    at: i64,
) -> Result<i64, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO login_failures (throttle_key, at) VALUES (?1, ?2)",
        params![key, at],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn delete_login_failure(conn: &Connection, id: i64) -> Result<(), StoreError> {
    execute_cached(conn, "DELETE FROM login_failures WHERE id = ?1", [id])?;
    Ok(())
}

pub(crate) fn delete_login_failures_of(conn: &Connection, key: &str) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "DELETE FROM login_failures WHERE throttle_key = ?1",
        [key],
    )?;
    Ok(())
}
