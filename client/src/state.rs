//! The axum state of the licensing endpoints: the [`Licensing`] service,
//! with what only the HTTP layer needs besides it (the names the endpoints
//! answer to, the last `GET /license` body).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::body::Bytes;
use axum::extract::FromRef;

use crate::config::Config;
use crate::http::host::AllowedHosts;
use crate::license::{Clock, LicenseHandle};
use crate::licensing::Licensing;
use crate::status::{StatusInputs, encode};
use crate::store::StoreError;

/// The state of the licensing router. Cloning is cheap: clones share one
/// [`Licensing`] service (one store, one device key, one
/// [`LicenseHandle`]).
///
/// Open one per store with [`AppState::open`], inside a Tokio runtime,
/// and give clones to [`crate::app`] and to the ingestor. It dereferences
/// to the service, so `state.license()`, `state.register(..)` and every
/// other method of [`Licensing`] are the state's too.
/// `LicenseHandle` implements `FromRef<AppState>`, so routes whose state is
/// an `AppState` can use the [`Licensed`](crate::Licensed) extractor.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    /// Renders the installed recorder's metrics for `/metrics`
    /// ([`AppState::with_metrics`]); `None` when none was given.
    render_metrics: Option<RenderMetrics>,
}

/// A function that renders the metrics recorder's current values, in the
/// Prometheus text format.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

struct Inner {
    licensing: Arc<Licensing>,
    /// The names the licensing endpoints answer to.
    allowed_hosts: AllowedHosts,
    /// The last `GET /license` body, with what it was built from.
    last_status: ArcSwapOption<RenderedStatus>,
}

/// The last `GET /license` body, and what it was built from.
#[derive(Debug)]
struct RenderedStatus {
    inputs: StatusInputs,
    body: Bytes,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AppState")
            .field(&self.inner.licensing)
            .finish()
    }
}

impl Deref for AppState {
    type Target = Licensing;

    fn deref(&self) -> &Licensing {
        &self.inner.licensing
    }
}

impl FromRef<AppState> for LicenseHandle {
    fn from_ref(state: &AppState) -> Self {
        state.license()
    }
}

impl From<Arc<Licensing>> for AppState {
    /// The router's state over `licensing`, answering to the names its
    /// configuration allows.
    fn from(licensing: Arc<Licensing>) -> Self {
        let config = licensing.config();
        let allowed_hosts = AllowedHosts::new(config.listen_addr, &config.allowed_hosts);
        Self {
            inner: Arc::new(Inner {
                licensing,
                allowed_hosts,
                last_status: ArcSwapOption::empty(),
            }),
            render_metrics: None,
        }
    }
}

impl AppState {
    /// Opens the [`Licensing`] service ([`Licensing::open`]: the store, the
    /// device key and the active license, with the system clock) and wraps
    /// it for the router.
    ///
    /// # Errors
    ///
    /// As [`Licensing::open`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        Licensing::open(config).await.map(Self::from)
    }

    /// As [`AppState::open`], with an injected clock
    /// ([`Licensing::open_with_clock`]).
    pub async fn open_with_clock(config: &Config, clock: Clock) -> Result<Self, StoreError> {
        Licensing::open_with_clock(config, clock)
            .await
            .map(Self::from)
    }

    /// Serves `render`'s text at `/metrics`: the render function of the
    /// metrics recorder the process installed, such as
    /// `metrics_exporter_prometheus::PrometheusHandle::render`. Without
    /// one, `/metrics` answers 503 `metrics_unavailable`, saying so.
    #[must_use]
    pub fn with_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.render_metrics = Some(Arc::new(render));
        self
    }

    /// The metrics renderer given with [`AppState::with_metrics`].
    pub fn metrics_renderer(&self) -> Option<&RenderMetrics> {
        self.render_metrics.as_ref()
    }

    /// The licensing service, to share with code that is not an axum route.
    pub fn licensing(&self) -> &Arc<Licensing> {
        &self.inner.licensing
    }

    /// The names and addresses the licensing endpoints answer to.
    pub fn allowed_hosts(&self) -> &AllowedHosts {
        &self.inner.allowed_hosts
    }

    /// The status now as `GET /license` sends it, in JSON. Monitoring polls
    /// it, and it changes only with the clock's second or with the store,
    /// so the last body is kept and sent again while what it was built
    /// from is unchanged.
    pub async fn status_json(&self) -> Result<Bytes, StoreError> {
        let inputs = self.status_inputs().await?;
        let last_status = &self.inner.last_status;
        if let Some(last) = last_status.load().as_deref()
            && last.inputs == inputs
        {
            // Every test build checks the kept body against a fresh one.
            debug_assert_eq!(
                last.body,
                encode(&self.status_with(&inputs)),
                "a kept status body is not the status its inputs give"
            );
            return Ok(last.body.clone());
        }
        let body = Bytes::from(encode(&self.status_with(&inputs)));
        last_status.store(Some(Arc::new(RenderedStatus {
            inputs,
            body: body.clone(),
        })));
        Ok(body)
    }
}
