//! The license pages: the list and its search, the create and edit forms
//! (grace, clock policy and the field in error), status changes and devices
//! on the detail page, and escaping what a customer's name holds.

use super::*;
use crate::web::view;

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
            .get(&format!("/licenses?{}", view::query_string(&[("q", &q)])))
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
