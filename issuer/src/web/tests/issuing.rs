//! The issue page: check, then issue and serve the payload; no payload for
//! a suspended or expired license; damaged input gets the CLI's errors.

use super::*;

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
