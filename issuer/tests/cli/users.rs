//! `user`: roles, passwords and the start-up warning, through the real
//! binary.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Stdio;

use crate::support::{Workdir, stderr};

/// A passphrase every rule accepts.
const GOOD: &str = "plum kettle orbit sonnet";

/// The newest audit row, as (actor, action, subject, detail).
fn newest_audit(w: &Workdir) -> (String, String, String, String) {
    let store =
        ren3_issuer_core::setup::open_store(&ren3_issuer_core::StorePaths::new(w.db(), None))
            .unwrap();
    let page =
        ren3_issuer_core::audit::page(&store, &ren3_issuer_core::audit::Filter::default(), 1)
            .unwrap();
    let entry = page.entries.into_iter().next().unwrap();
    (entry.actor, entry.action, entry.subject, entry.detail)
}

#[test]
fn user_add_takes_a_role_defaulting_to_viewer_and_user_role_changes_it() {
    let w = Workdir::initialised();
    let added = w.run_with_stdin(&["user", "add", "vera"], &format!("{GOOD}\n"));
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    assert!(
        stderr(&added).contains("with role viewer"),
        "{}",
        stderr(&added)
    );
    let added = w.run_with_stdin(
        &["user", "add", "ian", "--role", "issuer"],
        &format!("{GOOD}\n"),
    );
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    let (actor, action, subject, detail) = newest_audit(&w);
    assert!(actor.starts_with("cli:"), "{actor}");
    assert_eq!(
        (action.as_str(), subject.as_str(), detail.as_str()),
        ("user.add", "ian", "console user created with role issuer")
    );

    let users = w.json(&["user", "list"]);
    let roles: Vec<(&str, &str)> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [("ian", "issuer"), ("vera", "viewer")]);
    assert_eq!(users["users"][0]["roleFromMigration"], false);

    let set = w.json(&["user", "role", "vera", "admin"]);
    assert_eq!(
        (set["name"].as_str(), set["role"].as_str()),
        (Some("vera"), Some("admin"))
    );
    assert_eq!(
        newest_audit(&w).3,
        "role set to admin (was viewer)",
        "the role change is audited"
    );
    assert!(w.ok(&["user", "list"]).contains("admin"));

    let bad = w.run_with_stdin(
        &["user", "add", "rob", "--role", "root"],
        &format!("{GOOD}\n"),
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = stderr(&bad);
    assert!(
        err.contains("use admin, issuer or viewer") && err.contains("[role_invalid]"),
        "{err}"
    );
    assert!(
        w.fails(&["user", "role", "vera", "boss"])
            .contains("[role_invalid]")
    );
    assert!(
        w.fails(&["user", "role", "nobody", "viewer"])
            .contains("no user `nobody`")
    );
    assert_eq!(
        w.json(&["user", "list"])["users"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn weak_passwords_are_refused_with_advice_by_user_add_and_user_passwd() {
    let w = Workdir::initialised();
    let cases = [
        ("1. twelve spaces", "            ", "[password_blank]"),
        ("2. twelve a", "aaaaaaaaaaaa", "[password_weak]"),
        ("3. a common one", "password1234", "[password_weak]"),
        ("4. the user's name", "alice-password", "[password_weak]"),
        ("5. too short", "short one", "[password_too_short]"),
    ];
    for (name, password, code) in cases {
        let out = w.run_with_stdin(&["user", "add", "alice"], &format!("{password}\n"));
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = stderr(&out);
        assert!(err.contains(code), "{name}: {err}");
        assert!(
            err.contains("passphrase") || err.contains("at least 12"),
            "{name}: says how to fix it: {err}"
        );
    }
    let weak = w.run_with_stdin(&["user", "add", "alice"], "password1234\n");
    assert!(
        stderr(&weak).contains("This is a very common password"),
        "zxcvbn's own warning: {}",
        stderr(&weak)
    );
    assert!(w.ok(&["user", "list"]).is_empty(), "nobody was added");

    let added = w.run_with_stdin(&["user", "add", "alice"], &format!("{GOOD}\n"));
    assert_eq!(added.status.code(), Some(0), "{}", stderr(&added));
    for (name, password, code) in cases {
        let out = w.run_with_stdin(&["user", "passwd", "alice"], &format!("{password}\n"));
        assert_eq!(out.status.code(), Some(1), "passwd {name}");
        assert!(
            stderr(&out).contains(code),
            "passwd {name}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        newest_audit(&w).1,
        "user.add",
        "a refused password changes nothing"
    );

    let changed = w.run_with_stdin(
        &["user", "passwd", "alice"],
        "another fine long passphrase\n",
    );
    assert_eq!(changed.status.code(), Some(0), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("ended their sessions"),
        "{}",
        stderr(&changed)
    );
    let (_, action, subject, detail) = newest_audit(&w);
    assert_eq!(
        (action.as_str(), subject.as_str(), detail.as_str()),
        (
            "user.passwd",
            "alice",
            "password replaced; their sessions ended"
        )
    );
    let unknown = w.run_with_stdin(&["user", "passwd", "nobody"], &format!("{GOOD}\n"));
    assert!(
        stderr(&unknown).contains("no user `nobody`"),
        "{}",
        stderr(&unknown)
    );
}

/// `serve`'s log while it starts: whatever it wrote to stderr until it
/// printed its address.
fn serve_log(w: &Workdir) -> String {
    let mut serve = w
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(line.starts_with("listening on "), "serve: {line:?}");
    let mut log = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

#[test]
fn serve_warns_while_a_user_has_the_role_the_upgrade_gave_them() {
    let w = Workdir::initialised();
    for name in ["olga", "nina"] {
        let out = w.run_with_stdin(&["user", "add", name], &format!("{GOOD}\n"));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert!(!serve_log(&w).contains("WARN"), "roles chosen: no warning");

    // What the roles' migration leaves for a user made before it.
    let db = rusqlite::Connection::open(w.db()).unwrap();
    db.execute("UPDATE users SET role = NULL WHERE name = 'olga'", [])
        .unwrap();
    drop(db);
    let list = w.ok(&["user", "list"]);
    assert!(
        list.contains("admin (from the upgrade; set it with `user role`)"),
        "{list}"
    );
    let log = serve_log(&w);
    assert!(
        log.contains("WARN")
            && log.contains("console users olga are admins only because")
            && log.contains("ren3-issuer user role NAME"),
        "{log}"
    );

    w.ok(&["user", "role", "olga", "issuer"]);
    assert!(!serve_log(&w).contains("WARN"), "role set: no warning");
}
