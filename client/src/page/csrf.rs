//! The page's CSRF defence: every form carries a random token that must
//! equal the one in a `SameSite=Strict`, `HttpOnly` cookie of the page's
//! path (a double submit), and a request a browser marks as coming from
//! another site is refused before that.
//!
//! A page elsewhere can make a browser send a form here, with the cookie,
//! but it cannot read this page to learn the token; and the `Host` check
//! keeps it from reading the page under a name of its own.

use axum::http::{HeaderMap, StatusCode};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use ren3_shared::binary;
use subtle::ConstantTimeEq as _;

use super::PAGE_PATH;
use super::views::Problem;

/// The cookie's name.
const COOKIE: &str = "ren3_page_csrf";

/// A token's length: 32 random bytes in base64url, without padding.
const TOKEN_LEN: usize = 43;

/// The token for the forms of the page about to be shown: the browser's
/// own if it has a well-formed one (so that two open tabs both work), else
/// a new one, set in the returned jar.
pub(super) fn token(jar: CookieJar) -> Result<(CookieJar, String), Problem> {
    if let Some(cookie) = jar.get(COOKIE).filter(|c| well_formed(c.value())) {
        let token = cookie.value().to_owned();
        return Ok((jar, token));
    }
    let token = binary::encode(&binary::os_random::<32>().map_err(|e| {
        tracing::error!("cannot make the license page's CSRF token: {e}");
        Problem::internal()
    })?);
    let cookie = Cookie::build((COOKIE, token.clone()))
        .path(PAGE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    Ok((jar.add(cookie), token))
}

/// Whether a form may act: sent from this page (not marked cross-site by
/// the browser), with the token of the browser's cookie.
pub(super) fn check(jar: &CookieJar, headers: &HeaderMap, submitted: &str) -> Result<(), Problem> {
    let fetched_from = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if fetched_from.is_some_and(|site| site != "same-origin" && site != "none") {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf_cross_site",
            "This form was sent from another site",
            "Your browser says this form was sent by a page of another site, so nothing was \
             done. Open the license page itself and use its forms.",
        ));
    }
    let matches = jar
        .get(COOKIE)
        .map(|cookie| cookie.value())
        .filter(|expected| well_formed(expected))
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())));
    if matches {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf_token_invalid",
            "This form is out of date",
            "The form's security token is missing or does not match this browser's, so nothing \
             was done. Reload the license page and send the form again. Cookies must be allowed \
             for this page.",
        ))
    }
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
