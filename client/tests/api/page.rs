//! The local license page (`/license/page`): served to this machine only,
//! every form guarded by its CSRF token, the license key never shown back,
//! and every refusal the JSON endpoints' own, changing nothing.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use ren3_shared::{VerifiedReceipt, VerifiedRequest};

use crate::support::{KEY, Reply, TestApp, answer, key, other_key, sign};

const LOOPBACK: &str = "127.0.0.1:40000";
const BOUNDARY: &str = "ren3-test-boundary";

/// A multipart field: its name, its file name if it is a file, its bytes.
type OwnedPart = (&'static str, Option<&'static str>, Vec<u8>);

/// A browser on `peer`, with the page's cookie once it has been given one.
struct Browser<'a> {
    app: &'a TestApp,
    peer: SocketAddr,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn on(app: &'a TestApp, peer: &str) -> Self {
        Self {
            app,
            peer: peer.parse().unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, mut request: Request<Body>) -> Reply {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(cookie) = &self.cookie {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let reply = self.app.send(request).await;
        if let Some(set) = reply.headers.get(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
        reply
    }

    async fn open(&mut self) -> Reply {
        self.send(Request::get("/license/page").body(Body::empty()).unwrap())
            .await
    }

    /// Opens the page and returns its forms' CSRF token.
    async fn token(&mut self) -> String {
        let page = self.open().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        field_value(&page.text, "csrf")
    }

    async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    async fn post_multipart(&mut self, path: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Reply {
        let mut body = Vec::new();
        for (name, file_name, content) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match file_name {
                Some(file) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                         Content-Type: text/plain\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    async fn register(&mut self, license_key: &str) -> Reply {
        let csrf = self.token().await;
        self.post_form(
            "/license/page/register",
            &[("csrf", &csrf), ("license_key", license_key)],
        )
        .await
    }

    async fn import_pasted(&mut self, license_key: &str, payload: &str) -> Reply {
        let csrf = self.token().await;
        self.post_multipart(
            "/license/page/import",
            &[
                ("csrf", None, csrf.as_bytes()),
                ("license_key", None, license_key.as_bytes()),
                ("payload", None, payload.as_bytes()),
                ("file", Some(""), b""),
            ],
        )
        .await
    }
}

/// The value of the first input named `name`, unescaped.
fn field_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&#43;", "+")
        .replace("&#x2f;", "/")
}

/// The text of the read-only text area that shows a request or receipt.
fn shown_token(html: &str) -> String {
    let marker = "readonly rows=\"8\" spellcheck=\"false\">";
    let start = html.find(marker).unwrap() + marker.len();
    let end = start + html[start..].find("</textarea>").unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn the_page_is_served_to_this_machine_with_a_strict_cookie_and_no_script() {
    let app = TestApp::new().await;
    for peer in [LOOPBACK, "[::1]:40000", "[::ffff:127.0.0.1]:40000"] {
        let mut browser = Browser::on(&app, peer);
        let page = browser.open().await;
        assert_eq!(page.status, StatusCode::OK, "{peer}: {}", page.text);
        assert_eq!(page.content_type(), "text/html; charset=utf-8");
        assert!(
            page.text
                .contains("License: <span class=\"state\">unlicensed")
        );
        assert!(page.text.contains("action=\"/license/page/register\""));
        assert!(!page.text.contains("<script"), "no script at all");
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
        let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/license/page"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        // A second visit keeps the browser's token, so two tabs both work.
        let token = field_value(&page.text, "csrf");
        let again = browser.open().await;
        assert_eq!(field_value(&again.text, "csrf"), token);
        assert!(again.headers.get(header::SET_COOKIE).is_none());
    }
    let style = Browser::on(&app, LOOPBACK)
        .send(
            Request::get("/license/page/style.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(style.status, StatusCode::OK);
    assert_eq!(style.content_type(), "text/css; charset=utf-8");
}

#[tokio::test]
async fn the_page_is_refused_to_other_machines_and_when_the_peer_is_unknown() {
    let app = TestApp::new().await;
    for peer in [
        "10.0.0.5:40000",
        "[fe80::1]:40000",
        "[::ffff:10.0.0.5]:40000",
    ] {
        let mut browser = Browser::on(&app, peer);
        let page = browser.open().await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{peer}");
        assert!(page.text.contains("page_not_local"), "{}", page.text);
        assert!(
            page.text.contains("ssh -L 5000:localhost:5000"),
            "{}",
            page.text
        );
        assert!(!page.text.contains("name=\"csrf\""), "no form for {peer}");
        // Nor can it act, whatever it sends.
        let reply = browser
            .post_form(
                "/license/page/register",
                &[("csrf", "x"), ("license_key", KEY)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.pending().await, 0);

    // A server that does not record peers (axum::serve without connect
    // info) never serves the page.
    let reply = app
        .send(Request::get("/license/page").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.text.contains("page_peer_unknown"), "{}", reply.text);
    assert!(reply.text.contains("into_make_service_with_connect_info"));
}

#[tokio::test]
async fn the_page_answers_only_under_an_allowed_host_and_can_be_turned_off() {
    let app = TestApp::new().await;
    let mut browser = Browser::on(&app, LOOPBACK);
    let reply = browser
        .send(
            Request::get("/license/page")
                .header(header::HOST, "rebound.example:5000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    reply.assert_problem(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        "rebinding",
    );

    let app = TestApp::with_vars(&[("license_page", "false")]).await;
    let reply = Browser::on(&app, LOOPBACK).open().await;
    reply.assert_problem(StatusCode::NOT_FOUND, "not_found", "page turned off");
    // The JSON endpoints stay.
    assert_eq!(app.get_status().await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_form_without_the_browsers_token_or_from_another_site_does_nothing() {
    let app = TestApp::new().await;
    let mut browser = Browser::on(&app, LOOPBACK);
    let token = browser.token().await;
    let before = app.dump().await;
    let other = "A".repeat(43);
    for (csrf, context) in [("", "no token"), (other.as_str(), "another token")] {
        let reply = browser
            .post_form(
                "/license/page/register",
                &[("csrf", csrf), ("license_key", KEY)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{context}");
        assert!(reply.text.contains("csrf_token_invalid"), "{context}");
    }
    // A browser without the cookie (another site's form) cannot match it.
    let mut stranger = Browser::on(&app, LOOPBACK);
    let reply = stranger
        .post_form(
            "/license/page/register",
            &[("csrf", &token), ("license_key", KEY)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // The right token, in a form the browser says came from another site.
    let body = format!("csrf={token}&license_key={KEY}");
    let reply = browser
        .send(
            Request::post("/license/page/register")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.text.contains("csrf_cross_site"), "{}", reply.text);
    let reply = browser
        .post_multipart(
            "/license/page/import",
            &[("csrf", None, b"wrong"), ("payload", None, b"x")],
        )
        .await;
    assert!(reply.text.contains("csrf_token_invalid"), "{}", reply.text);
    assert_eq!(app.dump().await, before, "nothing changed");
}

#[tokio::test]
async fn the_whole_exchange_runs_on_the_page_without_showing_the_key() {
    let app = TestApp::new().await;
    let mut browser = Browser::on(&app, LOOPBACK);

    // Export: the request to copy, download and scan.
    let page = browser
        .register(&format!("  {}  ", KEY.to_lowercase()))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let request = shown_token(&page.text);
    let verified = VerifiedRequest::open(&request).unwrap();
    assert_eq!(
        verified.request.license_key_fingerprint,
        key().fingerprint()
    );
    assert!(page.text.contains("<svg"), "the QR code is inline");
    assert!(page.text.contains("error correction level M"));
    assert_eq!(app.pending().await, 1);

    // Download: the same token as a file.
    let csrf = field_value(&page.text, "csrf");
    let file = browser
        .post_form(
            "/license/page/download",
            &[("csrf", &csrf), ("kind", "request"), ("token", &request)],
        )
        .await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.text);
    assert_eq!(
        file.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"ren3-license-request.txt\""
    );
    assert_eq!(file.text, format!("{request}\n"));

    // Import, pasted: the status says active.
    let payload = sign(&answer(&request, 1));
    let page = browser.import_pasted(KEY, &payload).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("The license payload was imported."));
    assert!(page.text.contains("License: <span class=\"state\">active"));
    assert!(app.state.license().is_licensed());
    // Again: already the active license, nothing changed.
    let page = browser.import_pasted(KEY, &payload).await;
    assert!(page.text.contains("already was the active license"));

    // Deactivate: needs the box ticked, then shows the receipt.
    let csrf = browser.token().await;
    let page = browser
        .post_form(
            "/license/page/deactivate",
            &[("csrf", &csrf), ("license_key", KEY)],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text.contains("confirmation_missing"));
    assert!(app.state.license().is_licensed(), "nothing was done");
    let page = browser
        .post_form(
            "/license/page/deactivate",
            &[("csrf", &csrf), ("license_key", KEY), ("confirm", "yes")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let receipt = VerifiedReceipt::open(&shown_token(&page.text)).unwrap();
    assert_eq!(receipt.receipt.serial, 1);
    assert!(!app.state.license().is_licensed());
    let file = browser
        .post_form(
            "/license/page/download",
            &[
                ("csrf", &csrf),
                ("kind", "receipt"),
                ("token", &receipt.token()),
            ],
        )
        .await;
    assert_eq!(
        file.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"ren3-release-receipt.txt\""
    );

    // Nothing the page sent back holds the key, in any spelling.
    let page = browser.open().await;
    for reply in [&page, &file] {
        assert!(!reply.text.contains(KEY));
        assert!(!reply.text.to_lowercase().contains(&KEY.to_lowercase()));
    }
}

#[tokio::test]
async fn an_uploaded_payload_file_is_imported() {
    let app = TestApp::new().await;
    let mut browser = Browser::on(&app, LOOPBACK);
    let request = shown_token(&browser.register(KEY).await.text);
    let payload = sign(&answer(&request, 1));
    let csrf = browser.token().await;
    let page = browser
        .post_multipart(
            "/license/page/import",
            &[
                ("csrf", None, csrf.as_bytes()),
                ("license_key", None, KEY.as_bytes()),
                ("payload", None, b""),
                (
                    "file",
                    Some("payload.txt"),
                    format!("{payload}\r\n").as_bytes(),
                ),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(app.state.license().is_licensed());
}

#[tokio::test]
async fn a_refused_form_shows_the_endpoints_refusal_and_changes_nothing() {
    let app = TestApp::new().await;
    let mut browser = Browser::on(&app, LOOPBACK);
    let request = shown_token(&browser.register(KEY).await.text);
    let payload = sign(&answer(&request, 1));
    let before = app.dump().await;

    // A payload cut short, another license key, nothing pasted, a binary file.
    let cut = &payload[..payload.len() - 40];
    let other = other_key();
    let cases: Vec<(Vec<OwnedPart>, StatusCode, &str)> = vec![
        (
            vec![
                ("license_key", None, KEY.into()),
                ("payload", None, cut.into()),
            ],
            StatusCode::BAD_REQUEST,
            "token_damaged",
        ),
        (
            vec![
                ("license_key", None, other.reveal().into()),
                ("payload", None, payload.clone().into()),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_key_mismatch",
        ),
        (
            vec![
                ("license_key", None, KEY.into()),
                ("payload", None, b"  \n".to_vec()),
            ],
            StatusCode::BAD_REQUEST,
            "payload_missing",
        ),
        (
            vec![
                ("license_key", None, KEY.into()),
                ("file", Some("payload.bin"), vec![0xff, 0xfe, 0x00]),
            ],
            StatusCode::BAD_REQUEST,
            "payload_file_not_text",
        ),
    ];
    for (fields, status, code) in cases {
        let csrf = browser.token().await;
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("csrf", None, csrf.as_bytes())];
        parts.extend(fields.iter().map(|(n, f, c)| (*n, *f, c.as_slice())));
        let page = browser.post_multipart("/license/page/import", &parts).await;
        assert_eq!(page.status, status, "{code}: {}", page.text);
        assert!(
            page.text.contains(&format!("<code>{code}</code>")),
            "{code}: {}",
            page.text
        );
        assert!(page.text.contains("role=\"alert\""), "{code}");
        assert!(
            page.text.contains("action=\"/license/page/import\""),
            "the forms stay"
        );
        assert_eq!(app.dump().await, before, "{code}: nothing changed");
    }

    // A malformed key on register: the endpoint's own code.
    let page = browser.register("REN3K1-not-a-key").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.text.contains("<code>invalid_license_key</code>"),
        "{}",
        page.text
    );
    // Deactivating with nothing installed.
    let csrf = browser.token().await;
    let page = browser
        .post_form(
            "/license/page/deactivate",
            &[("csrf", &csrf), ("license_key", KEY), ("confirm", "yes")],
        )
        .await;
    assert!(
        page.text.contains("<code>no_active_license</code>"),
        "{}",
        page.text
    );
    assert_eq!(app.dump().await, before);

    // A download of a token that does not verify.
    let forged = request.replace(&request[40..44], "AAAA");
    let reply = browser
        .post_form(
            "/license/page/download",
            &[("csrf", &csrf), ("kind", "request"), ("token", &forged)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let reply = browser
        .post_form(
            "/license/page/download",
            &[("csrf", &csrf), ("kind", "payload"), ("token", &request)],
        )
        .await;
    assert!(
        reply.text.contains("download_kind_unknown"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn with_a_portal_the_request_code_says_where_it_leads() {
    let portal = "https://licensing.example/ren3/register";
    let app = TestApp::with_vars(&[("license_portal_url", portal)]).await;
    let page = Browser::on(&app, LOOPBACK).register(KEY).await;
    assert!(
        page.text.contains(&format!("opens <code>{portal}</code>")),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn with_offline_licensing_disabled_the_page_says_how_to_enable_it() {
    let app = TestApp::disabled().await;
    let mut browser = Browser::on(&app, LOOPBACK);
    let page = browser.open().await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("enable_offline_license=true"));
    assert!(!page.text.contains("action=\"/license/page/register\""));
    let csrf = browser
        .cookie
        .clone()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let reply = browser
        .post_form(
            "/license/page/register",
            &[("csrf", &csrf), ("license_key", KEY)],
        )
        .await;
    assert!(
        reply
            .text
            .contains("<code>offline_licensing_disabled</code>"),
        "{}",
        reply.text
    );
}
