//! Hostile input, built once and shared by every surface that reads it:
//! the client's endpoints (in-process and over a real process), the
//! console's forms and the issuer's CLI. Each case is numbered so that a
//! failure names it, in the style of ed25519-dalek's `validation_criteria.rs`.
//!
//! The cases only build inputs and say which stable code the shared
//! library gives for them; each surface checks its own rendering of that
//! code (problem+json, a form's message, a CLI's stderr).
//!
//! One piece, over the usual size: the cases are a catalogue, numbered in
//! one sequence, and every surface draws from all of it.

use ren3_shared::binary;
use serde_json::{Value, json};
use sha2::Digest as _;

/// Every code the README documents for a 4xx answer of the client's
/// licensing endpoints.
pub const CLIENT_4XX_CODES: &[&str] = &[
    "invalid_license_key",
    "online_activation_unavailable",
    "invalid_json",
    "unreadable_body",
    "token_empty",
    "token_too_large",
    "token_wrong_kind",
    "token_unrecognised",
    "token_unsupported_version",
    "token_damaged",
    "signature_invalid",
    "untrusted_root",
    "certificate_invalid",
    "outside_certificate",
    "key_revoked",
    "token_invalid",
    "not_found",
    "method_not_allowed",
    "offline_licensing_disabled",
    "no_active_license",
    "downgrade_rejected",
    "body_too_large",
    "unsupported_media_type",
    "invalid_body",
    "license_key_mismatch",
    "device_id_mismatch",
    "device_key_mismatch",
    "unknown_request",
    "license_not_yet_valid",
    "license_expired",
    "too_many_pending_requests",
    "host_not_allowed",
    "host_invalid",
];

/// Every stable code of a refused token (`ren3_shared::TokenError::code`).
pub const TOKEN_CODES: &[&str] = &[
    "token_empty",
    "token_too_large",
    "token_wrong_kind",
    "token_unrecognised",
    "token_unsupported_version",
    "token_damaged",
    "signature_invalid",
    "untrusted_root",
    "certificate_invalid",
    "outside_certificate",
    "key_revoked",
    "token_invalid",
];

/// The codes a token with one byte or character changed may get: it is
/// damaged (checksum, structure), its signed message no longer starts or
/// signs right, its signer line names another key, or the certificate or
/// revocation list it carries no longer reads or verifies.
pub const FLIP_CODES: &[&str] = &[
    "token_damaged",
    "token_invalid",
    "signature_invalid",
    "certificate_invalid",
    "untrusted_root",
    "token_unrecognised",
    "token_unsupported_version",
    "token_wrong_kind",
];

/// The order of the Ed25519 group, L = 2^252 + 27742317777372353535851937790883648493,
/// little-endian.
pub const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// The identity point, a public key of small order (order 1).
pub const IDENTITY_POINT: [u8; 32] = {
    let mut point = [0u8; 32];
    point[0] = 1;
    point
};

/// The "repudiation" signature: R = identity, S = 0. With a small-order
/// public key, `verify` accepts it for any message; `verify_strict` never.
pub fn repudiation_signature() -> [u8; 64] {
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&IDENTITY_POINT);
    signature
}

/// `s + GROUP_ORDER` as 32 little-endian bytes: the same scalar modulo L, in
/// a non-canonical spelling. (S < L < 2^253, so the sum fits in 254 bits.)
pub fn add_group_order(s: &[u8]) -> [u8; 32] {
    let mut sum = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let total = u16::from(s[i]) + u16::from(GROUP_ORDER[i]) + carry;
        sum[i] = total as u8;
        carry = total >> 8;
    }
    sum
}

/// One hostile value for a token field, with the stable code that the
/// shared library refuses it with.
#[derive(Debug, Clone)]
pub struct TokenCase {
    pub id: usize,
    pub description: String,
    pub input: String,
    pub expected: &'static str,
}

impl TokenCase {
    /// `"7. signature zeroed"`: what an assertion message starts with.
    pub fn name(&self) -> String {
        format!("{}. {}", self.id, self.description)
    }
}

/// The parts of a well-formed token.
struct Parts {
    prefix: String,
    message: Vec<u8>,
    signature: Vec<u8>,
}

fn split(token: &str) -> Parts {
    let dot = token.find('.').expect("a token has a prefix") + 1;
    let (prefix, rest) = token.split_at(dot);
    let fields: Vec<&str> = rest.split('.').collect();
    Parts {
        prefix: prefix.to_owned(),
        message: binary::decode(fields[0]).expect("a token's message is base64url"),
        signature: binary::decode(fields[1]).expect("a token's signature is base64url"),
    }
}

/// A token around `message` and `signature` with a correct checksum, so
/// that only the signature (or the message's structure) can catch it.
pub fn reseal(prefix: &str, message: &[u8], signature: &[u8]) -> String {
    let signed_part = format!(
        "{prefix}{}.{}",
        binary::encode(message),
        binary::encode(signature)
    );
    let digest = sha2::Sha256::digest(signed_part.as_bytes());
    format!("{signed_part}.{}", binary::encode(&digest[..6]))
}

/// `message` with its signer line (the second line) replaced.
fn with_signer(message: &[u8], signer: &str) -> Vec<u8> {
    let first = message
        .iter()
        .position(|&b| b == b'\n')
        .expect("a domain line");
    let second = first
        + 1
        + message[first + 1..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("a signer line");
    let mut out = message[..=first].to_vec();
    out.extend_from_slice(signer.as_bytes());
    out.extend_from_slice(&message[second..]);
    out
}

/// Whether a token is signed by a device (request, receipt: the signer line
/// is a public key) rather than by an issuer key (payload: a key id).
fn device_signed(token: &str) -> bool {
    token.starts_with("ren3-request-") || token.starts_with("ren3-receipt-")
}

/// Every hostile variant of `valid` (a correct token of the kind the
/// surface reads), plus `wrong_kinds` (correct tokens of other kinds).
/// The signer line of a device-signed token is swapped for another,
/// valid, device key (`other_signer`, base64url) in one case; for a
/// payload the signer line gets a key id nobody trusts.
pub fn token_cases(valid: &str, wrong_kinds: &[&str]) -> Vec<TokenCase> {
    let parts = split(valid);
    let prefix = parts.prefix.as_str();
    let message = parts.message.as_slice();
    let signature = parts.signature.as_slice();
    let mut cases: Vec<(String, String, &'static str)> = Vec::new();
    let mut add = |description: &str, input: String, expected: &'static str| {
        cases.push((description.to_owned(), input, expected));
    };

    // Empty, blank, truncated, oversized.
    add("empty", String::new(), "token_empty");
    add("only white space", " \r\n\t \n".into(), "token_empty");
    add("only the prefix", prefix.to_owned(), "token_damaged");
    add(
        "truncated by one character",
        valid[..valid.len() - 1].to_owned(),
        "token_damaged",
    );
    add(
        "truncated by the checksum",
        valid[..valid.rfind('.').expect("a checksum")].to_owned(),
        "token_damaged",
    );
    add(
        "truncated to half",
        valid[..valid.len() / 2].to_owned(),
        "token_damaged",
    );
    add(
        "the token twice",
        format!("{valid}{valid}"),
        "token_damaged",
    );
    add(
        "absurd length: 65 KiB of base64url after the prefix",
        format!("{prefix}{}", "A".repeat(65 * 1024)),
        "token_too_large",
    );
    add(
        "absurd length: the token followed by 1 MiB",
        format!("{valid}{}", "A".repeat(1024 * 1024)),
        "token_too_large",
    );
    add(
        "absurd length: 64 KiB of message, resealed",
        reseal(prefix, &vec![b'x'; 48 * 1024], signature),
        "token_too_large",
    );
    add(
        "a long message just under the limit, resealed",
        reseal(prefix, &vec![b'x'; 40 * 1024], signature),
        "token_invalid",
    );

    // Not a token, or another version.
    add("not a token", "hello".into(), "token_unrecognised");
    add(
        "a script element",
        "<script>alert(1)</script>".into(),
        "token_damaged",
    );
    add(
        "a script element after the token",
        format!("{valid}<script>alert(1)</script>"),
        "token_damaged",
    );
    add(
        "a script element inside the token",
        format!(
            "{}<script>alert(1)</script>{}",
            &valid[..prefix.len() + 4],
            &valid[prefix.len() + 4..]
        ),
        "token_damaged",
    );
    add(
        "a NUL byte inside the token",
        format!(
            "{}\0{}",
            &valid[..valid.len() / 2],
            &valid[valid.len() / 2..]
        ),
        "token_damaged",
    );
    add(
        "an escape sequence before the token",
        format!("\u{1b}[31m{valid}"),
        "token_damaged",
    );
    add(
        "a bell and a backspace inside the token",
        format!("{}\u{7}\u{8}{}", &valid[..20], &valid[20..]),
        "token_damaged",
    );
    add(
        "a right-to-left override inside the token",
        format!("{}\u{202e}{}", &valid[..30], &valid[30..]),
        "token_damaged",
    );
    add(
        "a byte-order mark inside the token (one before it is dropped, FORMAT.md 3.2)",
        format!("{}\u{feff}{}", &valid[..30], &valid[30..]),
        "token_damaged",
    );
    add(
        "a no-break space inside the token",
        format!("{}\u{a0}{}", &valid[..30], &valid[30..]),
        "token_damaged",
    );
    add(
        "a line separator (U+2028) after the token",
        format!("{valid}\u{2028}"),
        "token_damaged",
    );
    add(
        "an ideographic space (U+3000) before the token",
        format!("\u{3000}{valid}"),
        "token_damaged",
    );
    add(
        "an armoured block with a label no token uses",
        format!("-----BEGIN FOO-----\n{valid}\n-----END FOO-----\n"),
        "token_unrecognised",
    );
    add(
        "a non-ASCII letter inside the token",
        format!("{}é{}", &valid[..40], &valid[40..]),
        "token_damaged",
    );
    add(
        "an unknown version",
        {
            // The prefix's version, whatever it is: `ren3-<kind>-v<N>.`.
            let dot = valid.find('.').unwrap_or(valid.len());
            let version = valid[..dot].rfind("-v").unwrap_or(dot);
            format!("{}-v9{}", &valid[..version], &valid[dot..])
        },
        "token_unsupported_version",
    );
    let label = if valid.starts_with("ren3-request-") {
        "REN3 LICENSE REQUEST"
    } else if valid.starts_with("ren3-receipt-") {
        "REN3 RELEASE RECEIPT"
    } else {
        "REN3 LICENSE PAYLOAD"
    };
    add(
        "an unterminated armoured block",
        format!("-----BEGIN {label}-----\n{valid}\n"),
        "token_damaged",
    );

    // The signature.
    add(
        "signature truncated to 63 bytes",
        reseal(prefix, message, &signature[..63]),
        "token_damaged",
    );
    add(
        "signature truncated to 32 bytes",
        reseal(prefix, message, &signature[..32]),
        "token_damaged",
    );
    add(
        "signature empty",
        reseal(prefix, message, &[]),
        "token_damaged",
    );
    add(
        "signature zeroed",
        reseal(prefix, message, &[0u8; 64]),
        "signature_invalid",
    );
    let mut garbage = signature.to_vec();
    garbage.extend_from_slice(b"garbage!");
    add(
        "signature with garbage appended",
        reseal(prefix, message, &garbage),
        "token_damaged",
    );
    let mut s_plus_l = signature.to_vec();
    s_plus_l[32..].copy_from_slice(&add_group_order(&signature[32..]));
    add(
        "signature with S replaced by S+L (non-canonical)",
        reseal(prefix, message, &s_plus_l),
        "signature_invalid",
    );
    let mut r_swapped = signature.to_vec();
    r_swapped[..32].copy_from_slice(&IDENTITY_POINT);
    add(
        "signature with R replaced by the identity point",
        reseal(prefix, message, &r_swapped),
        "signature_invalid",
    );
    add(
        "the repudiation signature (R = identity, S = 0) under the real signer",
        reseal(prefix, message, &repudiation_signature()),
        "signature_invalid",
    );

    // The signer line.
    if device_signed(valid) {
        add(
            "the small-order identity key as signer, with the repudiation signature",
            reseal(
                prefix,
                &with_signer(message, &binary::encode(&IDENTITY_POINT)),
                &repudiation_signature(),
            ),
            "token_invalid",
        );
        let mut order_two = [0u8; 32];
        order_two[0] = 0xec;
        order_two[1..31].fill(0xff);
        order_two[31] = 0x7f;
        add(
            "the small-order point of order 2 as signer, with the repudiation signature",
            reseal(
                prefix,
                &with_signer(message, &binary::encode(&order_two)),
                &repudiation_signature(),
            ),
            "token_invalid",
        );
        let other = ren3_shared::DeviceKey::from_seed(&[0x5a; 32]).public_key();
        add(
            "another valid device key as signer",
            reseal(prefix, &with_signer(message, &other.to_string()), signature),
            "signature_invalid",
        );
        add(
            "a signer line of 32 bytes 0xff (not a canonical point)",
            reseal(
                prefix,
                &with_signer(message, &binary::encode(&[0xffu8; 32])),
                signature,
            ),
            "signature_invalid",
        );
    } else {
        add(
            "a key id other than its certificate's as signer",
            reseal(
                prefix,
                &with_signer(message, &binary::encode(&[0x42u8; 8])),
                signature,
            ),
            "certificate_invalid",
        );
        add(
            "a key id other than its certificate's as signer, with the repudiation signature",
            reseal(
                prefix,
                &with_signer(message, &binary::encode(&[0u8; 8])),
                &repudiation_signature(),
            ),
            "certificate_invalid",
        );
        add(
            "the small-order identity key in place of a key id",
            reseal(
                prefix,
                &with_signer(message, &binary::encode(&IDENTITY_POINT)),
                &repudiation_signature(),
            ),
            "token_invalid",
        );
    }
    add(
        "an empty signer line",
        reseal(prefix, &with_signer(message, ""), signature),
        "token_invalid",
    );
    add(
        "a signer line with a script element",
        reseal(
            prefix,
            &with_signer(message, "<script>alert(1)</script>"),
            signature,
        ),
        "token_invalid",
    );
    add(
        "a signer line with control characters",
        reseal(prefix, &with_signer(message, "\u{1b}[2J\u{7}"), signature),
        "token_invalid",
    );
    let mut other_domain = message.to_vec();
    other_domain[0] ^= 0x20;
    add(
        "another domain line, resealed",
        reseal(prefix, &other_domain, signature),
        "token_invalid",
    );
    let mut nul_body = message.to_vec();
    nul_body.extend_from_slice(b"\0<script>alert(1)</script>");
    add(
        "NUL and a script element after the body, resealed",
        reseal(prefix, &nul_body, signature),
        "signature_invalid",
    );

    // Tokens of other kinds.
    for other in wrong_kinds {
        let kind = other.split('.').next().unwrap_or_default().to_owned();
        cases.push((
            format!("a token of the wrong kind ({kind})"),
            (*other).to_owned(),
            "token_wrong_kind",
        ));
    }

    cases
        .into_iter()
        .enumerate()
        .map(|(i, (description, input, expected))| TokenCase {
            id: i + 1,
            description,
            input,
            expected,
        })
        .collect()
}

/// `valid` with byte `i` of its decoded signed message flipped (all bits),
/// for every `i`, each resealed with a correct checksum so that only the
/// signature or the message's structure can catch it.
pub fn flipped_message_bytes(valid: &str) -> Vec<(usize, String)> {
    let parts = split(valid);
    (0..parts.message.len())
        .map(|i| {
            let mut message = parts.message.clone();
            message[i] ^= 0xff;
            (i, reseal(&parts.prefix, &message, &parts.signature))
        })
        .collect()
}

/// `valid` with character `i` of its text replaced by another character
/// of the token alphabet, for every `i`, the checksum left as it was.
pub fn flipped_characters(valid: &str) -> Vec<(usize, String)> {
    (0..valid.len())
        .map(|i| {
            let mut bytes = valid.as_bytes().to_vec();
            bytes[i] = match bytes[i] {
                b'A' => b'B',
                b'.' => b'_',
                _ => b'A',
            };
            let text = String::from_utf8(bytes).expect("ASCII stays ASCII");
            (i, text)
        })
        .collect()
}

/// Every `step`th element of `all`, and the last: a sample for surfaces
/// where each case is a process or a real HTTP round trip.
pub fn sample<T: Clone>(all: &[T], step: usize) -> Vec<T> {
    let mut picked: Vec<T> = all.iter().step_by(step.max(1)).cloned().collect();
    if let Some(last) = all.last()
        && all.len() % step.max(1) != 1
    {
        picked.push(last.clone());
    }
    picked
}

/// Text no text field should take as-is: control characters, markup and
/// look-alikes. `<script>` must always come back escaped where a field
/// accepts it as data.
pub fn hostile_texts() -> Vec<(usize, &'static str, String)> {
    let texts: Vec<(&'static str, String)> = vec![
        ("a script element", "<script>alert(1)</script>".into()),
        (
            "an attribute breakout",
            "\"><script>alert(1)</script>".into(),
        ),
        ("a NUL byte", "abc\0def".into()),
        ("an ANSI escape sequence", "\u{1b}[31mred\u{1b}[0m".into()),
        ("bell, backspace and delete", "a\u{7}b\u{8}c\u{7f}".into()),
        ("a right-to-left override", "abc\u{202e}fed".into()),
        ("a C1 control character", "abc\u{85}def\u{9b}".into()),
        (
            "a vertical tab, a form feed and a unit separator",
            "a\u{b}b\u{c}c\u{1f}d".into(),
        ),
        (
            "a script element with a NUL",
            "<scr\0ipt>alert(1)</script>".into(),
        ),
    ];
    texts
        .into_iter()
        .enumerate()
        .map(|(i, (description, text))| (i + 1, description, text))
        .collect()
}

/// A body-level case for a JSON endpoint, with the answer it must get.
#[derive(Debug, Clone)]
pub struct BodyCase {
    pub id: usize,
    pub description: String,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
    pub status: u16,
    pub code: &'static str,
}

impl BodyCase {
    pub fn name(&self) -> String {
        format!("{}. {}", self.id, self.description)
    }
}

/// The largest JSON body the client reads (its `BODY_LIMIT`).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// Body-level cases for a JSON endpoint whose valid body is the object
/// `valid` (every field a string or a boolean).
pub fn json_body_cases(valid: &Value) -> Vec<BodyCase> {
    const JSON: Option<&str> = Some("application/json");
    let object = valid.as_object().expect("a JSON object body");
    let text = valid.to_string();
    let mut cases: Vec<BodyCase> = Vec::new();
    let mut add = |description: String,
                   content_type: Option<&'static str>,
                   body: Vec<u8>,
                   status: u16,
                   code: &'static str| {
        cases.push(BodyCase {
            id: cases.len() + 1,
            description,
            content_type,
            body,
            status,
            code,
        });
    };

    add("empty body".into(), JSON, Vec::new(), 400, "invalid_json");
    add(
        "only white space".into(),
        JSON,
        b" \n\t ".to_vec(),
        400,
        "invalid_json",
    );
    add(
        "truncated".into(),
        JSON,
        text.as_bytes()[..text.len() / 2].to_vec(),
        400,
        "invalid_json",
    );
    add(
        "truncated by its last brace".into(),
        JSON,
        text.as_bytes()[..text.len() - 1].to_vec(),
        400,
        "invalid_json",
    );
    add(
        "oversized: one byte over the limit".into(),
        JSON,
        vec![b' '; JSON_BODY_LIMIT + 1],
        413,
        "body_too_large",
    );
    add(
        "oversized: 2 MiB".into(),
        JSON,
        format!("{{\"licenseKey\":\"{}\"}}", "A".repeat(2 * 1024 * 1024)).into_bytes(),
        413,
        "body_too_large",
    );
    add(
        "non-UTF-8 bytes".into(),
        JSON,
        vec![0xff, 0xfe, 0x00, 0x80],
        400,
        "invalid_json",
    );
    let mut non_utf8_string = b"{\"licenseKey\":\"".to_vec();
    non_utf8_string.extend_from_slice(&[0xc3, 0x28, 0xa0, 0xa1]);
    non_utf8_string.extend_from_slice(b"\"}");
    add(
        "non-UTF-8 bytes inside a string".into(),
        JSON,
        non_utf8_string,
        400,
        "invalid_json",
    );
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(text.as_bytes());
    add(
        "a byte-order mark before the JSON".into(),
        JSON,
        bom,
        400,
        "invalid_json",
    );
    add(
        "trailing garbage".into(),
        JSON,
        format!("{text}<script>").into_bytes(),
        400,
        "invalid_json",
    );
    add(
        "two objects".into(),
        JSON,
        format!("{text}{text}").into_bytes(),
        400,
        "invalid_json",
    );

    for (content_type, description) in [
        (Some("text/plain"), "text/plain"),
        (
            Some("application/x-www-form-urlencoded"),
            "a form's content type",
        ),
        (Some("multipart/form-data; boundary=x"), "multipart"),
        (Some("application/xml"), "XML"),
        (Some("application/jsonp"), "a look-alike of JSON"),
        (Some("<script>"), "a script element"),
        (None, "no content type"),
    ] {
        add(
            format!("wrong content type: {description}"),
            content_type,
            text.clone().into_bytes(),
            415,
            "unsupported_media_type",
        );
    }

    // A derived struct refuses a sequence or a map where a string belongs
    // at its first element, long before serde_json's recursion limit.
    add(
        "deeply nested arrays: 100,000 `[`".into(),
        JSON,
        vec![b'['; 100_000],
        413,
        "body_too_large",
    );
    add(
        "deeply nested arrays: 10,000 `[`, within the body limit".into(),
        JSON,
        vec![b'['; 10_000],
        422,
        "invalid_body",
    );
    add(
        "deeply nested arrays, closed: 5,000 levels".into(),
        JSON,
        format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)).into_bytes(),
        422,
        "invalid_body",
    );
    add(
        "deeply nested objects inside a field".into(),
        JSON,
        format!(
            "{{\"licenseKey\":{}1{}}}",
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        )
        .into_bytes(),
        422,
        "invalid_body",
    );

    for (name, value) in object {
        add(
            format!("duplicate key `{name}`"),
            JSON,
            format!("{{{},\"{name}\":{value}}}", &text[1..text.len() - 1]).into_bytes(),
            422,
            "invalid_body",
        );
        let wrong: Vec<(&str, Value)> = vec![
            ("null", Value::Null),
            ("a number", json!(12345)),
            ("a huge number", json!(1e308)),
            ("an array", json!([value])),
            ("an object", json!({ "value": value })),
            (
                if value.is_boolean() {
                    "a string"
                } else {
                    "a boolean"
                },
                if value.is_boolean() {
                    json!("true")
                } else {
                    json!(true)
                },
            ),
        ];
        for (what, replacement) in wrong {
            let mut body = object.clone();
            body.insert(name.clone(), replacement);
            add(
                format!("`{name}` is {what}"),
                JSON,
                Value::Object(body).to_string().into_bytes(),
                422,
                "invalid_body",
            );
        }
        let mut missing = object.clone();
        missing.remove(name);
        add(
            format!("`{name}` missing"),
            JSON,
            Value::Object(missing).to_string().into_bytes(),
            422,
            "invalid_body",
        );
    }
    for unknown in ["force", "__proto__", "<script>", "licensekey", "\u{0}"] {
        let mut body = object.clone();
        body.insert(unknown.to_owned(), json!(true));
        add(
            format!("unknown field {unknown:?}"),
            JSON,
            Value::Object(body).to_string().into_bytes(),
            422,
            "invalid_body",
        );
    }
    for (what, body) in [
        ("an array", "[]"),
        ("a string", "\"licenseKey\""),
        ("null", "null"),
        ("a number", "1"),
        ("an empty object", "{}"),
    ] {
        add(
            format!("the body is {what}"),
            JSON,
            body.as_bytes().to_vec(),
            422,
            "invalid_body",
        );
    }

    cases
}

/// Text that no answer may contain: a panic message, a backtrace, a path
/// into the source tree.
pub fn leaks(text: &str) -> Option<&'static str> {
    [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        ".rs:",
        "/src/",
        "/home/",
        "/work/",
        "rusqlite",
        "SQLITE",
    ]
    .into_iter()
    .find(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ren3_shared::{
        DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product, ReleaseReceipt, TrustRoot,
        VerifiedPayload, VerifiedReceipt, VerifiedRequest,
    };

    #[test]
    fn s_plus_l_is_the_same_scalar_spelled_non_canonically() {
        // L itself plus L is 2L: check the carry with the top byte.
        let two_l = add_group_order(&GROUP_ORDER);
        assert_eq!(two_l[0], 0xda);
        assert_eq!(two_l[31], 0x20);
        assert_eq!(add_group_order(&[0u8; 32]), GROUP_ORDER);
    }

    #[test]
    fn the_repudiation_pair_passes_verify_but_not_verify_strict() {
        use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
        let key = VerifyingKey::from_bytes(&IDENTITY_POINT).unwrap();
        let signature = Signature::from_bytes(&repudiation_signature());
        for message in [&b"anything"[..], b"", b"ren3/license-request/v2\n"] {
            assert!(key.verify(message, &signature).is_ok());
            assert!(key.verify_strict(message, &signature).is_err());
        }
        assert!(ren3_shared::PublicKey::from_bytes(&IDENTITY_POINT).is_err());
    }

    fn tokens() -> (String, String, String, TrustRoot) {
        let key = LicenseKey::parse("REN3K1-00000-00000-00000-00000-00000").unwrap();
        let device = DeviceId::parse("REN3D1-00000-00000-00000-00000").unwrap();
        let device_key = DeviceKey::from_seed(&[1; 32]);
        let request = LicenseRequest::new(
            device.clone(),
            &key,
            Product {
                name: "ren3-ingestor".into(),
                version: "1.0.0".into(),
            },
            1_800_000_000,
        )
        .unwrap()
        .sign(&device_key)
        .unwrap();
        let license = ren3_shared::License {
            customer: "ACME".into(),
            features: vec![],
            limits: Default::default(),
            issued_at: 1_800_000_000,
            not_before: 1_800_000_000,
            expires_at: None,
            grace_seconds: 0,
            clock_policy: ren3_shared::ClockPolicy::Advisory,
            serial: 1,
            license_key_fingerprint: key.fingerprint(),
            client_device_id: device.clone(),
            device_public_key: device_key.public_key().into(),
            request_hash: request.hash(),
        };
        let payload = crate::test_only_signer()
            .sign_payload(&license)
            .unwrap()
            .token();
        let receipt = ReleaseReceipt {
            released_at: 1_800_000_100,
            client_device_id: device,
            license_key_fingerprint: key.fingerprint(),
            serial: 1,
            counter: 1,
        }
        .sign(&device_key)
        .unwrap()
        .token();
        let trust = crate::test_only_root_key().trust_root();
        (request.token(), payload, receipt, trust)
    }

    /// A kind, its valid token, tokens of other kinds, and how the library
    /// opens that kind (the refusal's code, if any).
    type Opener<'a> = (
        &'a str,
        &'a str,
        Vec<&'a str>,
        Box<dyn Fn(&str) -> Option<&'static str> + 'a>,
    );

    /// The generator's expected codes are the shared library's: each case
    /// is refused with exactly its code, for each kind of token.
    #[test]
    fn every_token_case_is_refused_by_the_library_with_its_code() {
        let (request, payload, receipt, trust) = tokens();
        let open: [Opener; 3] = [
            (
                "request",
                &request,
                vec![&payload, &receipt],
                Box::new(|t| VerifiedRequest::open(t).err().map(|e| e.code())),
            ),
            (
                "payload",
                &payload,
                vec![&request, &receipt],
                Box::new(|t| VerifiedPayload::open(t, &trust).err().map(|e| e.code())),
            ),
            (
                "receipt",
                &receipt,
                vec![&request, &payload],
                Box::new(|t| VerifiedReceipt::open(t).err().map(|e| e.code())),
            ),
        ];
        let mut wrong = Vec::new();
        for (kind, valid, others, open) in open {
            assert_eq!(open(valid), None, "{kind}: the valid token opens");
            for case in token_cases(valid, &others) {
                let code = open(&case.input);
                if code != Some(case.expected) {
                    wrong.push(format!("{kind} case {}: {code:?}", case.name()));
                }
            }
            for (i, flipped) in flipped_message_bytes(valid) {
                let code = open(&flipped);
                assert!(
                    code.is_some_and(|c| FLIP_CODES.contains(&c)),
                    "{kind}: message byte {i} flipped: {code:?}"
                );
            }
            for (i, flipped) in flipped_characters(valid) {
                let code = open(&flipped);
                assert!(
                    code.is_some_and(|c| FLIP_CODES.contains(&c)),
                    "{kind}: character {i} flipped: {code:?}"
                );
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
