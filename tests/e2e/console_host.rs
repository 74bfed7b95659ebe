//! The console's `Host` check (DNS rebinding) and HSTS behind TLS,
//! through the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ren3_tests::Issuer;

/// Sends `request` as it is and reads the answer until the server closes
/// (every request here says `Connection: close`).
fn raw(base: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

fn get_login(base: &str, host: &str) -> String {
    raw(
        base,
        &format!("GET /login HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn the_console_answers_only_its_own_names() {
    let issuer = Issuer::init();
    let console = issuer.serve_with(&["--allowed-host", "console.example,10.9.8.7"]);
    let port = console.base.rsplit(':').next().unwrap().to_owned();
    for host in [
        "localhost".to_owned(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]".to_owned(),
        "console.example".to_owned(),
        "CONSOLE.example.:443".to_owned(),
        "10.9.8.7".to_owned(),
    ] {
        let answer = get_login(&console.base, &host);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{host}: {answer}");
    }
    for host in [
        "evil.example",
        "console.example.evil.example",
        "localhost.evil.example",
        "10.9.8.6",
    ] {
        let answer = get_login(&console.base, host);
        assert!(answer.starts_with("HTTP/1.1 421 "), "{host}: {answer}");
        assert!(
            answer.contains("host_not_allowed") && answer.contains("--allowed-host"),
            "{host}: {answer}"
        );
    }
    // A POST to the login is refused before the form is read.
    let post = raw(
        &console.base,
        "POST /login HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b",
    );
    assert!(post.starts_with("HTTP/1.1 421 "), "{post}");
    let no_host = raw(&console.base, "GET /login HTTP/1.0\r\n\r\n");
    assert!(
        no_host.starts_with("HTTP/1.0 400 ") || no_host.starts_with("HTTP/1.1 400 "),
        "{no_host}"
    );
    assert!(no_host.contains("host_invalid"), "{no_host}");
}

#[test]
fn an_allowed_host_with_a_port_or_a_wildcard_is_refused_at_start_up() {
    let issuer = Issuer::init();
    for bad in ["console.example:8080", "*.example"] {
        let out = issuer.run(&["serve", "--allowed-host", bad], None);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(bad), "{bad}: {stderr}");
    }
}

#[test]
fn behind_tls_every_answer_says_strict_transport_security() {
    let issuer = Issuer::init();
    let plain = issuer.serve();
    let answer = get_login(&plain.base, "localhost");
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{answer}"
    );
    drop(plain);
    let tls = issuer.serve_with(&["--behind-tls"]);
    for path in ["/login", "/", "/nowhere"] {
        let answer = raw(
            &tls.base,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("strict-transport-security: max-age=31536000\r\n"),
            "{path}: {answer}"
        );
    }
}
