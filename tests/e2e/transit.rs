//! Tokens travel by e-mail: surrounding white space, wrapped lines and
//! armoured blocks must all be accepted, on both sides.

use ren3_shared::Kind;
use ren3_tests::{Client, Issuer, wrap_like_a_mail_client};

/// The serial `payload` carries: the issuer's, from the issuance time
/// (`docs/FORMAT.md` §5).
fn serial_of(payload: &str) -> u64 {
    ren3_shared::payload::decode_unverified(payload)
        .unwrap()
        .1
        .serial
}

#[test]
fn wrapped_and_armoured_tokens_are_accepted_on_both_sides() {
    let issuer = Issuer::init();
    let key = issuer.create_license("Wrapped Mail Ltd", &[]);
    let device = issuer.add_device(&key);
    let client = Client::start(&device);

    // The vendor receives the request wrapped at 76 columns.
    let request = client.register(&key);
    let wrapped = format!("\n\t {} \n", wrap_like_a_mail_client(&request, 76));
    let payload = issuer.issue(&wrapped);

    // The customer pastes the payload wrapped, inside a JSON string.
    let answer = client.import(
        &key,
        &format!("  {}\n", wrap_like_a_mail_client(&payload, 64)),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    // An armoured block, with prose around it, is accepted too.
    let renewal = issuer.issue(&Kind::Request.armor(&client.register(&key)));
    let mail = format!(
        "Dear customer,\n\n{}\nBest regards\n",
        Kind::Payload.armor(&renewal)
    );
    let answer = client.import(&key, &mail);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        client.get("/license").body["license"]["serial"],
        serial_of(&renewal)
    );
}
