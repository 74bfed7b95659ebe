//! The issuer store is its owner's alone, whatever the umask: the database
//! and the WAL and shared-memory files SQLite keeps beside it hold the
//! console's password hashes, the customers, every payload and the audit
//! log. A store that group or others can reach is refused, with the fix.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::{INIT, Workdir, start_serving};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The store's files that exist, with their modes.
fn store_files(w: &Workdir) -> Vec<(String, u32)> {
    ["ren3-issuer.db", "ren3-issuer.db-wal", "ren3-issuer.db-shm"]
        .into_iter()
        .filter(|name| w.path(name).exists())
        .map(|name| (name.to_owned(), mode(&w.path(name))))
        .collect()
}

#[track_caller]
fn succeeded(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_serve_and_writes_under_umask_022_keep_every_store_file_owner_only() {
    let w = Workdir::new();
    let init = w
        .command_with_umask("022", INIT)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    succeeded(&init, "init");
    let files = store_files(&w);
    assert!(
        files.iter().all(|(_, m)| *m == 0o600),
        "after init: {files:?}"
    );
    assert_eq!(files[0].0, "ren3-issuer.db", "{files:?}");

    // The console holds the store open, so SQLite's WAL and shared-memory
    // files stay while it runs and another process writes.
    let (mut serve, line) =
        start_serving(w.command_with_umask("022", &["serve", "--listen", "127.0.0.1:0"]));
    let create = w
        .command_with_umask(
            "022",
            &[
                "license",
                "create",
                "--customer",
                "ACME",
                "--features",
                "ingest",
                "--max-devices",
                "1",
            ],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let files = store_files(&w);
    serve.kill().unwrap();
    serve.wait().unwrap();
    assert!(line.starts_with("listening on "), "serve: {line:?}");
    succeeded(&create, "license create");
    assert_eq!(
        files,
        [
            ("ren3-issuer.db".to_owned(), 0o600),
            ("ren3-issuer.db-wal".to_owned(), 0o600),
            ("ren3-issuer.db-shm".to_owned(), 0o600),
        ],
        "while the console runs, after a write"
    );
}

#[test]
fn a_store_others_can_reach_is_refused_with_the_fix_and_left_as_it_is() {
    let w = Workdir::initialised();
    let key = w.create_license("ACME", 1);
    let before = ren3_testkit::dump_sqlite(&w.db());
    // A WAL file an older build or a crash left behind, open to others.
    let cases = [
        ("1. the database, readable by all", "ren3-issuer.db", 0o644),
        (
            "2. the database, readable by the group",
            "ren3-issuer.db",
            0o640,
        ),
        ("3. a WAL file readable by all", "ren3-issuer.db-wal", 0o644),
    ];
    for (name, file, open) in cases {
        let path = w.path(file);
        if !path.exists() {
            fs::write(&path, b"").unwrap();
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(open)).unwrap();
        for args in [
            vec!["license", "list"],
            vec!["license", "show", key.reveal()],
            vec!["serve", "--listen", "127.0.0.1:0"],
        ] {
            let context = format!("{name}: {args:?}");
            let err = w.fails(&args);
            // The path as the user gave it (the default, relative to the
            // working directory), so the suggested command works as typed.
            assert!(
                err.contains(&format!("{file} has mode {open:04o}")),
                "{context}: {err}"
            );
            assert!(
                err.contains(&format!("`chmod 600 {file}`")),
                "{context}: {err}"
            );
            assert!(err.ends_with("[store_too_open]\n"), "{context}: {err}");
        }
        // Refused, not repaired behind the operator's back: the file named
        // is there for the command named.
        assert_eq!(mode(&path), open, "{name}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        w.ok(&["license", "list"]);
    }
    assert_eq!(ren3_testkit::dump_sqlite(&w.db()), before);
}
