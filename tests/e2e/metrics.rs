//! Monitoring through the real binaries: the client with
//! `license_metrics_addr` and the console with `--metrics-listen`, each on
//! port 0, scraped as a Prometheus on another host would (any `Host`),
//! while their main ports keep refusing other names.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use ren3_tests::{Issuer, client_bin, issuer_command};

/// A started server: the process, and the addresses of its two stdout
/// lines, `listening on http://ADDR` then `metrics on http://ADDR`.
struct Started {
    child: Child,
    base: String,
    metrics: String,
    /// Kept open, so that nothing the server prints later meets a closed
    /// pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Started {
    fn spawn(mut command: Command, what: &str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = |prefix: &str| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{what}: expected `{prefix}…`, got {line:?}"))
                .to_owned()
        };
        let base = line("listening on http://");
        let metrics = line("metrics on http://");
        Self {
            child,
            base,
            metrics,
            _stdout: stdout,
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request as it is, `Connection: close`; the status and body.
fn send(address: &str, method: &str, path: &str, host: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let content = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{content}\r\n{body}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(address: &str, path: &str, host: &str) -> (u16, String) {
    send(address, "GET", path, host, "")
}

#[track_caller]
fn assert_lines(what: &str, text: &str, lines: &[&str]) {
    for (i, line) in lines.iter().enumerate() {
        assert!(
            text.lines().any(|l| l == *line),
            "{what} {i}: {line} in\n{text}"
        );
    }
}

#[test]
fn both_programs_serve_health_and_metrics_to_a_remote_scraper_on_a_listener_of_their_own() {
    let issuer = Issuer::init();
    let key = issuer.create_license("ACME Corp", &["--max-devices", "1"]);
    let device = issuer.add_device(&key);

    let dir = tempfile::tempdir().unwrap();
    let mut client = Command::new(client_bin());
    client
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("license_db_path", dir.path().join("license.db"))
        .env("listen_addr", "127.0.0.1:0")
        .env("license_metrics_addr", "127.0.0.1:0")
        .env("enable_offline_license", "true")
        .env("client_device_id", &device)
        .current_dir(dir.path());
    let client = Started::spawn(client, "ren3-client");
    assert_ne!(client.metrics, client.base);

    // The exchange, on the licensing port, and one refused import.
    let register = format!(r#"{{"licenseKey": "{key}", "export": true}}"#);
    let (status, answer) = send(
        &client.base,
        "POST",
        "/license/register",
        "localhost",
        &register,
    );
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let payload = issuer.issue(answer["licenseRequest"].as_str().unwrap());
    let import = |payload: &str| {
        let body = format!(r#"{{"licenseKey": "{key}", "licensePayload": "{payload}"}}"#);
        send(&client.base, "POST", "/license/import", "localhost", &body)
    };
    assert_eq!(import(&payload).0, 200);
    assert_eq!(import("ren3-payload-v1.not-a-payload").0, 400, "refused");

    // Scraped from another host: any Host on the metrics listener.
    let remote = "metrics-scraper.example";
    for path in ["/healthz", "/readyz"] {
        let (status, body) = get(&client.metrics, path, remote);
        assert_eq!(status, 200, "client {path}: {body}");
    }
    let (status, text) = get(&client.metrics, "/metrics", remote);
    assert_eq!(status, 200, "{text}");
    assert_lines(
        "client",
        &text,
        &[
            "ren3_client_registrations_total 1",
            "ren3_client_imports_total 1",
            "ren3_client_license_state{state=\"active\"} 1",
            "ren3_client_license_licensed 1",
            "ren3_client_clock_suspect 0",
            "# TYPE ren3_client_license_remaining_days gauge",
        ],
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("ren3_client_refusals_total{operation=\"import\",code=\"")),
        "{text}"
    );
    assert!(!text.contains(&key) && !text.contains("ACME"), "{text}");
    // The metrics listener serves nothing else; the licensing port still
    // refuses other names, metrics included, and answers this machine.
    assert_eq!(get(&client.metrics, "/license", remote).0, 404);
    assert_eq!(get(&client.base, "/metrics", remote).0, 421);
    assert_eq!(get(&client.base, "/metrics", "localhost").0, 200);
    assert_eq!(get(&client.base, "/readyz", "localhost").0, 200);

    let mut console = issuer_command();
    console
        .arg("--db")
        .arg(issuer.db())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn");
    let console = Started::spawn(console, "ren3-issuer serve");
    for path in ["/healthz", "/readyz"] {
        let (status, body) = get(&console.metrics, path, remote);
        assert_eq!(status, 200, "console {path}: {body}");
    }
    let (status, text) = get(&console.metrics, "/metrics", remote);
    assert_eq!(status, 200, "{text}");
    assert_lines(
        "console",
        &text,
        &[
            "ren3_issuer_seats_in_use 1",
            "# TYPE ren3_issuer_store_transaction_seconds histogram",
        ],
    );
    assert!(!text.contains("ACME"), "{text}");
    assert_eq!(get(&console.metrics, "/login", remote).0, 404);
    assert_eq!(get(&console.base, "/metrics", remote).0, 421);
    assert_eq!(get(&console.base, "/readyz", "localhost").0, 200);
}
