//! The licensing side of the ReN3 ingestor, which runs at customer sites
//! offline.
//!
//! The ingestor opens an [`AppState`] from its [`Config`], serves [`app`]
//! (the registration guide's `POST /license/register` and
//! `POST /license/import`, `POST /license/deactivate` and `GET /license`),
//! and protects its own routes with [`RequireLicense`] (or asks the
//! [`LicenseHandle`] from [`Licensing::license`] directly). The handle reads
//! an in-memory snapshot: no database access and no lock per check.
//!
//! The [`AppState`] is the router's state around the [`Licensing`] service,
//! which holds the store, the device key and the published license, and
//! whose methods are the operations (register, import, deactivate,
//! status); the state dereferences to it, so `state.license()` and
//! `state.import(..)` call the service.
//!
//! This crate verifies payloads; it never holds an issuer signing key. Its
//! only private key is the installation's device key, which stays in the
//! store and in this process. What it trusts is compiled in ([`trust`]):
//! payloads chain to the vendor's root pinned at build time, and nothing
//! at run time adds trust.
//!
//! # Embedding
//!
//! 1. Read the [`Config`] with [`Config::from_env`]: the process
//!    environment, which wins over `./.env` (the variables are in
//!    [`config`]). An error names the variable and what it expects; show
//!    it to the operator as is.
//! 2. Open the [`AppState`] once, inside the Tokio runtime: it opens the
//!    [`Licensing`] service, which opens or creates the store and the
//!    device key, and loads the active license. Code that is no axum route
//!    can keep the service itself ([`AppState::licensing`]).
//! 3. Merge [`app`], the licensing endpoints, into the ingestor's axum
//!    router. Its `Host` check covers those endpoints only. It has a
//!    fallback (problem+json 404), so a router with a fallback of its own
//!    must call `reset_fallback` on one of them first. With the default
//!    feature `page`, it also serves the local license page ([`page`]) to
//!    callers on this machine; serve the router with
//!    `into_make_service_with_connect_info::<SocketAddr>()` so that it can
//!    tell, or the page is refused to everyone.
//! 4. Guard the ingestor's own routes with [`RequireLicense`]: it admits
//!    a request only while licensed work is allowed and, with
//!    [`feature`](RequireLicense::feature), only if the license grants that
//!    feature. Otherwise it answers 403 problem+json whose `code` says why
//!    ([`Refusal::code`]). Handlers behind it take [`Licensed`] for the
//!    license's limits.
//! 5. Anywhere else, ask the [`LicenseHandle`] from [`Licensing::license`]:
//!    [`is_licensed`](LicenseHandle::is_licensed),
//!    [`has_feature`](LicenseHandle::has_feature),
//!    [`limit`](LicenseHandle::limit),
//!    [`expires_at`](LicenseHandle::expires_at), or the whole
//!    [`check`](LicenseHandle::check). Features and limits are granted only
//!    while licensed work is allowed.
//! 6. For monitoring, [`app`] also serves `/healthz` (the process
//!    answers), `/readyz` (the store answers a read; 503 problem+json
//!    `store_unavailable` otherwise) and `/metrics`. The library emits its
//!    metrics ([`monitoring`]: `ren3_client_*`, the license's state, days
//!    remaining, the clock, imports and refusals by code) through the
//!    [`metrics`](https://docs.rs/metrics) facade, so they go to whatever
//!    recorder the ingestor installs, beside its own metrics. To serve
//!    them at `/metrics`, hand the recorder's render function to
//!    [`AppState::with_metrics`], e.g. with `metrics-exporter-prometheus`:
//!    `let handle = PrometheusBuilder::new().install_recorder()?;` then
//!    `state.with_metrics(move || handle.render())` (and call
//!    `handle.run_upkeep()` every few seconds, as that crate asks).
//!    Without a renderer `/metrics` answers 503 `metrics_unavailable`
//!    rather than an empty page. The licensing port checks `Host`; for a
//!    Prometheus on another host, serve [`metrics_app`] (those three
//!    routes only, for any `Host`) on a listener of its own
//!    ([`serve_metrics`], [`Config::metrics_addr`]).
//!
//! This example builds such a router and sends it requests without serving
//! it. The installation is new, so it is unlicensed: the guarded route is
//! refused, and the handle grants no feature and no limit.
//!
//! ```
//! use axum::Router;
//! use axum::body::{Body, to_bytes};
//! use axum::http::{Request, StatusCode};
//! use axum::routing::post;
//! use ren3_client::{AppState, Config, LicenseHandle, Licensed, RequireLicense};
//! use tower::ServiceExt as _;
//!
//! /// The ingestor's own work, reached only through the guard.
//! async fn ingest(licensed: Licensed) -> String {
//!     let max = licensed.limit("max-sources").unwrap_or(1);
//!     format!("{}: up to {max} sources", licensed.license().customer)
//! }
//!
//! /// Routes that need a license granting the feature `ingest`.
//! fn ingestor_routes(license: LicenseHandle) -> Router {
//!     Router::new()
//!         .route("/ingest", post(ingest))
//!         .route_layer(RequireLicense::new(license.clone()).feature("ingest"))
//!         .with_state(license)
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An ingestor calls `Config::from_env()`; this example passes its
//! // variables itself, with a throwaway store.
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("license.db");
//! let config = Config::from_lookup(|name| match name {
//!     "enable_offline_license" => Some("true".to_owned()),
//!     "client_device_id" => Some("REN3D1-00000-00000-00000-00000".to_owned()),
//!     "license_db_path" => Some(db.display().to_string()),
//!     _ => None,
//! })?;
//! let state = AppState::open(&config).await?;
//! let router = ren3_client::app(state.clone()).merge(ingestor_routes(state.license()));
//!
//! // The guard refuses, in problem+json with a stable code.
//! let request = Request::post("/ingest").body(Body::empty())?;
//! let response = router.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! let problem: serde_json::Value =
//!     serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await?)?;
//! assert_eq!(problem["code"], "unlicensed");
//!
//! // The licensing endpoints answer beside it, to requests addressed to
//! // this machine.
//! let request = Request::get("/license")
//!     .header("host", "localhost:5000")
//!     .body(Body::empty())?;
//! let response = router.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let status: serde_json::Value =
//!     serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await?)?;
//! assert_eq!(status["state"], "unlicensed");
//! assert_eq!(status["reasonCode"], "no_license");
//!
//! // The handle reads an in-memory snapshot: ask it as often as needed.
//! let license = state.license();
//! assert!(!license.is_licensed());
//! assert!(!license.has_feature("ingest"));
//! assert_eq!(license.limit("max-sources"), None);
//! let refusal = license.check().refusal_for(Some("ingest"));
//! assert_eq!(refusal.map(|r| r.code()), Some("unlicensed"));
//! # Ok(())
//! # }
//! ```
//!
//! Serving it binds the listen address and runs until shutdown; record the
//! clock's high-water mark afterwards, so that a restart does not forget
//! it ([`serve`] does all of this for the licensing endpoints alone):
//!
//! ```no_run
//! use std::net::SocketAddr;
//!
//! use ren3_client::{AppState, Config};
//! # fn ingestor_routes(_: ren3_client::LicenseHandle) -> axum::Router {
//! #     axum::Router::new()
//! # }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config::from_env()?;
//!     let state = AppState::open(&config).await?;
//!     let router = ren3_client::app(state.clone()).merge(ingestor_routes(state.license()));
//!     let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
//!     // The license page is served only to peers on this machine, so the
//!     // server must record each connection's peer address.
//!     let service = router.into_make_service_with_connect_info::<SocketAddr>();
//!     axum::serve(listener, service)
//!         .with_graceful_shutdown(async {
//!             let _ = tokio::signal::ctrl_c().await;
//!         })
//!         .await?;
//!     state.persist_clock().await?;
//!     Ok(())
//! }
//! ```
//!
//! `client/examples/ingestor.rs` is such an ingestor, runnable.

#![warn(missing_docs)]

mod binding;
pub mod config;
pub mod deactivation;
pub mod guard;
pub mod http;
pub mod license;
pub mod licensing;
pub mod monitoring;
#[cfg(feature = "page")]
pub mod page;
pub mod registration;
pub mod revocations;
pub mod startup;
pub mod state;
pub mod status;
pub mod store;
pub mod trust;

pub use config::{Config, ConfigError, OfflineConfig};
pub use deactivation::Deactivated;
pub use guard::{Licensed, RequireLicense};
pub use http::{ApiError, BODY_LIMIT, app, metrics_app, serve, serve_metrics};
pub use license::{
    Clock, ClockRules, ClockSuspicion, InstalledLicense, LicenseCheck, LicenseHandle, LicenseState,
    MarkProblem, Refusal, system_clock,
};
pub use licensing::Licensing;
pub use registration::{Imported, LicensingError, Registration};
pub use startup::StoredLicenseProblem;
pub use state::AppState;
pub use status::{
    ClockStatus, GraceStatus, LicenseView, RevocationStatus, StatusReport, StatusState, TrustStatus,
};
pub use store::{Store, StoreError};
pub use trust::Trust;
