//! The vendor's web console as a browser meets it: the running process,
//! an HTTP agent and a signed-in session.

use std::process::Child;
use std::time::Duration;

/// The vendor's web console: a running `ren3-issuer serve` on port 0.
pub struct Console {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in console user: the session cookie and the CSRF token that
/// every form of the session carries. Sessions live in the issuer's store,
/// so one outlives a restart of the console.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// `ren3_session=…`, for a `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}

/// An HTTP agent for the console: any status is an answer, and redirects
/// are not followed, so that a confirmed form's `303 See Other` is seen.
pub fn console_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The value of a page's first hidden `csrf` field.
pub fn csrf_of(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    page[start..].split('"').next().map(str::to_owned)
}

/// The `name=value` part of the `Set-Cookie` header that sets `name`.
fn set_cookie(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

impl Console {
    /// SIGKILLs the process and reaps it, leaving the store as a crash
    /// would; [`Issuer::serve`](crate::Issuer::serve) then starts the
    /// console again on it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Logs in through the login form, as a browser does (its
    /// double-submit CSRF cookie included), and reads the session's CSRF
    /// token from the dashboard.
    pub fn login(&self, name: &str, password: &str) -> ConsoleSession {
        let agent = console_agent();
        let mut form = agent.get(format!("{}/login", self.base)).call().unwrap();
        let login_cookie = set_cookie(&form, "ren3_login_csrf").expect("a login CSRF cookie");
        let token = csrf_of(&form.body_mut().read_to_string().unwrap()).expect("a CSRF field");
        let answer = agent
            .post(format!("{}/login", self.base))
            .header("cookie", &login_cookie)
            .send_form([
                ("csrf", token.as_str()),
                ("name", name),
                ("password", password),
            ])
            .unwrap();
        assert_eq!(answer.status().as_u16(), 303, "the login failed");
        let cookie = set_cookie(&answer, "ren3_session").expect("a session cookie");
        let mut dashboard = agent
            .get(format!("{}/", self.base))
            .header("cookie", &cookie)
            .call()
            .unwrap();
        assert_eq!(dashboard.status().as_u16(), 200, "the session is refused");
        let csrf = csrf_of(&dashboard.body_mut().read_to_string().unwrap())
            .expect("a CSRF field on the dashboard");
        ConsoleSession { cookie, csrf }
    }
}
