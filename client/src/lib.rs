//! The licensing side of the ReN3 ingestor, which runs at customer sites
//! offline.
//!
//! The ingestor opens an [`AppState`] from its [`Config`], serves [`app`]
//! (the registration guide's `POST /license/register` and
//! `POST /license/import`, and `GET /license`), and asks the
//! [`LicenseHandle`] from [`AppState::license`] on every request whether it
//! is licensed. The handle reads an in-memory snapshot: no database access
//! and no lock per check.
//!
//! This crate verifies payloads; it never holds an issuer signing key. Its
//! only private key is the installation's device key, which stays in the
//! store and in this process.

pub mod config;
pub mod http;
pub mod license;
pub mod registration;
pub mod state;
pub mod status;
pub mod store;

pub use config::{Config, ConfigError, OfflineConfig};
pub use http::{ApiError, BODY_LIMIT, app, serve};
pub use license::{Clock, InstalledLicense, LicenseHandle, LicenseState, system_clock};
pub use registration::{Imported, LicensingError, Registration};
pub use state::AppState;
pub use status::{LicenseStatus, LicenseSummary, StatusState};
pub use store::{Store, StoreError};
