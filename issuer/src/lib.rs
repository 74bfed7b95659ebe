//! The ReN3 vendor tool: license keys, devices, signing keys and the
//! issuance of signed license payloads for the offline licensing exchange.
//!
//! Every rule lives in this library; the `ren3-issuer` binary (`cli`) is
//! glue around it, and so will be the web console. Functions that depend on
//! the time take it as `now` (Unix seconds), so callers and tests choose it.
//!
//! - [`setup`]: where a store lives, and `init`.
//! - [`store`]: the SQLite store and its records.
//! - [`keystore`]: the private signing keys, one file each.
//! - [`signing_keys`]: the key list and the trusted-keys file.
//! - [`licenses`], [`devices`]: creating and finding licenses and seats.
//! - [`issuance`]: turning a request into a payload.
//! - [`inspect`]: reading any token for a person.

mod atomic_file;
pub mod cli;
pub mod devices;
pub mod inspect;
pub mod issuance;
pub mod keystore;
pub mod licenses;
mod rfc3339;
pub mod setup;
pub mod signing_keys;
pub mod store;
#[cfg(test)]
mod testing;

pub use devices::{AddedDevice, DeviceError};
pub use inspect::{Inspection, TrustSource};
pub use issuance::{IssueError, Issued};
pub use keystore::{KeyStore, KeyStoreError};
pub use licenses::{CreatedLicense, LicenseDetails, LicenseError, NewLicense};
pub use setup::{InitError, Initialized, StorePaths};
pub use store::{LicenseStatus, Store, StoreError};
