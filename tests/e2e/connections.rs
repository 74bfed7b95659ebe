//! Connection discipline on both servers, through the real binaries
//! (`ren3_server::serve`): stalled and idle connections are closed, a
//! flood of them never keeps a caller out, and a body refused for its size
//! is answered to a caller still sending it.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ren3_tests::{Client, Issuer, fixture};

/// The bound the tests set, well under the stalled connections they open.
const BOUND: usize = 64;
const STALLED: usize = 3 * BOUND;
/// The header timeout the tests set, so they wait a second, not ten.
const HEADER_TIMEOUT: &str = "1s";
/// How long a test waits for the server to close a connection: the
/// timeout, with ample room for a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(20);

fn client_with(header_timeout: &str, bound: usize) -> Client {
    let device = std::fs::read_to_string(fixture("device-id.txt")).unwrap();
    Client::start_with(&[
        ("enable_offline_license", "true"),
        ("client_device_id", device.trim()),
        ("license_header_timeout", header_timeout),
        ("license_max_connections", &bound.to_string()),
    ])
}

fn client() -> Client {
    client_with(HEADER_TIMEOUT, BOUND)
}

fn console_with(issuer: &Issuer, header_timeout: &str, bound: usize) -> ren3_tests::Console {
    issuer.serve_with(&[
        "--header-timeout",
        header_timeout,
        "--max-connections",
        &bound.to_string(),
    ])
}

fn console(issuer: &Issuer) -> ren3_tests::Console {
    console_with(issuer, HEADER_TIMEOUT, BOUND)
}

fn address(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// Connections that each sent half a request's headers, and no more.
fn stall(address: &str, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(address).unwrap();
            stream
                .write_all(b"GET /license HTTP/1.1\r\nHost: local")
                .unwrap();
            stream
        })
        .collect()
}

/// Reads until the server closes `stream` (end of stream, or a reset);
/// what it sent before, or `None` if it was still open after `within`.
fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(received),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return Some(received),
        }
    }
}

/// With the bound far above the flood, only the header timeout can close
/// the stalled connections: a caller is answered meanwhile, and every
/// stalled connection is closed.
fn stalled_connections_time_out(base: &str, answered: impl FnOnce() -> u16) {
    let mut stalled = stall(address(base), STALLED);
    assert_eq!(
        answered(),
        200,
        "a caller after {STALLED} stalled connections"
    );
    for (n, stream) in stalled.iter_mut().enumerate() {
        assert!(
            until_closed(stream, CLOSED_WITHIN).is_some(),
            "stalled connection {n} of {STALLED} was still open after {CLOSED_WITHIN:?}"
        );
    }
}

/// With a header timeout of ten minutes, only the bound can make room:
/// each connection past it closes the oldest waiting one, so the caller
/// (the newest) is answered, the oldest stalled connections are closed at
/// once and the newest stay open, waiting.
fn the_bound_makes_room_by_closing_the_oldest(base: &str, answered: impl FnOnce() -> u16) {
    let mut stalled = stall(address(base), STALLED);
    assert_eq!(answered(), 200, "a caller past the bound");
    // The caller holds one place; the newest BOUND - 1 stalled hold the rest.
    let evicted = STALLED - (BOUND - 1);
    for (n, stream) in stalled[..evicted].iter_mut().enumerate() {
        assert!(
            until_closed(stream, CLOSED_WITHIN).is_some(),
            "stalled connection {n}, among the {evicted} oldest, was not closed to make room"
        );
    }
    // All are given the same 200 ms at once, where waiting on each in
    // turn took 63 times as long.
    std::thread::sleep(Duration::from_millis(200));
    for (n, stream) in stalled.iter_mut().enumerate().skip(evicted) {
        assert!(
            is_open_now(stream),
            "stalled connection {n} of {STALLED}, among the newest, was closed"
        );
    }
}

/// Whether the server has not closed `stream`: reading what it sent, if
/// anything, ends without an end of stream or a reset.
fn is_open_now(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn the_client_closes_stalled_connections_and_a_flood_never_keeps_a_caller_out() {
    let client = client_with(HEADER_TIMEOUT, 4096);
    stalled_connections_time_out(&client.base, || client.get("/license").status);
    let client = client_with("10m", BOUND);
    the_bound_makes_room_by_closing_the_oldest(&client.base, || client.get("/license").status);
}

#[test]
fn the_console_closes_stalled_connections_and_a_flood_never_keeps_a_caller_out() {
    let issuer = Issuer::init();
    let get_login = |console: &ren3_tests::Console| {
        ren3_tests::console_agent()
            .get(&format!("{}/login", console.base))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    let console = console_with(&issuer, HEADER_TIMEOUT, 4096);
    stalled_connections_time_out(&console.base, || get_login(&console));
    drop(console);
    let console = console_with(&issuer, "10m", BOUND);
    the_bound_makes_room_by_closing_the_oldest(&console.base, || get_login(&console));
}

/// A connection that was answered and then says nothing more is closed
/// at the header timeout, not kept for ever.
fn idle_connection_is_closed(base: &str, path: &str) {
    let mut stream = TcpStream::connect(address(base)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let received = until_closed(&mut stream, CLOSED_WITHIN)
        .expect("the idle connection was still open after the header timeout");
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 "), "{text}");
    assert!(
        !text.contains("connection: close"),
        "the answer itself closed the connection: {text}"
    );
}

#[test]
fn both_servers_close_an_idle_keep_alive_connection() {
    let client = client();
    idle_connection_is_closed(&client.base, "/license");
    let issuer = Issuer::init();
    let console = console(&issuer);
    idle_connection_is_closed(&console.base, "/login");
}

/// Sends headers and a 3 MB body without waiting for an answer, as
/// Python's urllib does, then reads the answer: the server must answer 413
/// and read the rest, so neither the writes nor the read meet a reset.
fn oversize_body(base: &str, path: &str, content_type: &str, chunked: bool) -> String {
    let body = vec![b'a'; 3_000_000];
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n")
            .into_bytes();
    if chunked {
        request.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for chunk in body.chunks(64 * 1024) {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
    } else {
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(&body);
    }
    let mut stream = TcpStream::connect(address(base)).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // Paced, as over a real network: the server has answered long before
    // the last piece, and one that closed at once would reset the
    // connection under the next write. (In one write, loopback's buffers
    // can take it all before the server closes, and hide that.)
    let (head, body) = request.split_at(request.len() - body.len());
    stream.write_all(head).unwrap();
    for piece in body.chunks(64 * 1024) {
        stream
            .write_all(piece)
            .expect("the server reset the connection while the body was sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    answer_of(&mut stream)
}

/// Reads one answer (headers, then the body its `Content-Length` gives),
/// as a caller does before it closes the connection.
fn answer_of(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(CLOSED_WITHIN)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream
            .read(&mut buffer)
            .expect("the server reset the connection before its answer was read");
        assert_ne!(
            n, 0,
            "the connection closed before the answer ended: {text}"
        );
        received.extend_from_slice(&buffer[..n]);
    }
}

#[test]
fn a_body_refused_for_its_size_is_answered_while_the_caller_still_sends_it() {
    let client = client();
    for chunked in [false, true] {
        for attempt in 1..=3 {
            let answer =
                oversize_body(&client.base, "/license/import", "application/json", chunked);
            assert!(
                answer.starts_with("HTTP/1.1 413 ") && answer.contains("body_too_large"),
                "client, chunked {chunked}, attempt {attempt}: {answer}"
            );
        }
    }
    let issuer = Issuer::init();
    let console = console(&issuer);
    for chunked in [false, true] {
        let answer = oversize_body(
            &console.base,
            "/login",
            "application/x-www-form-urlencoded",
            chunked,
        );
        assert!(
            answer.starts_with("HTTP/1.1 413 "),
            "console, chunked {chunked}: {answer}"
        );
    }
}
