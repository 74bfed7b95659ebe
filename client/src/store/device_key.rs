//! The installation's device key: one row, created on first start.

use ren3_shared::DeviceKey;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::{StoreError, execute_cached, query_row_cached, write_transaction};

/// The installation's key, created with the OS's secure random source on
/// first start.
pub fn load_or_create_device_key(conn: &mut Connection, now: i64) -> Result<DeviceKey, StoreError> {
    if let Some(key) = load_device_key(conn)? {
        return Ok(key);
    }
    let key = DeviceKey::generate()?;
    let tx = write_transaction(conn)?;
    // Another process may have created it meanwhile; the first key stays.
    execute_cached(
        &tx,
        "INSERT INTO device_key (id, seed, public_key, created_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO NOTHING",
        params![key.seed().as_slice(), key.public_key().to_string(), now],
    )?;
    tx.commit()?;
    load_device_key(conn)?
        .ok_or_else(|| StoreError::Damaged("the device key vanished after it was stored".into()))
}

fn load_device_key(conn: &Connection) -> Result<Option<DeviceKey>, StoreError> {
    let row: Option<(Vec<u8>, String)> = query_row_cached(
        conn,
        "SELECT seed, public_key FROM device_key WHERE id = 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .optional()?;
    let Some((seed, public_key)) = row else {
        return Ok(None);
    };
    let seed = <[u8; 32]>::try_from(seed)
        .map_err(|_| StoreError::Damaged("the device key is not 32 bytes".into()))?;
    let key = DeviceKey::from_seed(&seed);
    if key.public_key().to_string() != public_key {
        return Err(StoreError::Damaged(
            "the device key does not match its recorded public key".into(),
        ));
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn device_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("license.db");
        let store = Store::open(&path).await.unwrap();
        let first = store
            .call(|conn| load_or_create_device_key(conn, 1))
            .await
            .unwrap();
        let again = store
            .call(|conn| load_or_create_device_key(conn, 2))
            .await
            .unwrap();
        assert_eq!(first.public_key(), again.public_key());
        drop(store);
        let reopened = Store::open(&path).await.unwrap();
        let after_restart = reopened
            .call(|conn| load_or_create_device_key(conn, 3))
            .await
            .unwrap();
        assert_eq!(first.public_key(), after_restart.public_key());
    }
}
