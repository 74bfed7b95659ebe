//! The local license page in a real browser: headless Chromium against the
//! real `ren3-client`, with the vendor's side done by the real
//! `ren3-issuer`. The QR codes are read back from the browser's own
//! rendering with an independent decoder (`rqrr`).
//!
//! Needs Debian's `chromium` and `chromium-driver`; ignored by default,
//! run by `.ci/run`. With `REN3_UPDATE_SCREENSHOTS` set, it saves
//! screenshots of the page to `docs/screenshots/client-*.png`.

use fantoccini::Locator;
use ren3_shared::{VerifiedReceipt, VerifiedRequest};
use ren3_tests::{Client, Issuer};

use crate::browser::{
    Browser, Driver, chromedriver, click, element, fill, open_browser, screenshot, value_of,
};

/// The text of the QR code the browser shows at `css`, from a screenshot
/// of that element.
async fn scan(browser: &Browser, css: &str) -> String {
    let png = element(browser, css).await.screenshot().await.unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let grey = |x: usize, y: usize| -> u8 {
        let at = (y * width + x) * channels;
        // The first channel is enough: the code is black on white.
        pixels[at]
    };
    ren3_tests::qr::read(width, height, grey)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Debian's chromium and chromium-driver: run with --ignored (.ci/run does)"]
async fn an_operator_licenses_the_ingestor_from_its_page_in_a_browser() {
    let chromedriver = chromedriver();
    let issuer = Issuer::init();
    let key = issuer.create_license(
        "ACME Corp",
        &["--features", "ingest,export", "--limit", "max-sources=10"],
    );
    let device = issuer.add_device(&key);
    let client = Client::start(&device);
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().unwrap();
    let browser = open_browser(&driver, profile.path()).await;
    let page = format!("{}/license/page", client.base);

    // The status, before anything: unlicensed, with the first form.
    browser.goto(&page).await.unwrap();
    let state = element(&browser, "h1 .state")
        .await
        .text()
        .await
        .unwrap()
        .to_lowercase();
    assert_eq!(state, "unlicensed");
    screenshot(&browser, "client-page").await;

    // 1. Export the request: shown, downloadable, and as a QR code that
    // gives back exactly the request.
    fill(&browser, "#register-key", &key).await;
    click(&browser, "form[action='/license/page/register'] button").await;
    let request = value_of(&browser, "#token").await;
    let verified = VerifiedRequest::open(&request).unwrap();
    assert_eq!(verified.request.client_device_id.as_str(), device);
    assert_eq!(scan(&browser, "#qr svg").await, request);
    element(&browser, "form[action='/license/page/download'] button").await;
    screenshot(&browser, "client-request").await;
    let html = browser.source().await.unwrap();
    assert!(!html.contains(&key), "the page shows the key back");

    // 2. The vendor answers; the operator pastes the payload.
    let payload = issuer.issue(&request);
    browser.goto(&page).await.unwrap();
    fill(&browser, "#import-key", &key).await;
    fill(&browser, "#import-payload", &payload).await;
    click(&browser, "form[action='/license/page/import'] button").await;
    let notice = element(&browser, ".notice").await.text().await.unwrap();
    assert!(notice.contains("imported"), "{notice}");
    let state = element(&browser, "h1 .state")
        .await
        .text()
        .await
        .unwrap()
        .to_lowercase();
    assert_eq!(state, "active");
    screenshot(&browser, "client-active").await;
    assert_eq!(client.get("/license").body["state"], "active");

    // 3. Deactivate: the receipt, and its QR code.
    fill(&browser, "#deactivate-key", &key).await;
    click(&browser, "input[name=confirm]").await;
    click(&browser, "form[action='/license/page/deactivate'] button").await;
    let receipt = value_of(&browser, "#token").await;
    let verified = VerifiedReceipt::open(&receipt).unwrap();
    assert_eq!(verified.receipt.client_device_id.as_str(), device);
    assert_eq!(scan(&browser, "#qr svg").await, receipt);
    screenshot(&browser, "client-receipt").await;
    assert_eq!(client.get("/license").body["state"], "unlicensed");
    // The vendor frees the seat with it.
    issuer.ok(&["release", "--receipt", "-"], Some(&receipt));

    // No script ran or was even offered.
    let scripts = browser.find_all(Locator::Css("script")).await.unwrap();
    assert!(scripts.is_empty());
    browser.close().await.unwrap();
}
