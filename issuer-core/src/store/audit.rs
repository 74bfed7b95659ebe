//! The audit log: appended to inside each change's transaction, read a
//! page at a time, newest first.

use super::*;

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
}

/// The columns of a new row, each as stored.
pub(crate) struct NewAuditRow<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

pub(crate) fn insert_audit(
    conn: &Connection,
    row: &NewAuditRow<'_>,
    now: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO audit (at, actor, action, subject, result, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            now,
            row.actor,
            row.action,
            row.subject,
            row.result,
            row.detail
        ],
    )?;
    Ok(())
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
    pub limit: u32,
}

/// A page's query. `id < COALESCE(?5, ..)`, not `?5 IS NULL OR id < ?5`:
/// the OR hides the bound from the planner, so a deep page walked every
/// newer row.
pub(super) const AUDIT_PAGE_SQL: &str = "SELECT id, at, actor, action, subject, result, detail
     FROM audit
     WHERE id < COALESCE(?5, 9223372036854775807)
       AND (?1 IS NULL OR actor LIKE ?1 ESCAPE '\\')
       AND (?2 IS NULL OR action = ?2)
       AND (?3 IS NULL OR result = ?3)
       AND (?4 IS NULL OR subject LIKE ?4 ESCAPE '\\' OR detail LIKE ?4 ESCAPE '\\')
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
            query.limit
        ],
        |row| {
            Ok(AuditEntry {
                id: row.get(0)?,
                at: row.get(1)?,
                actor: row.get(2)?,
                action: row.get(3)?,
                subject: row.get(4)?,
                result: row.get(5)?,
                detail: row.get(6)?,
            })
        },
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
            query.limit
        ],
        |row| row.get::<_, String>(3),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
