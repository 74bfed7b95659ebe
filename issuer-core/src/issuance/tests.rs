//! The issuance's tests: single and batch issuance, the dry run and every
//! refusal, each leaving the store as it was.
//! This module holds the shared fixtures; the tests sit in its submodules,
//! one per topic.

use ren3_shared::{DeviceKey, LicenseKey};

use super::*;
use crate::keystore::AtRest;
use crate::licenses::{self, NewLicense};
use crate::store::StoreError;
use crate::testing::{NOW, TestStore, actor, numbered_request, request};
use crate::{chain, devices, signing_keys};

/// A store with one license of `max_devices` seats and one device.
fn one_device(max_devices: u32) -> (TestStore, LicenseKey, ren3_shared::DeviceId) {
    let mut t = TestStore::new();
    let key = t.license(max_devices);
    let device = t.device(&key);
    (t, key, device)
}

fn installation(n: u8) -> DeviceKey {
    DeviceKey::from_seed(&[n; 32])
}

/// Issues and asserts the refusal changed nothing in the store.
fn refused(t: &mut TestStore, text: &str, at: i64) -> IssueError {
    let before = t.snapshot();
    let err = issue(&mut t.store, &t.keys, &actor(), text, at).unwrap_err();
    assert_eq!(t.snapshot(), before, "{err}");
    err
}

mod batch;
mod refusals;
mod signing;
mod single;
