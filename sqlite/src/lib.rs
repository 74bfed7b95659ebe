//! What both ReN3 stores (the client's license store and the issuer's)
//! do with SQLite the same way: the pragmas every connection needs, and
//! statements through the connection's cache.

use std::time::Duration;

use rusqlite::{Connection, Params, Row};

/// Sets what every connection of a store needs; pragmas are per
/// connection, so they cannot live in a migration:
/// - waits up to `busy_timeout` for another process's lock;
/// - keeps up to `statement_cache` prepared statements;
/// - the WAL journal (readers never block the writer) with
///   `synchronous=FULL`, so a committed transaction survives a power loss;
/// - foreign keys enforced.
///
/// # Errors
/// SQLite's, for instance `NotADatabase` for a file that is not one (read
/// lazily, at the first statement), or
/// [`Error::InvalidParameterName`](rusqlite::Error::InvalidParameterName)
/// naming the journal mode when WAL could not be set (an in-memory or
/// read-only database).
pub fn configure(
    conn: &Connection,
    busy_timeout: Duration,
    statement_cache: usize,
) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(statement_cache);
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed `{mode}`: the store needs WAL"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// [`Connection::execute`] through the connection's statement cache: a
/// store's operation runs a dozen statements, and preparing one costs
/// about as much as running it.
pub fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`Connection::query_row`] through the connection's statement cache.
pub fn query_row_cached<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_file_store_gets_wal_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("store.db")).unwrap();
        configure(&conn, Duration::from_secs(1), 8).unwrap();
        let pragma = |name: &str| -> String {
            conn.pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
        assert_eq!(pragma("synchronous"), "Integer(2)");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        execute_cached(&conn, "CREATE TABLE t (x INTEGER)", []).unwrap();
        execute_cached(&conn, "INSERT INTO t VALUES (?1)", [7]).unwrap();
        let x: i64 = query_row_cached(&conn, "SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 7);
    }

    #[test]
    fn a_store_that_cannot_use_wal_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let err = configure(&conn, Duration::from_secs(1), 8).unwrap_err();
        assert!(err.to_string().contains("needs WAL"), "{err}");
    }
}
