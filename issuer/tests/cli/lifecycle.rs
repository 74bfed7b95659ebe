//! The lifecycle commands' contract at the command line: usage errors,
//! and refusals that leave nothing behind. The exchanges with a real
//! client are in `tests/e2e/lifecycle_issuer.rs`.

use crate::support::{Workdir, stderr};

#[test]
fn init_encrypt_without_a_passphrase_or_terminal_creates_nothing() {
    let w = Workdir::new();
    let out = w.run(&["init", "--encrypt", "--root-dir", "root", "--plain-root"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("REN3_ISSUER_PASSPHRASE"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(w.dir()).unwrap().count(), 0);

    let out = w.run_env(
        &["init", "--encrypt", "--root-dir", "root", "--plain-root"],
        &[("REN3_ISSUER_PASSPHRASE", "")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("passphrase is empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(w.dir()).unwrap().count(), 0);
}

#[test]
fn lifecycle_options_refuse_bad_values_as_usage_errors() {
    let w = Workdir::new();
    let cases: [(&str, &[&str]); 3] = [
        (
            "1. unknown clock policy",
            &[
                "license",
                "create",
                "--customer",
                "A",
                "--clock-policy",
                "strict",
            ],
        ),
        (
            "2. negative grace",
            &["license", "create", "--customer", "A", "--grace-days", "-1"],
        ),
        (
            "3. forced release without --force",
            &[
                "device",
                "release",
                "--device",
                "REN3D1-00000-00000-00000-00000",
                "--reason",
                "x",
            ],
        ),
    ];
    for (name, args) in cases {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{name}");
    }
    assert_eq!(std::fs::read_dir(w.dir()).unwrap().count(), 0);
}

#[test]
fn grace_without_an_expiry_is_refused_before_any_store_is_opened() {
    let w = Workdir::new();
    let out = w.run(&["license", "create", "--customer", "A", "--grace-days", "3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("never expires has no grace"),
        "{}",
        stderr(&out)
    );
}
