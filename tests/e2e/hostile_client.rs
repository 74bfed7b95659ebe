//! Hostile input over a real socket: the real `ren3-client` process, on
//! port 0 with its own store, holding an active license (serial 1) and a
//! pending request, gets every hostile case of `ren3_tests::hostile` on
//! every licensing endpoint, plus what only a socket can send: a
//! `Content-Length` that lies, chunked bodies far over the limit, broken
//! chunking, header bytes that are not UTF-8, requests that are not HTTP.
//!
//! Every case, numbered so that a failure names it:
//!
//! 1. gets a 4xx: problem+json with its stable `code` when it reaches the
//!    router, hyper's bare 4xx when the HTTP framing itself is broken
//!    (no route can answer those); never a 5xx, never a panic, a path or
//!    a backtrace in the body, never the license key or the hostile text
//!    echoed back;
//! 2. leaves the process running and its store byte for byte as it was
//!    (the database and its write-ahead log);
//! 3. and `GET /license` still reports the same active license.
//!
//! At the end the valid renewal is imported: the pending request and the
//! active license survived every case, and the cases were refused for
//! what they are. Every single-byte flip of the renewal's signed message
//! and every single-character change of its text are sent, not a sample:
//! over a local socket they take a few seconds in a debug build.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use ren3_shared::binary;
use ren3_tests::hostile::{self, CLIENT_4XX_CODES as DOCUMENTED_4XX, FLIP_CODES, TOKEN_CODES};
use ren3_tests::{Client, ClientStoreSnapshot, fixture, test_only_payload, test_only_payload_with};
use serde_json::{Value, json};

/// How long one case may take before the test calls the server hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .trim()
        .to_owned()
}

/// What a case must get.
#[derive(Debug, Clone)]
enum Expect {
    /// A problem+json refusal with this status and code.
    Problem(u16, &'static str),
    /// A problem+json refusal with this status and one of these codes.
    OneOf(u16, Vec<&'static str>),
    /// Refused by hyper before any route, for broken HTTP framing: this
    /// status and an empty body.
    Framing(u16),
    /// `GET /license`, which ignores junk: 200 and the same status.
    SameStatus,
}

/// One case: the exact bytes sent over a fresh connection.
struct Case {
    id: usize,
    description: String,
    bytes: Vec<u8>,
    /// Half-close the connection after sending: the peer sees the end of
    /// the stream (a body shorter than its `Content-Length`).
    half_close: bool,
    /// Text that must not come back in the answer.
    not_echoed: Option<String>,
    expect: Expect,
}

impl Case {
    fn name(&self) -> String {
        format!("{}. {}", self.id, self.description)
    }
}

#[derive(Default)]
struct Cases(Vec<Case>);

impl Cases {
    fn add(&mut self, description: impl Into<String>, bytes: Vec<u8>, expect: Expect) {
        self.push(description, bytes, false, None, expect);
    }

    fn push(
        &mut self,
        description: impl Into<String>,
        bytes: Vec<u8>,
        half_close: bool,
        not_echoed: Option<String>,
        expect: Expect,
    ) {
        self.0.push(Case {
            id: self.0.len() + 1,
            description: description.into(),
            bytes,
            half_close,
            not_echoed,
            expect,
        });
    }

    /// A POST of `body` as JSON to `path`.
    fn json(&mut self, description: impl Into<String>, path: &str, body: &Value, expect: Expect) {
        self.add(
            description,
            request(
                "POST",
                path,
                &[("Content-Type", b"application/json")],
                body.to_string().as_bytes(),
            ),
            expect,
        );
    }
}

/// An HTTP/1.1 request with `Connection: close` and a correct
/// `Content-Length` (unless `headers` set framing of their own).
fn request(method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
        .into_bytes();
    let framed = headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
    });
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !framed && (method != "GET" || !body.is_empty()) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn chunked(chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// An answer read off the socket.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `bytes` on a fresh connection (from a thread of its own, so that
/// a server that answers before reading everything is not a deadlock) and
/// reads the answer until the server closes.
fn exchange(address: &str, bytes: &[u8], half_close: bool) -> Result<Raw, String> {
    let stream = TcpStream::connect(address).map_err(|e| format!("cannot connect: {e}"))?;
    stream.set_read_timeout(Some(CASE_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CASE_TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = stream;
    let received = std::thread::scope(|scope| {
        scope.spawn(move || {
            // The server may close early (a refusal before the whole body):
            // a broken pipe or a reset here is its right.
            if writer.write_all(bytes).is_ok() && half_close {
                let _ = writer.shutdown(Shutdown::Write);
            }
        });
        let mut received = Vec::new();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer) {
                Ok(0) => break Ok(received),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                // A reset after the answer (the server closed with unread
                // input): what arrived before it is the answer.
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !received.is_empty() => {
                    break Ok(received);
                }
                Err(e) => break Err(format!("no answer: {e} after {} bytes", received.len())),
            }
        }
    })?;
    parse(&received)
}

fn parse(mut received: &[u8]) -> Result<Raw, String> {
    // An interim `100 Continue` (the answer to `Expect`) comes first.
    while received.starts_with(b"HTTP/1.1 1") {
        let end = received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("an interim answer without its end")?;
        received = &received[end + 4..];
    }
    let end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete head: {:?}", String::from_utf8_lossy(received)))?;
    let head = std::str::from_utf8(&received[..end]).map_err(|e| format!("head: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let raw_body = &received[end + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().unwrap());
    let body = match length {
        Some(length) if raw_body.len() >= length => raw_body[..length].to_vec(),
        Some(length) => return Err(format!("body cut at {} of {length}", raw_body.len())),
        None => raw_body.to_vec(),
    };
    Ok(Raw {
        status,
        headers,
        body,
    })
}

/// What of `GET /license` must not change: the time-dependent fields
/// (days remaining, the clock's report) left out.
fn stable_status(status: &Value) -> Value {
    json!({
        "state": status["state"],
        "licensed": status["licensed"],
        "license": status["license"],
        "keyId": status["keyId"],
        "pendingRequests": status["pendingRequests"],
        "deviceMatches": status["deviceMatches"],
    })
}

/// Checks one answer against its case; `Err` says what is wrong.
fn judge(case: &Case, raw: &Raw, key: &str, status_before: &Value) -> Result<(), String> {
    let text = raw.text();
    if raw.status >= 500 {
        return Err(format!("a server error: {} {text}", raw.status));
    }
    if let Some(leak) = hostile::leaks(&text) {
        return Err(format!("the answer leaks {leak:?}: {text}"));
    }
    if text.contains(key) {
        return Err(format!("the license key is echoed: {text}"));
    }
    if let Some(echo) = &case.not_echoed
        && text.contains(echo.as_str())
    {
        return Err(format!("the hostile text is echoed: {text}"));
    }
    let (status, codes) = match &case.expect {
        Expect::Framing(status) => {
            return if raw.status == *status && raw.body.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "expected a bare {status}, got {} {text}",
                    raw.status
                ))
            };
        }
        Expect::SameStatus => {
            let body: Value =
                serde_json::from_slice(&raw.body).map_err(|e| format!("not JSON ({e}): {text}"))?;
            return if raw.status == 200 && stable_status(&body) == *status_before {
                Ok(())
            } else {
                Err(format!("the status changed: {} {text}", raw.status))
            };
        }
        Expect::Problem(status, code) => (*status, vec![*code]),
        Expect::OneOf(status, codes) => (*status, codes.clone()),
    };
    let body: Value =
        serde_json::from_slice(&raw.body).map_err(|e| format!("not JSON ({e}): {text}"))?;
    let code = body["code"].as_str().unwrap_or_default();
    if raw.status != status || !codes.contains(&code) {
        return Err(format!(
            "expected {status} {codes:?}, got {} {text}",
            raw.status
        ));
    }
    if raw.header("content-type") != Some("application/problem+json") {
        return Err(format!("content type {:?}", raw.header("content-type")));
    }
    if raw.header("x-content-type-options") != Some("nosniff") {
        return Err("no `X-Content-Type-Options: nosniff`".into());
    }
    if !DOCUMENTED_4XX.contains(&code) {
        return Err(format!("undocumented code {code:?}"));
    }
    if body["status"] != status
        || body["type"] != format!("urn:ren3:problem:{code}")
        || body["title"].as_str().is_none_or(str::is_empty)
        || !body["detail"].is_string()
    {
        return Err(format!("not a whole problem: {text}"));
    }
    Ok(())
}

/// Adds one group of cases for the setup.
type AddCases = fn(&mut Cases, &Setup);

/// The client's side of the setup: an active license and a pending
/// request whose renewal (`renewal`, serial 2) is valid.
struct Setup {
    client: Client,
    key: String,
    pending: String,
    active: String,
    renewal: String,
}

fn setup() -> Setup {
    let key = fixture_text("license-key.txt");
    let client = Client::start_logging_with(&[
        ("enable_offline_license", "true"),
        ("client_device_id", &fixture_text("device-id.txt")),
        // The stalled-body case waits this out, not the default 10 s.
        ("license_body_timeout", "2s"),
    ]);
    let active = test_only_payload(&client.register(&key), 1);
    let answer = client.import(&key, &active);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let pending = client.register(&key);
    let renewal = test_only_payload(&pending, 2);
    Setup {
        client,
        key,
        pending,
        active,
        renewal,
    }
}

/// The body-level cases of the shared generator on the three POST
/// endpoints, then what only a socket can send.
fn body_and_framing_cases(cases: &mut Cases, s: &Setup) {
    let key = s.key.as_str();
    let endpoints = [
        (
            "/license/register",
            json!({"licenseKey": key, "export": true}),
        ),
        (
            "/license/import",
            json!({"licenseKey": key, "licensePayload": s.renewal}),
        ),
        ("/license/deactivate", json!({"licenseKey": key})),
    ];
    for (path, valid) in &endpoints {
        for case in hostile::json_body_cases(valid) {
            cases.add(
                format!("{path}: {}", case.description),
                request(
                    "POST",
                    path,
                    &case
                        .content_type
                        .map(|t| vec![("Content-Type", t.as_bytes())])
                        .unwrap_or_default(),
                    &case.body,
                ),
                Expect::Problem(case.status, case.code),
            );
        }
    }

    const JSON: (&str, &[u8]) = ("Content-Type", b"application/json");
    let over_limit = vec![b'['; 1024 * 1024];
    for (path, valid) in &endpoints {
        let body = valid.to_string().into_bytes();
        let length = |n: usize| n.to_string().into_bytes();
        let longer = length(body.len() + 100);
        cases.push(
            format!("{path}: a Content-Length 100 bytes longer than the body, then end of stream"),
            request("POST", path, &[JSON, ("Content-Length", &longer)], &body),
            true,
            None,
            Expect::Problem(400, "unreadable_body"),
        );
        let shorter = length(body.len() / 2);
        cases.add(
            format!("{path}: a Content-Length half the body's"),
            request("POST", path, &[JSON, ("Content-Length", &shorter)], &body),
            Expect::Problem(400, "invalid_json"),
        );
        cases.add(
            format!("{path}: a Content-Length of 1 GiB, 128 KiB sent"),
            request(
                "POST",
                path,
                &[JSON, ("Content-Length", b"1073741824")],
                &over_limit[..128 * 1024],
            ),
            Expect::Problem(413, "body_too_large"),
        );
        // Answered at once, from the header alone: the connection stays
        // open, so an answer only after the body would never come.
        cases.add(
            format!("{path}: a Content-Length of 1 GiB, 1 byte sent, the connection left open"),
            request(
                "POST",
                path,
                &[JSON, ("Content-Length", b"1073741824")],
                b"{",
            ),
            Expect::Problem(413, "body_too_large"),
        );
        if *path == "/license/import" {
            // A caller that stalls mid-body is cut off after
            // license_body_timeout (2 s here, 10 s by default), not waited
            // for forever.
            cases.add(
                format!("{path}: half the body sent, then silence with the connection open"),
                request(
                    "POST",
                    path,
                    &[JSON, ("Content-Length", &length(body.len()))],
                    &body[..body.len() / 2],
                ),
                Expect::Problem(400, "unreadable_body"),
            );
        }
        cases.add(
            format!("{path}: chunked, one chunk of 1 MiB"),
            request(
                "POST",
                path,
                &[JSON, ("Transfer-Encoding", b"chunked")],
                &chunked(&[&over_limit]),
            ),
            Expect::Problem(413, "body_too_large"),
        );
        let small: Vec<&[u8]> = vec![&over_limit[..1024]; 100];
        cases.add(
            format!("{path}: chunked, 100 chunks of 1 KiB"),
            request(
                "POST",
                path,
                &[JSON, ("Transfer-Encoding", b"chunked")],
                &chunked(&small),
            ),
            Expect::Problem(413, "body_too_large"),
        );
        cases.add(
            format!("{path}: chunked, a chunk size that is not hexadecimal"),
            request(
                "POST",
                path,
                &[JSON, ("Transfer-Encoding", b"chunked")],
                b"zz\r\n{}\r\n0\r\n\r\n",
            ),
            Expect::Problem(400, "unreadable_body"),
        );
        let mut lying = format!("{:x}\r\n", body.len() + 50).into_bytes();
        lying.extend_from_slice(&body);
        lying.extend_from_slice(b"\r\n0\r\n\r\n");
        cases.push(
            format!(
                "{path}: chunked, a chunk size 50 bytes longer than the chunk, then end of stream"
            ),
            request(
                "POST",
                path,
                &[JSON, ("Transfer-Encoding", b"chunked")],
                &lying,
            ),
            true,
            None,
            Expect::Problem(400, "unreadable_body"),
        );
        cases.add(
            format!("{path}: chunked and a Content-Length (chunked wins)"),
            request(
                "POST",
                path,
                &[
                    JSON,
                    ("Transfer-Encoding", b"chunked"),
                    ("Content-Length", b"3"),
                ],
                &chunked(&[b"abc"]),
            ),
            Expect::Problem(400, "invalid_json"),
        );
        cases.add(
            format!("{path}: a Content-Type that is not UTF-8"),
            request(
                "POST",
                path,
                &[("Content-Type", b"application/\xff\xfejson")],
                &body,
            ),
            Expect::Problem(415, "unsupported_media_type"),
        );
        let utf16: Vec<u8> = valid
            .to_string()
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        cases.add(
            format!("{path}: the body in UTF-16, said so in the Content-Type"),
            request(
                "POST",
                path,
                &[("Content-Type", b"application/json; charset=utf-16")],
                &utf16,
            ),
            Expect::Problem(400, "invalid_json"),
        );
        let mut gzip = vec![0x1f, 0x8b, 0x08, 0x00];
        gzip.extend_from_slice(&[0xa5; 64]);
        cases.add(
            format!("{path}: a gzip body (no decoding is offered)"),
            request("POST", path, &[JSON, ("Content-Encoding", b"gzip")], &gzip),
            Expect::Problem(400, "invalid_json"),
        );
        cases.add(
            format!("{path}: Expect: 100-continue, then 1 MiB"),
            request(
                "POST",
                path,
                &[
                    JSON,
                    ("Expect", b"100-continue"),
                    ("Content-Length", &length(over_limit.len())),
                ],
                &over_limit,
            ),
            Expect::Problem(413, "body_too_large"),
        );
        for method in ["GET", "PUT", "DELETE", "PATCH", "BREW"] {
            cases.add(
                format!("{path}: method {method}"),
                request(method, path, &[JSON], &body),
                Expect::Problem(405, "method_not_allowed"),
            );
        }

        // Broken framing: hyper answers before any route, with no body.
        cases.add(
            format!("{path}: two different Content-Lengths"),
            request(
                "POST",
                path,
                &[
                    JSON,
                    ("Content-Length", &length(body.len())),
                    ("Content-Length", b"3"),
                ],
                &body,
            ),
            Expect::Framing(400),
        );
        cases.add(
            format!("{path}: a negative Content-Length"),
            request("POST", path, &[JSON, ("Content-Length", b"-1")], &body),
            Expect::Framing(400),
        );
        cases.add(
            format!("{path}: a Content-Length beyond 64 bits"),
            request(
                "POST",
                path,
                &[JSON, ("Content-Length", b"99999999999999999999999")],
                &body,
            ),
            Expect::Framing(400),
        );
        cases.add(
            format!("{path}: 512 KiB of headers"),
            request(
                "POST",
                path,
                &[JSON, ("X-Padding", &vec![b'a'; 512 * 1024])],
                &body,
            ),
            Expect::Framing(431),
        );
        cases.add(
            format!("{path}: a NUL byte in a header value"),
            request(
                "POST",
                path,
                &[("Content-Type", b"application/json\0")],
                &body,
            ),
            Expect::Framing(400),
        );
        let mut http9 = format!("POST {path} HTTP/9.9\r\nHost: x\r\n\r\n").into_bytes();
        http9.extend_from_slice(&body);
        cases.add(
            format!("{path}: an unknown HTTP version"),
            http9,
            Expect::Framing(400),
        );
    }
    cases.add(
        "not HTTP: binary bytes",
        b"\x00\x01\x02\xff\xfe garbage\r\n\r\n".to_vec(),
        Expect::Framing(400),
    );
    cases.add(
        "not HTTP: a TLS ClientHello",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        Expect::Framing(400),
    );
    cases.add(
        "a request target of 100 KiB",
        request("GET", &format!("/{}", "a".repeat(100 * 1024)), &[], b""),
        Expect::Framing(414),
    );
    cases.add(
        "a raw `<script>` in the request target",
        request("GET", "/<script>alert(1)</script>", &[], b""),
        Expect::Framing(400),
    );
    for target in [
        "/license/registe",
        "/license/register/",
        "/LICENSE/REGISTER",
        "/license/%00%ff/../register",
        "/license/%3Cscript%3Ealert(1)%3C/script%3E",
        "//license//register",
    ] {
        cases.push(
            format!("an unknown path {target:?}"),
            request("POST", target, &[JSON], b"{}"),
            false,
            Some("<script>".into()),
            Expect::Problem(404, "not_found"),
        );
    }
    cases.add(
        "POST /license (a read)",
        request("POST", "/license", &[JSON], b"{}"),
        Expect::Problem(405, "method_not_allowed"),
    );
}

/// `GET /license` reads no body: junk in its query, headers or body is
/// ignored and the answer is the status.
fn status_cases(cases: &mut Cases, _: &Setup) {
    let json: (&str, &[u8]) = ("Content-Type", b"application/json");
    cases.add(
        "GET /license: a script element in the query",
        request("GET", "/license?%3Cscript%3E=1", &[], b""),
        Expect::SameStatus,
    );
    cases.add(
        "GET /license: NUL and controls in the query",
        request("GET", "/license?a=%00%1b%7f&a=2", &[], b""),
        Expect::SameStatus,
    );
    cases.add(
        "GET /license: a query of 8 KiB",
        request("GET", &format!("/license?q={}", "x".repeat(8192)), &[], b""),
        Expect::SameStatus,
    );
    cases.add(
        "GET /license: a JSON body",
        request("GET", "/license", &[json], b"{\"licenseKey\":1}"),
        Expect::SameStatus,
    );
    cases.add(
        "GET /license: a non-UTF-8 body",
        request("GET", "/license", &[json], &[0xff; 1024]),
        Expect::SameStatus,
    );
    cases.add(
        "GET /license: a body over the limit, refused from its declared length",
        request("GET", "/license", &[json], &vec![b'['; 100_000]),
        Expect::Problem(413, "body_too_large"),
    );
    cases.add(
        "GET /license: a header value that is not UTF-8",
        request("GET", "/license", &[("Accept", b"\xff\xfe")], b""),
        Expect::SameStatus,
    );
}

fn import_body(key: &str, payload: &str) -> Value {
    json!({"licenseKey": key, "licensePayload": payload})
}

/// The token cases of the shared generator, as the import's payload.
fn token_cases(cases: &mut Cases, s: &Setup) {
    let receipt = fixture_text("receipt.token");
    let refusal = |expected: &'static str| {
        if expected == "token_too_large" {
            // Over HTTP the 64 KiB body limit answers first.
            Expect::Problem(413, "body_too_large")
        } else {
            Expect::Problem(400, expected)
        }
    };
    for case in hostile::token_cases(&s.renewal, &[&s.pending, &receipt]) {
        cases.json(
            format!("import, payload case {}", case.name()),
            "/license/import",
            &import_body(&s.key, &case.input),
            refusal(case.expected),
        );
    }
    // A request's and a receipt's hostile variants (the small-order
    // device key with the repudiation signature among them) are refused
    // as the wrong kind, or for the damage they were built with first.
    for (kind, valid) in [("request", s.pending.as_str()), ("receipt", &receipt)] {
        for case in hostile::token_cases(valid, &[]) {
            let expect = match refusal(case.expected) {
                Expect::Problem(400, code) => Expect::OneOf(400, vec![code, "token_wrong_kind"]),
                other => other,
            };
            cases.json(
                format!("import, a {kind} as the payload, case {}", case.name()),
                "/license/import",
                &import_body(&s.key, &case.input),
                expect,
            );
        }
    }
}

/// Payloads signed by the trusted key (or by a key nobody trusts) that
/// break one rule of the import each.
fn signed_payload_cases(cases: &mut Cases, s: &Setup) {
    let now = ren3_shared::timestamp::now();
    let other_key = ren3_shared::LicenseKey::generate().unwrap();
    let other_device = ren3_shared::DeviceId::generate().unwrap();
    let signed: Vec<(&str, String, u16, &'static str)> = vec![
        (
            "for another device id",
            test_only_payload_with(&s.pending, 3, |l| l.client_device_id = other_device),
            422,
            "device_id_mismatch",
        ),
        (
            "for another installation's device key",
            test_only_payload_with(&s.pending, 3, |l| {
                l.device_public_key = ren3_shared::DeviceKey::from_seed(&[0x77; 32])
                    .public_key()
                    .into();
            }),
            422,
            "device_key_mismatch",
        ),
        (
            "answering a request nobody sent",
            test_only_payload_with(&s.pending, 3, |l| {
                l.request_hash = ren3_shared::binary::Bytes([0x42; 32]);
            }),
            422,
            "unknown_request",
        ),
        (
            "for another license key",
            test_only_payload_with(&s.pending, 3, |l| {
                l.license_key_fingerprint = other_key.fingerprint();
            }),
            422,
            "license_key_mismatch",
        ),
        (
            "with the active license's serial (a downgrade)",
            test_only_payload(&s.pending, 1),
            409,
            "downgrade_rejected",
        ),
        (
            "expired yesterday",
            test_only_payload_with(&s.pending, 3, |l| {
                l.issued_at = now - 10 * 86_400;
                l.not_before = now - 10 * 86_400;
                l.expires_at = Some(now - 86_400);
            }),
            422,
            "license_expired",
        ),
        (
            "valid only from next year",
            test_only_payload_with(&s.pending, 3, |l| {
                l.not_before = now + 366 * 86_400;
            }),
            422,
            "license_not_yet_valid",
        ),
        (
            "signed by a key certified by a root the build does not pin",
            ren3_tests::chain::rogue_signer()
                .sign_payload(
                    &ren3_shared::payload::decode_unverified(&s.renewal)
                        .unwrap()
                        .1,
                )
                .unwrap()
                .token(),
            400,
            "untrusted_root",
        ),
    ];
    for (description, payload, status, code) in signed {
        cases.json(
            format!("import, a signed payload {description}"),
            "/license/import",
            &import_body(&s.key, &payload),
            Expect::Problem(status, code),
        );
    }
    // A payload whose device key is the small-order identity point, where
    // the payload's key can hold one (it is compared, never verified with).
    let identity = binary::encode(&hostile::IDENTITY_POINT);
    if let Ok(weak) = identity.parse() {
        cases.json(
            "import, a signed payload naming the small-order identity point as the device key",
            "/license/import",
            &import_body(
                &s.key,
                &test_only_payload_with(&s.pending, 3, |l| l.device_public_key = weak),
            ),
            Expect::Problem(422, "device_key_mismatch"),
        );
    }
}

/// Hostile text in every text field, and the other refusals of register
/// and deactivate.
fn text_cases(cases: &mut Cases, s: &Setup) {
    let key = s.key.as_str();
    for (id, description, text) in hostile::hostile_texts() {
        let spliced = format!("{}{text}{}", &key[..10], &key[10..]);
        let bodies = [
            (
                "register, licenseKey",
                "/license/register",
                json!({"licenseKey": text, "export": true}),
                Expect::Problem(400, "invalid_license_key"),
            ),
            (
                "register, licenseKey with the text inside the valid key",
                "/license/register",
                json!({"licenseKey": spliced, "export": true}),
                Expect::Problem(400, "invalid_license_key"),
            ),
            (
                "import, licenseKey",
                "/license/import",
                import_body(&text, &s.renewal),
                Expect::Problem(400, "invalid_license_key"),
            ),
            (
                "import, licenseKey with the text inside the valid key",
                "/license/import",
                import_body(&spliced, &s.renewal),
                Expect::Problem(400, "invalid_license_key"),
            ),
            (
                "import, licensePayload",
                "/license/import",
                import_body(key, &text),
                Expect::OneOf(400, TOKEN_CODES.to_vec()),
            ),
            (
                "deactivate, licenseKey",
                "/license/deactivate",
                json!({"licenseKey": text}),
                Expect::Problem(400, "invalid_license_key"),
            ),
            (
                "deactivate, licenseKey with the text inside the valid key",
                "/license/deactivate",
                json!({"licenseKey": spliced}),
                Expect::Problem(400, "invalid_license_key"),
            ),
        ];
        for (field, path, body, expect) in bodies {
            cases.push(
                format!("text {id} ({description}) in {field}"),
                request(
                    "POST",
                    path,
                    &[("Content-Type", b"application/json")],
                    body.to_string().as_bytes(),
                ),
                false,
                Some(text.clone()),
                expect,
            );
        }
    }
    let mut typo = key.to_owned().into_bytes();
    let last = typo.len() - 1;
    typo[last] = if typo[last] == b'0' { b'1' } else { b'0' };
    let typo = String::from_utf8(typo).unwrap();
    let other_key = ren3_shared::LicenseKey::generate().unwrap();
    cases.json(
        "register, a key with a wrong check character",
        "/license/register",
        &json!({"licenseKey": typo, "export": true}),
        Expect::Problem(400, "invalid_license_key"),
    );
    cases.json(
        "register, export false (online activation)",
        "/license/register",
        &json!({"licenseKey": key, "export": false}),
        Expect::Problem(400, "online_activation_unavailable"),
    );
    cases.json(
        "register, a key of 10,000 characters",
        "/license/register",
        &json!({"licenseKey": "A".repeat(10_000), "export": true}),
        Expect::Problem(400, "invalid_license_key"),
    );
    cases.json(
        "import, a key with a wrong check character",
        "/license/import",
        &import_body(&typo, &s.renewal),
        Expect::Problem(400, "invalid_license_key"),
    );
    cases.json(
        "import, another well-formed license key",
        "/license/import",
        &import_body(other_key.reveal(), &s.renewal),
        Expect::Problem(422, "license_key_mismatch"),
    );
    cases.json(
        "deactivate, a key with a wrong check character",
        "/license/deactivate",
        &json!({"licenseKey": typo}),
        Expect::Problem(400, "invalid_license_key"),
    );
    cases.json(
        "deactivate, another well-formed license key",
        "/license/deactivate",
        &json!({"licenseKey": other_key.reveal()}),
        Expect::Problem(422, "license_key_mismatch"),
    );
}

/// Every byte of the renewal's signed message flipped (resealed, so only
/// the signature can tell).
fn byte_flip_cases(cases: &mut Cases, s: &Setup) {
    for (i, token) in hostile::flipped_message_bytes(&s.renewal) {
        cases.json(
            format!("import, message byte {i} flipped"),
            "/license/import",
            &import_body(&s.key, &token),
            Expect::OneOf(400, FLIP_CODES.to_vec()),
        );
    }
}

/// Every character of the renewal's text changed (checksum left alone).
fn character_flip_cases(cases: &mut Cases, s: &Setup) {
    for (i, token) in hostile::flipped_characters(&s.renewal) {
        cases.json(
            format!("import, character {i} changed"),
            "/license/import",
            &import_body(&s.key, &token),
            Expect::OneOf(400, FLIP_CODES.to_vec()),
        );
    }
}

#[test]
fn a_real_client_refuses_every_hostile_request_and_keeps_its_store_byte_for_byte() {
    let mut s = setup();
    let address = s.client.base.trim_start_matches("http://").to_owned();
    let status_before = stable_status(&s.client.get("/license").body);
    assert_eq!(status_before["state"], "active", "{status_before}");
    assert_eq!(status_before["license"]["serial"], 1, "{status_before}");
    assert_eq!(status_before["pendingRequests"], 1, "{status_before}");
    let active = |client: &Client| {
        ClientStoreSnapshot::read(&client.store_path())
            .active_token()
            .map(str::to_owned)
    };
    assert_eq!(active(&s.client).as_deref(), Some(s.active.as_str()));

    let mut cases = Cases::default();
    let builders: [(&str, AddCases); 7] = [
        ("body and socket", body_and_framing_cases),
        ("status", status_cases),
        ("token", token_cases),
        ("signed payload", signed_payload_cases),
        ("text field", text_cases),
        ("message-byte flip", byte_flip_cases),
        ("character change", character_flip_cases),
    ];
    let mut groups = Vec::new();
    for (group, build) in builders {
        let before = cases.0.len();
        build(&mut cases, &s);
        groups.push(format!("{} {group}", cases.0.len() - before));
    }

    let started = Instant::now();
    let digest = s.client.store_file_digest();
    let dump = s.client.store_dump();
    let mut wrong = Vec::new();
    for case in &cases.0 {
        let verdict = exchange(&address, &case.bytes, case.half_close)
            .and_then(|raw| judge(case, &raw, &s.key, &status_before));
        if let Err(why) = verdict {
            wrong.push(format!("case {}: {why}", case.name()));
        }
        assert!(
            s.client.is_running(),
            "case {}: the client died; its stderr:\n{}",
            case.name(),
            s.client.stderr_log()
        );
        if s.client.store_file_digest() != digest {
            let now = s.client.store_dump();
            let only_in = |a: &str, b: &str| {
                a.lines()
                    .filter(|line| !b.lines().any(|other| other == *line))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "case {}: the store changed on disk;\nrows before only:\n{}\nrows after only:\n{}",
                case.name(),
                only_in(&dump, &now),
                only_in(&now, &dump),
            );
        }
    }
    let elapsed = started.elapsed();
    assert!(
        wrong.is_empty(),
        "{} of {} cases were answered wrongly:\n{}",
        wrong.len(),
        cases.0.len(),
        wrong.join("\n")
    );
    assert_eq!(
        stable_status(&s.client.get("/license").body),
        status_before,
        "the status changed"
    );
    assert_eq!(
        active(&s.client).as_deref(),
        Some(s.active.as_str()),
        "the active license did not survive"
    );
    let log = s.client.stderr_log();
    assert!(!log.contains("panicked"), "the client panicked:\n{log}");
    eprintln!(
        "hostile client: {} cases ({}) over real TCP in {elapsed:.1?}, every one refused, \
         the store byte-identical",
        cases.0.len(),
        groups.join(", ")
    );

    // The active license and the pending request survived: the valid
    // renewal is imported, and the cases were refused for what they are.
    let answer = s.client.import(&s.key, &s.renewal);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["license"]["serial"], 2, "{}", answer.body);
    assert_eq!(active(&s.client).as_deref(), Some(s.renewal.as_str()));
}
