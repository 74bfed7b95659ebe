//! The trust chain through the real binary: the root in a directory of its
//! own on an "offline machine" (a directory with no issuer store), the
//! issuer on another, and only request, certificate and revocation files
//! crossing between them. Each machine is a [`Workdir`].

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use ren3_shared::{TrustRoot, VerifiedPayload};

use crate::support::{Workdir, request_token, stderr};

impl Workdir {
    /// `(action, result, subject)` of every audit row, oldest first.
    fn audit(&self) -> Vec<(String, String, String)> {
        let conn = rusqlite::Connection::open(self.db()).unwrap();
        let mut stmt = conn
            .prepare("SELECT action, result, subject FROM audit ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Writes a request for a new license and device, signed by
    /// installation `seed`; returns the file's name.
    fn request_file(&self, seed: u8) -> String {
        let key = self.create_license("ACME", 1);
        let device = self.add_device(&key);
        let file = format!("request-{seed}.txt");
        self.file(&file, request_token(&key, &device, seed, 1).as_bytes());
        file
    }

    /// Issues a payload for a new license and device; returns its token.
    fn issue_one(&self, seed: u8) -> String {
        let file = self.request_file(seed);
        self.ok(&["issue", "--request", &file])
            .trim_end()
            .to_owned()
    }

    /// `root certify`: the root in `root` answers `req.token` with `cert.token`.
    fn certify(&self) {
        self.ok(&[
            "root",
            "certify",
            "--root-dir",
            "root",
            "--request",
            "req.token",
            "--out",
            "cert.token",
        ]);
    }

    /// `root revoke`: the root in `root` revokes `key_id` into `rev.token`.
    fn revoke(&self, key_id: &str) {
        self.ok(&[
            "root",
            "revoke",
            "--root-dir",
            "root",
            "--key",
            key_id,
            "--out",
            "rev.token",
        ]);
    }
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
}

/// Every file under `dir` with its bytes, to prove a refusal changed nothing.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn certification_and_revocation_cross_between_two_machines_as_files() {
    let offline = Workdir::new();
    let issuer = Workdir::new();

    // The offline machine makes the root; the issuer's init adopts a copy
    // of it once (the one-time ceremony), and the copy is then removed.
    let fingerprint = offline.ok(&["root", "init", "--root-dir", "root", "--plain-root"]);
    fs::create_dir(issuer.path("ceremony")).unwrap();
    fs::set_permissions(issuer.path("ceremony"), fs::Permissions::from_mode(0o700)).unwrap();
    for name in ["root.key", "root.pub", "revocations.token"] {
        copy(
            &offline.path("root").join(name),
            &issuer.path("ceremony").join(name),
        );
    }
    let init = issuer.json(&["init", "--root-dir", "ceremony"]);
    assert_eq!(init["rootCreated"], false);
    assert_eq!(init["rootFingerprint"], fingerprint.trim_end());
    fs::remove_dir_all(issuer.path("ceremony")).unwrap();
    let first = init["keyId"].as_str().unwrap().to_owned();
    let root = TrustRoot::parse_public_file(&issuer.ok(&["trust", "export-root"])).unwrap();

    // A rotated key waits for its certificate: the first key keeps signing.
    let new = issuer.ok(&["keys", "rotate"]).trim_end().to_owned();
    let before = VerifiedPayload::open(&issuer.issue_one(1), &root).unwrap();
    assert_eq!(before.key_id.to_string(), first);
    assert!(
        issuer
            .ok(&["keys", "list"])
            .contains("awaiting certificate")
    );

    // Request out, certificate back: the root directory never reaches the
    // issuer, and the offline machine has no store.
    issuer.ok(&["keys", "certification-request", &new, "--out", "req.token"]);
    copy(&issuer.path("req.token"), &offline.path("req.token"));
    let shown = offline.ok(&["inspect", "req.token"]);
    assert!(
        shown.contains("certification request") && shown.contains(&new),
        "{shown}"
    );
    offline.certify();
    assert!(!offline.path("ren3-issuer.db").exists());
    copy(&offline.path("cert.token"), &issuer.path("cert.token"));
    assert_eq!(
        issuer
            .ok(&["keys", "install-certificate", "cert.token"])
            .trim_end(),
        new
    );
    let after = VerifiedPayload::open(&issuer.issue_one(2), &root).unwrap();
    assert_eq!(after.key_id.to_string(), new);

    // Revoke the first key offline; install the list on the issuer.
    let list = offline.json(&[
        "root",
        "revoke",
        "--root-dir",
        "root",
        "--key",
        &first,
        "--grace-days",
        "7",
        "--out",
        "rev.token",
    ]);
    assert_eq!(list["version"], 2);
    let shown = offline.ok(&["root", "show", "--root-dir", "root"]);
    assert!(
        shown.contains("version 2") && shown.contains(&first),
        "{shown}"
    );
    copy(&offline.path("rev.token"), &issuer.path("rev.token"));
    assert_eq!(issuer.ok(&["revocations", "install", "rev.token"]), "2\n");
    let carried = VerifiedPayload::open(&issuer.issue_one(3), &root).unwrap();
    assert_eq!(carried.revocations.version(), 2);
    let revoked = carried.revocations.find(&before.key_id).unwrap();
    assert_eq!(revoked.grace_until - revoked.revoked_at, 7 * 86_400);
    let keys = issuer.json(&["keys", "list"]);
    assert_eq!(keys["keys"][0]["revoked"]["version"], 2);
    assert_eq!(keys["keys"][1]["signsNewPayloads"], true);

    // The same list again is refused, and says why.
    let err = issuer.fails(&["revocations", "install", "rev.token"]);
    assert!(err.contains("[revocations_not_newer]"), "{err}");

    let audit: Vec<String> = issuer
        .audit()
        .into_iter()
        .filter(|(action, _, _)| {
            !matches!(action.as_str(), "issue" | "license.create" | "device.add")
        })
        .map(|(action, result, subject)| format!("{action} {result} {subject}"))
        .collect();
    assert_eq!(
        audit,
        [
            format!("root.adopt ok {}", root.key_id()),
            format!("key.certify ok {first}"),
            "revocations.install ok version 1".to_owned(),
            format!("key.rotate ok {new}"),
            format!("key.certify ok {new}"),
            "revocations.install ok version 2".to_owned(),
            "revocations.install refused (revocation list)".to_owned(),
        ]
    );
}

#[test]
fn a_revoked_only_key_cannot_issue_and_says_what_to_do() {
    let m = Workdir::new();
    m.ok(&["init", "--root-dir", "root", "--plain-root"]);
    let key_id = m.ok(&["keys", "list"]);
    let key_id = key_id
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    m.revoke(key_id);
    m.ok(&["revocations", "install", "rev.token"]);
    let request = m.request_file(1);
    let out = m.fails(&["issue", "--request", &request]);
    assert!(out.contains("[key_revoked]"), "{out}");
    assert!(out.contains("keys rotate --root-dir"), "{out}");

    // One machine: rotating with the root certifies at once, and issuing works.
    m.ok(&["keys", "rotate", "--root-dir", "root"]);
    m.ok(&["issue", "--request", &request]);
}

#[test]
fn a_sealed_root_needs_its_passphrase_and_a_wrong_one_changes_nothing() {
    let m = Workdir::new();
    let right = [("REN3_ROOT_PASSPHRASE", "correct horse")];
    let out = m.run_env(&["root", "init", "--root-dir", "root"], &right);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let key = fs::read_to_string(m.path("root/root.key")).unwrap();
    assert!(
        key.contains("ren3-root-key-encrypted-v1: argon2id"),
        "{key}"
    );

    // 1. no passphrase and no terminal
    let before = files(&m.path("root"));
    let out = m.run(&["init", "--root-dir", "root"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("REN3_ROOT_PASSPHRASE"),
        "{}",
        stderr(&out)
    );
    // 2. a wrong passphrase
    let out = m.run_env(
        &["init", "--root-dir", "root"],
        &[("REN3_ROOT_PASSPHRASE", "wrong")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("[wrong_passphrase]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        files(&m.path("root")),
        before,
        "the root directory is unchanged"
    );
    assert!(!m.path("ren3-issuer.db").exists());
    assert!(!m.path("ren3-issuer.db.keys").exists());
    // `root show` reads public files only: no passphrase needed.
    assert!(
        m.ok(&["root", "show", "--root-dir", "root"])
            .contains("version 1")
    );

    let out = m.run_env(&["init", "--root-dir", "root"], &right);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("adopted the root"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("OFFLINE"), "{}", stderr(&out));
}

#[test]
fn root_commands_refuse_a_root_directory_or_key_others_can_reach() {
    let m = Workdir::new();
    m.ok(&["root", "init", "--root-dir", "root", "--plain-root"]);
    m.ok(&["keys", "--help"]);
    fs::set_permissions(m.path("root"), fs::Permissions::from_mode(0o755)).unwrap();
    let err = m.fails(&["root", "show", "--root-dir", "root"]);
    assert!(
        err.contains("chmod 700") && err.contains("[root_too_open]"),
        "{err}"
    );
    fs::set_permissions(m.path("root"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(m.path("root/root.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let before = files(&m.path("root"));
    let err = m.fails(&[
        "root",
        "revoke",
        "--root-dir",
        "root",
        "--key",
        "AAAAAAAAAAA",
    ]);
    assert!(
        err.contains("chmod 600") && err.contains("[root_too_open]"),
        "{err}"
    );
    assert_eq!(files(&m.path("root")), before);
    // A second root in the same directory is refused.
    fs::set_permissions(m.path("root/root.key"), fs::Permissions::from_mode(0o600)).unwrap();
    let err = m.fails(&["root", "init", "--root-dir", "root", "--plain-root"]);
    assert!(err.contains("[root_exists]"), "{err}");
    assert_eq!(files(&m.path("root")), before);
}

#[test]
fn inspect_reads_every_kind_of_the_chain_and_exits_by_its_verdict() {
    let m = Workdir::new();
    m.ok(&["init", "--root-dir", "root", "--plain-root"]);
    let new = m.ok(&["keys", "rotate"]).trim_end().to_owned();
    m.ok(&["keys", "certification-request", &new, "--out", "req.token"]);
    m.certify();
    m.revoke(&new);
    let payload = m.issue_one(1);
    fs::write(m.path("payload.token"), &payload).unwrap();

    for (file, kind, says) in [
        ("req.token", "certification request", "asks for:"),
        ("cert.token", "issuer certificate", "valid:"),
        ("rev.token", "revocation list", "version:"),
        ("payload.token", "license payload", "certified:"),
    ] {
        let shown = m.ok(&["inspect", file]);
        assert!(
            shown.contains(kind) && shown.contains(says),
            "{file}: {shown}"
        );
        let json = m.json(&["inspect", file]);
        assert_eq!(json["verified"], true, "{file}");
    }
    let json = m.json(&["inspect", "payload.token"]);
    assert_eq!(json["fields"]["revocations"]["version"], 1);
    assert!(json["fields"]["certificate"]["notAfter"].is_string());

    // Under another root, the root-signed kinds do not verify: exit 1.
    let other = Workdir::new();
    other.ok(&["root", "init", "--root-dir", "root", "--plain-root"]);
    let other_pub = other.path("root/root.pub");
    for file in ["cert.token", "rev.token", "payload.token"] {
        let out = m.run(&["inspect", file, "--root", other_pub.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let shown = String::from_utf8(out.stdout).unwrap();
        assert!(
            shown.contains("does NOT verify") && shown.contains("not by the root"),
            "{file}: {shown}"
        );
    }
}
