//! Freeing a seat: the release page with a client's receipt and its
//! refusals, force release from a license's page, and the CSRF and
//! same-origin checks on these forms and the key forms.

use super::*;

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
