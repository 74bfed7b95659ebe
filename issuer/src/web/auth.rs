//! Logging in and out, the session cookie, and the CSRF token.
//!
//! The session id (256 random bits) lives in an HttpOnly, SameSite=Strict
//! cookie, also Secure behind TLS; the store keeps its hash. Every login
//! gets a new id; logout and idle expiry delete it server-side. The login
//! form, which has no session yet, is guarded by a double-submit token in a
//! cookie of its own.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::{AppState, WebError};
use ren3_issuer_core::audit::{self, Action, Actor, NewEntry, Outcome};
use ren3_issuer_core::login::{self as login_rules, LoginOutcome};
use ren3_issuer_core::sessions;

const SESSION_COOKIE: &str = "ren3_session";
/// Behind TLS the `__Host-` prefix makes the browser insist on Secure,
/// Path=/ and no Domain.
const SESSION_COOKIE_TLS: &str = "__Host-ren3_session";
const LOGIN_CSRF_COOKIE: &str = "ren3_login_csrf";

/// The signed-in user of a request, put there by [`require_login`].
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser {
    pub name: String,
    pub csrf_token: String,
}

impl CurrentUser {
    pub fn actor(&self) -> Actor {
        Actor::console(&self.name)
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
/// browser to the login page, and changes nothing.
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
    request.extensions_mut().insert(CurrentUser {
        name: session.user_name,
        csrf_token: session.csrf_token,
    });
    Ok(next.run(request).await)
}

/// The client's address, when the server knows it (not in handler tests).
pub(crate) struct ClientIp(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
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
    let now = state.now();
    let (name, address) = (form.name.clone(), ip.map(|ip| ip.to_string()));
    let attempt = state
        .run(move |store, _| login_rules::attempt(store, &name, address.as_deref(), now))
        .await?;
    let page = |error: &str| LoginPage {
        csrf: form.csrf.clone(),
        name: attempt.name().to_owned(),
        error: Some(error.to_owned()),
    };
    let (throttled, wrong) = (
        page("Too many failed logins. Wait a quarter of an hour, then try again."),
        page("Wrong user name or password."),
    );
    let password = form.password.clone();
    // Argon2 is slow on purpose: it runs on the blocking pool, without the store.
    let checked = tokio::task::spawn_blocking(move || attempt.check_password(&password))
        .await
        .map_err(|e| WebError::Internal(format!("the password check failed: {e}")))?;
    let session = match state
        .run(move |store, _| login_rules::conclude(store, checked, now))
        .await?
    {
        LoginOutcome::Throttled => {
            return Ok((
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", sessions::THROTTLE_WINDOW_SECS.to_string())],
                throttled,
            )
                .into_response());
        }
        LoginOutcome::WrongCredentials => {
            return Ok((StatusCode::UNAUTHORIZED, wrong).into_response());
        }
        LoginOutcome::LoggedIn(session) => session,
    };
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/login"))
        .add(cookie(&state, session_cookie_name(&state), session.id, "/"));
    Ok((jar, Redirect::to("/")).into_response())
}

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
