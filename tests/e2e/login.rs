//! The console's login throttle against an attacker on the real
//! `ren3-issuer serve`: forty concurrent guesses, a password spray across
//! many names, and a forged `X-Forwarded-For`. Each attack is held to the
//! limit; the honest login beside it still works.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Barrier};

use ren3_tests::{Issuer, console_agent, csrf_of, issuer_command};

const ALICE_PASSWORD: &str = "alice's long passphrase";
const BOB_PASSWORD: &str = "bob's even longer passphrase";
/// `sessions::MAX_FAILURES`: failed logins of one (name, address) pair.
const LIMIT: usize = 5;

/// `ren3-issuer serve` on port 0 with extra options, stopped on drop.
struct Console {
    child: Child,
    base: String,
}

impl Console {
    fn start(issuer: &Issuer, options: &[&str]) -> Self {
        Self::start_with_env(issuer, options, None)
    }

    /// With `REN3_ISSUER_TRUSTED_PROXY` set to `trusted_proxies`, if some.
    fn start_with_env(issuer: &Issuer, options: &[&str], trusted_proxies: Option<&str>) -> Self {
        let mut command = issuer_command();
        match trusted_proxies {
            Some(value) => command.env("REN3_ISSUER_TRUSTED_PROXY", value),
            None => command.env_remove("REN3_ISSUER_TRUSTED_PROXY"),
        };
        let mut child = command
            .arg("--db")
            .arg(issuer.db())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(options)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the console did not start: {line:?}"))
            .to_owned();
        Self { child, base }
    }

    /// A login form ready to post: its CSRF cookie and token.
    fn form(&self) -> (String, String) {
        let mut page = console_agent()
            .get(format!("{}/login", self.base))
            .call()
            .unwrap();
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .find(|pair| pair.starts_with("ren3_login_csrf="))
            .expect("a login CSRF cookie");
        let token = csrf_of(&page.body_mut().read_to_string().unwrap()).expect("a CSRF field");
        (cookie, token)
    }

    /// Posts a login with a form from [`Console::form`]; the status.
    fn post(
        &self,
        (cookie, token): &(String, String),
        name: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> u16 {
        let mut request = console_agent()
            .post(format!("{}/login", self.base))
            .header("cookie", cookie);
        if let Some(hops) = forwarded_for {
            request = request.header("x-forwarded-for", hops);
        }
        request
            .send_form([
                ("csrf", token.as_str()),
                ("name", name),
                ("password", password),
            ])
            .unwrap()
            .status()
            .as_u16()
    }

    fn login(&self, name: &str, password: &str, forwarded_for: Option<&str>) -> u16 {
        self.post(&self.form(), name, password, forwarded_for)
    }

    /// Posts every `(name, password)` at once, each on its own connection.
    fn burst(&self, logins: &[(String, &str)]) -> Vec<u16> {
        let forms: Vec<_> = logins.iter().map(|_| self.form()).collect();
        let start = Arc::new(Barrier::new(logins.len()));
        std::thread::scope(|scope| {
            let posts: Vec<_> = logins
                .iter()
                .zip(&forms)
                .map(|((name, password), form)| {
                    let start = start.clone();
                    scope.spawn(move || {
                        start.wait();
                        self.post(form, name, password, None)
                    })
                })
                .collect();
            posts.into_iter().map(|p| p.join().unwrap()).collect()
        })
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn issuer_with_users() -> Issuer {
    let issuer = Issuer::init();
    issuer.add_user("alice", ALICE_PASSWORD);
    issuer.add_user("bob", BOB_PASSWORD);
    issuer
}

/// The login rows of the audit log, oldest first: (subject, result, detail).
fn login_audit(issuer: &Issuer) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(issuer.db()).unwrap();
    let mut stmt = conn
        .prepare("SELECT subject, result, detail FROM audit WHERE action = 'login' ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn forty_concurrent_guesses_are_held_to_the_limit_and_lock_out_only_their_own_pair() {
    let issuer = issuer_with_users();
    let console = Console::start(&issuer, &[]);
    let guesses: Vec<(String, &str)> = (0..40)
        .map(|i| {
            (
                "alice".to_owned(),
                if i % 2 == 0 { "guess one" } else { "guess two" },
            )
        })
        .collect();
    let statuses = console.burst(&guesses);
    assert_eq!(
        (count(&statuses, 401), count(&statuses, 429)),
        (LIMIT, 40 - LIMIT),
        "only the limit is checked, the rest refused at once: {statuses:?}"
    );
    let rows = login_audit(&issuer);
    let checked = rows.iter().filter(|(_, r, _)| r == "refused").count();
    let unchecked = rows.iter().filter(|(_, r, _)| r == "throttled").count();
    assert_eq!((checked, unchecked), (LIMIT, 40 - LIMIT), "{rows:?}");
    assert!(
        rows.iter().all(|(_, _, d)| d.contains("from 127.0.0.1")),
        "{rows:?}"
    );

    assert_eq!(
        console.login("alice", ALICE_PASSWORD, None),
        429,
        "the guessed pair stays locked, even with the right password"
    );
    assert_eq!(
        console.login("bob", BOB_PASSWORD, None),
        303,
        "another user from the same address logs in"
    );
}

#[test]
fn a_spray_across_many_names_slows_the_address_but_never_refuses_another_users_password() {
    let issuer = issuer_with_users();
    let console = Console::start(&issuer, &[]);
    // Twice the limit plus six names, one guess each, all at once.
    let spray: Vec<(String, &str)> = (0..2 * LIMIT + 6)
        .map(|i| (format!("user{i}"), "Winter2026!"))
        .collect();
    let statuses = console.burst(&spray);
    assert_eq!(count(&statuses, 401), spray.len(), "{statuses:?}");
    assert_eq!(console.login("bob", BOB_PASSWORD, None), 303);
    let (subject, result, detail) = login_audit(&issuer).pop().unwrap();
    assert_eq!((subject.as_str(), result.as_str()), ("bob", "ok"));
    assert!(detail.contains("checked after a delay"), "{detail}");
}

#[test]
fn x_forwarded_for_names_the_client_only_when_it_comes_from_a_trusted_proxy() {
    // 1. Without --trusted-proxy the header is ignored: varying it does not
    //    escape the throttle of (alice, 127.0.0.1).
    let issuer = issuer_with_users();
    let direct = Console::start(&issuer, &[]);
    for i in 0..LIMIT {
        let hop = format!("203.0.113.{i}");
        assert_eq!(direct.login("alice", "a guess", Some(&hop)), 401, "1.{i}");
    }
    assert_eq!(
        direct.login("alice", ALICE_PASSWORD, Some("203.0.113.99")),
        429,
        "1. a forged header does not make a new pair"
    );
    assert!(
        login_audit(&issuer)
            .iter()
            .all(|(_, _, d)| d.contains("from 127.0.0.1")),
        "1. the peer's address is recorded"
    );
    drop(direct);

    // 2. Behind a trusted proxy, each client behind it is its own address.
    let issuer = issuer_with_users();
    let options = [
        "--trusted-proxy",
        "192.0.2.1",
        "--trusted-proxy",
        "127.0.0.1",
    ];
    let proxied = Console::start(&issuer, &options);
    for i in 0..LIMIT {
        assert_eq!(
            proxied.login("alice", "a guess", Some("203.0.113.7")),
            401,
            "2.{i}"
        );
    }
    let cases = [
        ("2a. the guessing client", "203.0.113.7", 429),
        (
            "2b. its own claim left of what the proxy saw",
            "198.51.100.1, 203.0.113.7",
            429,
        ),
        ("2c. alice at another desk", "203.0.113.8", 303),
    ];
    for (case, hops, expected) in cases {
        assert_eq!(
            proxied.login("alice", ALICE_PASSWORD, Some(hops)),
            expected,
            "{case}"
        );
    }
    let rows = login_audit(&issuer);
    assert!(rows[0].2.contains("from 203.0.113.7"), "{rows:?}");
    assert!(
        rows.last().unwrap().2.contains("from 203.0.113.8"),
        "{rows:?}"
    );
    drop(proxied);

    // 3. The same through the environment, the proxies comma-separated.
    let issuer = issuer_with_users();
    let proxied = Console::start_with_env(&issuer, &[], Some("192.0.2.1,127.0.0.1"));
    assert_eq!(proxied.login("bob", BOB_PASSWORD, Some("203.0.113.9")), 303);
    let (_, _, detail) = login_audit(&issuer).pop().unwrap();
    assert!(detail.contains("from 203.0.113.9"), "3. {detail}");
}

#[test]
fn serve_refuses_a_trusted_proxy_that_is_not_an_address() {
    let issuer = Issuer::init();
    let out = issuer.run(&["serve", "--trusted-proxy", "proxy.example"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`proxy.example` is not an IP address"),
        "{stderr}"
    );
}
