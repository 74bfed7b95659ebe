//! Devices: registration, binding and seat counts.

use super::*;

pub(super) const DEVICE_COLUMNS: &str =
    "d.id, d.license_id, d.client_device_id, d.label, d.public_key, d.created_at, d.bound_at";

pub(super) fn device_from_row(row: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get(0)?,
        license_id: row.get(1)?,
        client_device_id: text_as(row, 2, DeviceId::parse)?,
        label: row.get(3)?,
        public_key: parsed_opt(row, 4)?,
        created_at: row.get(5)?,
        bound_at: row.get(6)?,
    })
}

pub(crate) fn insert_device(
    conn: &Connection,
    license_id: i64,
    client_device_id: &DeviceId,
    label: Option<&str>,
    now: i64,
) -> Result<DeviceRecord, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO devices (license_id, client_device_id, label, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![license_id, client_device_id.as_str(), label, now],
    )?;
    Ok(DeviceRecord {
        id: conn.last_insert_rowid(),
        license_id,
        client_device_id: client_device_id.clone(),
        label: label.map(str::to_owned),
        public_key: None,
        created_at: now,
        bound_at: None,
    })
}

pub(crate) fn device_by_client_id(
    conn: &Connection,
    client_device_id: &DeviceId,
) -> Result<Option<DeviceRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.client_device_id = ?1"),
        [client_device_id.as_str()],
        device_from_row,
    )
    .optional()?)
}

pub(crate) fn devices_of_license(
    conn: &Connection,
    license_id: i64,
) -> Result<Vec<DeviceRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.license_id = ?1
         ORDER BY d.created_at, d.id"
    ))?;
    let rows = stmt.query_map([license_id], device_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn bound_device_count(conn: &Connection, license_id: i64) -> Result<u32, StoreError> {
    Ok(query_row_cached(
        conn,
        // Kept by the triggers of migration 0005.
        "SELECT bound_devices FROM licenses WHERE id = ?1",
        [license_id],
        |row| row.get(0),
    )?)
}

/// Binds an unbound device to an installation key. Returns false if the
/// device was already bound, in which case nothing changed.
pub(crate) fn bind_device(
    conn: &Connection,
    device_id: i64,
    public_key: &PublicKey,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = execute_cached(
        conn,
        "UPDATE devices SET public_key = ?1, bound_at = ?2
         WHERE id = ?3 AND public_key IS NULL",
        params![public_key.to_string(), now, device_id],
    )?;
    Ok(changed == 1)
}
