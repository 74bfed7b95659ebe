//! The web console: the vendor team's daily tool, over the same store and
//! the same library functions as the CLI. No rule lives here: every check
//! is the library's; this module only turns forms into calls and results
//! into pages.
//!
//! Security, in one place: every page but the login page and the static
//! assets needs a session (`auth::require_login`) and the role
//! `roles::needed` names for its route and method; every POST carries the
//! session's CSRF token and is refused when the browser says it comes from
//! another site (`refuse_cross_site`); every answer carries a strict
//! Content-Security-Policy (no inline script), `X-Frame-Options: DENY`,
//! nosniff and `Cache-Control: no-store`.

mod audit_log;
mod auth;
mod dashboard;
mod issue;
mod keys;
mod licenses;
mod monitoring;
mod paste;
mod release;
mod roles;
mod upload;
mod view;

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ren3_server::host::{AllowedHosts, HostRefusal};
use ren3_shared::timestamp;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use ren3_issuer_core::keystore::KeyStore;
use ren3_issuer_core::store::Store;
use ren3_issuer_core::users::Role;
use ren3_issuer_core::{Coded, ErrorKind};

pub use monitoring::{Metrics, app as metrics_app, serve as serve_metrics};

/// The largest request body: a pasted or uploaded license request or
/// release receipt (at most 64 KiB) with room for the form around it.
const BODY_LIMIT: usize = 256 * 1024;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     script-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// How the console is deployed.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Reached through TLS (a terminating proxy): cookies are `Secure`.
    pub behind_tls: bool,
}

/// The time source, in Unix seconds; tests move it.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What every handler shares: the store (one connection, used on the
/// blocking pool only), the signing keys, the configuration, the clock, the
/// turns to check a password and the proxies trusted to name the client.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    trusted_proxies: Arc<[IpAddr]>,
    /// Where the metrics go and how `/metrics` renders them; `None`: it
    /// answers 503 `metrics_unavailable`.
    metrics: Option<monitoring::SharedMetrics>,
}

struct Inner {
    store: Mutex<Store>,
    keys: KeyStore,
    config: Config,
    clock: Clock,
    /// The turns to check a password, a few at a time.
    password_checks: auth::PasswordChecks,
}

impl AppState {
    pub fn new(store: Store, keys: KeyStore, config: Config) -> Self {
        Self::with_clock(store, keys, config, Arc::new(timestamp::now))
    }

    pub fn with_clock(store: Store, keys: KeyStore, config: Config, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                keys,
                config,
                clock,
                password_checks: auth::PasswordChecks::new(),
            }),
            trusted_proxies: Arc::from([]),
            metrics: None,
        }
    }

    /// Records the console's metrics with `metrics` and renders them at
    /// `/metrics` (`serve` installs a Prometheus recorder; tests give each
    /// console one of its own).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(Arc::new(metrics));
        self
    }

    fn metrics(&self) -> Option<&monitoring::SharedMetrics> {
        self.metrics.as_ref()
    }

    /// The proxies whose `X-Forwarded-For` names the client
    /// (`serve --trusted-proxy`). None by default: the header is ignored,
    /// since anyone can send it.
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: &[IpAddr]) -> Self {
        self.trusted_proxies = proxies.iter().map(|ip| ip.to_canonical()).collect();
        self
    }

    fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn password_checks(&self) -> &auth::PasswordChecks {
        &self.inner.password_checks
    }

    /// Runs `f` with the store and the keys on the blocking pool, so that
    /// SQLite and Argon2 never stall the async executor.
    async fn call<T, F>(&self, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store, &KeyStore) -> T + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = state
                .inner
                .store
                .lock()
                .map_err(|_| WebError::internal("the store lock was poisoned by a panic"))?;
            // What the core emits goes to the console's own recorder, if
            // it has one; else to the process's.
            Ok(match &state.metrics {
                Some(metrics) => metrics.recording(|| f(&mut store, &state.inner.keys)),
                None => f(&mut store, &state.inner.keys),
            })
        })
        .await
        .map_err(|e| WebError::internal(format!("a store task failed: {e}")))?
    }

    /// [`Self::call`] for a core function that can fail: its error
    /// answers by its kind ([`WebError`]'s `From`).
    async fn run<T, E, F>(&self, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        E: Coded + Send + 'static,
        F: FnOnce(&mut Store, &KeyStore) -> Result<T, E> + Send + 'static,
    {
        Ok(self.call(f).await??)
    }
}

/// An answer that is not the page asked for.
#[derive(Debug)]
pub(crate) enum WebError {
    NotFound,
    /// A refused POST: a missing or wrong CSRF token, or a cross-site form.
    Forbidden(&'static str),
    /// The signed-in user's role may not use this route.
    RoleNeeded {
        needed: Role,
        has: Role,
    },
    /// The core refused (or another change got there first) where the
    /// handler has no form to show it on: the message and its code.
    Refused {
        status: StatusCode,
        message: String,
        code: &'static str,
    },
    /// Details go to the log, never to the page.
    Internal(String),
}

impl WebError {
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        WebError::Internal(detail.to_string())
    }

    /// A core error a handler shows on its own form, as `Ok(error)`: a
    /// refusal or a conflict. Anything else (not found, internal) is the
    /// answer the core error's kind calls for, as `Err`, for `?`.
    pub(crate) fn shown<E: Coded>(e: E) -> Result<E, WebError> {
        match e.kind() {
            ErrorKind::Refused | ErrorKind::Conflict => Ok(e),
            ErrorKind::NotFound | ErrorKind::Internal => Err(e.into()),
        }
    }
}

/// Every core error answers by its kind, so a handler matches only the
/// errors it shows on its own page.
impl<E: Coded> From<E> for WebError {
    fn from(e: E) -> Self {
        match e.kind() {
            ErrorKind::NotFound => WebError::NotFound,
            ErrorKind::Refused => WebError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: e.to_string(),
                code: e.code(),
            },
            ErrorKind::Conflict => WebError::Refused {
                status: StatusCode::CONFLICT,
                message: e.to_string(),
                code: e.code(),
            },
            ErrorKind::Internal => WebError::Internal(format!("{e} [{}]", e.code())),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "There is no such page.".to_owned()),
            WebError::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_owned()),
            WebError::RoleNeeded { needed, has } => (
                StatusCode::FORBIDDEN,
                format!(
                    "This needs the {needed} role{}; you are signed in as {}, so nothing was \
                     done. An admin can change your role with `ren3-issuer user role NAME \
                     {needed}`.",
                    if needed == Role::Admin {
                        ""
                    } else {
                        " or admin"
                    },
                    article(has),
                ),
            ),
            WebError::Refused {
                status,
                message,
                code,
            } => (status, format!("{message} [{code}]")),
            WebError::Internal(detail) => {
                tracing::error!("console error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on the server; the details are in its log.".to_owned(),
                )
            }
        };
        (status, view::ErrorPage { status, message }).into_response()
    }
}

/// "an admin", "an issuer", "a viewer".
fn article(role: Role) -> String {
    match role {
        Role::Admin | Role::Issuer => format!("an {role}"),
        Role::Viewer => format!("a {role}"),
    }
}

/// The console's router.
pub fn app(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(dashboard::show))
        .route("/licenses", get(licenses::list).post(licenses::create))
        .route("/licenses/new", get(licenses::new_form))
        .route("/licenses/{id}", get(licenses::show))
        .route(
            "/licenses/{id}/edit",
            get(licenses::edit_form).post(licenses::edit),
        )
        .route("/licenses/{id}/status", post(licenses::set_status))
        .route("/licenses/{id}/devices", post(licenses::add_device))
        .route("/licenses/{id}/release", post(licenses::force_release))
        .route("/issue", get(issue::form).post(issue::confirm))
        .route("/issue/check", post(issue::check))
        .route("/payloads/{request_hash}", get(issue::payload))
        .route("/payloads/{request_hash}/download", get(issue::download))
        .route("/release", get(release::form).post(release::confirm))
        .route("/release/check", post(release::check))
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/keys/{key_id}/retire", post(keys::retire))
        .route("/keys/root.pub", get(keys::root_file))
        .route("/keys/revocations.token", get(keys::revocations_file))
        .route("/keys/{key_id}/certificate.token", get(keys::certificate))
        .route("/audit", get(audit_log::list))
        .route("/logout", post(auth::logout))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_login,
        ));
    let router = Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/static/style.css", get(view::stylesheet))
        .route("/static/copy.js", get(view::script))
        // Health and metrics, for monitoring: no login, the `Host` check
        // of `serve` still applies.
        .route("/healthz", get(monitoring::healthz))
        .route("/readyz", get(monitoring::readyz))
        .route("/metrics", get(monitoring::metrics))
        .merge(pages)
        .fallback(|| async { WebError::NotFound })
        .layer(middleware::from_fn(refuse_cross_site))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let router = ren3_server::page_headers::add(router, CONTENT_SECURITY_POLICY)
        .layer(TraceLayer::new_for_http());
    // Served over TLS (through the proxy `--behind-tls` declares): a
    // browser that saw the console once never again tries it in clear,
    // where the session cookie could be stripped or stolen. A year, the
    // usual value; no `includeSubDomains`, since the vendor's other sites
    // under the same domain are not the console's to decide.
    let router = if state.config().behind_tls {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
    } else {
        router
    };
    router.with_state(state)
}

/// `Strict-Transport-Security` behind TLS: one year.
const HSTS: &str = "max-age=31536000";

/// Refuses a state-changing request that the browser says comes from
/// another site. Only `same-origin` and a missing header (not a browser,
/// or an old one; the CSRF token still guards it) pass; a sibling site
/// on the same host (`same-site`) is refused too.
async fn refuse_cross_site(request: Request, next: Next) -> Response {
    const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let site = request
        .headers()
        .get(SEC_FETCH_SITE)
        .map(HeaderValue::as_bytes);
    if !safe && !matches!(site, None | Some(b"same-origin" | b"none")) {
        return WebError::Forbidden(
            "This form was sent from another site, so it was refused. Use the console's own pages.",
        )
        .into_response();
    }
    next.run(request).await
}

/// Serves the console on `listener` until `shutdown` completes, holding
/// every connection to `limits` ([`ren3_server::serve`]) and answering
/// only requests addressed to one of `hosts` (421 otherwise), so a web
/// page cannot reach the console through DNS rebinding. The check sits
/// here, around [`app`], because it is about where the process listens.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    hosts: AllowedHosts,
    limits: ren3_server::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hosts = Arc::new(hosts);
    let app = app(state).layer(middleware::from_fn(move |request: Request, next: Next| {
        let hosts = hosts.clone();
        async move {
            match hosts.judge(request.uri(), request.headers()) {
                Ok(()) => next.run(request).await,
                Err(refusal) => host_refused(&refusal).into_response(),
            }
        }
    }));
    ren3_server::serve(listener, app, limits, shutdown).await
}

/// The page for a request addressed to a host the console does not
/// answer to, or with no usable `Host`.
fn host_refused(refusal: &HostRefusal) -> WebError {
    match refusal {
        HostRefusal::Invalid => WebError::Refused {
            status: StatusCode::BAD_REQUEST,
            message: "The request has no Host header, more than one, or one that is not a \
                      host and port. Open the console by its address, such as \
                      http://localhost:8080/."
                .to_owned(),
            code: "host_invalid",
        },
        HostRefusal::NotAllowed(host) => {
            let shown: String = host.chars().take(64).flat_map(char::escape_debug).collect();
            WebError::Refused {
                status: StatusCode::MISDIRECTED_REQUEST,
                message: format!(
                    "This console answers only requests addressed to localhost, a loopback \
                     address, the address it listens on, or a name given with \
                     --allowed-host, and `{shown}` is none of them (the check keeps web pages \
                     from reaching the console through DNS rebinding). Open it by one of \
                     those names, or restart it with --allowed-host {shown}."
                ),
                code: "host_not_allowed",
            }
        }
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
