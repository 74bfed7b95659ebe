//! Issuances: one row per payload issued.

use super::*;

pub(super) const ISSUANCE_COLUMNS: &str = "i.license_id, i.device_id, d.client_device_id, i.request_hash, \
     i.request_id, i.serial, i.key_id, i.payload, i.issued_at, i.public_key, i.request_counter";

pub(super) fn issuance_from_row(row: &Row<'_>) -> rusqlite::Result<IssuanceRecord> {
    Ok(IssuanceRecord {
        license_id: row.get(0)?,
        device_id: row.get(1)?,
        client_device_id: text_as(row, 2, DeviceId::parse)?,
        request_hash: parsed(row, 3)?,
        request_id: parsed(row, 4)?,
        serial: u64_from(row, 5)?,
        key_id: parsed(row, 6)?,
        payload: row.get(7)?,
        issued_at: row.get(8)?,
        public_key: parsed_opt(row, 9)?,
        request_counter: optional_u64(row, 10)?,
    })
}

pub(crate) fn insert_issuance(
    conn: &Connection,
    issuance: &IssuanceRecord,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO issuances (license_id, device_id, request_hash, request_id, serial,
                                key_id, payload, issued_at, public_key, request_counter)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            issuance.license_id,
            issuance.device_id,
            issuance.request_hash.to_string(),
            issuance.request_id.to_string(),
            ordered("the serial", issuance.serial)?,
            issuance.key_id.to_string(),
            issuance.payload,
            issuance.issued_at,
            issuance.public_key.as_ref().map(ToString::to_string),
            issuance
                .request_counter
                .map(|counter| ordered("the request's counter", counter))
                .transpose()?,
        ],
    )?;
    Ok(())
}

pub(crate) fn issuance_by_request_hash(
    conn: &Connection,
    request_hash: &Digest,
) -> Result<Option<IssuanceRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!(
            "SELECT {ISSUANCE_COLUMNS} FROM issuances i JOIN devices d ON d.id = i.device_id
                 WHERE i.request_hash = ?1"
        ),
        [request_hash.to_string()],
        issuance_from_row,
    )
    .optional()?)
}

/// The issuances of a license, oldest first.
pub(crate) fn issuances_of_license(
    conn: &Connection,
    license_id: i64,
) -> Result<Vec<IssuanceRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ISSUANCE_COLUMNS} FROM issuances i JOIN devices d ON d.id = i.device_id
         WHERE i.license_id = ?1 ORDER BY i.issued_at, i.id"
    ))?;
    let rows = stmt.query_map([license_id], issuance_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest issuances of all licenses, newest first, with the customer.
pub(crate) fn latest_issuances(
    conn: &Connection,
    limit: u32,
) -> Result<Vec<(IssuanceRecord, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ISSUANCE_COLUMNS}, l.customer FROM issuances i
         JOIN devices d ON d.id = i.device_id JOIN licenses l ON l.id = i.license_id
         ORDER BY i.id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], |row| Ok((issuance_from_row(row)?, row.get(11)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The highest serial issued for a device, 0 if none.
pub(crate) fn max_serial(conn: &Connection, device_id: i64) -> Result<u64, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT COALESCE(MAX(serial), 0) FROM issuances WHERE device_id = ?1",
        [device_id],
        |row| u64_from(row, 0),
    )?)
}
