//! Whether a license payload is bound to this installation: the one check
//! that an import and the start-up re-verification share, so that the two
//! cannot come to disagree about what a payload must name.
//!
//! A payload is bound to a license key (by its fingerprint), a client
//! device id, a device public key and the request it answers
//! (docs/FORMAT.md §5). The first three are compared here. The request is
//! judged against the pending requests, inside the import's transaction
//! ([`crate::store::pending_request_seq`]); at start-up it is forgotten by
//! design, and no license key is given, so there the payload is held to
//! the device id and key only.

use ren3_shared::{DeviceId, Digest, License, PublicKey};

/// What a payload must name to be used on this installation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Installation<'a> {
    /// The fingerprint of the license key given with the payload; `None`
    /// at start-up, where no key is given (the import that stored the
    /// payload compared it).
    pub(crate) license_key: Option<&'a Digest>,
    /// The configured client device id.
    pub(crate) device_id: &'a DeviceId,
    /// This installation's device key now: a deactivation replaces it.
    pub(crate) device_key: &'a PublicKey,
}

/// What a payload is bound to instead of this installation: the first
/// difference, in the order of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// It was issued for another license key than the one given.
    LicenseKey,
    /// It was issued for another client device id than the configured one.
    DeviceId {
        /// The device id the payload names.
        payload: DeviceId,
        /// The device id this installation is configured with.
        configured: DeviceId,
    },
    /// It names another device key: another installation's, or this one's
    /// before a deactivation replaced it.
    DeviceKey,
}

impl Mismatch {
    /// The stable code, the same in an import's refusal and in a stored
    /// license's problem: `license_key_mismatch`, `device_id_mismatch` or
    /// `device_key_mismatch`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Mismatch::LicenseKey => "license_key_mismatch",
            Mismatch::DeviceId { .. } => "device_id_mismatch",
            Mismatch::DeviceKey => "device_key_mismatch",
        }
    }
}

/// Checks that `license` names `this` installation: the license key (when
/// one is given), then the device id, then the device key.
pub(crate) fn check(license: &License, this: &Installation<'_>) -> Result<(), Mismatch> {
    if this
        .license_key
        .is_some_and(|fingerprint| license.license_key_fingerprint != *fingerprint)
    {
        return Err(Mismatch::LicenseKey);
    }
    if license.client_device_id != *this.device_id {
        return Err(Mismatch::DeviceId {
            payload: license.client_device_id.clone(),
            configured: this.device_id.clone(),
        });
    }
    if license.device_public_key != *this.device_key {
        return Err(Mismatch::DeviceKey);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ren3_shared::{ClockPolicy, DeviceKey, LicenseKey};

    use super::*;
    use crate::config::{Config, OfflineConfig};
    use crate::registration::check_bound;
    use crate::startup::reverify;

    const DEVICE_ID: &str = "REN3D1-00000-00000-00000-00000";
    const KEY: &str = "REN3K1-00000-00000-00000-00000-00000";

    /// `prefix` completed by the one check character that makes it valid.
    fn completed<T>(prefix: &str, parse: impl Fn(&str) -> Option<T>) -> T {
        b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
            .iter()
            .find_map(|last| parse(&format!("{prefix}{}", char::from(*last))))
            .expect("one check character fits")
    }

    /// A license bound to `key`, the device id [`DEVICE_ID`] and `device`.
    fn bound(key: &LicenseKey, device: &DeviceKey) -> License {
        License {
            customer: "ACME".into(),
            features: vec!["ingest".into()],
            limits: BTreeMap::new(),
            issued_at: 1_800_000_000,
            not_before: 1_800_000_000,
            expires_at: None,
            grace_seconds: 0,
            clock_policy: ClockPolicy::Advisory,
            serial: 1,
            license_key_fingerprint: key.fingerprint(),
            client_device_id: DeviceId::parse(DEVICE_ID).unwrap(),
            device_public_key: device.public_key().into(),
            request_hash: ren3_shared::binary::Bytes([4; 32]),
        }
    }

    /// An import and a start-up judge the same payload: the import with
    /// the license key given, the start-up with the payload as stored.
    #[test]
    fn import_and_start_up_refuse_the_same_mismatches() {
        let key = LicenseKey::parse(KEY).unwrap();
        let other_key = completed("REN3K1-11111-11111-11111-11111-1111", |text| {
            LicenseKey::parse(text).ok()
        });
        let device = DeviceKey::from_seed(&[3; 32]);
        let other_device = DeviceKey::from_seed(&[5; 32]);
        let offline = OfflineConfig {
            client_device_id: DeviceId::parse(DEVICE_ID).unwrap(),
        };
        let other_id = completed("REN3D1-11111-11111-11111-1111", |text| {
            DeviceId::parse(text).ok()
        });
        let trust = Config::from_lookup(|_| None).unwrap().trust().clone();
        let signer = ren3_testkit::test_only_signer();

        type Change = Box<dyn Fn(&mut License)>;
        let other_id_for_both = other_id.clone();
        // (what differs, the import's code, the start-up's code)
        let cases: Vec<(&str, Change, Option<&str>, Option<&str>)> = vec![
            ("nothing", Box::new(|_| {}), None, None),
            (
                "the device id",
                Box::new(move |l| l.client_device_id = other_id.clone()),
                Some("device_id_mismatch"),
                Some("device_id_mismatch"),
            ),
            (
                "the device key",
                Box::new(move |l| l.device_public_key = other_device.public_key().into()),
                Some("device_key_mismatch"),
                Some("device_key_mismatch"),
            ),
            (
                "the device id and key",
                Box::new(move |l| {
                    l.client_device_id = other_id_for_both.clone();
                    l.device_public_key = DeviceKey::from_seed(&[6; 32]).public_key().into();
                }),
                Some("device_id_mismatch"),
                Some("device_id_mismatch"),
            ),
            // A start-up is given no license key: the import that stored
            // the payload compared it.
            (
                "the license key",
                Box::new(move |l| l.license_key_fingerprint = other_key.fingerprint()),
                Some("license_key_mismatch"),
                None,
            ),
        ];
        for (n, (differs, change, import, start_up)) in cases.into_iter().enumerate() {
            let mut license = bound(&key, &device);
            change(&mut license);
            let imported =
                check_bound(&license, &key.fingerprint(), &offline, &device.public_key());
            assert_eq!(
                imported.as_ref().err().map(|e| e.code()),
                import,
                "{n}. {differs}: import"
            );
            let token = signer.sign_payload(&license).unwrap().token();
            let started = reverify(&token, &offline, &trust, &device);
            assert_eq!(
                started.as_ref().err().map(|p| p.code),
                start_up,
                "{n}. {differs}: start-up"
            );
            if let Err(problem) = started {
                assert_eq!(problem.device_matches, Some(false), "{n}. {differs}");
            }
        }
    }
}
