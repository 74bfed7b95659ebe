//! Logging in and out, the session cookie, and the CSRF token.
//!
//! The session id (256 random bits) lives in an HttpOnly, SameSite=Strict
//! cookie, also Secure behind TLS; the store keeps its hash. Every login
//! gets a new id; logout and idle expiry delete it server-side. The login
//! form, which has no session yet, is guarded by a double-submit token in a
//! cookie of its own.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{AppState, WebError, roles};
use ren3_issuer_core::audit::{self, Action, Actor, NewEntry, Outcome};
use ren3_issuer_core::login::{self as login_rules, Begun, LoginAttempt, LoginOutcome, NotChecked};
use ren3_issuer_core::sessions;
use ren3_issuer_core::users::{PasswordMemory, Role};

const SESSION_COOKIE: &str = "ren3_session";
/// Behind TLS the `__Host-` prefix makes the browser insist on Secure,
/// Path=/ and no Domain.
const SESSION_COOKIE_TLS: &str = "__Host-ren3_session";
const LOGIN_CSRF_COOKIE: &str = "ren3_login_csrf";

/// The signed-in user of a request, put there by [`require_login`].
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser {
    pub name: String,
    pub role: Role,
    pub csrf_token: String,
}

impl CurrentUser {
    /// The audit log's actor: the name and the role acted with.
    pub fn actor(&self) -> Actor {
        Actor::console_as(&self.name, self.role)
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), WebError> {
        if constant_time_eq(token.as_bytes(), self.csrf_token.as_bytes()) {
            Ok(())
        } else {
            Err(WebError::Forbidden(
                "This form's security token is missing or out of date, so nothing was done. \
                 Reload the page and try again.",
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn session_cookie_name(state: &AppState) -> &'static str {
    if state.config().behind_tls {
        SESSION_COOKIE_TLS
    } else {
        SESSION_COOKIE
    }
}

fn cookie(
    state: &AppState,
    name: &'static str,
    value: String,
    path: &'static str,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config().behind_tls)
        .path(path)
        .build()
}

/// Lets the request through only with a live session; otherwise sends the
/// browser to the login page, and changes nothing. With a session, refuses
/// (403) a route the user's role may not use ([`roles::needed`]), before
/// its handler runs.
pub(crate) async fn require_login(
    State(state): State<AppState>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Result<Response, WebError> {
    let name = session_cookie_name(&state);
    let Some(id) = jar.get(name).map(|c| c.value().to_owned()) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = state.now();
    let session = state
        .run(move |store, _| sessions::find(store, &id, now))
        .await?;
    let Some(session) = session else {
        let jar = jar.remove(Cookie::build(name).path("/"));
        return Ok((jar, Redirect::to("/login")).into_response());
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let needed = roles::needed(request.method(), &route);
    if !session.role.allows(needed) {
        return Err(WebError::RoleNeeded {
            needed,
            has: session.role,
        });
    }
    request.extensions_mut().insert(CurrentUser {
        name: session.user_name,
        role: session.role,
        csrf_token: session.csrf_token,
    });
    Ok(next.run(request).await)
}

/// The client's address, when the server knows it (not in handler tests):
/// the peer's, or, when the peer is a trusted proxy, the one the proxies
/// name in `X-Forwarded-For` ([`client_address`]).
pub(crate) struct ClientIp(Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| {
                    client_address(peer.ip(), &parts.headers, &state.trusted_proxies)
                }),
        ))
    }
}

/// The client behind `peer`. A peer that is not a trusted proxy is the
/// client, whatever it says in `X-Forwarded-For`. Each trusted proxy
/// appends the address it saw, so the hops are read from the right, and
/// the first that is not a trusted proxy is the client: anything left of
/// it is the client's own claim. A hop that is not an address stops the
/// walk at the last trusted one, which then stands for the client.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(&client) {
        return client;
    }
    let hops = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .rev()
        // A value that is not text is one hop that is not an address.
        .flat_map(|value| value.to_str().unwrap_or("").rsplit(','));
    for hop in hops {
        let Some(hop) = parse_hop(hop.trim()) else {
            break;
        };
        client = hop;
        if !trusted.contains(&client) {
            break;
        }
    }
    client
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One hop of `X-Forwarded-For`: an address, with or without a port
/// (`203.0.113.5`, `203.0.113.5:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|addr| addr.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The turns to check a password, each with Argon2's working memory.
///
/// One Argon2id check takes 19 MiB and one core (one lane), so more checks
/// at once than cores add memory, not speed: a semaphore gives out one turn
/// per core, up to [`MAX_PASSWORD_CHECKS`], and a login waits at most
/// [`PASSWORD_CHECK_WAIT`] for one. A turn's memory is kept for the next
/// (`PasswordMemory` says why), so logins hold at most that many times
/// 19 MiB, allocated once.
pub(crate) struct PasswordChecks {
    turns: Arc<Semaphore>,
    /// The memory of the turns not in use: never more than there are turns.
    memory: Arc<Mutex<Vec<PasswordMemory>>>,
}

/// The most checks at once on any machine: about 80 MiB.
const MAX_PASSWORD_CHECKS: usize = 4;

/// How long a login waits for its turn to check a password before it is
/// answered 503 and its attempt taken back: longer than a burst of honest
/// logins takes, short enough that the browser is still waiting.
const PASSWORD_CHECK_WAIT: Duration = Duration::from_secs(10);

impl PasswordChecks {
    pub(crate) fn new() -> Self {
        let turns = std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .clamp(1, MAX_PASSWORD_CHECKS);
        Self {
            turns: Arc::new(Semaphore::new(turns)),
            memory: Arc::default(),
        }
    }

    /// A turn to check a password, or `None` if none came within `wait`.
    async fn turn(&self, wait: Duration) -> Result<Option<OwnedSemaphorePermit>, WebError> {
        match tokio::time::timeout(wait, self.turns.clone().acquire_owned()).await {
            Ok(turn) => turn
                .map(Some)
                .map_err(|e| WebError::internal(format!("the password checks stopped: {e}"))),
            Err(_) => Ok(None),
        }
    }

    /// Runs `check` on the blocking pool during `turn`, with that turn's
    /// memory. The turn ends when the check does, even if the request is
    /// gone by then.
    async fn run<T: Send + 'static>(
        &self,
        turn: OwnedSemaphorePermit,
        check: impl FnOnce(&mut PasswordMemory) -> T + Send + 'static,
    ) -> Result<T, WebError> {
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let taken = pool.lock().map(|mut pool| pool.pop());
            let mut memory = taken.ok().flatten().unwrap_or_default();
            let answer = check(&mut memory);
            if let Ok(mut pool) = pool.lock() {
                pool.push(memory);
            }
            drop(turn);
            answer
        })
        .await
        .map_err(|e| WebError::internal(format!("the password check failed: {e}")))
    }
}

/// A reserved attempt, its password not yet checked. Dropped unchecked (the
/// browser went away while it waited), it takes its reservation back, so a
/// waiting login never holds one past its request.
struct Unchecked {
    state: AppState,
    attempt: Option<LoginAttempt>,
}

impl Unchecked {
    fn delay(&self) -> Duration {
        self.attempt
            .as_ref()
            .map_or(Duration::ZERO, LoginAttempt::delay)
    }

    /// The attempt, to check its password or abandon it: from here on it is
    /// the caller's to conclude.
    fn take(mut self) -> LoginAttempt {
        self.attempt
            .take()
            .expect("an Unchecked holds its attempt until take, which consumes it")
    }
}

impl Drop for Unchecked {
    fn drop(&mut self) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        // Without a runtime (shutting down) the reservation lapses with the
        // throttle window instead.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let state = self.state.clone();
        runtime.spawn(async move {
            let now = state.now();
            let abandoned = state
                .run(move |store, _| {
                    login_rules::abandon(store, attempt, NotChecked::ClientGone, now)
                })
                .await;
            if let Err(e) = abandoned {
                tracing::warn!("cannot take back an abandoned login attempt: {e:?}");
            }
        });
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    csrf: String,
    name: String,
    error: Option<String>,
}

pub(crate) async fn login_form(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<impl IntoResponse, WebError> {
    let token = sessions::random_token()?;
    let jar = jar.add(cookie(&state, LOGIN_CSRF_COOKIE, token.clone(), "/login"));
    Ok((
        jar,
        LoginPage {
            csrf: token,
            name: String::new(),
            error: None,
        },
    ))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    if !expected
        .is_some_and(|t| !t.is_empty() && constant_time_eq(t.as_bytes(), form.csrf.as_bytes()))
    {
        return Err(WebError::Forbidden(
            "The login form's security token is missing or out of date. Reload the login page \
             and try again.",
        ));
    }
    let page = |name: &str, error: &str| LoginPage {
        csrf: form.csrf.clone(),
        name: name.to_owned(),
        error: Some(error.to_owned()),
    };
    let now = state.now();
    let (name, address) = (form.name.clone(), ip.map(|ip| ip.to_string()));
    // The attempt counts as a failure from here, before its password is
    // hashed, so concurrent guesses cannot outrun the throttle.
    let attempt = match state
        .run(move |store, _| login_rules::begin(store, &name, address.as_deref(), now))
        .await?
    {
        Begun::Throttled { name } => {
            let error = "Too many failed logins for this name from here. Wait a quarter of an \
                         hour, then try again.";
            return Ok((
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", sessions::THROTTLE_WINDOW_SECS.to_string())],
                page(&name, error),
            )
                .into_response());
        }
        Begun::Reserved(attempt) => attempt,
    };
    let name = attempt.name().to_owned();
    let unchecked = Unchecked {
        state: state.clone(),
        attempt: Some(attempt),
    };
    // The spray delay of this address; sleeping holds no turn to check.
    tokio::time::sleep(unchecked.delay()).await;
    let Some(turn) = state.password_checks().turn(PASSWORD_CHECK_WAIT).await? else {
        let attempt = unchecked.take();
        let now = state.now();
        state
            .run(move |store, _| login_rules::abandon(store, attempt, NotChecked::Busy, now))
            .await?;
        let error = "The console is busy checking other logins, so your password was not \
                     checked. Try again in a few seconds.";
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", BUSY_RETRY_AFTER_SECS.to_string())],
            page(&name, error),
        )
            .into_response());
    };
    let attempt = unchecked.take();
    let password = form.password.clone();
    // Argon2 is slow on purpose: it runs on the blocking pool, without the
    // store.
    let checked = state
        .password_checks()
        .run(turn, move |memory| {
            attempt.check_password(&password, memory)
        })
        .await?;
    let now = state.now();
    let session = match state
        .run(move |store, _| login_rules::conclude(store, checked, now))
        .await?
    {
        LoginOutcome::WrongCredentials => {
            let wrong = page(&name, "Wrong user name or password.");
            return Ok((StatusCode::UNAUTHORIZED, wrong).into_response());
        }
        LoginOutcome::LoggedIn(session) => session,
    };
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/login"))
        .add(cookie(&state, session_cookie_name(&state), session.id, "/"));
    Ok((jar, Redirect::to("/")).into_response())
}

/// The `Retry-After` of a login answered 503 because it waited too long.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(user): Extension<CurrentUser>,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    user.check_csrf(&form.csrf)?;
    let name = session_cookie_name(&state);
    let id = jar
        .get(name)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    let now = state.now();
    let actor = user.actor();
    let subject = user.name.clone();
    state
        .run(move |store, _| {
            sessions::delete(store, &id)?;
            audit::record(
                store,
                &NewEntry {
                    actor: &actor,
                    action: Action::Logout,
                    subject,
                    outcome: Outcome::Ok,
                    detail: "session ended".to_owned(),
                },
                now,
            )
        })
        .await?;
    let jar = jar.remove(Cookie::build(name).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the case is, the peer, the `X-Forwarded-For` headers in order,
    /// whether 10.0.0.2 and 10.0.0.3 are trusted proxies, the client.
    type Case = (
        &'static str,
        &'static str,
        &'static [&'static str],
        bool,
        &'static str,
    );

    #[test]
    fn the_client_is_the_rightmost_hop_no_trusted_proxy_appended() {
        let cases: [Case; 10] = [
            (
                "1. no proxy trusted: the header is ignored",
                "10.0.0.2",
                &["203.0.113.5"],
                false,
                "10.0.0.2",
            ),
            (
                "2. an untrusted peer: ignored",
                "192.0.2.9",
                &["203.0.113.5"],
                true,
                "192.0.2.9",
            ),
            (
                "3. the hop the proxy appended",
                "10.0.0.2",
                &["203.0.113.5"],
                true,
                "203.0.113.5",
            ),
            (
                "4. the client's own claims to its left",
                "10.0.0.2",
                &["198.51.100.1, 203.0.113.5"],
                true,
                "203.0.113.5",
            ),
            (
                "5. through two trusted proxies",
                "10.0.0.2",
                &["203.0.113.5, 10.0.0.3"],
                true,
                "203.0.113.5",
            ),
            (
                "6. headers in order, the last one rightmost",
                "10.0.0.2",
                &["198.51.100.1", "203.0.113.5"],
                true,
                "203.0.113.5",
            ),
            (
                "7. no header: the proxy itself",
                "10.0.0.2",
                &[],
                true,
                "10.0.0.2",
            ),
            (
                "8. garbage the proxy appended: the proxy",
                "10.0.0.2",
                &["203.0.113.5, not-an-ip"],
                true,
                "10.0.0.2",
            ),
            (
                "9. a port and an IPv6 in brackets",
                "10.0.0.2",
                &["[2001:db8::1]:4711"],
                true,
                "2001:db8::1",
            ),
            (
                "10. an IPv4-mapped peer is the proxy",
                "::ffff:10.0.0.2",
                &["203.0.113.5"],
                true,
                "203.0.113.5",
            ),
        ];
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        for (case, peer, hops, proxies, expected) in cases {
            let trusted = if proxies {
                vec![ip("10.0.0.2"), ip("10.0.0.3")]
            } else {
                Vec::new()
            };
            let mut headers = HeaderMap::new();
            for hop in hops {
                headers.append(X_FORWARDED_FOR, hop.parse().unwrap());
            }
            assert_eq!(
                client_address(ip(peer), &headers, &trusted),
                ip(expected),
                "{case}"
            );
        }
    }
}
