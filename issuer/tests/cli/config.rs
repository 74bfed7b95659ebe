//! The configuration file (`--config`, `REN3_ISSUER_CONFIG`): its values
//! come after the flags and the variables and before the defaults, a bad
//! file stops the command with the line and key at fault and nothing done,
//! and the signing keys' passphrase may come from it, never silently in
//! clear.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::{Workdir, request_token, start_serving, stderr, stdout};

/// Writes `name` in the workdir with `text`; returns its path.
fn write(w: &Workdir, name: &str, text: &str, mode: u32) -> String {
    let path = w.path(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_store_comes_from_the_file_after_the_flag_and_the_variable() {
    let w = Workdir::new();
    w.ok(&[
        "--db",
        "vendor.db",
        "init",
        "--root-dir",
        "root",
        "--plain-root",
    ]);
    w.ok(&[
        "--db",
        "other.db",
        "init",
        "--root-dir",
        "root2",
        "--plain-root",
    ]);
    let config = write(&w, "issuer.toml", "db = \"vendor.db\"\n", 0o644);
    w.ok(&[
        "--config",
        &config,
        "license",
        "create",
        "--customer",
        "From the file",
    ]);

    // The file's store, not the default (which does not exist).
    let listed = w.ok(&["--db", "vendor.db", "license", "list"]);
    assert!(listed.contains("From the file"), "{listed}");
    assert!(!w.db().exists(), "the default store was not used");

    // The variable wins over the file, the flag over both.
    let other = [("REN3_ISSUER_DB", "other.db")];
    let out = w.run_env(&["--config", &config, "license", "list"], &other);
    assert!(!stdout(&out).contains("From the file"), "{}", stdout(&out));
    let out = w.run_env(
        &["--config", &config, "--db", "vendor.db", "license", "list"],
        &other,
    );
    assert!(stdout(&out).contains("From the file"));

    // REN3_ISSUER_CONFIG names the file as --config does.
    let out = w.run_env(&["license", "list"], &[("REN3_ISSUER_CONFIG", &config)]);
    assert!(stdout(&out).contains("From the file"), "{}", stderr(&out));
}

#[test]
fn a_bad_file_stops_the_command_with_its_line_and_key_and_does_nothing() {
    let w = Workdir::initialised();
    let before = w.dump_without_audit();
    let cases = [
        (
            "unknown key",
            "db = \"x.db\"\n\n[serve]\nlisen = \"127.0.0.1:1\"\n",
            "line 4",
            "lisen",
        ),
        (
            "wrong type",
            "[serve]\nmax_connections = \"many\"\n",
            "line 2",
            "max_connections",
        ),
        (
            "refused value",
            "[serve]\n\nheader_timeout = \"forever\"\n",
            "line 3",
            "header_timeout",
        ),
        (
            "out of range",
            "[serve]\nmax_connections = 0\n",
            "line 2",
            "max_connections",
        ),
        (
            "bad host",
            "[serve]\nallowed_hosts = [\"ok.example\", \"*.example\"]\n",
            "line 2",
            "allowed_hosts",
        ),
        ("not TOML", "db = \n", "line 1", ""),
        (
            "unknown table",
            "[serv]\nlisten = \"x\"\n",
            "line 1",
            "serv",
        ),
    ];
    for (case, text, line, key) in cases {
        let config = write(&w, "bad.toml", text, 0o644);
        let out = w.run(&["--config", &config, "license", "create", "--customer", "X"]);
        assert_eq!(out.status.code(), Some(2), "{case}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{case}");
        let message = stderr(&out);
        assert!(
            message.contains(&config),
            "{case}: names the file: {message}"
        );
        assert!(
            message.contains(line),
            "{case}: names the {line}: {message}"
        );
        assert!(message.contains(key), "{case}: names `{key}`: {message}");
        assert_eq!(w.dump_without_audit(), before, "{case}: nothing was done");
    }

    // A file that is named must exist.
    let out = w.run(&["--config", "missing.toml", "license", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
}

#[test]
fn serve_listens_where_the_file_says() {
    let w = Workdir::initialised();
    let config = write(
        &w,
        "issuer.toml",
        "[serve]\nlisten = \"127.0.0.1:0\"\nallowed_hosts = [\"issuer.example\"]\n\
         header_timeout = \"5s\"\nmax_connections = 64\nbehind_tls = false\n\
         trusted_proxies = [\"127.0.0.1\"]\n",
        0o644,
    );
    let (mut child, line) = start_serving(w.command(&["--config", &config, "serve"]));
    child.kill().unwrap();
    child.wait().unwrap();
    // Port 0 from the file, not the default 8080.
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    assert!(!line.contains(":8080"), "{line}");
}

#[test]
fn the_signing_keys_passphrase_may_come_from_the_file() {
    let w = Workdir::new();
    let secret = write(&w, "passphrase", "a long file passphrase\n", 0o600);
    let config = write(
        &w,
        "issuer.toml",
        &format!("passphrase_file = \"{secret}\"\n"),
        0o644,
    );
    // `init --encrypt` seals the first key with it, and a later command
    // unseals it with it, with no variable and no terminal.
    w.ok(&[
        "--config",
        &config,
        "init",
        "--encrypt",
        "--root-dir",
        "root",
        "--plain-root",
    ]);
    let key = w.create_license("A", 1);
    let device = w.add_device(&key);
    let request = w.token_file("request", &request_token(&key, &device, 1, 1));
    let issue = ["issue", "--request", request.as_str()];
    let refused = w.run(&issue);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "sealed without the file's passphrase"
    );
    let mut with_config = vec!["--config", config.as_str()];
    with_config.extend_from_slice(&issue);
    let payload = w.ok(&with_config);
    assert!(payload.starts_with("ren3-payload-"), "{payload}");

    // Readable by others: refused, naming the fix.
    std::fs::set_permissions(w.path("passphrase"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = w.run(&with_config);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("chmod 600"), "{}", stderr(&out));

    // In clear in the file: it works, with a warning every time.
    let clear = write(
        &w,
        "clear.toml",
        "# the passphrase, in clear\npassphrase = \"a long file passphrase\"\n",
        0o600,
    );
    let out = w.run(&["--config", &clear, "issue", "--request", &request]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let warning = stderr(&out);
    assert!(
        warning.contains("warning:") && warning.contains("in clear"),
        "{warning}"
    );
    assert!(warning.contains("line 2"), "{warning}");
    assert!(
        !warning.contains("a long file passphrase"),
        "the passphrase is shown"
    );

    // Both at once: refused.
    let both = write(
        &w,
        "both.toml",
        &format!("passphrase = \"x\"\npassphrase_file = \"{secret}\"\n"),
        0o600,
    );
    let out = w.run(&["--config", &both, "keys", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("both set"), "{}", stderr(&out));
}
