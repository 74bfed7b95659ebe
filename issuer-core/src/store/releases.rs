//! Releases: seats freed with a receipt or by force.

use super::*;

/// A row of `releases`: a seat given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    #[serde(skip)]
    pub license_id: i64,
    #[serde(skip)]
    pub device_id: i64,
    pub client_device_id: DeviceId,
    /// The installation that held the seat.
    pub public_key: PublicKey,
    /// Freed by the vendor without a receipt.
    pub forced: bool,
    /// The receipt token as received; `None` when forced.
    pub receipt: Option<String>,
    pub serial: Option<u64>,
    pub counter: Option<u64>,
    /// The device's clock when it released, per its receipt.
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub receipt_released_at: Option<i64>,
    pub reason: Option<String>,
    pub actor: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub released_at: i64,
}

pub(super) const RELEASE_COLUMNS: &str = "r.license_id, r.device_id, d.client_device_id, r.public_key, \
     r.forced, r.receipt, r.serial, r.counter, r.receipt_released_at, r.reason, r.actor, \
     r.released_at";

pub(super) fn release_from_row(row: &Row<'_>) -> rusqlite::Result<ReleaseRecord> {
    Ok(ReleaseRecord {
        license_id: row.get(0)?,
        device_id: row.get(1)?,
        client_device_id: text_as(row, 2, DeviceId::parse)?,
        public_key: parsed(row, 3)?,
        forced: row.get(4)?,
        receipt: row.get(5)?,
        serial: optional_u64(row, 6)?,
        counter: optional_u64(row, 7)?,
        receipt_released_at: row.get(8)?,
        reason: row.get(9)?,
        actor: row.get(10)?,
        released_at: row.get(11)?,
    })
}

pub(crate) fn insert_release(conn: &Connection, release: &ReleaseRecord) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "INSERT INTO releases (license_id, device_id, public_key, forced, receipt, serial,
                               counter, receipt_released_at, reason, actor, released_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            release.license_id,
            release.device_id,
            release.public_key.to_string(),
            release.forced,
            release.receipt,
            release
                .serial
                .map(|serial| ordered("the receipt's serial", serial))
                .transpose()?,
            release
                .counter
                .map(|counter| ordered("the receipt's counter", counter))
                .transpose()?,
            release.receipt_released_at,
            release.reason,
            release.actor,
            release.released_at,
        ],
    )?;
    Ok(())
}

/// The highest receipt counter accepted from an installation, 0 if none.
pub(crate) fn last_receipt_counter(
    conn: &Connection,
    public_key: &PublicKey,
) -> Result<u64, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT COALESCE(MAX(counter), 0) FROM releases WHERE public_key = ?1",
        [public_key.to_string()],
        |row| u64_from(row, 0),
    )?)
}

/// The request with the highest counter among those answered with a
/// payload for `device_id` bound to the installation `public_key`, as
/// `(counter, serial)`; `None` if no such issuance recorded a counter.
pub(crate) fn last_answered_request(
    conn: &Connection,
    device_id: i64,
    public_key: &PublicKey,
) -> Result<Option<(u64, u64)>, StoreError> {
    Ok(query_row_cached(
        conn,
        "SELECT request_counter, serial FROM issuances
         WHERE device_id = ?1 AND public_key = ?2 AND request_counter IS NOT NULL
         ORDER BY request_counter DESC, serial DESC LIMIT 1",
        params![device_id, public_key.to_string()],
        |row| Ok((u64_from(row, 0)?, u64_from(row, 1)?)),
    )
    .optional()?)
}

/// The releases of a license, oldest first.
pub(crate) fn releases_of_license(
    conn: &Connection,
    license_id: i64,
) -> Result<Vec<ReleaseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases r JOIN devices d ON d.id = r.device_id
         WHERE r.license_id = ?1 ORDER BY r.released_at, r.id"
    ))?;
    let rows = stmt.query_map([license_id], release_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Frees a device's seat: it is unbound, so a new installation can bind it
/// or another device can take the seat. Returns false if the device was
/// not bound to `public_key`, in which case nothing changed.
pub(crate) fn unbind_device(
    conn: &Connection,
    device_id: i64,
    public_key: &PublicKey,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE devices SET public_key = NULL, bound_at = NULL
         WHERE id = ?1 AND public_key = ?2",
        params![device_id, public_key.to_string()],
    )?;
    Ok(changed == 1)
}

/// The issuance of `serial` for a device, if there is one.
pub(crate) fn issuance_by_serial(
    conn: &Connection,
    device_id: i64,
    serial: u64,
) -> Result<Option<IssuanceRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!(
            "SELECT {ISSUANCE_COLUMNS} FROM issuances i JOIN devices d ON d.id = i.device_id
                 WHERE i.device_id = ?1 AND i.serial = ?2"
        ),
        params![device_id, U64(serial)],
        issuance_from_row,
    )
    .optional()?)
}
