//! The clock's high-water mark: the latest time this installation has
//! seen, written with every other time the store records.

use rusqlite::{Connection, OptionalExtension as _};

use super::{StoreError, execute_cached, query_row_cached};

/// The newest time the store records besides the clock's mark (see
/// `newest_recorded_time!`); `None` when it records none. A mark below it was
/// lowered.
pub fn recorded_times(conn: &Connection) -> Result<Option<i64>, StoreError> {
    let newest: i64 = query_row_cached(
        conn,
        concat!("SELECT ", newest_recorded_time!()),
        [],
        |row| row.get(0),
    )?;
    Ok((newest > i64::MIN).then_some(newest))
}

/// The high-water mark of the clock recorded in the store, if any.
///
/// With a license installed the mark is never missing, and never below
/// [`recorded_times`], unless the store was edited: every change that
/// writes a time also writes a mark at least as late in the same
/// transaction. Start-up tells the handle ([`crate::license::MarkProblem`]),
/// and from then on nothing raises or re-creates a doubted mark but the
/// import or deactivation that ends its license: rewriting it again would
/// erase the evidence.
pub fn high_water_mark(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT high_water_mark FROM clock WHERE id = 1",
        [],
        |row| row.get(0),
    )
    .optional()?)
}

/// Raises the recorded high-water mark to `mark`; it never goes down.
/// Runs inside the caller's transaction, or alone (autocommit).
pub fn raise_high_water_mark(conn: &Connection, mark: i64) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO clock (id, high_water_mark) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET high_water_mark = excluded.high_water_mark
             WHERE excluded.high_water_mark > clock.high_water_mark",
        [mark],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::MIGRATIONS;

    #[test]
    fn high_water_mark_never_goes_down() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        assert_eq!(high_water_mark(&conn).unwrap(), None);
        for (n, (raise_to, expected)) in [(100, 100), (200, 200), (150, 200), (200, 200)]
            .into_iter()
            .enumerate()
        {
            raise_high_water_mark(&conn, raise_to).unwrap();
            assert_eq!(high_water_mark(&conn).unwrap(), Some(expected), "{n}.");
        }
    }
}
