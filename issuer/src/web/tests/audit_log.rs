//! The audit log through the console: the rows that logins, changes and
//! issuances write, with no secrets, and the page's hash-chain verdict.

use super::*;

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
