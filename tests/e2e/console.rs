//! The web console in a real browser: headless Chromium driven over
//! WebDriver, against the real `ren3-issuer serve` and `ren3-client`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test
//! says it was skipped, except under CI (`CI` set), where it fails.
//! It saves screenshots of the main pages to `docs/screenshots/`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use ren3_tests::{Client, Issuer};

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "a long console passphrase";

fn chromedriver() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|path| path.is_file())
    })
}

/// A chromedriver on a port of its choosing, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(binary: &Path) -> Self {
        let mut child = Command::new(binary)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        // "ChromeDriver was started successfully on port 39343."
        let port = loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "chromedriver exited"
            );
            if let Some(rest) = line
                .trim()
                .strip_prefix("ChromeDriver was started successfully on port ")
            {
                break rest.trim_end_matches('.').to_owned();
            }
        };
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The element `css` names, waiting for it: a click that submits a form
/// may return before the next page has loaded.
async fn element(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element `{css}`: {e}"))
}

async fn fill(browser: &Browser, css: &str, text: &str) {
    let field = element(browser, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(browser: &Browser, css: &str) {
    element(browser, css).await.click().await.unwrap();
}

async fn value_of(browser: &Browser, css: &str) -> String {
    element(browser, css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn open_browser(driver: &Driver, profile: &Path) -> Browser {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's chromium and chromium-driver: run with --ignored (.ci/run does)"]
async fn vendor_issues_a_license_in_the_browser_and_the_client_activates_it() {
    let (true, Some(chromedriver)) = (Path::new(CHROMIUM).is_file(), chromedriver()) else {
        panic!(
            "the browser test needs chromium and chromedriver: \
             apt-get install chromium chromium-driver"
        );
    };

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
