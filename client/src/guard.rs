//! Enforcement for the ingestor's own routes: a tower layer that refuses
//! requests without a license in effect (`403 application/problem+json`
//! with a code that says why), and an extractor that hands the handler the
//! license the request was admitted under, for its limits.
//!
//! ```no_run
//! # async fn example(state: ren3_client::AppState) {
//! use axum::{Router, routing::post};
//! use ren3_client::{Licensed, RequireLicense};
//!
//! async fn ingest(licensed: Licensed) -> String {
//!     let max = licensed.limit("max-sources").unwrap_or(1);
//!     format!("up to {max} sources")
//! }
//!
//! let routes: Router = Router::new()
//!     .route("/ingest", post(ingest))
//!     .route_layer(RequireLicense::new(state.license()).feature("ingest"))
//!     .with_state(state.license());
//! # }
//! ```
//!
//! A check reads the handle's in-memory snapshot and an atomic high-water
//! mark: it never touches the store and never waits for an import.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ren3_shared::{KeyId, License};
use tower::{Layer, Service};

use crate::http::ApiError;
use crate::license::{InstalledLicense, LicenseCheck, LicenseHandle, Refusal};

/// A layer that admits a request only while licensed work is allowed, and,
/// if asked, only when the license grants a feature.
#[derive(Debug, Clone)]
pub struct RequireLicense {
    handle: LicenseHandle,
    feature: Option<&'static str>,
}

impl RequireLicense {
    /// A layer that admits requests while `handle` says licensed work is
    /// allowed, whatever features the license grants.
    pub fn new(handle: LicenseHandle) -> Self {
        Self {
            handle,
            feature: None,
        }
    }

    /// Also requires the license to grant `feature`; without it a request
    /// is refused with `feature_missing`. Calling it again replaces the
    /// feature: one layer requires at most one.
    #[must_use]
    pub fn feature(mut self, feature: &'static str) -> Self {
        self.feature = Some(feature);
        self
    }

    /// The license a request is admitted under now, or the refusal: what
    /// the layer decides for each request, for code that is not an axum
    /// route.
    pub fn admit(&self) -> Result<Licensed, Refusal> {
        admit(&self.handle.check(), self.feature)
    }
}

fn admit(check: &LicenseCheck, feature: Option<&'static str>) -> Result<Licensed, Refusal> {
    if let Some(refusal) = check.refusal_for(feature) {
        return Err(refusal);
    }
    check
        .installed
        .clone()
        .map(|installed| Licensed { installed })
        .ok_or(Refusal::Unlicensed)
}

impl<S> Layer<S> for RequireLicense {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service [`RequireLicense`] wraps around a route.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: RequireLicense,
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxedResponse<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.guard.admit() {
            Ok(licensed) => {
                request.extensions_mut().insert(licensed);
                Box::pin(self.inner.call(request))
            }
            Err(refusal) => {
                tracing::info!(code = refusal.code(), "licensed route refused");
                let response = ApiError::from(refusal).into_response();
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let title = match refusal {
            Refusal::Unlicensed => "No license in effect",
            Refusal::Expired { .. } => "License expired",
            Refusal::NotYetValid { .. } => "License not yet valid",
            Refusal::ClockSuspect { .. } => "Clock looks wound back",
            Refusal::FeatureMissing { .. } => "Feature not licensed",
            Refusal::KeyRevoked { .. } => "License signing key revoked",
        };
        ApiError::new(
            StatusCode::FORBIDDEN,
            refusal.code(),
            title,
            refusal.to_string(),
        )
    }
}

/// The license a request was admitted under: its features and limits.
///
/// Behind [`RequireLicense`] it is the very snapshot the layer admitted;
/// on a route without the layer it checks the license itself (no feature
/// requirement) and refuses like the layer.
#[derive(Debug, Clone)]
pub struct Licensed {
    installed: Arc<InstalledLicense>,
}

impl Licensed {
    /// The license in effect when the request was admitted: customer,
    /// features, limits and times.
    pub fn license(&self) -> &License {
        &self.installed.license
    }

    /// The issuer key that signed the license.
    pub fn key_id(&self) -> KeyId {
        self.installed.key_id
    }

    /// Whether the license grants `feature`. A feature the layer required
    /// is always granted.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.installed.license.has_feature(feature)
    }

    /// The numeric limit `name`, if the license sets it.
    pub fn limit(&self, name: &str) -> Option<u64> {
        self.installed.license.limits.get(name).copied()
    }
}

impl<S> FromRequestParts<S> for Licensed
where
    LicenseHandle: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(licensed) = parts.extensions.get::<Licensed>() {
            return Ok(licensed.clone());
        }
        admit(&LicenseHandle::from_ref(state).check(), None).map_err(ApiError::from)
    }
}
