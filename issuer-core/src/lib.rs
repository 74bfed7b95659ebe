//! The ReN3 vendor tool's core: license keys, devices, signing keys, the
//! offline root and the issuance of signed license payloads for the
//! offline licensing exchange.
//!
//! Every rule lives in this library, and the store with them; the
//! `ren3-issuer` crate holds the front ends (its CLI and web console),
//! which call these functions and decide nothing themselves. This crate
//! has no HTTP server, argument parser or terminal table. Functions that
//! depend on the time take it as `now` (Unix seconds), so callers and
//! tests choose it.
//!
//! - [`error`]: every error's stable code and kind ([`Coded`]).
//! - [`setup`]: where a store lives, and `init`.
//! - [`store`]: the SQLite store and its records.
//! - [`keystore`]: the private signing keys, one file each.
//! - [`root`]: the vendor's offline root key, in a directory of its own:
//!   certifying issuer keys and signing revocation lists.
//! - [`chain`]: the store's side of the chain: the root's public key, the
//!   certificates and the installed revocation lists.
//! - [`signing_keys`]: the key list, the key that signs, and rotation.
//! - [`licenses`], [`devices`]: creating and finding licenses and seats.
//! - [`issuance`]: turning a request into a payload.
//! - [`releases`]: freeing a seat, with the installation's release receipt
//!   or by force.
//! - [`passphrase`]: the passphrase of encrypted signing keys and the root.
//! - [`inspect`]: reading any token for a person.
//! - [`audit`]: who changed what, when, and the result.
//! - [`backup`]: verified copies of the store, and restoring one.
//! - [`users`], [`sessions`], [`login`]: the web console's users, their
//!   sessions, and the login rules (throttling, the password check).

pub mod atomic_file;
pub mod audit;
pub mod backup;
pub mod chain;
pub mod devices;
pub mod error;
pub mod inspect;
pub mod issuance;
pub mod keystore;
pub mod licenses;
pub mod login;
pub mod monitoring;
pub mod passphrase;
pub mod releases;
mod rfc3339;
pub mod root;
mod sealed_key;
pub mod sessions;
pub mod setup;
pub mod signing_keys;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod users;

pub use devices::{AddedDevice, DeviceError};
pub use error::{Coded, ErrorKind};
pub use inspect::{Inspection, TrustSource};
pub use issuance::{IssueError, Issued};
pub use keystore::{KeyStore, KeyStoreError};
pub use licenses::{CreatedLicense, LicenseDetails, LicenseError, NewLicense};
pub use root::{RootDir, RootError};
pub use sealed_key::Cost;
pub use setup::{InitError, InitOptions, Initialized, StorePaths};
pub use store::{LicenseStatus, Store, StoreError};
