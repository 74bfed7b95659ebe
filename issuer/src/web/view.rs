//! What every page shares: the layout, the error page, the static assets
//! and the small formatting helpers the templates use.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use ren3_issuer_core::users::Role;

use super::WebError;
use super::auth::CurrentUser;

/// The one stylesheet and the one script, embedded in the binary.
const STYLESHEET: &str = include_str!("../../static/style.css");
const SCRIPT: &str = include_str!("../../static/copy.js");

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
}

/// The signed-in user and the CSRF token of their session, for the
/// navigation bar and its logout form. A handler takes it as an argument:
/// it is read from the request, so no page can name the wrong section.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub user: String,
    /// What the navigation and the page offer: only what the role may use.
    pub role: Role,
    pub csrf: String,
    /// Which navigation entry is current.
    pub section: Section,
}

/// Read from what `require_login` left on the request, and its path.
impl<S: Send + Sync> FromRequestParts<S> for Layout {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let user = parts.extensions.get::<CurrentUser>().ok_or_else(|| {
            WebError::internal(format!(
                "{} asked for the page layout, but no signed-in user was there: \
                 its route is outside `require_login`",
                parts.uri.path()
            ))
        })?;
        Ok(Layout {
            user: user.name.clone(),
            role: user.role,
            csrf: user.csrf_token.clone(),
            section: Section::from_path(parts.uri.path()),
        })
    }
}

impl Layout {
    /// Whether the page shows the forms that change licenses, devices,
    /// issuances and seats (`roles::needed` refuses them anyway).
    pub(crate) fn may_change(&self) -> bool {
        self.role.allows(Role::Issuer)
    }

    /// Whether the page shows the forms that rotate and retire keys.
    pub(crate) fn may_manage_keys(&self) -> bool {
        self.role.allows(Role::Admin)
    }
}

/// The console's navigation entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Dashboard,
    Licenses,
    Issue,
    Release,
    Keys,
    Audit,
}

impl Section {
    /// The section of a page, by the first segment of its path: the one
    /// place that knows which route belongs under which entry. A payload
    /// is what issuing makes, so `/payloads/…` is under Issue. Any other
    /// path (`/`, or a page added without a line here) is the dashboard,
    /// the console's home.
    pub(crate) fn from_path(path: &str) -> Self {
        let first = path.trim_start_matches('/').split('/').next();
        match first.unwrap_or_default() {
            "licenses" => Section::Licenses,
            "issue" | "payloads" => Section::Issue,
            "release" => Section::Release,
            "keys" => Section::Keys,
            "audit" => Section::Audit,
            _ => Section::Dashboard,
        }
    }

    /// The name `page.html` compares with to mark the current entry.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Section::Dashboard => "dashboard",
            Section::Licenses => "licenses",
            Section::Issue => "issue",
            Section::Release => "release",
            Section::Keys => "keys",
            Section::Audit => "audit",
        }
    }
}

/// So a template says `layout.section == "keys"`.
impl PartialEq<&str> for Section {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub status: StatusCode,
    pub message: String,
}

/// The console's template filters: the texts of `crate::present`, the
/// same the CLI prints. A page's module brings them in scope with
/// `use super::view::filters;`.
pub(crate) mod filters {
    use std::collections::BTreeMap;

    use askama::{Result, Values};

    use crate::present;

    /// `{{ at|time }}`: RFC 3339, UTC.
    #[askama::filter_fn]
    pub(crate) fn time(at: &i64, _: &dyn Values) -> Result<String> {
        Ok(present::time(*at))
    }

    /// `{{ expires_at|expiry }}`: a time, or "never".
    #[askama::filter_fn]
    pub(crate) fn expiry(at: &Option<i64>, _: &dyn Values) -> Result<String> {
        Ok(present::expiry(*at))
    }

    /// `{{ seconds|grace }}`: "none", whole days, or seconds.
    #[askama::filter_fn]
    pub(crate) fn grace(seconds: &u64, _: &dyn Values) -> Result<String> {
        Ok(present::grace(*seconds))
    }

    /// `{{ limits|limits }}`: `name=value, …`, or "none".
    #[askama::filter_fn]
    pub(crate) fn limits(limits: &BTreeMap<String, u64>, _: &dyn Values) -> Result<String> {
        Ok(present::limits(limits, ", "))
    }
}

/// `a=1&b=2`, percent-encoded, skipping empty values.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().filter(|(_, value)| !value.is_empty()))
        .finish()
}

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts as _;
    use axum::http::Request;

    use super::super::WebError;
    use super::super::auth::CurrentUser;
    use super::{Layout, Section};

    /// Every route of `super::app`, with the entry its page is under.
    /// The ones that show no page with a layout (the login page, the
    /// assets, logging out) fall to the default.
    const ROUTES: &[(&str, Section)] = &[
        ("/", Section::Dashboard),
        ("/licenses", Section::Licenses),
        ("/licenses/new", Section::Licenses),
        ("/licenses/{id}", Section::Licenses),
        ("/licenses/{id}/edit", Section::Licenses),
        ("/licenses/{id}/status", Section::Licenses),
        ("/licenses/{id}/devices", Section::Licenses),
        ("/licenses/{id}/release", Section::Licenses),
        ("/issue", Section::Issue),
        ("/issue/check", Section::Issue),
        ("/payloads/{request_hash}", Section::Issue),
        ("/payloads/{request_hash}/download", Section::Issue),
        ("/release", Section::Release),
        ("/release/check", Section::Release),
        ("/keys", Section::Keys),
        ("/keys/rotate", Section::Keys),
        ("/keys/{key_id}/retire", Section::Keys),
        ("/keys/root.pub", Section::Keys),
        ("/keys/revocations.token", Section::Keys),
        ("/keys/{key_id}/certificate.token", Section::Keys),
        ("/audit", Section::Audit),
        ("/logout", Section::Dashboard),
        ("/login", Section::Dashboard),
        ("/static/style.css", Section::Dashboard),
        ("/static/copy.js", Section::Dashboard),
        ("/healthz", Section::Dashboard),
        ("/readyz", Section::Dashboard),
        ("/metrics", Section::Dashboard),
    ];

    #[test]
    fn every_route_is_under_its_section() {
        for &(route, section) in ROUTES {
            assert_eq!(Section::from_path(route), section, "{route}");
        }
    }

    /// The table above is every route `app` declares, read from its
    /// source: a route added there without a row here fails.
    #[test]
    fn the_table_has_every_route_of_the_app() {
        let declared: Vec<&str> = include_str!("mod.rs")
            .split(".route(")
            .skip(1)
            .map(|call| {
                let path = call.trim_start().strip_prefix('"').expect("a route path");
                &path[..path.find('"').expect("its closing quote")]
            })
            .collect();
        let listed: Vec<&str> = ROUTES.iter().map(|&(route, _)| route).collect();
        assert_eq!(declared, listed);
    }

    #[test]
    fn a_path_is_read_by_its_first_segment_only() {
        for (path, section) in [
            ("/licenses/7/edit", Section::Licenses),
            ("/licenses/", Section::Licenses),
            ("/payloads/ab12", Section::Issue),
            ("/keys/k1/retire", Section::Keys),
            ("/audit/keys", Section::Audit),
            ("", Section::Dashboard),
            ("/licensesx", Section::Dashboard),
            ("/no/such/page", Section::Dashboard),
        ] {
            assert_eq!(Section::from_path(path), section, "{path}");
        }
    }

    #[test]
    fn a_template_compares_a_section_with_its_name() {
        assert!(Section::Release == "release");
        assert!(Section::Release != "issue");
    }

    fn parts(path: &str, user: Option<CurrentUser>) -> axum::http::request::Parts {
        let (mut parts, ()) = Request::get(path).body(()).unwrap().into_parts();
        if let Some(user) = user {
            parts.extensions.insert(user);
        }
        parts
    }

    #[tokio::test]
    async fn the_layout_is_the_signed_in_user_and_the_path_s_section() {
        let user = CurrentUser {
            name: "ada".to_owned(),
            role: ren3_issuer_core::users::Role::Issuer,
            csrf_token: "t0ken".to_owned(),
        };
        let mut parts = parts("/payloads/ab12?x=1", Some(user));
        let layout = Layout::from_request_parts(&mut parts, &()).await.unwrap();
        assert_eq!(layout.user, "ada");
        assert!(layout.may_change() && !layout.may_manage_keys());
        assert_eq!(layout.csrf, "t0ken");
        assert_eq!(layout.section, Section::Issue);
    }

    #[tokio::test]
    async fn a_route_outside_the_login_has_no_layout() {
        let mut parts = parts("/login", None);
        let refused = Layout::from_request_parts(&mut parts, &()).await;
        match refused {
            Err(WebError::Internal(detail)) => assert!(detail.contains("require_login")),
            other => panic!("expected an internal error, got {other:?}"),
        }
    }
}
