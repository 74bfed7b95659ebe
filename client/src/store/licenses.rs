//! Every imported license: the active one is the one row neither replaced
//! nor deactivated, and the rest stay as history.

use ren3_shared::binary::BytesError;
use ren3_shared::{Digest, KeyId, VerifiedPayload};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::{StoreError, U64, execute_cached, query_row_cached};

/// Forgotten pending requests are deleted once this many may have piled
/// up, by the import that forgets them, or by the next register.
const FORGOTTEN_BATCH: i64 = 32;

/// The stored columns of the active license that policy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLicenseRow {
    /// The row's id in `licenses`.
    pub id: i64,
    /// The payload's canonical token, as imported.
    pub token: String,
    /// The license's serial.
    pub serial: u64,
    /// The fingerprint of the license key it was issued for; `None` when
    /// the stored text is no fingerprint (the row was edited), which is
    /// then the fingerprint of no license key. Text has one form only
    /// ([`ren3_shared::binary`]), so comparing values compares the text.
    pub license_key_fingerprint: Option<Digest>,
    /// The issuer key that signed it, as recorded at import; read with
    /// [`Self::key_id`], which fails only when it is needed.
    key_id: Result<KeyId, BytesError>,
}

impl ActiveLicenseRow {
    /// The recorded key id.
    pub fn key_id(&self) -> Result<KeyId, StoreError> {
        self.key_id.clone().map_err(|e| {
            StoreError::Damaged(format!("the active license's key id is not one: {e}"))
        })
    }
}

/// The active license's row, if one is active: the one row not replaced
/// or deactivated. Its token is not verified here.
pub fn active_license(conn: &Connection) -> Result<Option<ActiveLicenseRow>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT id, token, serial, license_key_fingerprint, key_id FROM licenses
             WHERE replaced_at IS NULL",
        [],
        |row| {
            Ok(ActiveLicenseRow {
                id: row.get(0)?,
                token: row.get(1)?,
                serial: row.get::<_, U64>(2)?.0,
                license_key_fingerprint: row.get::<_, String>(3)?.parse().ok(),
                key_id: row.get::<_, String>(4)?.parse(),
            })
        },
    )
    .optional()?)
}

/// The distinct tokens of every stored license, active or not: each
/// carries a revocation list, and the newest of them counts at start-up.
pub fn license_tokens(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT token FROM licenses")?;
    let tokens = stmt
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(tokens)
}

/// Makes `payload`, whose canonical token is `token`, the active license
/// inside `tx`: the old active row is marked replaced, the new one inserted,
/// and the request it answers (at `answered_seq`) is forgotten together with
/// every request made before it. Forgotten rows are deleted once a batch of
/// them may have piled up. Returns how many pending requests it forgot.
pub fn install_license(
    tx: &Transaction<'_>,
    payload: &VerifiedPayload,
    token: &str,
    answered_seq: i64,
    now: i64,
) -> Result<u64, StoreError> {
    let license = &payload.license;
    // Counted before the new row moves the mark: the rowid range holds the
    // newly forgotten requests only.
    let forgotten: i64 = query_row_cached(
        tx,
        concat!(
            "SELECT count(*) FROM pending_requests WHERE seq <= ?1 AND seq > ",
            forgotten_through!()
        ),
        [answered_seq],
        |row| row.get(0),
    )?;
    execute_cached(
        tx,
        "UPDATE licenses SET replaced_at = ?1 WHERE replaced_at IS NULL",
        [now],
    )?;
    execute_cached(
        tx,
        "INSERT INTO licenses
             (token, serial, license_key_fingerprint, key_id, expires_at, imported_at,
              answered_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token,
            U64(license.serial),
            license.license_key_fingerprint.to_string(),
            payload.key_id.to_string(),
            license.expires_at,
            now,
            answered_seq,
        ],
    )?;
    let oldest: Option<i64> =
        query_row_cached(tx, "SELECT min(seq) FROM pending_requests", [], |row| {
            row.get(0)
        })?;
    if oldest.is_some_and(|oldest| answered_seq - oldest >= FORGOTTEN_BATCH) {
        execute_cached(
            tx,
            "DELETE FROM pending_requests WHERE seq <= ?1",
            [answered_seq],
        )?;
    }
    u64::try_from(forgotten).map_err(|_| StoreError::Damaged("a negative row count".into()))
}

/// When the newest license was deactivated, if the newest one was and none
/// has been imported since.
pub fn deactivated_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT deactivated_at FROM licenses ORDER BY id DESC LIMIT 1",
        [],
        |row| row.get::<_, Option<i64>>(0),
    )
    .optional()?
    .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::MIGRATIONS;

    #[test]
    fn at_most_one_license_is_active() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let insert = "INSERT INTO licenses
            (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
            VALUES ('t', 1, 'f', 'k', NULL, 1)";
        conn.execute(insert, []).unwrap();
        assert!(conn.execute(insert, []).is_err());
        conn.execute("UPDATE licenses SET replaced_at = 2", [])
            .unwrap();
        conn.execute(insert, []).unwrap();
    }

    /// Earlier releases wrote the serial's bit pattern by hand; `U64`
    /// reads those rows as the same serial.
    #[test]
    fn serials_beyond_i64_written_before_read_the_same() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO licenses
                (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
             VALUES ('t', ?1, 'f', 'k', NULL, 1)",
            [-1_i64],
        )
        .unwrap();
        assert_eq!(active_license(&conn).unwrap().unwrap().serial, u64::MAX);
    }

    #[test]
    fn the_active_row_reads_fingerprints_and_key_ids_as_typed_values() {
        let mut conn = Connection::open_in_memory().unwrap();
        MIGRATIONS.to_latest(&mut conn).unwrap();
        let fingerprint = ren3_shared::binary::Bytes([2; 32]);
        let key_id = ren3_shared::binary::Bytes([1; 8]);
        // (stored fingerprint text, stored key id text, read fingerprint,
        // whether the key id reads)
        let cases = [
            (
                fingerprint.to_string(),
                key_id.to_string(),
                Some(fingerprint),
                true,
            ),
            // An edited row: no fingerprint, and a key id that fails when read.
            ("f".to_owned(), "k".to_owned(), None, false),
        ];
        for (n, (stored_fingerprint, stored_key_id, read, key_id_reads)) in
            cases.into_iter().enumerate()
        {
            conn.execute("DELETE FROM licenses", []).unwrap();
            conn.execute(
                "INSERT INTO licenses
                    (token, serial, license_key_fingerprint, key_id, expires_at, imported_at)
                 VALUES ('t', 1, ?1, ?2, NULL, 1)",
                params![stored_fingerprint, stored_key_id],
            )
            .unwrap();
            let row = active_license(&conn).unwrap().unwrap();
            assert_eq!(row.license_key_fingerprint, read, "{n}.");
            assert_eq!(row.key_id().ok(), key_id_reads.then_some(key_id), "{n}.");
        }
    }
}
