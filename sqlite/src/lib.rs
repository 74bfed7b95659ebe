//! What both ReN3 stores (the client's license store and the issuer's)
//! do with SQLite the same way: the pragmas every connection needs,
//! statements through the connection's cache, and the one way a `u64`
//! lives in a column ([`U64`]).

use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Params, Row};

/// A `u64` in an INTEGER column, the one way both stores keep one: its
/// two's-complement bit pattern. Every `u64` round-trips, values up to
/// [`U64::SQL_ORDERED_MAX`] are stored as themselves (so a store can be
/// read with `sqlite3`), and stores written before this type existed read
/// the same values: the client kept this pattern, and the issuer never
/// wrote a value above `i64::MAX`.
///
/// SQL compares the column as a signed integer, so a value above
/// [`U64::SQL_ORDERED_MAX`] sorts below 0. A store that orders or compares
/// such a column in SQL (`MAX`, `ORDER BY`, `<`) must refuse larger
/// values before it writes them; the issuer does, for the counters
/// installations choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U64(pub u64);

impl U64 {
    /// The largest value SQL orders correctly: `i64::MAX`.
    pub const SQL_ORDERED_MAX: u64 = i64::MAX.cast_unsigned();
}

impl ToSql for U64 {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.cast_signed()))
    }
}

impl FromSql for U64 {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(|v| U64(v.cast_unsigned()))
    }
}

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
    fn every_u64_round_trips_and_the_ordered_range_is_stored_as_itself() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let values = [
            0,
            1,
            U64::SQL_ORDERED_MAX,
            U64::SQL_ORDERED_MAX + 1,
            u64::MAX,
        ];
        for value in values {
            conn.execute("DELETE FROM t", []).unwrap();
            conn.execute("INSERT INTO t VALUES (?1)", [U64(value)])
                .unwrap();
            let back: U64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(back, U64(value));
            let raw: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
            if value <= U64::SQL_ORDERED_MAX {
                assert_eq!(raw.cast_unsigned(), value, "stored as itself");
            } else {
                assert!(raw < 0, "{value} is stored as its bit pattern");
            }
        }
    }

    #[test]
    fn sql_orders_the_column_only_up_to_the_ordered_max() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        for value in [1, U64::SQL_ORDERED_MAX, U64::SQL_ORDERED_MAX + 1] {
            conn.execute("INSERT INTO t VALUES (?1)", [U64(value)])
                .unwrap();
        }
        // Why a store that compares in SQL refuses values above it.
        let max: U64 = conn
            .query_row("SELECT max(x) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(max, U64(U64::SQL_ORDERED_MAX));
    }

    #[test]
    fn a_text_value_is_not_read_as_a_u64() {
        let conn = Connection::open_in_memory().unwrap();
        let read = conn.query_row("SELECT 'seven'", [], |r| r.get::<_, U64>(0));
        assert!(read.is_err());
    }

    #[test]
    fn a_store_that_cannot_use_wal_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let err = configure(&conn, Duration::from_secs(1), 8).unwrap_err();
        assert!(err.to_string().contains("needs WAL"), "{err}");
    }
}
