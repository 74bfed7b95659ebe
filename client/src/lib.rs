//! The licensing side of the ReN3 ingestor, which runs at customer sites
//! offline.
//!
//! The ingestor opens an [`AppState`] from its [`Config`], serves [`app`]
//! (the registration guide's `POST /license/register` and
//! `POST /license/import`, `POST /license/deactivate` and `GET /license`),
//! and protects its own routes with [`RequireLicense`] (or asks the
//! [`LicenseHandle`] from [`AppState::license`] directly). The handle reads
//! an in-memory snapshot: no database access and no lock per check.
//!
//! This crate verifies payloads; it never holds an issuer signing key. Its
//! only private key is the installation's device key, which stays in the
//! store and in this process. What it trusts is compiled in ([`trust`]):
//! payloads chain to the vendor's root pinned at build time, and nothing
//! at run time adds trust.

pub mod config;
pub mod deactivation;
pub mod guard;
pub mod http;
pub mod license;
pub mod registration;
pub mod revocations;
pub mod state;
pub mod status;
pub mod store;
pub mod trust;

pub use config::{Config, ConfigError, OfflineConfig};
pub use deactivation::Deactivated;
pub use guard::{Licensed, RequireLicense};
pub use http::{ApiError, BODY_LIMIT, app, serve};
pub use license::{
    Clock, ClockRules, ClockSuspicion, InstalledLicense, LicenseCheck, LicenseHandle, LicenseState,
    MarkProblem, Refusal, system_clock,
};
pub use registration::{Imported, LicensingError, Registration};
pub use state::{AppState, StoredLicenseProblem};
pub use status::{
    ClockStatus, GraceStatus, LicenseStatus, LicenseSummary, RevocationStatus, StatusState,
    TrustStatus,
};
pub use store::{Store, StoreError};
pub use trust::Trust;
