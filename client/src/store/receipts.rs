//! Deactivation's rows: the license ends, the release receipt is recorded
//! and the device key that signed it is replaced, in one transaction.

use ren3_shared::{DeviceKey, VerifiedReceipt};
use rusqlite::{Transaction, params};

use super::sequence::counter_column;
use super::{StoreError, U64, execute_cached};

/// Stops using the active license `license_id` inside `tx`: it stays in
/// history as deactivated, every pending request is forgotten, the receipt
/// that proves it is recorded, and the device key that signed the receipt
/// is replaced by `next_key`, created at `now`.
///
/// The old key is bound to the released seat at the vendor: once the
/// receipt is signed, nothing more may be signed with it, or a request
/// made after the release could still be answered under the old binding
/// (and a second receipt could outrun the first). The pending requests
/// were all signed with it, so no payload for them could be imported
/// under the new key anyway.
pub fn deactivate_license(
    tx: &Transaction<'_>,
    license_id: i64,
    receipt: &VerifiedReceipt,
    next_key: &DeviceKey,
    now: i64,
) -> Result<(), StoreError> {
    let r = &receipt.receipt;
    let changed = execute_cached(
        tx,
        "UPDATE licenses SET replaced_at = ?2, deactivated_at = ?2
         WHERE id = ?1 AND replaced_at IS NULL",
        params![license_id, r.released_at],
    )?;
    if changed != 1 {
        return Err(StoreError::Damaged(
            "the license to deactivate is no longer the active one".into(),
        ));
    }
    execute_cached(tx, "DELETE FROM pending_requests", [])?;
    execute_cached(
        tx,
        "INSERT INTO release_receipts
             (counter, license_id, token, serial, license_key_fingerprint, released_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            counter_column(r.counter)?,
            license_id,
            receipt.token(),
            U64(r.serial),
            r.license_key_fingerprint.to_string(),
            r.released_at,
        ],
    )?;
    let replaced = execute_cached(
        tx,
        "UPDATE device_key SET seed = ?1, public_key = ?2, created_at = ?3
         WHERE id = 1 AND public_key = ?4",
        params![
            next_key.seed().as_slice(),
            next_key.public_key().to_string(),
            now,
            receipt.device_public_key.to_string(),
        ],
    )?;
    if replaced != 1 {
        return Err(StoreError::Damaged(
            "the stored device key is not the one that signed the release receipt".into(),
        ));
    }
    Ok(())
}
