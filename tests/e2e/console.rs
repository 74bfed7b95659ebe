//! The web console in a real browser: headless Chromium driven over
//! WebDriver, against the real `ren3-issuer serve` and `ren3-client`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; ignored by default,
//! run by `.ci/run`, and without them it fails saying what to install.
//! With `REN3_UPDATE_SCREENSHOTS` set, it saves screenshots of the main
//! pages to `docs/screenshots/`.

use fantoccini::Locator;
use ren3_tests::{Client, Issuer};

use crate::browser::{
    Driver, chromedriver, click, element, fill, open_browser, screenshot, value_of,
};

const PASSWORD: &str = "a long console passphrase";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's chromium and chromium-driver: run with --ignored (.ci/run does)"]
async fn vendor_issues_a_license_in_the_browser_and_the_client_activates_it() {
    let chromedriver = chromedriver();

    let issuer = Issuer::init();
    issuer.add_user("alice", PASSWORD);
    let console = issuer.serve();
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver, profile.path()).await;
    let base = console.base.clone();

    // Log in.
    browser.goto(&format!("{base}/")).await.unwrap();
    assert!(
        browser
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/login")
    );
    screenshot(&browser, "login").await;
    fill(&browser, "#name", "alice").await;
    fill(&browser, "#password", PASSWORD).await;
    click(&browser, "form[action='/login'] button").await;
    // The logout form is on every page behind the login: wait for one.
    element(&browser, "form.logout").await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/");

    // Create a license.
    browser.goto(&format!("{base}/licenses/new")).await.unwrap();
    fill(&browser, "#customer", "ACME Corp").await;
    fill(&browser, "#features", "ingest, export").await;
    fill(&browser, "#limits", "max-sources=10").await;
    fill(&browser, "#expires", "2099-12-31").await;
    fill(&browser, "#max_devices", "2").await;
    click(&browser, "form[action='/licenses'] button[type=submit]").await;
    let key = value_of(&browser, "#license-key").await;
    assert!(key.starts_with("REN3K1-"), "{key}");

    // Add a device from the license page.
    click(&browser, "a.button[href^='/licenses/']").await;
    fill(&browser, "#label", "plant 1").await;
    let license_page = browser.current_url().await.unwrap();
    click(&browser, "form[action$='/devices'] button").await;
    let device = value_of(&browser, "#device-id").await;
    assert!(device.starts_with("REN3D1-"), "{device}");

    // The customer's ingestor registers and exports its request.
    let client = Client::start(&device);
    let request = client.register(&key);

    // Paste it into the console, check, confirm.
    browser.goto(&format!("{base}/issue")).await.unwrap();
    fill(&browser, "#request", &request).await;
    click(&browser, "form[action='/issue/check'] button").await;
    element(&browser, "#confirm").await;
    let checks = browser
        .find_all(Locator::Css(".verdict.pass"))
        .await
        .unwrap();
    assert_eq!(
        checks.len(),
        8,
        "every check passes, the signing key's certificate among them"
    );
    screenshot(&browser, "issue-check").await;
    click(&browser, "#confirm").await;
    let payload = value_of(&browser, "#payload").await;
    assert!(payload.starts_with("ren3-payload-"), "{payload}");
    screenshot(&browser, "issued-payload").await;

    // The customer imports the payload read from the page.
    let answer = client.import(&key, &payload);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = client.get("/license").body;
    assert_eq!(status["state"], "active", "{status}");
    assert_eq!(status["license"]["customer"], "ACME Corp");

    // The remaining pages, for the README.
    browser.goto(&format!("{base}/")).await.unwrap();
    screenshot(&browser, "dashboard").await;
    browser.goto(&format!("{base}/licenses")).await.unwrap();
    screenshot(&browser, "licenses").await;
    browser.goto(license_page.as_str()).await.unwrap();
    let detail = browser.source().await.unwrap();
    assert!(detail.contains("1 used, 1 free, of 2"), "{detail}");
    screenshot(&browser, "license-detail").await;

    // The customer deactivates; the vendor releases the seat with the receipt.
    let answer = client.post_json(
        "/license/deactivate",
        &serde_json::json!({ "licenseKey": key }),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let receipt = answer.body["releaseReceipt"].as_str().unwrap().to_owned();
    browser.goto(&format!("{base}/release")).await.unwrap();
    fill(&browser, "#receipt", &receipt).await;
    click(&browser, "form[action='/release/check'] button").await;
    element(&browser, "#verdict .verdict.pass").await;
    screenshot(&browser, "release").await;
    click(&browser, "#confirm").await;
    element(&browser, "a.button[href^='/licenses/']").await;
    browser.goto(license_page.as_str()).await.unwrap();
    let detail = browser.source().await.unwrap();
    assert!(detail.contains("0 used, 2 free, of 2"), "{detail}");

    // Rotate to a new signing key.
    browser.goto(&format!("{base}/keys")).await.unwrap();
    click(&browser, "#rotate").await;
    element(&browser, ".notice[role='status']").await;
    screenshot(&browser, "keys").await;
    browser.goto(&format!("{base}/audit")).await.unwrap();
    screenshot(&browser, "audit").await;

    browser.close().await.unwrap();
}
