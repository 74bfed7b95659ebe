//! Devices: the seats of a license, each named by a `client_device_id`
//! the vendor hands out and bound to one installation's key at its first
//! issuance.

use ren3_shared::{DeviceId, RandomSourceError};

use crate::audit::{self, Action, Actor, NewEntry, Outcome, record_in};
use crate::error::{Coded, ErrorKind};
use crate::licenses::{self, LicenseError, LicenseRef};
use crate::store::{self, DeviceRecord, LicenseRecord, LicenseStatus, Store, StoreError};

const MAX_LABEL_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{0}")]
    Label(String),
    #[error(
        "the license {hint} of {customer} is revoked; it takes no new devices \
         (create a new license if the customer is entitled to one)"
    )]
    LicenseRevoked { hint: String, customer: String },
    #[error(transparent)]
    License(#[from] LicenseError),
    #[error(transparent)]
    Random(#[from] RandomSourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Coded for DeviceError {
    fn code(&self) -> &'static str {
        match self {
            DeviceError::Label(_) => "label_invalid",
            DeviceError::LicenseRevoked { .. } => "license_revoked",
            DeviceError::License(e) => e.code(),
            DeviceError::Random(_) => "random_source_failed",
            DeviceError::Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::Label(_) | DeviceError::LicenseRevoked { .. } => ErrorKind::Refused,
            DeviceError::License(e) => e.kind(),
            DeviceError::Random(_) => ErrorKind::Internal,
            DeviceError::Store(e) => e.kind(),
        }
    }
}

/// Why a device label is refused, if it is.
pub fn label_problem(label: &str) -> Option<String> {
    let chars = label.chars().count();
    if label.trim().is_empty() {
        Some("the device label is empty; leave it out instead".into())
    } else if chars > MAX_LABEL_CHARS {
        Some(format!(
            "the device label has {chars} characters; at most {MAX_LABEL_CHARS} are allowed"
        ))
    } else if label.chars().any(char::is_control) {
        Some("the device label contains a control character".into())
    } else {
        None
    }
}

/// A device just registered.
#[derive(Debug, Clone)]
pub struct AddedDevice {
    pub license: LicenseRecord,
    pub device: DeviceRecord,
}

/// Registers a new device id for a license (by key or id). The device
/// takes a seat only when a payload is first issued for it.
pub fn add<'a>(
    store: &mut Store,
    actor: &Actor,
    license: impl Into<LicenseRef<'a>>,
    label: Option<&str>,
    now: i64,
) -> Result<AddedDevice, DeviceError> {
    let license = license.into();
    let result = add_audited(store, actor, license, label, now);
    let subject = || match license {
        LicenseRef::Key(key) => key.hint(),
        LicenseRef::Id(id) => format!("#{id}"),
    };
    audit::audited(store, actor, Action::DeviceAdd, subject, now, result)
}

fn add_audited(
    store: &mut Store,
    actor: &Actor,
    license: LicenseRef<'_>,
    label: Option<&str>,
    now: i64,
) -> Result<AddedDevice, DeviceError> {
    if let Some(problem) = label.and_then(label_problem) {
        return Err(DeviceError::Label(problem));
    }
    let client_device_id = DeviceId::generate()?;
    store.write(|tx| {
        let license = licenses::find(tx, license)?;
        if license.status == LicenseStatus::Revoked {
            return Err(DeviceError::LicenseRevoked {
                hint: license.key_hint,
                customer: license.customer,
            });
        }
        let device = store::insert_device(tx, license.id, &client_device_id, label, now)?;
        record_in(
            tx,
            &NewEntry {
                actor,
                action: Action::DeviceAdd,
                subject: license.key_hint.clone(),
                outcome: Outcome::Ok,
                detail: format!(
                    "device {} for {}{}",
                    device.client_device_id,
                    license.customer,
                    label.map(|l| format!(", label {l:?}")).unwrap_or_default()
                ),
            },
            now,
        )?;
        Ok(AddedDevice { license, device })
    })
}

#[cfg(test)]
mod tests {
    use ren3_shared::LicenseKey;

    use super::*;
    use crate::testing::{NOW, TestStore, actor};

    #[test]
    fn add_registers_an_unbound_device_of_the_license() {
        let mut t = TestStore::new();
        let key = t.license(1);
        let added = add(&mut t.store, &actor(), &key, Some("plant 4"), NOW).unwrap();
        assert!(!added.device.is_bound());
        let details = licenses::show(&t.store, &key).unwrap();
        assert_eq!(details.devices, vec![added.device]);
    }

    #[test]
    fn add_refuses_an_unknown_license_a_revoked_one_and_bad_labels() {
        let mut t = TestStore::new();
        let unknown = LicenseKey::generate().unwrap();
        assert!(matches!(
            add(&mut t.store, &actor(), &unknown, None, NOW),
            Err(DeviceError::License(LicenseError::Unknown { .. }))
        ));

        let key = t.license(1);
        for bad in ["", "  ", "a\nb", &"x".repeat(201)] {
            assert!(
                matches!(
                    add(&mut t.store, &actor(), &key, Some(bad), NOW),
                    Err(DeviceError::Label(_))
                ),
                "{bad:?}"
            );
        }
        licenses::set_status(&mut t.store, &actor(), &key, LicenseStatus::Revoked, NOW).unwrap();
        assert!(matches!(
            add(&mut t.store, &actor(), &key, None, NOW),
            Err(DeviceError::LicenseRevoked { .. })
        ));
        assert!(licenses::show(&t.store, &key).unwrap().devices.is_empty());
    }
}
