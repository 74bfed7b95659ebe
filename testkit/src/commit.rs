//! The check that a binary's `--version` names the commit it was built
//! from.

use std::process::Command;

/// Asserts that `commit`, as a binary's `--version` prints it, names the
/// checkout the tests run in: a prefix of `git rev-parse HEAD` (after any
/// `git describe` tag part, and before a `-modified` that says the build's
/// checkout had changes not committed). Without git or a checkout, the binary must say
/// `unknown` (or carry `REN3_COMMIT`, when the build set it).
pub fn assert_is_this_checkouts_commit(commit: &str) {
    if let Some(given) = option_env!("REN3_COMMIT") {
        assert_eq!(commit, given, "the build's REN3_COMMIT");
        return;
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let head = Command::new("git")
        .args(["-C", root, "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let Some(head) = head else {
        assert_eq!(commit, "unknown", "no checkout to name");
        return;
    };
    let hash = commit.strip_suffix("-modified").unwrap_or(commit);
    // `git describe` with a tag: `v1.0-3-g<hash>`.
    let hash = hash.rsplit("-g").next().unwrap_or(hash);
    assert!(
        hash.len() >= 12 && head.starts_with(hash),
        "--version names commit `{commit}`, the checkout is at {head}"
    );
}
