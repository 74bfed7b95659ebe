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

use super::{AppState, WebError};
use ren3_issuer_core::audit::{self, Action, Actor, NewEntry, Outcome};
use ren3_issuer_core::{sessions, users};

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
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    let name = form.name.trim().to_owned();
    let mut throttle_keys = vec![format!("user:{name}")];
    if let Some(ip) = ip {
        throttle_keys.push(format!("addr:{ip}"));
    }
    let actor = Actor::console(&name);
    let keys = throttle_keys.clone();
    let (throttled, credentials) = {
        let name = name.clone();
        state
            .run(move |store, _| {
                Ok::<_, ren3_issuer_core::store::StoreError>((
                    sessions::is_throttled(store, &keys, now)?,
                    users::credentials(store, &name)?,
                ))
            })
            .await?
    };
    let page = |error: &str| LoginPage {
        csrf: form.csrf.clone(),
        name: name.clone(),
        error: Some(error.to_owned()),
    };
    if throttled {
        let detail = format!(
            "refused without checking the password: {} failed logins within {} minutes",
            sessions::MAX_FAILURES,
            sessions::THROTTLE_WINDOW_SECS / 60
        );
        let (actor, name) = (actor.clone(), name.clone());
        state
            .run(move |store, _| {
                audit::record(
                    store,
                    &NewEntry {
                        actor: &actor,
                        action: Action::Login,
                        subject: name,
                        outcome: Outcome::Throttled,
                        detail,
                    },
                    now,
                )
            })
            .await?;
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", sessions::THROTTLE_WINDOW_SECS.to_string())],
            page("Too many failed logins. Wait a quarter of an hour, then try again."),
        )
            .into_response());
    }

    let password = form.password.clone();
    // Argon2 is slow on purpose: it runs on the blocking pool, without the store.
    let user = tokio::task::spawn_blocking(move || {
        users::verify_password(credentials.as_ref(), &password)
    })
    .await
    .map_err(|e| WebError::Internal(format!("the password check failed: {e}")))?;

    let Some(user) = user else {
        let keys = throttle_keys;
        let result: Result<(), ren3_issuer_core::store::StoreError> = {
            let audit_actor = actor.clone();
            let subject = name.clone();
            state
                .call(move |store, _| {
                    sessions::record_failure(store, &keys, now)?;
                    audit::record(
                        store,
                        &NewEntry {
                            actor: &audit_actor,
                            action: Action::Login,
                            subject,
                            outcome: Outcome::Refused,
                            detail: "wrong user name or password".to_owned(),
                        },
                        now,
                    )
                })
                .await?
        };
        result?;
        return Ok((
            StatusCode::UNAUTHORIZED,
            page("Wrong user name or password."),
        )
            .into_response());
    };

    let user_key = format!("user:{}", user.name);
    let actor_ok = actor.clone();
    let subject = user.name.clone();
    let session = state
        .run(move |store, _| {
            sessions::clear_failures(store, &user_key)?;
            let session = sessions::create(store, user.id, now)?;
            audit::record(
                store,
                &NewEntry {
                    actor: &actor_ok,
                    action: Action::Login,
                    subject,
                    outcome: Outcome::Ok,
                    detail: "new session".to_owned(),
                },
                now,
            )?;
            Ok::<_, sessions::SessionError>(session)
        })
        .await?;
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
