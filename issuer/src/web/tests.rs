//! Handler tests: the console's router, in-process, over a real store.
//! This module holds the `Console` that drives it and the shared fixtures;
//! the tests sit in its submodules, one per topic.

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

// ---- fixtures for the lifecycle pages: grace and clock policy, releases, key rotation

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

mod access;
mod audit_log;
mod issuing;
mod keys;
mod license_pages;
mod lifecycle;
mod monitoring;
mod role_matrix;
