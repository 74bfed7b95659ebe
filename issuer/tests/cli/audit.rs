//! `audit`: the log's hash chain attacked as someone holding the store
//! file would, with SQLite directly, and caught by `audit verify` through
//! the real binary; `audit list`, `export` and `head`.

use std::os::unix::fs::PermissionsExt as _;

use serde_json::Value;

use crate::support::{Workdir, stderr, stdout};

/// A store whose log holds rows 1 to 6: `init`'s three, two licenses and
/// a device.
fn six_rows() -> Workdir {
    let w = Workdir::initialised();
    let key = w.create_license("Acme", 2);
    w.create_license("Globex", 1);
    w.add_device(&key);
    assert_eq!(w.json(&["audit", "head"])["id"], 6);
    w
}

/// Runs SQL on the store as an attacker with the file would.
fn tamper(w: &Workdir, statements: &str) {
    let conn = rusqlite::Connection::open(w.db()).unwrap();
    conn.execute_batch(statements).unwrap();
}

/// `audit verify` must fail; returns its error line.
fn verify_fails(w: &Workdir, args: &[&str]) -> String {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    w.fails(&all)
}

#[test]
fn audit_verify_names_the_first_row_an_edit_a_deletion_or_a_reordering_breaks() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "1. a row's detail edited",
            "UPDATE audit SET detail = 'nothing happened' WHERE id = 4",
            "row 4 (",
        ),
        (
            "2. a row's actor edited",
            "UPDATE audit SET actor = 'console:mallory' WHERE id = 5",
            "row 5 (",
        ),
        (
            "3. a row deleted",
            "DELETE FROM audit WHERE id = 4",
            "row 5 (",
        ),
        (
            "4. the first row deleted",
            "DELETE FROM audit WHERE id = 1",
            "row 2 (",
        ),
        (
            "5. two rows' contents swapped (their ids exchanged)",
            "UPDATE audit SET id = -5 WHERE id = 5;
             UPDATE audit SET id = 5 WHERE id = 3;
             UPDATE audit SET id = 3 WHERE id = -5;",
            "row 3 (",
        ),
        (
            "6. a row renumbered to the end",
            "UPDATE audit SET id = 60 WHERE id = 4",
            "row 5 (",
        ),
    ];
    let what = [
        "was edited",
        "was edited",
        "row 4, which is missing: it was deleted",
        "the rows before it were deleted",
        "holds the row written as row 5: rows were reordered",
        "written after the row now numbered 60",
    ];
    for ((name, sql, row), what) in cases.into_iter().zip(what) {
        let w = six_rows();
        w.ok(&["audit", "verify"]);
        tamper(&w, sql);
        let err = verify_fails(&w, &[]);
        assert!(
            err.contains(&format!("chain is broken: {row}")),
            "{name}: {err}"
        );
        assert!(err.contains(what), "{name}: {err}");
        assert!(
            err.contains("keep this store file as evidence"),
            "{name}: {err}"
        );
        assert!(
            err.trim_end().ends_with("[audit_chain_broken]"),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_saved_head_catches_newest_rows_deleted_and_a_log_rebuilt_from_the_start() {
    let w = six_rows();
    let head = stdout(&w.run(&["audit", "head"])).trim().to_owned();
    assert!(head.starts_with("6:"), "{head}");
    w.ok(&["audit", "verify", "--head", &head]);

    tamper(&w, "DELETE FROM audit WHERE id >= 5");
    let out = w.run(&["audit", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without a head, a cut tail goes unseen"
    );
    assert!(stderr(&out).contains("keep `ren3-issuer audit head` elsewhere"));
    let err = verify_fails(&w, &["--head", &head]);
    assert!(
        err.contains("row 6 (the saved head) is missing: the log ends at row 4"),
        "{err}"
    );
    assert!(err.trim_end().ends_with("[audit_head_mismatch]"), "{err}");
    let hash = head.split_once(':').unwrap().1;
    let err = verify_fails(&w, &["--head", hash]);
    assert!(err.contains("no row has the saved head hash"), "{err}");

    // The whole log deleted and written again: a chain that verifies, but
    // not the one the head was taken from.
    tamper(&w, "DELETE FROM audit");
    w.create_license("Initech", 1);
    w.create_license("Initech", 1);
    w.ok(&["audit", "verify"]);
    w.create_license("Initech", 1);
    w.create_license("Initech", 1);
    let err = verify_fails(&w, &["--head", &head]);
    assert!(err.contains("row 6 (the saved head) is missing"), "{err}");
    w.create_license("Initech", 1);
    w.create_license("Initech", 1);
    let err = verify_fails(&w, &["--head", &head]);
    assert!(
        err.contains("row 6 (") && err.contains("another hash than the saved head"),
        "{err}"
    );

    let usage = w.fails(&["audit", "verify", "--head", "6:xyz"]);
    assert!(usage.contains("ID:HASH"), "{usage}");
}

#[test]
fn audit_list_filters_newest_first_and_export_writes_every_row_chained_oldest_first() {
    let w = six_rows();
    let listed = w.json(&["audit", "list", "--what", "license.create"]);
    let ids: Vec<_> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [5, 4]);
    let by_cli = w.json(&["audit", "list", "--who", "CLI:", "--limit", "2"]);
    assert_eq!(by_cli["entries"].as_array().unwrap().len(), 2);
    assert_eq!(by_cli["more"], true);
    let future = w.run(&["audit", "list", "--since", "9999-01-01"]);
    assert_eq!(stdout(&future), "");
    assert!(stderr(&future).contains("no audit rows match"));
    let table = w.ok(&["audit", "list", "--since", "2000-01-01T00:00:00Z"]);
    assert!(table.starts_with("ID "), "{table}");
    assert_eq!(table.lines().count(), 7, "{table}");
    assert!(
        w.fails(&["audit", "list", "--what", "delete"])
            .contains("use one of")
    );

    let exported = w.ok(&["audit", "export"]);
    let rows: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    let mut prev = "0".repeat(64);
    for (id, row) in (1..).zip(&rows) {
        assert_eq!(row["id"], id);
        assert_eq!(row["prevHash"], prev.as_str());
        prev = row["hash"].as_str().unwrap().to_owned();
    }
    assert_eq!(w.json(&["audit", "head"])["hash"], prev.as_str());

    w.ok(&["audit", "export", "--out", "audit.jsonl"]);
    let file = w.path("audit.jsonl");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), exported);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::write(&file, "kept").unwrap();
    let refused = w.fails(&["audit", "export", "--out", "audit.jsonl"]);
    assert!(refused.contains("--force"), "{refused}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept");
    w.ok(&["audit", "export", "--out", "audit.jsonl", "--force"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), exported);
}
