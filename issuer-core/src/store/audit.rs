//! The audit log: appended to inside each change's transaction, each row
//! chained to the one before it (`audit::chain`); read a page at a time,
//! newest first, or whole, oldest first.

use std::ops::ControlFlow;

use super::*;
use crate::audit::chain::{self, ChainHash, Linked};

/// A row of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub result: String,
    pub detail: String,
    /// The hash of the row it was chained to, as stored (`audit::chain`);
    /// `None` only if it was edited away.
    #[serde(rename = "prevHash")]
    pub prev_hash: Option<String>,
    /// Its own hash, as stored.
    pub hash: Option<String>,
}

/// The columns of a new row, each as stored.
pub(crate) struct NewAuditRow<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

const AUDIT_COLUMNS: &str = "id, at, actor, action, subject, result, detail, prev_hash, hash";

fn audit_entry(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        subject: row.get(4)?,
        result: row.get(5)?,
        detail: row.get(6)?,
        prev_hash: row.get(7)?,
        hash: row.get(8)?,
    })
}

/// Appends a row, chained to the newest one. The caller's transaction is
/// a write transaction (`BEGIN IMMEDIATE`), or one that fails to become one
/// if another writer committed since it read: either way no row can come
/// between the one read here and the insert.
pub(crate) fn insert_audit(
    conn: &Connection,
    row: &NewAuditRow<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let (id, prev) = match last_audit_link(conn)? {
        None => (1, ChainHash::GENESIS),
        Some((last, hash)) => {
            let prev = hash
                .as_deref()
                .and_then(ChainHash::parse)
                .unwrap_or_else(|| {
                    // Refusing would stop every change and login over an edited
                    // row; `audit verify` names it, and the console shows it.
                    tracing::warn!("audit row {last} has no valid chain hash; run `audit verify`");
                    ChainHash::GENESIS
                });
            (last + 1, prev)
        }
    };
    let hash = chain::link(
        &prev,
        &Linked {
            id,
            at: now,
            actor: row.actor,
            action: row.action,
            subject: row.subject,
            result: row.result,
            detail: row.detail,
        },
    );
    execute_cached(
        conn,
        "INSERT INTO audit (id, at, actor, action, subject, result, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id,
            now,
            row.actor,
            row.action,
            row.subject,
            row.result,
            row.detail,
            prev.to_string(),
            hash.to_string()
        ],
    )?;
    Ok(())
}

/// The newest row's id and stored hash.
pub(crate) fn last_audit_link(
    conn: &Connection,
) -> Result<Option<(i64, Option<String>)>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()?)
}

/// The id of the oldest row whose stored hash is `hash`. A full scan: it
/// runs only to explain a break in the chain.
pub(crate) fn audit_row_with_hash(
    conn: &Connection,
    hash: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT id FROM audit WHERE hash = ?1 ORDER BY id LIMIT 1",
        [hash],
        |row| row.get(0),
    )
    .optional()?)
}

/// Calls `visit` with every row, oldest first, until it breaks.
pub(crate) fn visit_audit_rows<B>(
    conn: &Connection,
    mut visit: impl FnMut(AuditEntry) -> ControlFlow<B>,
) -> Result<ControlFlow<B>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let ControlFlow::Break(b) = visit(audit_entry(row)?) {
            return Ok(ControlFlow::Break(b));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// The rows written before the chain, chained in id order from the genesis
/// value: the Rust step of migration 0009, in its transaction. It runs
/// once, as the migration does, so a hash edited away later is reported by
/// `audit verify`, never filled in again. A thousand rows at a time, so
/// that no statement reads rows it is updating.
pub(super) fn chain_rows_from_before_the_chain(
    tx: &rusqlite::Transaction<'_>,
) -> rusqlite_migration::HookResult {
    let mut prev = ChainHash::GENESIS;
    let mut after = i64::MIN;
    loop {
        let batch: Vec<AuditEntry> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT 1000"
            ))?;
            stmt.query_map([after], audit_entry)?
                .collect::<rusqlite::Result<_>>()?
        };
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.id;
        let mut update = tx.prepare("UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3")?;
        for entry in &batch {
            let hash = chain::link(
                &prev,
                &Linked {
                    id: entry.id,
                    at: entry.at,
                    actor: &entry.actor,
                    action: &entry.action,
                    subject: &entry.subject,
                    result: &entry.result,
                    detail: &entry.detail,
                },
            );
            update.execute(params![prev.to_string(), hash.to_string(), entry.id])?;
            prev = hash;
        }
    }
}

/// What a page of the log is narrowed to; `None` narrows nothing. The two
/// patterns are `LIKE` patterns, escaped with `\`.
pub(crate) struct AuditQuery<'a> {
    pub actor_pattern: Option<&'a str>,
    pub action: Option<&'a str>,
    pub result: Option<&'a str>,
    pub text_pattern: Option<&'a str>,
    /// Only rows older than this id.
    pub before: Option<i64>,
    /// Only rows at or after this time.
    pub since: Option<i64>,
    pub limit: u32,
}

/// A page's query. `id < COALESCE(?5, ..)`, not `?5 IS NULL OR id < ?5`:
/// the OR hides the bound from the planner, so a deep page walked every
/// newer row.
pub(super) const AUDIT_PAGE_SQL: &str = "SELECT id, at, actor, action, subject, result, detail,
            prev_hash, hash
     FROM audit
     WHERE id < COALESCE(?5, 9223372036854775807)
       AND (?1 IS NULL OR actor LIKE ?1 ESCAPE '\\')
       AND (?2 IS NULL OR action = ?2)
       AND (?3 IS NULL OR result = ?3)
       AND (?4 IS NULL OR subject LIKE ?4 ESCAPE '\\' OR detail LIKE ?4 ESCAPE '\\')
       AND (?7 IS NULL OR at >= ?7)
     ORDER BY id DESC LIMIT ?6";

/// The rows `query` selects, newest first.
pub(crate) fn audit_entries(
    conn: &Connection,
    query: &AuditQuery<'_>,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(AUDIT_PAGE_SQL)?;
    let rows = stmt.query_map(
        params![
            query.actor_pattern,
            query.action,
            query.result,
            query.text_pattern,
            query.before,
            query.limit,
            query.since
        ],
        audit_entry,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The steps of the plan SQLite chooses for a page of `query`.
#[cfg(test)]
pub(crate) fn audit_page_plan(
    conn: &Connection,
    query: &AuditQuery<'_>,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {AUDIT_PAGE_SQL}"))?;
    let rows = stmt.query_map(
        params![
            query.actor_pattern,
            query.action,
            query.result,
            query.text_pattern,
            query.before,
            query.limit,
            query.since
        ],
        |row| row.get::<_, String>(3),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
