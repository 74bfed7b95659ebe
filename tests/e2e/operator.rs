//! What a customer operator can try with the powers SECURITY.md gives
//! them, across the real `ren3-client` process (issue 14): the clock
//! record deleted or lowered in the store, a flood of registers under
//! other keys, requests with a foreign `Host` (DNS rebinding), and pasted
//! text the format does not allow. Each attack fails; the honest sequence
//! beside it works.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use ren3_shared::ClockPolicy;
use ren3_tests::{Client, fixture, test_only_payload, test_only_payload_with};
use serde_json::{Value, json};

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .trim()
        .to_owned()
}

fn client() -> (Client, String) {
    (
        Client::start(&fixture_text("device-id.txt")),
        fixture_text("license-key.txt"),
    )
}

const DAY: i64 = 86_400;

/// The time the client has seen, as its store records it, moved by `edit`
/// while it is stopped.
fn edit_clock(client: Client, sql: &'static str) -> Client {
    let store = client.store_path();
    client.stopped(move || {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.execute(sql, []).unwrap();
    })
}

/// The clock record is what keeps a wound-back clock from reviving an
/// expired license. Deleting it, or lowering it, while the client is
/// stopped must not revive one either.
#[test]
fn deleting_or_lowering_the_clock_record_does_not_revive_an_expired_license() {
    let (client, key) = client();
    let now = ren3_shared::timestamp::now();
    // A license that expires in two days, under the enforcing policy.
    let payload = test_only_payload_with(&client.register(&key), 1, |l| {
        l.expires_at = Some(now + 2 * DAY);
        l.clock_policy = ClockPolicy::Enforcing;
    });
    let answer = client.import(&key, &payload);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The client saw a time ten days ahead (its clock was right then and
    // has been wound back since, as far as it can tell): expired.
    let client = edit_clock(
        client,
        "UPDATE clock SET high_water_mark = high_water_mark + 10 * 86400",
    );
    let status = client.get("/license").body;
    assert_ne!(status["state"], "active", "{status}");
    assert_eq!(status["licensed"], false, "{status}");

    // 1. The record deleted: not active again.
    let client = edit_clock(client, "DELETE FROM clock");
    let status = client.get("/license").body;
    assert_ne!(status["state"], "active", "deleted: {status}");
    assert_eq!(status["licensed"], false, "deleted: {status}");

    // 2. The record lowered below what the store's payloads vouch for.
    let client = edit_clock(client, "INSERT OR REPLACE INTO clock VALUES (1, 0)");
    let status = client.get("/license").body;
    assert_ne!(status["state"], "active", "lowered: {status}");
    assert_eq!(status["licensed"], false, "lowered: {status}");
}

/// The honest side of the same rule: a client whose record is intact
/// keeps its license across restarts.
#[test]
fn an_intact_clock_record_keeps_the_license_across_restarts() {
    let (client, key) = client();
    let answer = client.import(&key, &test_only_payload(&client.register(&key), 1));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let client = client.restart();
    let status = client.get("/license").body;
    assert_eq!(status["state"], "active", "{status}");
}

/// Sixteen registers under random well-formed keys (anyone who reaches the
/// port can send them) do not push out the customer's request: the
/// vendor's answer to it still imports. Past the bound, registers under
/// other keys are refused, and change nothing.
#[test]
fn a_flood_of_registers_under_other_keys_cannot_evict_the_customers_request() {
    let (client, key) = client();
    let request = client.register(&key);
    let mut refused = 0;
    for _ in 0..40 {
        let other = ren3_shared::LicenseKey::generate().unwrap();
        let answer = client.post_json(
            "/license/register",
            &json!({ "licenseKey": other.reveal(), "export": true }),
        );
        match answer.status {
            200 => {}
            409 => {
                refused += 1;
                assert_eq!(
                    answer.code(),
                    "too_many_pending_requests",
                    "{}",
                    answer.body
                );
                let detail = answer.body["detail"].as_str().unwrap_or_default();
                assert!(!detail.is_empty(), "{}", answer.body);
            }
            other => panic!("register answered {other}: {}", answer.body),
        }
    }
    assert!(refused > 0, "the bound was never reached");
    let before = client.store_dump();
    let other = ren3_shared::LicenseKey::generate().unwrap();
    let answer = client.post_json(
        "/license/register",
        &json!({ "licenseKey": other.reveal(), "export": true }),
    );
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(
        client.store_dump(),
        before,
        "a refused register changed the store"
    );

    let answer = client.import(&key, &test_only_payload(&request, 1));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(client.get("/license").body["state"], "active");
}

/// One HTTP/1.1 request with exactly this `Host` line (or none), over a
/// plain socket: what a browser sends after a DNS rebinding.
fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    host: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\n{host}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// DNS rebinding: a web page the customer opens names its own host and
/// reaches the client's port. The licensing endpoints answer only to the
/// names of this machine (any port, for tunnels and containers).
#[test]
fn the_licensing_endpoints_answer_only_to_this_machines_names() {
    let (client, key) = client();
    let port = client.base.rsplit(':').next().unwrap().to_owned();
    for host in [
        format!("localhost:{port}"),
        "localhost".to_owned(),
        "127.0.0.1:5000".to_owned(),
        "[::1]:8080".to_owned(),
        format!("127.0.0.1:{port}"),
    ] {
        let (status, body) = raw_request(&client.base, "GET", "/license", Some(&host), "");
        assert_eq!(status, 200, "Host {host}: {body}");
    }
    let before = client.store_dump();
    let register = json!({ "licenseKey": key, "export": true }).to_string();
    for host in [
        Some("evil.example"),
        Some("evil.example:5000"),
        Some("127.0.0.1.evil.example"),
        None,
    ] {
        for (method, path, body) in [
            ("GET", "/license", ""),
            ("POST", "/license/register", register.as_str()),
        ] {
            let (status, answer) = raw_request(&client.base, method, path, host, body);
            let expected = match host {
                Some(_) => (421, "host_not_allowed"),
                None => (400, "host_invalid"),
            };
            assert_eq!(
                (status, answer["code"].as_str().unwrap_or_default()),
                expected,
                "{method} {path} with Host {host:?}: {answer}"
            );
        }
    }
    assert_eq!(
        client.store_dump(),
        before,
        "a refused request changed the store"
    );
}

/// Pasted text as FORMAT.md 3.2 allows it, and nothing more: a leading
/// byte-order mark is dropped, a no-break space or an unknown armour label
/// is refused with its code, through the real endpoint.
#[test]
fn pasted_payloads_are_read_as_the_format_says() {
    let (client, key) = client();
    let request = client.register(&key);
    let payload = test_only_payload(&request, 1);
    let (head, tail) = payload.split_at(40);
    for (text, code) in [
        (format!("{head}\u{a0}{tail}"), "token_damaged"),
        (format!("{payload}\u{2028}"), "token_damaged"),
        (
            format!("-----BEGIN FOO-----\n{payload}\n-----END FOO-----\n"),
            "token_unrecognised",
        ),
    ] {
        let before = client.store_dump();
        let answer = client.import(&key, &text);
        assert_eq!(
            (answer.status, answer.code()),
            (400, code),
            "{text:?}: {}",
            answer.body
        );
        assert_eq!(client.store_dump(), before);
    }
    let answer = client.import(&key, &format!("\u{feff}{payload}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
}
