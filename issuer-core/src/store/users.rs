//! Console users: names, password hashes (Argon2id, made by `users`),
//! roles and creation times.

use super::*;

/// A user as stored, with the hash of their password. `role` is `None` for
/// a user made before roles, whose role no one has set since.
pub(crate) struct UserRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub password_hash: String,
    pub role: Option<String>,
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
    role: &str,
    now: i64,
) -> Result<i64, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO users (name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, password_hash, role, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Sets the role of `name`; whether there is such a user.
pub(crate) fn set_user_role(conn: &Connection, name: &str, role: &str) -> Result<bool, StoreError> {
    Ok(execute_cached(
        conn,
        "UPDATE users SET role = ?2 WHERE name = ?1",
        params![name, role],
    )? > 0)
}

/// Replaces the password hash of `name` and ends their sessions; whether
/// there is such a user.
pub(crate) fn set_user_password(
    conn: &Connection,
    name: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE users SET password_hash = ?2 WHERE name = ?1",
        params![name, password_hash],
    )? > 0;
    execute_cached(
        conn,
        "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
        [name],
    )?;
    Ok(changed)
}

/// Deletes the user `name` (their sessions go with them, `ON DELETE
/// CASCADE`); whether there was one.
pub(crate) fn delete_user(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(execute_cached(conn, "DELETE FROM users WHERE name = ?1", [name])? > 0)
}

/// A user as listed: no password hash.
pub(crate) struct ListedUser {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub role: Option<String>,
}

/// Every user, by name.
pub(crate) fn users(conn: &Connection) -> Result<Vec<ListedUser>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, created_at, role FROM users ORDER BY name")?;
    let rows = stmt.query_map([], |row| {
        Ok(ListedUser {
            id: row.get(0)?,
            name: row.get(1)?,
            created_at: row.get(2)?,
            role: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn user_by_name(conn: &Connection, name: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT id, name, created_at, password_hash, role FROM users WHERE name = ?1",
        [name],
        |row| {
            Ok(UserRow {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
                password_hash: row.get(3)?,
                role: row.get(4)?,
            })
        },
    )
    .optional()?)
}
