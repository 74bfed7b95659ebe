//! Console users: names, password hashes (Argon2id, made by `users`) and
//! creation times.

use super::*;

/// A user as stored, with the hash of their password.
pub(crate) struct UserRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub password_hash: String,
}

pub(crate) fn user_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(
        query_row_cached(conn, "SELECT 1 FROM users WHERE name = ?1", [name], |_| {
            Ok(())
        })
        .optional()?
        .is_some(),
    )
}

/// Inserts a user and returns their id.
pub(crate) fn insert_user(
    conn: &Connection,
    name: &str,
    password_hash: &str,
    now: i64,
) -> Result<i64, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO users (name, password_hash, created_at) VALUES (?1, ?2, ?3)",
        params![name, password_hash, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Deletes the user `name` (their sessions go with them, `ON DELETE
/// CASCADE`); whether there was one.
pub(crate) fn delete_user(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(execute_cached(conn, "DELETE FROM users WHERE name = ?1", [name])? > 0)
}

/// Every user, by name: `(id, name, created_at)`.
pub(crate) fn users(conn: &Connection) -> Result<Vec<(i64, String, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at FROM users ORDER BY name")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn user_by_name(conn: &Connection, name: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT id, name, created_at, password_hash FROM users WHERE name = ?1",
        [name],
        |row| {
            Ok(UserRow {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
                password_hash: row.get(3)?,
            })
        },
    )
    .optional()?)
}
