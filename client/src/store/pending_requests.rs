//! Pending license requests: recorded with the sequence number they took,
//! forgotten once a license answers them or one after them, and kept to
//! [`MAX_PENDING_REQUESTS`] license keys.

use ren3_shared::{Digest, VerifiedRequest};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::sequence::counter_column;
use super::{
    StoreError, execute_cached, query_row_cached, raise_high_water_mark, take_sequence_number,
    write_transaction,
};

/// At most this many requests are kept pending: an operator who registers
/// again and again must not grow the store without bound. Beyond it the
/// oldest request that is not its license key's newest is forgotten, and a
/// register that could only make room by forgetting some key's newest
/// request is refused ([`insert_pending_request`]).
pub const MAX_PENDING_REQUESTS: i64 = 16;

/// Whether a register was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOutcome {
    /// The request, signed with the sequence number it took, is stored.
    /// Boxed: a request is some 460 bytes, a refusal 8.
    Recorded(Box<VerifiedRequest>),
    /// Nothing was written, and no sequence number taken:
    /// [`MAX_PENDING_REQUESTS`] license keys each have a pending request,
    /// and this one is for yet another key.
    Refused {
        /// How many requests are pending.
        pending: u64,
    },
}

/// Records a new request durably, in one transaction: `sign` makes it with
/// the installation's next sequence number ([`take_sequence_number`]), and
/// the request, the number it took and the clock's mark `mark` (when given:
/// `None` leaves a doubted mark as it is, see [`super::high_water_mark`]) are
/// written together, deleting the forgotten requests.
///
/// Beyond [`MAX_PENDING_REQUESTS`], the oldest requests that are not the
/// newest of their license key go: a key's newest request is never
/// forgotten for a register under another key, so whoever can reach the
/// port cannot push out the request a customer already sent to the vendor
/// by registering other keys. When every pending request is its key's
/// newest and this one is for another key, nothing is written: the signed
/// request is dropped and its number is taken again by the next one, so no
/// number is ever shown for a request the store does not keep.
pub fn insert_pending_request<E: From<StoreError>>(
    conn: &mut Connection,
    now: i64,
    mark: Option<i64>,
    sign: impl FnOnce(u64) -> Result<VerifiedRequest, E>,
) -> Result<PendingOutcome, E> {
    let tx = write_transaction(conn)?;
    let counter = take_sequence_number(&tx)?;
    let request = sign(counter)?;
    if request.request.counter != counter {
        return Err(StoreError::Damaged(format!(
            "a request was signed with sequence number {} instead of {counter}",
            request.request.counter
        ))
        .into());
    }
    let recorded = record_pending_request(&tx, &request, now, mark)?;
    if let Some(pending) = recorded {
        // Dropping `tx` rolls back: the forgotten rows and the number stay.
        return Ok(PendingOutcome::Refused { pending });
    }
    tx.commit().map_err(StoreError::from)?;
    Ok(PendingOutcome::Recorded(Box::new(request)))
}

/// The writes of [`insert_pending_request`] inside `tx`; `Some(pending)`
/// when the register must be refused, after which `tx` must not commit.
fn record_pending_request(
    tx: &Transaction<'_>,
    request: &VerifiedRequest,
    now: i64,
    mark: Option<i64>,
) -> Result<Option<u64>, StoreError> {
    execute_cached(
        tx,
        concat!(
            "DELETE FROM pending_requests WHERE seq <= ",
            forgotten_through!()
        ),
        [],
    )?;
    write_pending_request(tx, request, now)?;
    // Every stored row is pending now; each key keeps its newest.
    let (count, keys): (i64, i64) = query_row_cached(
        tx,
        "SELECT count(*), count(DISTINCT license_key_fingerprint) FROM pending_requests",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if keys > MAX_PENDING_REQUESTS {
        return Ok(Some(u64::try_from(count - 1).unwrap_or_default()));
    }
    if count > MAX_PENDING_REQUESTS {
        execute_cached(
            tx,
            "DELETE FROM pending_requests WHERE seq IN (
                 SELECT seq FROM pending_requests AS p
                 WHERE seq < (SELECT max(seq) FROM pending_requests
                              WHERE license_key_fingerprint = p.license_key_fingerprint)
                 ORDER BY seq LIMIT ?1)",
            [count - MAX_PENDING_REQUESTS],
        )?;
    }
    if let Some(mark) = mark {
        raise_high_water_mark(tx, mark)?;
    }
    Ok(None)
}

/// Writes the row of one exported request, and nothing else: unlike
/// [`insert_pending_request`], it neither opens a transaction nor trims the
/// list. Tests and the HTTP bench fill a store beyond what it keeps this way.
pub fn write_pending_request(
    conn: &Connection,
    request: &VerifiedRequest,
    now: i64,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO pending_requests
             (request_id, token, request_hash, license_key_fingerprint, created_at, counter)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            request.request.request_id.to_string(),
            request.token(),
            request.hash().to_string(),
            request.request.license_key_fingerprint.to_string(),
            now,
            counter_column(request.request.counter)?,
        ],
    )?;
    Ok(())
}

/// How many requests are pending: stored and above the forgotten mark.
pub fn pending_request_count(conn: &Connection) -> Result<u64, StoreError> {
    // A bare count(*) counts a B-tree's entries without reading them; with
    // a condition it reads every one, at dozens of times the cost for a
    // long list. The forgotten rows still stored are at most a batch, found
    // by their rowid range.
    let count: i64 = query_row_cached(
        conn,
        concat!(
            "SELECT (SELECT count(*) FROM pending_requests)
                  - (SELECT count(*) FROM pending_requests WHERE seq <= ",
            forgotten_through!(),
            ")"
        ),
        [],
        |row| row.get(0),
    )?;
    u64::try_from(count).map_err(|_| StoreError::Damaged("a negative row count".into()))
}

/// The hashes of the pending requests, oldest first.
pub fn pending_request_hashes(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT request_hash FROM pending_requests WHERE seq > ",
        forgotten_through!(),
        " ORDER BY seq"
    ))?;
    let hashes = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(hashes)
}

/// The position of the pending request with `request_hash`, if there is
/// one: a forgotten request is not pending, even while it is still stored.
pub fn pending_request_seq(
    conn: &Connection,
    request_hash: &Digest,
) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        concat!(
            "SELECT seq FROM pending_requests WHERE request_hash = ?1 AND seq > ",
            forgotten_through!()
        ),
        [request_hash.to_string()],
        |row| row.get(0),
    )
    .optional()?)
}

#[cfg(test)]
mod tests {
    use ren3_shared::DeviceKey;

    use super::*;
    use crate::store::Store;
    use crate::store::test_requests::request_numbered;

    #[tokio::test]
    async fn pending_requests_keep_the_newest_sixteen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("license.db")).await.unwrap();
        let mut requests = Vec::new();
        for i in 0..20 {
            let outcome = store
                .call(move |conn| {
                    insert_pending_request::<StoreError>(conn, 1_800_000_000, None, |counter| {
                        let device = DeviceKey::from_seed(&[7u8; 32]);
                        Ok(request_numbered(&device, 1_800_000_000 + i, counter))
                    })
                })
                .await
                .unwrap();
            let PendingOutcome::Recorded(request) = outcome else {
                panic!("{i}. refused: {outcome:?}");
            };
            assert_eq!(request.request.counter, u64::try_from(i + 1).unwrap());
            requests.push(*request);
        }
        let (count, kept) = store
            .call(|conn| {
                let mut stmt =
                    conn.prepare("SELECT request_hash FROM pending_requests ORDER BY seq")?;
                let kept = stmt
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, StoreError>((pending_request_count(conn)?, kept))
            })
            .await
            .unwrap();
        assert_eq!(count, 16);
        let newest: Vec<String> = requests[4..].iter().map(|r| r.hash().to_string()).collect();
        assert_eq!(kept, newest);
    }
}
