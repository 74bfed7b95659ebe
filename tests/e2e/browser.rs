//! What the browser tests share: a chromedriver, a headless Chromium
//! session, and the few element helpers they use.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use fantoccini::Client as Browser;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The chromedriver on `PATH`, beside Debian's chromium. A browser test
/// without them fails, saying what to install: they are ignored tests,
/// which only `.ci/run` and an explicit `--ignored` run.
pub fn chromedriver() -> PathBuf {
    let driver = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|path| path.is_file())
    });
    match driver {
        Some(driver) if Path::new(CHROMIUM).is_file() => driver,
        _ => panic!(
            "the browser tests need chromium and chromedriver: \
             apt-get install chromium chromium-driver"
        ),
    }
}

/// A chromedriver on a port of its choosing, stopped on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start(binary: &Path) -> Self {
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

/// Set to refresh the README's screenshots in `docs/screenshots/`.
pub const UPDATE_SCREENSHOTS: &str = "REN3_UPDATE_SCREENSHOTS";

/// Takes a screenshot of the page as it is, which must be a PNG. It
/// replaces `docs/screenshots/NAME.png` only when [`UPDATE_SCREENSHOTS`]
/// is set: a test run (CI's, or one that builds packages after it) leaves
/// the checkout as it found it, so `--version` does not call it modified.
pub async fn screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
    if std::env::var_os(UPDATE_SCREENSHOTS).is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The element `css` names, waiting for it: a click that submits a form
/// may return before the next page has loaded.
pub async fn element(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element `{css}`: {e}"))
}

pub async fn fill(browser: &Browser, css: &str, text: &str) {
    let field = element(browser, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub async fn click(browser: &Browser, css: &str) {
    element(browser, css).await.click().await.unwrap();
}

pub async fn value_of(browser: &Browser, css: &str) -> String {
    element(browser, css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

pub async fn open_browser(driver: &Driver, profile: &Path) -> Browser {
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
