//! The trust chain: the root's public key, certificates and revocation
//! lists.

use super::*;

/// The root public key this store's payloads chain to, if one is installed.
pub(crate) fn trust_root(conn: &Connection) -> Result<Option<PublicKey>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT public_key FROM trust_root WHERE id = 1",
        [],
        |row| parsed(row, 0),
    )
    .optional()?)
}

pub(crate) fn insert_trust_root(
    conn: &Connection,
    public_key: &PublicKey,
    at: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO trust_root (id, public_key, installed_at) VALUES (1, ?1, ?2)",
        params![public_key.to_string(), at],
    )?;
    Ok(())
}

/// A stored certificate token, as installed; verify it before use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateRow {
    pub key_id: KeyId,
    pub token: String,
}

/// Installs (or replaces) the certificate of a signing key.
pub(crate) fn upsert_certificate(
    conn: &Connection,
    body: &ren3_shared::CertificateBody,
    token: &str,
    at: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO certificates (key_id, token, not_before, not_after, issued_at, installed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (key_id) DO UPDATE SET token = excluded.token,
             not_before = excluded.not_before, not_after = excluded.not_after,
             issued_at = excluded.issued_at, installed_at = excluded.installed_at",
        params![
            body.key_id.to_string(),
            token,
            body.not_before,
            body.not_after,
            body.issued_at,
            at
        ],
    )?;
    Ok(())
}

/// Every stored certificate, by key.
pub(crate) fn certificates(conn: &Connection) -> Result<Vec<CertificateRow>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT key_id, token FROM certificates ORDER BY rowid")?;
    let rows = stmt.query_map([], |row| {
        Ok(CertificateRow {
            key_id: parsed(row, 0)?,
            token: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn certificate_of(
    conn: &Connection,
    key_id: &KeyId,
) -> Result<Option<String>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT token FROM certificates WHERE key_id = ?1",
        [key_id.to_string()],
        |row| row.get(0),
    )
    .optional()?)
}

/// The newest installed revocation list: its version and token.
pub(crate) fn newest_revocation_list(
    conn: &Connection,
) -> Result<Option<(u64, String)>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT version, token FROM revocation_lists ORDER BY version DESC LIMIT 1",
        [],
        |row| Ok((u64_from(row, 0)?, row.get(1)?)),
    )
    .optional()?)
}

pub(crate) fn insert_revocation_list(
    conn: &Connection,
    version: u64,
    token: &str,
    at: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO revocation_lists (version, token, installed_at) VALUES (?1, ?2, ?3)",
        params![
            ordered("the revocation list's version", version)?,
            token,
            at
        ],
    )?;
    Ok(())
}
