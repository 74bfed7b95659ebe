//! Hostile input on every console form, from the shared generator
//! (`ren3_testkit::hostile`), in-process over a real store.
//!
//! What "refused" means for an HTML form: a 4xx status (422 with the form
//! re-rendered and the reason shown, 403 for a missing CSRF token, 413 for
//! an oversized body, 415 or 422 for a body that is not a form), never a
//! 5xx, never raw markup from the input, never a panic or a path in the
//! page, and the store unchanged apart from the audit log (a refusal is
//! audited: a documented side effect) and the login throttle.
//!
//! `<script>` in a free-text field (customer, device label) is data, not a
//! refusal: it is stored and must come back escaped on every page.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use ren3_shared::{DeviceKey, ReleaseReceipt};
use ren3_testkit::hostile::{self, FLIP_CODES};
use tower::ServiceExt as _;

use super::{AppState, Config};
use ren3_issuer_core::licenses::{self, NewLicense};
use ren3_issuer_core::testing::{NOW, TestStore, actor, request};
use ren3_issuer_core::{Coded as _, devices, issuance, sessions, setup, users};

const PASSWORD: &str = "correct horse battery";

struct Answer {
    status: StatusCode,
    body: String,
}

struct Console {
    t: TestStore,
    app: Router,
    clock: Arc<AtomicI64>,
    session: String,
    csrf: String,
}

fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[start..].split('"').next().unwrap().to_owned()
}

fn urlencode(text: &str) -> String {
    super::view::query_string(&[("x", text)])
        .trim_start_matches("x=")
        .to_owned()
}

fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn multipart_body(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----ren3hostile";
    let mut body = Vec::new();
    for (name, value) in fields {
        let disposition = if *name == "file" {
            "form-data; name=\"file\"; filename=\"token.txt\"".to_owned()
        } else {
            format!("form-data; name=\"{name}\"")
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A refusal as this module's header defines it.
#[track_caller]
fn assert_refused(answer: &Answer, context: &str) {
    assert!(
        answer.status.is_client_error(),
        "{context}: {} {}",
        answer.status,
        answer.body
    );
    assert_page_is_safe(answer, context);
}

#[track_caller]
fn assert_page_is_safe(answer: &Answer, context: &str) {
    if let Some(leak) = hostile::leaks(&answer.body) {
        panic!("{context}: the page leaks {leak:?}: {}", answer.body);
    }
    for raw in ["<script>alert", "<scr\0ipt>", "\"><script"] {
        assert!(
            !answer.body.contains(raw),
            "{context}: raw markup in the page: {}",
            answer.body
        );
    }
}

impl Console {
    async fn new() -> Self {
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
            setup::open_keys(&t.paths).unwrap(),
            Config::default(),
            Arc::new(move || time.load(Ordering::SeqCst)),
        );
        let mut console = Self {
            t,
            app: super::app(state),
            clock,
            session: String::new(),
            csrf: String::new(),
        };
        let (cookie, token) = console.login_page().await;
        let answer = console
            .login(
                &cookie,
                &form_body(&[("csrf", &token), ("name", "alice"), ("password", PASSWORD)]),
            )
            .await;
        assert_eq!(answer.0.status, StatusCode::SEE_OTHER, "{}", answer.0.body);
        console.session = answer.1.unwrap();
        let dashboard = console.send("GET", "/", None, Vec::new()).await;
        console.csrf = csrf_of(&dashboard.body);
        console
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("sec-fetch-site", "same-origin");
        if !self.session.is_empty() {
            builder = builder.header(header::COOKIE, &self.session);
        }
        if let Some(content_type) = content_type {
            builder = builder.header(header::CONTENT_TYPE, content_type);
        }
        let response = self
            .app
            .clone()
            .oneshot(builder.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.send(
            "POST",
            path,
            Some("application/x-www-form-urlencoded"),
            form_body(&all),
        )
        .await
    }

    async fn post_multipart(&self, path: &str, fields: &[(&str, &[u8])]) -> Answer {
        let mut all: Vec<(&str, &[u8])> = vec![("csrf", self.csrf.as_bytes())];
        all.extend_from_slice(fields);
        let (content_type, body) = multipart_body(&all);
        self.send("POST", path, Some(&content_type), body).await
    }

    /// The login page's CSRF cookie and token.
    async fn login_page(&self) -> (String, String) {
        let response = self
            .app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/login")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("ren3_login_csrf="))
            .unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let token = csrf_of(&String::from_utf8_lossy(&bytes));
        (cookie.split(';').next().unwrap().to_owned(), token)
    }

    /// POSTs a login body; returns the answer and the new session cookie.
    async fn login(&self, cookie: &str, body: &[u8]) -> (Answer, Option<String>) {
        let response = self
            .app
            .clone()
            .oneshot(
                Request::builder()
                    .method("POST")
                    .uri("/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::COOKIE, cookie)
                    .body(Body::from(body.to_vec()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let session = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("ren3_session=") && !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap().to_owned());
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            Answer {
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            },
            session,
        )
    }
}

/// A console with a license of two seats: device 1 with an unanswered
/// request (the valid token for the issue form), device 2 issued and bound,
/// with a valid receipt (the valid token for the release form) and its
/// payload (a token of the wrong kind for both).
struct Scene {
    console: Console,
    id: i64,
    request: String,
    payload: String,
    receipt: String,
}

async fn scene() -> Scene {
    let mut console = Console::new().await;
    let created = licenses::create(
        &mut console.t.store,
        &actor(),
        &NewLicense {
            customer: "ACME GmbH".into(),
            features: vec!["ingest".into()],
            max_devices: 2,
            ..NewLicense::default()
        },
        NOW,
    )
    .unwrap();
    let (key, id) = (created.key, created.license.id);
    let mut device = || {
        devices::add(&mut console.t.store, &actor(), id, None, NOW)
            .unwrap()
            .device
            .client_device_id
    };
    let (first, second) = (device(), device());
    let request_one = request(&key, &first, &DeviceKey::from_seed(&[1; 32]));
    let installation = DeviceKey::from_seed(&[2; 32]);
    let request_two = request(&key, &second, &installation);
    let payload = issuance::issue(
        &mut console.t.store,
        &console.t.keys,
        &actor(),
        &request_two,
        NOW,
    )
    .unwrap()
    .payload
    .token();
    let receipt = ReleaseReceipt {
        released_at: NOW + 10,
        client_device_id: second,
        license_key_fingerprint: key.fingerprint(),
        serial: 1,
        counter: 1,
    }
    .sign(&installation)
    .unwrap()
    .token();
    Scene {
        console,
        id,
        request: request_one,
        payload,
        receipt,
    }
}

#[tokio::test]
async fn the_issue_form_refuses_every_hostile_request_pasted_or_uploaded() {
    let s = scene().await;
    let console = &s.console;
    let before = console.t.snapshot();
    let cases = hostile::token_cases(&s.request, &[&s.payload, &s.receipt]);
    for case in &cases {
        let input = case.input.as_bytes();
        for (how, field) in [("pasted", "request"), ("uploaded", "file")] {
            if case.description.contains("byte-order mark") {
                // The multipart text decoder drops a leading BOM (as a text
                // editor's file has): the token is then the valid one.
                continue;
            }
            let context = format!("case {} ({how})", case.name());
            let answer = console
                .post_multipart("/issue/check", &[(field, input)])
                .await;
            assert_refused(&answer, &context);
            if case.input.len() < 200 * 1024 && !(how == "uploaded" && input.is_empty()) {
                assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{context}");
                assert!(
                    answer.body.contains(&format!("({})", case.expected)),
                    "{context}: {}",
                    answer.body
                );
            }
        }
        let context = format!("case {} (confirmed)", case.name());
        let answer = console
            .post_form("/issue", &[("request", &case.input)])
            .await;
        assert_refused(&answer, &context);
        assert_eq!(console.t.snapshot(), before, "{context}: the store changed");
    }
}

#[tokio::test]
async fn issuing_refuses_every_single_byte_and_character_change() {
    let mut s = scene().await;
    let before = s.console.t.snapshot();
    let flips = hostile::flipped_message_bytes(&s.request)
        .into_iter()
        .map(|(i, t)| (format!("message byte {i}"), t))
        .chain(
            hostile::flipped_characters(&s.request)
                .into_iter()
                .map(|(i, t)| (format!("character {i}"), t)),
        )
        .collect::<Vec<_>>();
    // Every change through the library, as the CLI and the console call it.
    for (what, token) in &flips {
        let t = &mut s.console.t;
        match issuance::issue(&mut t.store, &t.keys, &actor(), token, NOW) {
            Ok(_) => panic!("{what} flipped: issued"),
            Err(e) => assert!(FLIP_CODES.contains(&e.code()), "{what} flipped: {e}"),
        }
    }
    // A sample through the console's page.
    for (what, token) in hostile::sample(&flips, 23) {
        let answer = s
            .console
            .post_multipart("/issue/check", &[("request", token.as_bytes())])
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        assert_refused(&answer, &what);
    }
    assert_eq!(s.console.t.snapshot(), before);
}

#[tokio::test]
async fn the_release_forms_refuse_every_hostile_receipt() {
    let s = scene().await;
    let console = &s.console;
    let before = console.t.snapshot();
    for case in hostile::token_cases(&s.receipt, &[&s.request, &s.payload]) {
        let context = format!("case {}", case.name());
        if case.description.contains("byte-order mark") {
            // Dropped by the multipart text decoder: see the issue form.
            continue;
        }
        let checked = console
            .post_multipart("/release/check", &[("receipt", case.input.as_bytes())])
            .await;
        assert_refused(&checked, &format!("{context} (checked)"));
        let confirmed = console
            .post_form("/release", &[("receipt", &case.input)])
            .await;
        assert_refused(&confirmed, &format!("{context} (confirmed)"));
        if case.input.len() < 200 * 1024 {
            assert_eq!(
                checked.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{context}"
            );
            assert_eq!(
                confirmed.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{context}"
            );
        }
        assert_eq!(console.t.snapshot(), before, "{context}: the store changed");
    }
}

/// Each text field of each form, with each hostile text.
#[tokio::test]
async fn every_text_field_refuses_control_characters_and_escapes_markup() {
    let s = scene().await;
    let console = &s.console;
    let id = s.id;
    let device = licenses::show(&console.t.store, id).unwrap().devices[1]
        .client_device_id
        .to_string();
    let valid_create: Vec<(&str, &str)> = vec![
        ("customer", "Typed Customer"),
        ("features", "ingest"),
        ("limits", "max-sources=10"),
        ("expires", "2099-12-31"),
        ("max_devices", "2"),
    ];
    let valid_edit: Vec<(&str, &str)> = vec![
        ("features", "ingest"),
        ("limits", "max-sources=10"),
        ("expires", "2099-12-31"),
    ];
    let create_path = "/licenses".to_owned();
    let edit_path = format!("/licenses/{id}/edit");
    let devices_path = format!("/licenses/{id}/devices");
    let status_path = format!("/licenses/{id}/status");
    let release_path = format!("/licenses/{id}/release");
    // (form, path, valid fields, fields to fill with hostile text)
    type FormCase<'a> = (&'a str, &'a String, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let forms: Vec<FormCase> = vec![
        (
            "create",
            &create_path,
            valid_create.clone(),
            &["customer", "features", "limits", "expires", "max_devices"],
        ),
        (
            "edit",
            &edit_path,
            valid_edit.clone(),
            &["features", "limits", "expires"],
        ),
        (
            "add device",
            &devices_path,
            vec![("label", "plant 1")],
            &["label"],
        ),
        (
            "status",
            &status_path,
            vec![("status", "suspended")],
            &["status"],
        ),
        (
            "force release",
            &release_path,
            vec![
                ("device", device.as_str()),
                ("reason", "disk died"),
                ("confirm", "yes"),
            ],
            &["reason", "device"],
        ),
    ];
    let free_text = ["customer", "label", "reason"];
    let mut case = 0;
    for (form, path, valid, fields) in &forms {
        for field in *fields {
            // The texts with control characters first: a printable one in a
            // free-text field is accepted, and must not change what the
            // later cases are refused for (a released seat, say).
            let mut texts = hostile::hostile_texts();
            texts.sort_by_key(|(_, _, text)| !text.chars().any(char::is_control));
            for (_, description, text) in texts {
                case += 1;
                let context = format!("{case}. {form}: {description} in `{field}`");
                let mut values: Vec<(&str, &str)> =
                    valid.iter().filter(|(f, _)| f != field).copied().collect();
                values.push((field, &text));
                let before = console.t.snapshot();
                let answer = console.post_form(path, &values).await;
                assert_page_is_safe(&answer, &context);
                let printable = !text.chars().any(char::is_control);
                if printable && free_text.contains(field) {
                    // Accepted as data; shown escaped (checked below).
                    assert!(
                        answer.status.is_success()
                            || answer.status.is_redirection()
                            || answer.status.is_client_error(),
                        "{context}: {}",
                        answer.status
                    );
                    continue;
                }
                assert_refused(&answer, &context);
                if *field == "device" {
                    // Not one of this license's devices: no such page.
                    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{context}");
                } else {
                    assert_eq!(
                        answer.status,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "{context}: {}",
                        answer.body
                    );
                }
                assert_eq!(console.t.snapshot(), before, "{context}: the store changed");
            }
        }
    }
    // Whatever markup was stored comes back escaped on every page.
    for path in [
        "/".to_owned(),
        "/licenses".to_owned(),
        format!("/licenses/{id}"),
        "/licenses?q=%3Cscript%3Ealert".to_owned(),
        "/audit".to_owned(),
        "/audit?action=%3Cscript%3E&result=%00".to_owned(),
    ] {
        let page = console.send("GET", &path, None, Vec::new()).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_page_is_safe(&page, &path);
    }
}

#[tokio::test]
async fn the_login_form_refuses_hostile_names_and_passwords() {
    let console = Console::new().await;
    let before = console.t.snapshot();
    for (id, description, text) in hostile::hostile_texts() {
        for (field, name, password) in [
            ("name", text.as_str(), PASSWORD),
            ("password", "alice", text.as_str()),
        ] {
            let context = format!("{id}. {description} in the {field}");
            // Past the throttle window: each attempt is judged on its own.
            console
                .clock
                .fetch_add(sessions::THROTTLE_WINDOW_SECS, Ordering::SeqCst);
            let (cookie, token) = console.login_page().await;
            let (answer, session) = console
                .login(
                    &cookie,
                    &form_body(&[("csrf", &token), ("name", name), ("password", password)]),
                )
                .await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{context}");
            assert!(session.is_none(), "{context}: logged in");
            assert_refused(&answer, &context);
            assert_eq!(console.t.snapshot(), before, "{context}: the store changed");
        }
    }
}

/// Bodies that are not the form at all, on every POST route.
#[tokio::test]
async fn every_form_refuses_bodies_that_are_not_its_form() {
    let s = scene().await;
    let console = &s.console;
    let id = s.id;
    let csrf = format!("csrf={}", console.csrf);
    let form = Some("application/x-www-form-urlencoded");
    let routes = [
        "/licenses".to_owned(),
        format!("/licenses/{id}/edit"),
        format!("/licenses/{id}/devices"),
        format!("/licenses/{id}/status"),
        format!("/licenses/{id}/release"),
        "/issue".to_owned(),
        "/issue/check".to_owned(),
        "/release".to_owned(),
        "/release/check".to_owned(),
        "/login".to_owned(),
    ];
    let (multipart_type, multipart) = multipart_body(&[
        ("csrf", console.csrf.as_bytes()),
        ("request", s.request.as_bytes()),
    ]);
    let truncated_multipart = multipart[..multipart.len() / 2].to_vec();
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("empty body", form, Vec::new()),
        (
            "only the CSRF token, truncated",
            form,
            csrf.as_bytes()[..8].to_vec(),
        ),
        ("non-UTF-8 bytes", form, vec![0xff, 0xfe, 0x80]),
        // Form values are decoded lossily (U+FFFD), so a CSRF token makes
        // this a valid form for the free-text fields: it carries none.
        (
            "a percent-encoded non-UTF-8 value",
            form,
            b"customer=%FF%FE&label=%FF&reason=%FF&features=%C3%28&request=%80".to_vec(),
        ),
        (
            "duplicate fields",
            form,
            format!("{csrf}&{csrf}&customer=a&customer=b&request=x&request=y").into_bytes(),
        ),
        // The forms ignore fields they do not know, as HTML forms do (a
        // browser sends its buttons too); these carry no CSRF token.
        (
            "only unknown fields, markup in their names",
            form,
            b"%3Cscript%3E=1&__proto__=x&customer[]=a&csrf[]=x".to_vec(),
        ),
        (
            "JSON",
            Some("application/json"),
            format!("{{\"csrf\":\"{}\"}}", console.csrf).into_bytes(),
        ),
        ("text/plain", Some("text/plain"), csrf.clone().into_bytes()),
        ("no content type", None, csrf.clone().into_bytes()),
        (
            "a form's body with a multipart type",
            Some(&multipart_type),
            csrf.clone().into_bytes(),
        ),
        (
            "multipart without a boundary",
            Some("multipart/form-data"),
            multipart.clone(),
        ),
        (
            "truncated multipart",
            Some(&multipart_type),
            truncated_multipart,
        ),
        (
            "oversized: 300 KiB",
            form,
            format!("{csrf}&request={}", "A".repeat(300 * 1024)).into_bytes(),
        ),
        (
            "oversized multipart: 300 KiB",
            Some(&multipart_type),
            multipart_body(&[
                ("csrf", console.csrf.as_bytes()),
                ("request", "A".repeat(300 * 1024).as_bytes()),
            ])
            .1,
        ),
        (
            "deeply nested brackets",
            form,
            format!("customer{}=x", "[a]".repeat(20_000)).into_bytes(),
        ),
    ];
    let before = console.t.snapshot();
    for route in &routes {
        for (i, (description, content_type, body)) in cases.iter().enumerate() {
            let context = format!("POST {route}, case {}. {description}", i + 1);
            let answer = console
                .send("POST", route, *content_type, body.clone())
                .await;
            assert_refused(&answer, &context);
            assert_eq!(console.t.snapshot(), before, "{context}: the store changed");
        }
    }
}
