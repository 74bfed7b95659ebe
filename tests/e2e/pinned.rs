//! A client built with pinned trusted keys (`REN3_PINNED_TRUSTED_KEYS` at
//! build time) trusts exactly those keys and ignores the runtime
//! `license_trusted_keys` file, across the process boundary.

use ren3_shared::{IssuerKey, TrustedKeys, VerifiedPayload};
use ren3_tests::{Client, Issuer, fixture, pinned_client_bin, test_only_payload};

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn a_pinned_build_trusts_its_embedded_keys_and_ignores_the_runtime_trust_file() {
    let key = fixture_text("license-key.txt");
    let device = fixture_text("device-id.txt");
    // A real vendor's trust file, which the pinned build must ignore.
    let other_vendor = Issuer::init();
    let runtime_trust = other_vendor.export_trust();
    let client = Client::start_bin_with(
        pinned_client_bin(),
        &[
            ("enable_offline_license", "true"),
            ("client_device_id", &device),
            ("license_trusted_keys", runtime_trust.to_str().unwrap()),
        ],
    );

    // 1. The same terms signed by a key the pinned build does not hold: refused.
    let request = client.register(&key);
    let genuine = test_only_payload(&request, 1);
    let pinned =
        TrustedKeys::parse(&std::fs::read_to_string(fixture("trusted-keys.json")).unwrap())
            .unwrap();
    let terms = VerifiedPayload::open(&genuine, &pinned).unwrap().license;
    let foreign = IssuerKey::from_seed(&[77; 32])
        .sign_payload(&terms)
        .unwrap()
        .token();
    let before = client.store_dump();
    let answer = client.import(&key, &foreign);
    assert_eq!(
        (answer.status, answer.code()),
        (400, "unknown_key"),
        "{}",
        answer.body
    );
    assert_eq!(client.store_dump(), before);

    // 2. A payload signed by the pinned (TEST-ONLY) key: accepted.
    let answer = client.import(&key, &genuine);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(client.get("/license").body["state"], "active");

    // 3. A pinned build needs no runtime trust file to start.
    let bare = Client::start_bin_with(
        pinned_client_bin(),
        &[
            ("enable_offline_license", "true"),
            ("client_device_id", &device),
        ],
    );
    assert_eq!(bare.get("/license").body["state"], "unlicensed");
}
