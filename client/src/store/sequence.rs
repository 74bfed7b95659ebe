//! The installation's sequence number (docs/FORMAT.md §6), which every
//! license request and release receipt takes in the transaction that
//! records it.

use rusqlite::{Connection, Transaction};

use super::{StoreError, U64, execute_cached, query_row_cached};

/// Takes the installation's next sequence number inside `tx` (docs/FORMAT.md
/// §6): one more than the last one taken, by a request or a receipt. It
/// counts only once `tx` commits with the row it signs, so a refused
/// register or deactivation, which rolls back, takes none.
///
/// It is never below a number a stored request or receipt carries either,
/// so a store whose sequence row was lost still never signs a number twice.
pub fn take_sequence_number(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let last: i64 = query_row_cached(
        tx,
        "SELECT max(
             coalesce((SELECT last_counter FROM signing_sequence WHERE id = 1), 0),
             coalesce((SELECT max(counter) FROM release_receipts), 0),
             coalesce((SELECT max(counter) FROM pending_requests), 0))",
        [],
        |row| row.get(0),
    )?;
    let next = last
        .checked_add(1)
        .ok_or_else(|| StoreError::Damaged("the sequence number is exhausted".into()))?;
    execute_cached(
        tx,
        "INSERT INTO signing_sequence (id, last_counter) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET last_counter = excluded.last_counter",
        [next],
    )?;
    u64::try_from(next).map_err(|_| StoreError::Damaged("a negative sequence number".into()))
}

/// The sequence number taken last (0 before any), as the store records it.
pub fn last_sequence_number(conn: &Connection) -> Result<u64, StoreError> {
    let last: i64 = query_row_cached(
        conn,
        "SELECT coalesce((SELECT last_counter FROM signing_sequence WHERE id = 1), 0)",
        [],
        |row| row.get(0),
    )?;
    u64::try_from(last).map_err(|_| StoreError::Damaged("a negative sequence number".into()))
}

/// A counter as the store keeps it. The sequence takes `max(counter)` in
/// SQL, which orders values only up to [`U64::SQL_ORDERED_MAX`]; every
/// counter this installation signs came from [`take_sequence_number`],
/// so it is never above that.
pub(super) fn counter_column(counter: u64) -> Result<U64, StoreError> {
    if counter > U64::SQL_ORDERED_MAX {
        return Err(StoreError::Damaged(format!(
            "the counter {counter} is out of range"
        )));
    }
    Ok(U64(counter))
}

#[cfg(test)]
mod tests {
    use ren3_shared::DeviceKey;

    use super::*;
    use crate::store::schema::MIGRATIONS;
    use crate::store::test_requests::request_numbered;
    use crate::store::{write_pending_request, write_transaction};

    #[test]
    fn the_sequence_never_falls_below_a_stored_counter() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let device = DeviceKey::from_seed(&[4; 32]);
        write_pending_request(&conn, &request_numbered(&device, 1, 7), 1).unwrap();
        // An operator deleted the row.
        conn.execute("DELETE FROM signing_sequence", []).unwrap();
        let tx = write_transaction(&mut conn).unwrap();
        assert_eq!(take_sequence_number(&tx).unwrap(), 8);
        tx.commit().unwrap();
        assert_eq!(last_sequence_number(&conn).unwrap(), 8);
    }
}
