//! Handler tests: the console's router, in-process, over a real store.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use ren3_shared::{ClockPolicy, DeviceId, DeviceKey, LicenseKey, ReleaseReceipt};
use tower::ServiceExt as _;

use super::{AppState, Config};
use ren3_issuer_core::audit::{self, Filter};
use ren3_issuer_core::keystore::KeyStore;
use ren3_issuer_core::licenses::{self, NewLicense};
use ren3_issuer_core::store::LicenseStatus;
use ren3_issuer_core::testing::{NOW, TestStore, actor, request};
use ren3_issuer_core::{Coded as _, issuance, sessions, setup, users};

const PASSWORD: &str = "correct horse battery";
/// The serial of a device's first payload issued at `NOW`: the issuance
/// time in microseconds (`issuance::next_serial`).
const FIRST_SERIAL: u64 = NOW as u64 * issuance::SERIALS_PER_SECOND;

struct Console {
    t: TestStore,
    app: Router,
    clock: Arc<AtomicI64>,
    /// `name=value` of the session cookie, once logged in.
    session: Option<String>,
    csrf: String,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// The value of the first `name="csrf" value="..."` in a page.
fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

impl Console {
    fn new() -> Self {
        Self::with_config(Config::default())
    }

    fn with_config(config: Config) -> Self {
        Self::with(config, |keys| keys)
    }

    /// A console whose key store is `keys` applied to the store's own: to
    /// give it a passphrase, or none.
    fn with_keys(keys: impl FnOnce(KeyStore) -> KeyStore) -> Self {
        Self::with(Config::default(), keys)
    }

    fn with(config: Config, keys: impl FnOnce(KeyStore) -> KeyStore) -> Self {
        let mut t = TestStore::new();
        users::add(
            &mut t.store,
            &actor(),
            "alice",
            PASSWORD,
            users::Role::Admin,
            NOW,
        )
        .unwrap();
        let clock = Arc::new(AtomicI64::new(NOW));
        let time = clock.clone();
        let state = AppState::with_clock(
            setup::open_store(&t.paths).unwrap(),
            keys(setup::open_keys(&t.paths).unwrap()),
            config,
            Arc::new(move || time.load(Ordering::SeqCst)),
        )
        .with_metrics(super::Metrics::own());
        Self {
            t,
            app: super::app(state),
            clock,
            session: None,
            csrf: String::new(),
        }
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response: Response<Body> = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn builder(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(cookie) = &self.session {
            builder = builder.header(header::COOKIE, cookie);
        }
        builder
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.builder("GET", path).body(Body::empty()).unwrap())
            .await
    }

    fn form_body(fields: &[(&str, &str)]) -> String {
        fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    super::view::query_string(&[("x", v)]).trim_start_matches("x=")
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A form POST as the console's own page sends it.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.post_from(path, fields, "same-origin").await
    }

    async fn post_from(&self, path: &str, fields: &[(&str, &str)], site: &str) -> Answer {
        self.send(
            self.builder("POST", path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", site)
                .body(Body::from(Self::form_body(fields)))
                .unwrap(),
        )
        .await
    }

    async fn post_multipart(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let boundary = "----ren3boundary";
        let mut body = String::new();
        for (name, value) in fields {
            let disposition = if *name == "file" {
                "form-data; name=\"file\"; filename=\"request.txt\"".to_owned()
            } else {
                format!("form-data; name=\"{name}\"")
            };
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        self.send(
            self.builder("POST", path)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    async fn try_login(&mut self, name: &str, password: &str) -> Answer {
        let page = self.get("/login").await;
        let login_cookie = page
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("ren3_login_csrf="))
            .unwrap();
        let token = csrf_of(&page.body);
        let answer = self
            .send(
                Request::builder()
                    .method("POST")
                    .uri("/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::COOKIE, login_cookie.split(';').next().unwrap())
                    .body(Body::from(Self::form_body(&[
                        ("csrf", &token),
                        ("name", name),
                        ("password", password),
                    ])))
                    .unwrap(),
            )
            .await;
        if let Some(cookie) = answer
            .set_cookies()
            .into_iter()
            .find(|c| c.contains("ren3_session=") && !c.contains("Max-Age=0"))
        {
            self.session = Some(cookie.split(';').next().unwrap().to_owned());
        }
        answer
    }

    async fn log_in(&mut self) {
        let answer = self.try_login("alice", PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let dashboard = self.get("/").await;
        assert_eq!(dashboard.status, StatusCode::OK);
        self.csrf = csrf_of(&dashboard.body);
    }

    fn license(&mut self, new: NewLicense) -> (LicenseKey, i64) {
        let created = licenses::create(&mut self.t.store, &actor(), &new, NOW).unwrap();
        (created.key, created.license.id)
    }

    fn audit_actions(&self) -> Vec<(String, String, String)> {
        audit::page(&self.t.store, &Filter::default(), 1000)
            .unwrap()
            .entries
            .into_iter()
            .rev()
            .map(|e| (e.actor, e.action, e.result))
            .collect()
    }
}

fn acme(max_devices: u32) -> NewLicense {
    NewLicense {
        customer: "ACME GmbH".into(),
        features: vec!["ingest".into()],
        limits: vec![("max-sources".into(), 10)],
        expires_at: None,
        max_devices,
        ..NewLicense::default()
    }
}

#[tokio::test]
async fn every_page_requires_a_login_but_the_login_page_and_static_assets() {
    let console = Console::new();
    let protected = [
        "/",
        "/licenses",
        "/licenses/new",
        "/licenses/1",
        "/licenses/1/edit",
        "/issue",
        "/payloads/AAAA",
        "/payloads/AAAA/download",
        "/keys",
        "/keys/root.pub",
        "/keys/revocations.token",
        "/keys/AAAAAAAAAAA/certificate.token",
        "/audit",
        "/release",
    ];
    for (i, path) in protected.iter().enumerate() {
        let answer = console.get(path).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{}. GET {path}",
            i + 1
        );
        assert_eq!(answer.location(), "/login", "{}. GET {path}", i + 1);
    }
    for path in [
        "/licenses",
        "/licenses/1/edit",
        "/licenses/1/status",
        "/licenses/1/devices",
        "/issue",
        "/issue/check",
        "/logout",
        "/release",
        "/release/check",
        "/licenses/1/release",
        "/keys/rotate",
        "/keys/AAAAAAAAAAA/retire",
    ] {
        let answer = console.post(path, &[("csrf", "x")]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "POST {path}");
        assert_eq!(answer.location(), "/login", "POST {path}");
    }
    // A made-up session id is no session.
    let mut forged = Console::new();
    forged.session = Some(format!(
        "ren3_session={}",
        sessions::random_token().unwrap()
    ));
    assert_eq!(forged.get("/").await.location(), "/login");

    for path in ["/login", "/static/style.css", "/static/copy.js"] {
        assert_eq!(console.get(path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn every_post_refuses_a_missing_or_wrong_csrf_token_and_changes_nothing() {
    let mut console = Console::new();
    console.log_in().await;
    let (key, id) = console.license(acme(2));
    let device = ren3_issuer_core::devices::add(&mut console.t.store, &actor(), id, None, NOW)
        .unwrap()
        .device
        .client_device_id;
    let text = request(&key, &device, &DeviceKey::from_seed(&[1; 32]));
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/licenses".into(),
            vec![("customer", "Globex"), ("max_devices", "1")],
        ),
        (format!("/licenses/{id}/edit"), vec![("features", "export")]),
        (
            format!("/licenses/{id}/status"),
            vec![("status", "suspended")],
        ),
        (format!("/licenses/{id}/devices"), vec![("label", "plant")]),
        ("/issue".into(), vec![("request", &text)]),
        ("/logout".into(), vec![]),
    ];
    let before = console.t.snapshot();
    for (i, (path, fields)) in posts.iter().enumerate() {
        for token in [None, Some("wrong"), Some("")] {
            let mut fields = fields.clone();
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let answer = console.post(path, &fields).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{}. POST {path} with token {token:?}",
                i + 1
            );
        }
    }
    let answer = console
        .post_multipart("/issue/check", &[("csrf", "wrong"), ("request", &text)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "multipart check");
    assert_eq!(console.t.snapshot(), before);
    // Still logged in: the refused logout did not end the session.
    assert_eq!(console.get("/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn cross_site_and_same_site_posts_are_refused_even_with_a_valid_token() {
    let mut console = Console::new();
    console.log_in().await;
    let before = console.t.snapshot();
    for site in ["cross-site", "same-site"] {
        let answer = console
            .post_from(
                "/licenses",
                &[
                    ("csrf", &console.csrf.clone()),
                    ("customer", "Evil Corp"),
                    ("max_devices", "1"),
                ],
                site,
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{site}");
    }
    assert_eq!(console.t.snapshot(), before);
    // The same form from the console itself goes through.
    let csrf = console.csrf.clone();
    let answer = console
        .post(
            "/licenses",
            &[
                ("csrf", &csrf),
                ("customer", "Evil Corp"),
                ("max_devices", "1"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn script_in_a_customer_name_comes_back_escaped() {
    let mut console = Console::new();
    console.log_in().await;
    let csrf = console.csrf.clone();
    let evil = "<script>alert('x')</script> & Co";
    let created = console
        .post(
            "/licenses",
            &[("csrf", &csrf), ("customer", evil), ("max_devices", "1")],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id = licenses::list(&console.t.store, None).unwrap()[0]
        .license
        .id;
    for path in [
        "/licenses".to_owned(),
        format!("/licenses/{id}"),
        "/licenses?q=%3Cscript%3E".to_owned(),
        "/audit".to_owned(),
    ] {
        let page = console.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains("&#60;script&#62;alert")
                || page.body.contains("&lt;script&gt;alert"),
            "{path}"
        );
    }
    assert!(!created.body.contains("<script>alert"));
}

#[tokio::test]
async fn license_list_pages_through_all_licenses_and_searches() {
    let mut console = Console::new();
    console.log_in().await;
    let mut keys = Vec::new();
    for i in 0..30 {
        keys.push(console.license(NewLicense {
            customer: format!("Customer {i:02}"),
            ..acme(1)
        }));
    }
    let first = console.get("/licenses").await;
    assert_eq!(
        first.body.matches("<tr><td><a href=\"/licenses/").count(),
        25
    );
    assert!(first.body.contains("Customer 29") && !first.body.contains("Customer 04"));
    let next = first
        .body
        .split("rel=\"next\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = console.get(&next).await;
    assert_eq!(
        second.body.matches("<tr><td><a href=\"/licenses/").count(),
        5
    );
    assert!(second.body.contains("Customer 00") && !second.body.contains("rel=\"next\""));

    let cases = [
        ("1. customer part, any case", "customer 1".to_owned(), 10),
        ("2. key prefix", keys[7].0.hint()[..12].to_owned(), 1),
        ("3. key fingerprint", keys[3].0.fingerprint().to_string(), 1),
        ("4. nothing", "Globex".to_owned(), 0),
    ];
    for (name, q, at_least) in cases {
        let page = console
            .get(&format!(
                "/licenses?{}",
                super::view::query_string(&[("q", &q)])
            ))
            .await;
        let rows = page.body.matches("<tr><td><a href=\"/licenses/").count();
        assert!(
            rows >= at_least && (at_least > 0 || rows == 0),
            "{name}: {rows}"
        );
        if at_least == 0 {
            assert!(page.body.contains("No license matches"), "{name}");
        }
    }
}

#[tokio::test]
async fn the_issue_page_checks_then_issues_and_serves_the_payload() {
    let mut console = Console::new();
    console.log_in().await;
    let (key, id) = console.license(acme(1));
    let device = ren3_issuer_core::devices::add(&mut console.t.store, &actor(), id, None, NOW)
        .unwrap()
        .device
        .client_device_id;
    let token = request(&key, &device, &DeviceKey::from_seed(&[1; 32]));
    // Wrapped as a mail client would: accepted.
    let wrapped = token
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let csrf = console.csrf.clone();
    let before = console.t.snapshot();
    let checked = console
        .post_multipart("/issue/check", &[("csrf", &csrf), ("request", &wrapped)])
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert_eq!(checked.body.matches("class=\"verdict pass\"").count(), 8);
    assert!(checked.body.contains(device.as_str()));
    assert!(!checked.body.contains("disabled"));
    assert_eq!(console.t.snapshot(), before, "checking writes nothing");

    // Uploading the request as a file gives the same report.
    let uploaded = console
        .post_multipart("/issue/check", &[("csrf", &csrf), ("file", &token)])
        .await;
    assert_eq!(uploaded.body.matches("class=\"verdict pass\"").count(), 8);

    let issued = console
        .post("/issue", &[("csrf", &csrf), ("request", &wrapped)])
        .await;
    assert_eq!(issued.status, StatusCode::SEE_OTHER, "{}", issued.body);
    let payload_page = console.get(issued.location()).await;
    let details = licenses::show(&console.t.store, id).unwrap();
    let payload = &details.issuances[0].payload;
    assert!(payload_page.body.contains(payload.as_str()));
    let download = console
        .get(&format!("{}/download", issued.location()))
        .await;
    assert_eq!(download.body.trim(), payload);
    assert!(
        download.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    // The license page shows the issuance and the seat in use.
    let page = console.get(&format!("/licenses/{id}")).await;
    assert!(page.body.contains("1 used, 0 free, of 1"), "{}", page.body);
}

#[tokio::test]
async fn a_suspended_or_expired_license_cannot_be_issued() {
    let mut console = Console::new();
    console.log_in().await;
    let (suspended, suspended_id) = console.license(acme(1));
    licenses::set_status(
        &mut console.t.store,
        &actor(),
        suspended_id,
        LicenseStatus::Suspended,
        NOW,
    )
    .unwrap();
    let (expiring, expiring_id) = console.license(NewLicense {
        expires_at: Some(NOW + 100),
        ..acme(1)
    });
    // The console's clock moves past the expiry.
    console.clock.store(NOW + 100, Ordering::SeqCst);
    let cases = [
        ("1. suspended", suspended, suspended_id, "license_suspended"),
        ("2. expired", expiring, expiring_id, "license_expired"),
    ];
    let csrf = console.csrf.clone();
    for (name, key, id, code) in cases {
        let device = ren3_issuer_core::devices::add(&mut console.t.store, &actor(), id, None, NOW)
            .unwrap()
            .device
            .client_device_id;
        let text = request(&key, &device, &DeviceKey::from_seed(&[2; 32]));
        let before = console.t.snapshot();
        let checked = console
            .post_multipart("/issue/check", &[("csrf", &csrf), ("request", &text)])
            .await;
        assert_eq!(checked.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(checked.body.contains("class=\"verdict fail\""), "{name}");
        assert!(checked.body.contains(&format!("({code})")), "{name}");
        assert!(checked.body.contains("id=\"confirm\" disabled"), "{name}");
        let confirmed = console
            .post("/issue", &[("csrf", &csrf), ("request", &text)])
            .await;
        assert_eq!(confirmed.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(confirmed.body.contains(&format!("({code})")), "{name}");
        assert_eq!(console.t.snapshot(), before, "{name}: nothing issued");
    }
}

#[tokio::test]
async fn damaged_input_gets_the_same_errors_as_the_cli() {
    let mut console = Console::new();
    console.log_in().await;
    let (key, id) = console.license(acme(1));
    let device = ren3_issuer_core::devices::add(&mut console.t.store, &actor(), id, None, NOW)
        .unwrap()
        .device
        .client_device_id;
    let token = request(&key, &device, &DeviceKey::from_seed(&[1; 32]));
    let payload = issuance::issue(&mut console.t.store, &console.t.keys, &actor(), &token, NOW)
        .unwrap()
        .payload
        .token();
    let cases = [
        (
            "1. truncated",
            token[..token.len() - 7].to_owned(),
            "token_damaged",
        ),
        (
            "2. a payload where a request belongs",
            payload,
            "token_wrong_kind",
        ),
        ("3. not a token", "hello".to_owned(), "token_unrecognised"),
        ("4. empty", String::new(), "token_empty"),
    ];
    let csrf = console.csrf.clone();
    for (name, input, code) in cases {
        let cli_error =
            match issuance::issue(&mut console.t.store, &console.t.keys, &actor(), &input, NOW) {
                Err(e) => e,
                Ok(_) => panic!("{name}: issued"),
            };
        assert_eq!(cli_error.code(), code, "{name}");
        let page = console
            .post_multipart("/issue/check", &[("csrf", &csrf), ("request", &input)])
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let escaped = cli_error
            .to_string()
            .replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        assert!(
            page.body.contains(&escaped) || page.body.contains(&cli_error.to_string()),
            "{name}: {cli_error}\n{}",
            page.body
        );
    }
}

#[tokio::test]
async fn create_form_keeps_what_was_typed_and_names_the_wrong_field() {
    let mut console = Console::new();
    console.log_in().await;
    let csrf = console.csrf.clone();
    let cases = [
        ("1. bad feature", ("features", "Ingest"), "features-error"),
        ("2. bad limit", ("limits", "max-sources"), "limits-error"),
        ("3. bad expiry", ("expires", "31.12.2027"), "expires-error"),
        ("4. zero devices", ("max_devices", "0"), "max-devices-error"),
        (
            "5. not a number",
            ("max_devices", "two"),
            "max-devices-error",
        ),
        ("6. empty customer", ("customer", ""), "customer-error"),
    ];
    let before = console.t.snapshot();
    for (name, (field, value), error_id) in cases {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("customer", "Typed Customer"),
            ("features", "ingest"),
            ("limits", "max-sources=10"),
            ("expires", "2099-12-31"),
            ("max_devices", "2"),
        ];
        fields.retain(|(f, _)| *f != field);
        fields.push((field, value));
        let page = console.post("/licenses", &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(page.body.contains(&format!("id=\"{error_id}\"")), "{name}");
        assert_eq!(
            page.body.matches("class=\"field-error\"").count(),
            1,
            "{name}"
        );
        if field != "customer" {
            assert!(page.body.contains("value=\"Typed Customer\""), "{name}");
        }
    }
    assert_eq!(console.t.snapshot(), before);
}

#[tokio::test]
async fn the_detail_page_edits_suspends_revokes_and_adds_devices() {
    let mut console = Console::new();
    console.log_in().await;
    let (_, id) = console.license(acme(2));
    let csrf = console.csrf.clone();

    let edited = console
        .post(
            &format!("/licenses/{id}/edit"),
            &[
                ("csrf", &csrf),
                ("features", "export, ingest"),
                ("limits", "max-sources=20"),
                ("expires", "2099-12-31"),
            ],
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let license = licenses::show(&console.t.store, id).unwrap().license;
    assert_eq!(license.features, ["export", "ingest"]);
    assert_eq!(license.limits.get("max-sources"), Some(&20));

    let added = console
        .post(
            &format!("/licenses/{id}/devices"),
            &[("csrf", &csrf), ("label", "plant 1")],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK);
    let device = &licenses::show(&console.t.store, id).unwrap().devices[0];
    assert!(
        added
            .body
            .contains(&format!("value=\"{}\" data-copy", device.client_device_id))
    );

    let bad_label = console
        .post(
            &format!("/licenses/{id}/devices"),
            &[("csrf", &csrf), ("label", "  ")],
        )
        .await;
    assert_eq!(bad_label.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_label.body.contains("id=\"label-error\""));

    let path = format!("/licenses/{id}/status");
    let status = async |s: &str| console.post(&path, &[("csrf", &csrf), ("status", s)]).await;
    assert_eq!(status("suspended").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        licenses::show(&console.t.store, id).unwrap().license.status,
        LicenseStatus::Suspended
    );
    // Revoking needs the confirmation box.
    assert_eq!(
        status("revoked").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let revoked = console
        .post(
            &format!("/licenses/{id}/status"),
            &[("csrf", &csrf), ("status", "revoked"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let refused = status("active").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("revoked, which is final"));
    assert_eq!(
        licenses::show(&console.t.store, id).unwrap().license.status,
        LicenseStatus::Revoked
    );
    assert_eq!(
        console.get("/licenses/999999").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn audit_rows_are_written_for_logins_changes_and_issuances_without_secrets() {
    let mut console = Console::new();
    assert_eq!(
        console.try_login("alice", "not the password").await.status,
        StatusCode::UNAUTHORIZED
    );
    console.log_in().await;
    let csrf = console.csrf.clone();
    let created = console
        .post(
            "/licenses",
            &[
                ("csrf", &csrf),
                ("customer", "Audited Ltd"),
                ("max_devices", "1"),
            ],
        )
        .await;
    let key_text = created
        .body
        .split("id=\"license-key\" class=\"token\" readonly value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let key = LicenseKey::parse(&key_text).unwrap();
    let id = licenses::show(&console.t.store, &key).unwrap().license.id;
    console
        .post(&format!("/licenses/{id}/devices"), &[("csrf", &csrf)])
        .await;
    let device = licenses::show(&console.t.store, id).unwrap().devices[0]
        .client_device_id
        .clone();
    let text = request(&key, &device, &DeviceKey::from_seed(&[1; 32]));
    console
        .post("/issue", &[("csrf", &csrf), ("request", &text)])
        .await;
    console
        .post(
            &format!("/licenses/{id}/status"),
            &[("csrf", &csrf), ("status", "suspended")],
        )
        .await;
    console
        .post("/issue", &[("csrf", &csrf), ("request", &text)])
        .await;
    console.post("/logout", &[("csrf", &csrf)]).await;

    // A login attempt names no role (none acts yet); everything after it
    // names the role it was done with.
    let alice = "console:alice (admin)".to_owned();
    let row = |action: &str, result: &str| (alice.clone(), action.to_owned(), result.to_owned());
    let rows = console.audit_actions();
    let expected = [
        (
            "console:alice".to_owned(),
            "login".to_owned(),
            "refused".to_owned(),
        ),
        row("login", "ok"),
        row("license.create", "ok"),
        row("device.add", "ok"),
        row("issue", "ok"),
        row("license.status", "ok"),
        row("issue", "refused"),
        row("logout", "ok"),
    ];
    assert_eq!(&rows[rows.len() - expected.len()..], &expected);

    let everything = console.t.snapshot().join("\n")
        + &format!(
            "{:?}",
            audit::page(&console.t.store, &Filter::default(), 1000).unwrap()
        );
    assert!(
        !everything.contains(key.reveal()),
        "a license key reached the store"
    );
    assert!(!everything.contains(PASSWORD));
    assert!(
        !everything.contains(&text),
        "a request token reached the audit log"
    );

    // The audit page filters.
    console.log_in().await;
    let page = console.get("/audit?action=issue&result=refused").await;
    assert_eq!(
        page.body.matches("<td class=\"nowrap\">").count(),
        1,
        "{}",
        page.body
    );
    assert!(page.body.contains("license_suspended"));
}

/// The audit page says whether the hash chain verifies, and where it breaks.
#[tokio::test]
async fn the_audit_page_shows_whether_the_chain_verifies_and_where_it_breaks() {
    let mut console = Console::new();
    console.log_in().await;
    let page = console.get("/audit").await;
    assert!(page.body.contains("chain verified"), "{}", page.body);
    assert!(page.body.contains("verifies up to row 5"), "{}", page.body);

    console
        .t
        .store
        .write(|tx| {
            tx.execute("UPDATE audit SET detail = 'nothing' WHERE id = 2", [])
                .map_err(ren3_issuer_core::store::StoreError::from)
        })
        .unwrap();
    let page = console.get("/audit").await;
    assert!(page.body.contains("chain broken"), "{}", page.body);
    assert!(
        page.body.contains("row 2 (") && page.body.contains("was edited"),
        "{}",
        page.body
    );
    assert!(page.body.contains("keep this store file as evidence"));
}

#[tokio::test]
async fn login_answers_429_after_repeated_failures() {
    let mut console = Console::new();
    for i in 0..sessions::MAX_FAILURES {
        let answer = console.try_login("alice", "wrong password!").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{i}");
        assert!(answer.body.contains("value=\"alice\""), "the name is kept");
    }
    // Even the right password is refused while throttled.
    let answer = console.try_login("alice", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(console.session.is_none());
    console
        .clock
        .fetch_add(sessions::THROTTLE_WINDOW_SECS, Ordering::SeqCst);
    assert_eq!(
        console.try_login("alice", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let throttled = audit::page(
        &console.t.store,
        &Filter {
            result: Some("throttled".into()),
            ..Filter::default()
        },
        10,
    )
    .unwrap();
    assert_eq!(throttled.entries.len(), 1);
}

#[tokio::test]
async fn sessions_are_fresh_at_login_strict_httponly_and_end_at_logout_and_idle() {
    let mut console = Console::new();
    let answer = console.try_login("alice", PASSWORD).await;
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("ren3_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let first = console.session.clone().unwrap();
    assert!(
        first.len() - "ren3_session=".len() >= 22,
        "at least 128 bits"
    );
    console.try_login("alice", PASSWORD).await;
    assert_ne!(
        console.session.clone().unwrap(),
        first,
        "a new id at every login"
    );

    // Logout invalidates the id server-side: replaying it fails.
    console.log_in().await;
    let session = console.session.clone();
    let csrf = console.csrf.clone();
    assert_eq!(
        console.post("/logout", &[("csrf", &csrf)]).await.location(),
        "/login"
    );
    console.session = session;
    assert_eq!(console.get("/").await.location(), "/login");

    // An idle session ends.
    console.log_in().await;
    console
        .clock
        .fetch_add(sessions::IDLE_TIMEOUT_SECS, Ordering::SeqCst);
    assert_eq!(console.get("/").await.location(), "/login");

    // Behind TLS the cookie is Secure, with the __Host- prefix.
    let mut tls = Console::with_config(Config { behind_tls: true });
    let answer = tls.try_login("alice", PASSWORD).await;
    let cookie = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-ren3_session="))
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let mut console = Console::new();
    let anonymous = console.get("/login").await;
    console.log_in().await;
    for answer in [
        anonymous,
        console.get("/").await,
        console.get("/nowhere").await,
    ] {
        let csp = answer.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(answer.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!answer.body.contains("<script>"), "no inline script");
    }
}

#[tokio::test]
async fn dashboard_keys_and_trust_file_show_what_the_store_holds() {
    let mut console = Console::new();
    console.log_in().await;
    console.license(NewLicense {
        customer: "Soon Expiring".into(),
        expires_at: Some(NOW + 10 * 86_400),
        ..acme(1)
    });
    console.license(NewLicense {
        customer: "Far Future".into(),
        expires_at: Some(NOW + 100 * 86_400),
        ..acme(1)
    });
    let dashboard = console.get("/").await;
    assert!(dashboard.body.contains("<strong>2</strong> licenses"));
    assert!(dashboard.body.contains("Soon Expiring") && !dashboard.body.contains("Far Future"));

    let keys = console.get("/keys").await;
    let listed = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert!(keys.body.contains(&listed[0].key.key_id.to_string()));
    let root = console.t.trust_root();
    assert!(keys.body.contains(&root.fingerprint().to_string()));
    assert!(
        keys.body.contains("version 1, 0 revoked keys"),
        "{}",
        keys.body
    );
    let file = console.get("/keys/root.pub").await;
    assert_eq!(file.body, root.to_public_file());
    assert_eq!(
        ren3_shared::TrustRoot::parse_public_file(&file.body).unwrap(),
        root
    );
    let key_id = listed[0].key.key_id;
    let certificate = console
        .get(&format!("/keys/{key_id}/certificate.token"))
        .await;
    let opened = ren3_shared::Certificate::open(certificate.body.trim(), &root).unwrap();
    assert_eq!(opened.key_id(), key_id);
    let list = console.get("/keys/revocations.token").await;
    let opened = ren3_shared::RevocationList::open(list.body.trim(), &root).unwrap();
    assert_eq!(opened.version(), 1);
    // A key without a certificate has none to download.
    let stranger = ren3_shared::IssuerKey::from_seed(&[9; 32]).key_id();
    let missing = console
        .get(&format!("/keys/{stranger}/certificate.token"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

// ---- the lifecycle pages: grace and clock policy, releases, key rotation

fn installation(n: u8) -> DeviceKey {
    DeviceKey::from_seed(&[n; 32])
}

/// A receipt for serial `serial` of `device`, signed by `by`.
fn receipt(
    key: &LicenseKey,
    device: &DeviceId,
    serial: u64,
    counter: u64,
    by: &DeviceKey,
) -> String {
    ReleaseReceipt {
        released_at: NOW + 10,
        client_device_id: device.clone(),
        license_key_fingerprint: key.fingerprint(),
        serial,
        counter,
    }
    .sign(by)
    .unwrap()
    .token()
}

impl Console {
    /// A license with one device bound to installation 1 by a real
    /// issuance of [`FIRST_SERIAL`]; the device has `label`.
    fn bound(&mut self, max_devices: u32, label: Option<&str>) -> (LicenseKey, i64, DeviceId) {
        let (key, id) = self.license(acme(max_devices));
        let device = ren3_issuer_core::devices::add(&mut self.t.store, &actor(), id, label, NOW)
            .unwrap()
            .device
            .client_device_id;
        issuance::issue(
            &mut self.t.store,
            &self.t.keys,
            &actor(),
            &request(&key, &device, &installation(1)),
            NOW,
        )
        .unwrap();
        (key, id, device)
    }

    /// The audit rows after the first `from`, as (actor, action, result).
    fn audit_since(&self, from: usize) -> Vec<(String, String, String)> {
        self.audit_actions()[from..].to_vec()
    }

    fn key_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.t.keys.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

fn alice(action: &str, result: &str) -> (String, String, String) {
    (
        "console:alice (admin)".to_owned(),
        action.to_owned(),
        result.to_owned(),
    )
}

#[tokio::test]
async fn lifecycle_forms_refuse_a_missing_or_wrong_csrf_token_and_cross_site_posts() {
    let mut console = Console::new();
    console.log_in().await;
    let (key, id, device) = console.bound(2, None);
    ren3_issuer_core::signing_keys::rotate(
        &mut console.t.store,
        &console.t.keys,
        &actor(),
        ren3_issuer_core::keystore::AtRest::Plain,
        NOW,
    )
    .unwrap();
    let old_key = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap()[0]
        .key
        .key_id
        .to_string();
    let text = receipt(&key, &device, FIRST_SERIAL, 2, &installation(1));
    let device_text = device.to_string();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/release".into(), vec![("receipt", &text)]),
        (
            format!("/licenses/{id}/release"),
            vec![
                ("device", &device_text),
                ("reason", "machine stolen"),
                ("confirm", "yes"),
            ],
        ),
        ("/keys/rotate".into(), vec![]),
        (format!("/keys/{old_key}/retire"), vec![("confirm", "yes")]),
    ];
    let (before, files, audit_rows) = (
        console.t.snapshot(),
        console.key_files(),
        console.audit_actions().len(),
    );
    let csrf = console.csrf.clone();
    for (i, (path, fields)) in posts.iter().enumerate() {
        for token in [None, Some("wrong"), Some("")] {
            let mut fields = fields.clone();
            if let Some(token) = token {
                fields.push(("csrf", token));
            }
            let answer = console.post(path, &fields).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{}. POST {path} with token {token:?}",
                i + 1
            );
        }
        for site in ["cross-site", "same-site"] {
            let mut fields = fields.clone();
            fields.push(("csrf", &csrf));
            let answer = console.post_from(path, &fields, site).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{}. POST {path} from {site}",
                i + 1
            );
        }
    }
    let answer = console
        .post_multipart("/release/check", &[("csrf", "wrong"), ("receipt", &text)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "multipart check");
    assert_eq!(console.t.snapshot(), before);
    assert_eq!(console.key_files(), files, "no key file was written");
    assert_eq!(console.audit_actions().len(), audit_rows);
}

#[tokio::test]
async fn the_release_page_checks_then_frees_the_seat_once() {
    let mut console = Console::new();
    console.log_in().await;
    let (key, id, device) = console.bound(1, None);
    let csrf = console.csrf.clone();
    let text = receipt(&key, &device, FIRST_SERIAL, 2, &installation(1));

    let nav = console.get("/release").await;
    assert_eq!(nav.status, StatusCode::OK);
    assert!(
        nav.body
            .contains("<a href=\"/release\" aria-current=\"page\">")
    );

    let before = console.t.snapshot();
    // 1. pasted, wrapped by a mail client; 2. uploaded as a file
    let wrapped = text
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for (name, field, value) in [
        ("1. pasted", "receipt", &wrapped),
        ("2. uploaded", "file", &text),
    ] {
        let checked = console
            .post_multipart("/release/check", &[("csrf", &csrf), (field, value)])
            .await;
        assert_eq!(checked.status, StatusCode::OK, "{name}: {}", checked.body);
        assert!(checked.body.contains(&device.to_string()), "{name}");
        assert!(
            checked
                .body
                .contains(&format!("<a href=\"/licenses/{id}\">ACME GmbH</a>")),
            "{name}"
        );
        assert!(
            checked
                .body
                .contains("<button type=\"submit\" id=\"confirm\">"),
            "{name}"
        );
        assert!(checked.body.contains("class=\"verdict pass\""), "{name}");
    }
    assert_eq!(console.t.snapshot(), before, "checking writes nothing");

    let audit_rows = console.audit_actions().len();
    let released = console
        .post("/release", &[("csrf", &csrf), ("receipt", &text)])
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    assert!(released.body.contains("Seat released"));
    let details = licenses::show(&console.t.store, id).unwrap();
    assert_eq!(details.bound_devices(), 0);
    assert_eq!(details.releases.len(), 1);
    assert!(!details.releases[0].forced);
    assert_eq!(details.releases[0].actor, "console:alice (admin)");
    assert_eq!(
        console.audit_since(audit_rows),
        [alice("device.release", "ok")]
    );

    // The license page shows the release.
    let page = console.get(&format!("/licenses/{id}")).await;
    assert!(
        page.body
            .contains(&format!("receipt, serial {FIRST_SERIAL}, counter 2")),
        "{}",
        page.body
    );

    // The same receipt again is a replay: the check says so, and so does
    // the release, which changes nothing but the audit log.
    let again = console
        .post_multipart("/release/check", &[("csrf", &csrf), ("receipt", &text)])
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("(receipt_replayed)"), "{}", again.body);
    assert!(again.body.contains("id=\"confirm\" disabled"));
    let before = console.t.snapshot();
    let audit_rows = console.audit_actions().len();
    let replayed = console
        .post("/release", &[("csrf", &csrf), ("receipt", &text)])
        .await;
    assert_eq!(replayed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(replayed.body.contains("(receipt_replayed)"));
    assert_eq!(console.t.snapshot(), before);
    assert_eq!(
        console.audit_since(audit_rows),
        [alice("device.release", "refused")]
    );
}

#[tokio::test]
async fn the_release_page_refuses_forged_foreign_damaged_and_wrong_kind_input_changing_nothing() {
    let mut console = Console::new();
    console.log_in().await;
    let (key, _, device) = console.bound(1, None);
    let csrf = console.csrf.clone();
    let good = receipt(&key, &device, FIRST_SERIAL, 2, &installation(1));
    let cases = [
        (
            "1. forged: content changed after signing",
            ren3_issuer_core::testing::tamper(&good, |m| {
                m.replace("\"counter\":2", "\"counter\":3")
            }),
            "signature_invalid",
        ),
        (
            "2. from another installation with the same device id",
            receipt(&key, &device, FIRST_SERIAL, 2, &installation(9)),
            "receipt_wrong_device",
        ),
        (
            "3. signed before the request the vendor answered (counter 1)",
            receipt(&key, &device, FIRST_SERIAL, 1, &installation(1)),
            "receipt_stale",
        ),
        (
            "4. damaged in transit",
            good[..good.len() - 4].to_owned(),
            "token_damaged",
        ),
        (
            "5. a license request, not a receipt",
            request(&key, &device, &installation(1)),
            "token_wrong_kind",
        ),
        ("6. nothing", String::new(), "token_empty"),
    ];
    for (name, text, code) in cases {
        let before = console.t.snapshot();
        let audit_rows = console.audit_actions().len();
        let checked = console
            .post_multipart("/release/check", &[("csrf", &csrf), ("receipt", &text)])
            .await;
        assert_eq!(checked.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            checked.body.contains(&format!("({code})")),
            "{name}: {}",
            checked.body
        );
        assert!(checked.body.contains("id=\"confirm\" disabled"), "{name}");
        let released = console
            .post("/release", &[("csrf", &csrf), ("receipt", &text)])
            .await;
        assert_eq!(released.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(released.body.contains(&format!("({code})")), "{name}");
        assert_eq!(console.t.snapshot(), before, "{name}");
        assert_eq!(
            console.audit_since(audit_rows),
            [alice("device.release", "refused")],
            "{name}"
        );
    }
    // The right receipt still frees the seat.
    let released = console
        .post("/release", &[("csrf", &csrf), ("receipt", &good)])
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
}

#[tokio::test]
async fn force_release_needs_a_reason_and_confirmation_and_is_recorded_as_forced() {
    let mut console = Console::new();
    console.log_in().await;
    let evil_label = "<script>alert('label')</script>";
    let (_, id, device) = console.bound(1, Some(evil_label));
    let (_, other_id, other_device) = console.bound(1, None);
    let csrf = console.csrf.clone();
    let path = format!("/licenses/{id}/release");
    let device_text = device.to_string();

    let page = console.get(&format!("/licenses/{id}")).await;
    assert!(
        page.body
            .contains(&format!("name=\"device\" value=\"{device}\""))
    );
    assert!(!page.body.contains("<script>alert"), "the label is escaped");

    let cases = [
        ("1. not confirmed", "machine stolen", "", None),
        ("2. empty reason", "   ", "yes", Some("give the reason")),
        (
            "3. empty reason, not confirmed",
            "",
            "",
            Some("give the reason"),
        ),
        (
            "4. control character",
            "lost\u{7}",
            "yes",
            Some("control character"),
        ),
    ];
    for (name, reason, confirm, field_error) in cases {
        let before = console.t.snapshot();
        let answer = console
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("device", &device_text),
                    ("reason", reason),
                    ("confirm", confirm),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        match field_error {
            Some(text) => {
                assert!(
                    answer
                        .body
                        .contains(&format!("id=\"reason-error-{device}\"")),
                    "{name}"
                );
                assert!(answer.body.contains(text), "{name}: {}", answer.body);
            }
            None => assert!(!answer.body.contains("reason-error-"), "{name}"),
        }
        if confirm.is_empty() {
            assert!(answer.body.contains("Nothing was released"), "{name}");
        }
        assert_eq!(console.t.snapshot(), before, "{name}");
    }
    // A device of another license is not on this page.
    let other = console
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("device", &other_device.to_string()),
                ("reason", "lost"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert!(
        licenses::show(&console.t.store, other_id)
            .unwrap()
            .bound_devices()
            == 1
    );

    let audit_rows = console.audit_actions().len();
    let reason = "<script>alert('reason')</script> stolen";
    let forced = console
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("device", &device_text),
                ("reason", reason),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(forced.status, StatusCode::SEE_OTHER, "{}", forced.body);
    assert_eq!(forced.location(), format!("/licenses/{id}"));
    let details = licenses::show(&console.t.store, id).unwrap();
    assert_eq!(details.bound_devices(), 0);
    assert!(details.releases[0].forced);
    assert_eq!(details.releases[0].reason.as_deref(), Some(reason));
    assert_eq!(
        console.audit_since(audit_rows),
        [alice("device.force-release", "ok")]
    );

    for path in [format!("/licenses/{id}"), "/audit".to_owned()] {
        let page = console.get(&path).await;
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body
                .contains("&#60;script&#62;alert(&#39;reason&#39;)")
                || page.body.contains("&lt;script&gt;alert"),
            "{path}: {}",
            page.body
        );
    }
    let page = console.get(&format!("/licenses/{id}")).await;
    assert!(page.body.contains("class=\"verdict fail\">forced</span>"));
    assert!(
        !page.body.contains("Force release</button>"),
        "no bound device is left"
    );
}

#[tokio::test]
async fn the_keys_page_rotates_and_retires_with_confirmation_but_never_the_last_key() {
    let mut console = Console::new();
    console.log_in().await;
    let csrf = console.csrf.clone();
    let first = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap()[0]
        .key
        .key_id;
    let page = console.get("/keys").await;
    assert!(page.body.contains("signs new payloads"));
    assert!(page.body.contains("<td>plain</td>"));
    assert!(
        !page.body.contains("Retire</button>"),
        "the only key offers no Retire"
    );

    // 1. the only key, even asked directly
    let before = console.t.snapshot();
    let audit_rows = console.audit_actions().len();
    let last = console
        .post(
            &format!("/keys/{first}/retire"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        last.body
            .contains("the only certified key that is not retired"),
        "{}",
        last.body
    );
    assert_eq!(console.t.snapshot(), before);
    assert_eq!(
        console.audit_since(audit_rows),
        [alice("key.retire", "refused")]
    );

    let files = console.key_files().len();
    let audit_rows = console.audit_actions().len();
    let rotated = console.post("/keys/rotate", &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let keys = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert_eq!(keys.len(), 2);
    let new = keys[1].key.key_id;
    assert!(!keys[1].signs_new_payloads && keys[0].signs_new_payloads);
    assert_eq!(keys[1].certificate, None);
    assert_eq!(rotated.location(), format!("/keys?rotated={new}"));
    assert_eq!(console.key_files().len(), files + 1);
    assert_eq!(console.audit_since(audit_rows), [alice("key.rotate", "ok")]);
    let page = console.get(rotated.location()).await;
    assert!(
        page.body.contains(&format!(
            "Signing key {new} was created. It signs nothing until"
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("awaiting certificate"), "{}", page.body);
    assert_eq!(page.body.matches("Retire</button>").count(), 2);

    // 2. the only certified key, while the new one awaits its certificate
    let before = console.t.snapshot();
    let early = console
        .post(
            &format!("/keys/{first}/retire"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(early.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(console.t.snapshot(), before);
    // The root, offline, certifies the new key; the certificate is installed.
    let request = ren3_issuer_core::signing_keys::certification_request(
        &console.t.store,
        &console.t.keys,
        &new,
        30,
        NOW,
    )
    .unwrap();
    let certificate = console.t.root.certify(&request, NOW).unwrap();
    ren3_issuer_core::chain::install_certificate(
        &mut console.t.store,
        &ren3_issuer_core::audit::Actor::cli(),
        &certificate.token(),
        NOW,
    )
    .unwrap();
    let keys = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert!(keys[1].signs_new_payloads && !keys[0].signs_new_payloads);

    // 3. not confirmed
    let before = console.t.snapshot();
    let unconfirmed = console
        .post(&format!("/keys/{first}/retire"), &[("csrf", &csrf)])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.body.contains("was not retired"));
    assert_eq!(console.t.snapshot(), before);

    let audit_rows = console.audit_actions().len();
    let retired = console
        .post(
            &format!("/keys/{first}/retire"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(retired.status, StatusCode::SEE_OTHER, "{}", retired.body);
    let keys = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap();
    assert_eq!(keys[0].key.retired_at, Some(NOW));
    assert_eq!(console.audit_since(audit_rows), [alice("key.retire", "ok")]);
    let page = console.get(retired.location()).await;
    assert!(
        page.body
            .contains(&format!("Signing key {first} was retired")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<span class=\"status revoked\">retired</span>")
    );

    // 3. retired already; 4. unknown; 5. not a key id
    let stranger = ren3_shared::IssuerKey::from_seed(&[9; 32]).key_id();
    let before = console.t.snapshot();
    for (name, id, status, text) in [
        (
            "3. retired already",
            first.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "retired already",
        ),
        (
            "4. unknown",
            stranger.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "there is no signing key",
        ),
        (
            "5. not a key id",
            "nonsense".to_owned(),
            StatusCode::NOT_FOUND,
            "",
        ),
    ] {
        let answer = console
            .post(
                &format!("/keys/{id}/retire"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(answer.status, status, "{name}");
        assert!(answer.body.contains(text), "{name}: {}", answer.body);
    }
    assert_eq!(console.t.snapshot(), before);

    // A made-up notice link says nothing.
    let page = console.get(&format!("/keys?rotated={stranger}")).await;
    assert!(!page.body.contains("was created"));
}

#[tokio::test]
async fn rotating_encrypted_uses_the_console_passphrase_and_refuses_without_one() {
    use ren3_issuer_core::passphrase::{Passphrase, PassphraseSource};

    let mut without = Console::with_keys(|keys| keys.with_passphrase(PassphraseSource::none()));
    without.log_in().await;
    let csrf = without.csrf.clone();
    let (before, files) = (without.t.snapshot(), without.key_files());
    let audit_rows = without.audit_actions().len();
    let refused = without
        .post("/keys/rotate", &[("csrf", &csrf), ("encrypt", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("REN3_ISSUER_PASSPHRASE"),
        "{}",
        refused.body
    );
    assert_eq!(without.t.snapshot(), before);
    assert_eq!(without.key_files(), files, "no key file is left behind");
    assert_eq!(
        without.audit_since(audit_rows),
        [alice("key.rotate", "refused")]
    );

    let cheap = ren3_issuer_core::testing::CHEAP;
    let mut with = Console::with_keys(|keys| {
        keys.with_passphrase(PassphraseSource::fixed(
            Passphrase::new("console passphrase".into()).unwrap(),
        ))
        .with_cost(cheap)
    });
    with.log_in().await;
    let csrf = with.csrf.clone();
    let rotated = with
        .post("/keys/rotate", &[("csrf", &csrf), ("encrypt", "yes")])
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let new = ren3_issuer_core::signing_keys::list(&with.t.store).unwrap()[1]
        .key
        .key_id;
    assert_eq!(
        with.t.keys.at_rest(&new).unwrap(),
        ren3_issuer_core::keystore::AtRest::Encrypted
    );
    let page = with.get("/keys").await;
    assert!(page.body.contains("<td>encrypted</td>"), "{}", page.body);
}

#[tokio::test]
async fn license_forms_take_grace_and_clock_policy_and_name_the_wrong_field() {
    let mut console = Console::new();
    console.log_in().await;
    let csrf = console.csrf.clone();
    let form = console.get("/licenses/new").await;
    assert!(form.body.contains("name=\"grace_days\" value=\"0\""));
    assert!(form.body.contains("<option value=\"advisory\" selected>"));

    let cases = [
        ("1. not a number", ("grace_days", "abc"), "grace-days-error"),
        ("2. too long", ("grace_days", "400"), "grace-days-error"),
        ("3. negative", ("grace_days", "-1"), "grace-days-error"),
        (
            "4. grace without expiry",
            ("expires", ""),
            "grace-days-error",
        ),
        (
            "5. unknown clock policy",
            ("clock_policy", "strict"),
            "clock-policy-error",
        ),
    ];
    let before = console.t.snapshot();
    for (name, (field, value), error_id) in cases {
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("customer", "Typed Customer"),
            ("expires", "2099-12-31"),
            ("max_devices", "1"),
            ("grace_days", "5"),
            ("clock_policy", "enforcing"),
        ];
        fields.retain(|(f, _)| *f != field);
        fields.push((field, value));
        let page = console.post("/licenses", &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(
            page.body.contains(&format!("id=\"{error_id}\"")),
            "{name}: {}",
            page.body
        );
        assert_eq!(
            page.body.matches("class=\"field-error\"").count(),
            1,
            "{name}"
        );
        assert!(page.body.contains("value=\"Typed Customer\""), "{name}");
        if field == "grace_days" {
            assert!(
                page.body
                    .contains(&format!("name=\"grace_days\" value=\"{value}\"")),
                "{name}"
            );
        } else {
            assert!(
                page.body.contains("name=\"grace_days\" value=\"5\""),
                "{name}"
            );
        }
    }
    assert_eq!(console.t.snapshot(), before);

    let created = console
        .post(
            "/licenses",
            &[
                ("csrf", &csrf),
                ("customer", "Graceful"),
                ("expires", "2099-12-31"),
                ("max_devices", "1"),
                ("grace_days", "30"),
                ("clock_policy", "enforcing"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let license = licenses::list(&console.t.store, Some("Graceful")).unwrap()[0]
        .license
        .clone();
    assert_eq!(license.grace_seconds, 30 * 86_400);
    assert_eq!(license.clock_policy, ClockPolicy::Enforcing);
    let id = license.id;
    let page = console.get(&format!("/licenses/{id}")).await;
    assert!(
        page.body.contains("<dt>Grace period</dt><dd>30 days</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<dt>Clock policy</dt><dd>enforcing</dd>")
    );

    // The edit form starts from the license's terms and changes them.
    let edit = console.get(&format!("/licenses/{id}/edit")).await;
    assert!(edit.body.contains("name=\"grace_days\" value=\"30\""));
    assert!(edit.body.contains("<option value=\"enforcing\" selected>"));
    let edit_path = format!("/licenses/{id}/edit");
    let fields = |grace: &'static str, clock: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("expires", "2099-12-31".to_owned()),
            ("grace_days", grace.to_owned()),
            ("clock_policy", clock.to_owned()),
        ]
    };
    let before = console.t.snapshot();
    for (name, grace, clock, error_id) in [
        ("6. edit: too long", "367", "advisory", "grace-days-error"),
        (
            "7. edit: unknown policy",
            "10",
            "lenient",
            "clock-policy-error",
        ),
    ] {
        let sent = fields(grace, clock);
        let sent: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = console.post(&edit_path, &sent).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(page.body.contains(&format!("id=\"{error_id}\"")), "{name}");
        assert!(
            page.body
                .contains(&format!("name=\"grace_days\" value=\"{grace}\"")),
            "{name}"
        );
    }
    assert_eq!(console.t.snapshot(), before);
    let sent = fields("10", "advisory");
    let sent: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let edited = console.post(&edit_path, &sent).await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let license = licenses::show(&console.t.store, id).unwrap().license;
    assert_eq!(license.grace_seconds, 10 * 86_400);
    assert_eq!(license.clock_policy, ClockPolicy::Advisory);

    // A post without the two fields (not from the form) keeps them.
    let kept = console
        .post(
            &edit_path,
            &[
                ("csrf", &csrf),
                ("expires", "2099-06-30"),
                ("features", "export"),
            ],
        )
        .await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "{}", kept.body);
    let license = licenses::show(&console.t.store, id).unwrap().license;
    assert_eq!(license.features, ["export"]);
    assert_eq!(license.grace_seconds, 10 * 86_400);
    assert_eq!(license.clock_policy, ClockPolicy::Advisory);
}

mod monitoring;
mod role_matrix;
