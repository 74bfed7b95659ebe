//! Who gets in, and what a post must carry: the login wall, CSRF tokens,
//! refusing cross-site posts, login throttling, session cookies and the
//! security headers on every answer.

use super::*;

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
