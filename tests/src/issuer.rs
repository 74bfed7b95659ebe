//! The vendor's side: `ren3-issuer` on a store of its own in a temporary
//! directory, its commands, and starting its console.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use tempfile::TempDir;

use crate::binaries::listening_address;
use crate::{Console, dump_sqlite_except, feed, issuer_command, test_only_root_key};

/// The vendor's side: an initialised issuer store in a temporary directory.
pub struct Issuer {
    dir: TempDir,
}

impl Issuer {
    /// A store initialised under the TEST-ONLY root, the root every test
    /// build of the client is pinned to, so its payloads are accepted.
    pub fn init() -> Self {
        Self::init_with(&[], &[])
    }

    /// The root directory of this issuer: the TEST-ONLY root key, plain,
    /// as `init --root-dir` adopts it.
    pub fn root_dir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A store initialised under a root of its own, made by `init`: a
    /// vendor no test build of the client trusts, or a customer playing one.
    pub fn init_with_own_root() -> Self {
        let issuer = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let root_dir = issuer.root_dir();
        issuer.ok(
            &[
                "init",
                "--root-dir",
                root_dir.to_str().unwrap(),
                "--plain-root",
            ],
            None,
        );
        issuer
    }

    /// Places the TEST-ONLY root key in [`Issuer::root_dir`] (0700, its key
    /// file 0600), as a vendor brings an existing offline root.
    fn place_test_only_root(&self) {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let dir = self.root_dir();
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let seed = ren3_shared::binary::encode(test_only_root_key().seed());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join("root.key"))
            .unwrap();
        writeln!(
            file,
            "# TEST ONLY: the root of fixtures/, whose seed is public\nren3-root-key-seed-v1: {seed}"
        )
        .unwrap();
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("issuer.db")
    }

    /// Runs `ren3-issuer --db <store> ARGS`, feeding `stdin` if given.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_with_env(args, stdin, &[])
    }

    /// Runs a command that must succeed; returns its stdout, trimmed.
    pub fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "ren3-issuer {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "ren3-issuer {args:?} unexpectedly succeeded"
        );
        assert!(out.stdout.is_empty(), "a failing command printed a result");
        String::from_utf8(out.stderr).unwrap()
    }

    /// `license create`; returns the license key.
    pub fn create_license(&self, customer: &str, extra: &[&str]) -> String {
        let mut args = vec!["license", "create", "--customer", customer];
        args.extend_from_slice(extra);
        self.ok(&args, None)
    }

    /// `device add`; returns the client device id.
    pub fn add_device(&self, license_key: &str) -> String {
        self.ok(&["device", "add", "--license", license_key], None)
    }

    /// Writes the root public file clients are built with (`trust
    /// export-root`) and returns its path.
    pub fn export_root(&self) -> PathBuf {
        let path = self.dir.path().join("root.pub");
        self.ok(
            &["trust", "export-root", "--out", path.to_str().unwrap()],
            None,
        );
        path
    }

    /// `issue --request -`; returns the payload token.
    pub fn issue(&self, request: &str) -> String {
        self.ok(&["issue", "--request", "-"], Some(request))
    }

    /// `init` with extra arguments and environment, e.g. `--encrypt` with
    /// `REN3_ISSUER_PASSPHRASE`.
    /// The root directory holds the TEST-ONLY root, which `init` adopts.
    pub fn init_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let issuer = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        issuer.place_test_only_root();
        let root_dir = issuer.root_dir();
        let mut all = vec!["init", "--root-dir", root_dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = issuer.run_with_env(&all, None, env);
        assert!(
            out.status.success(),
            "ren3-issuer init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        issuer
    }

    /// [`Issuer::run`] with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut child = issuer_command()
            .arg("--db")
            .arg(self.db())
            .args(args)
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        feed(&mut child, stdin.unwrap_or_default());
        child.wait_with_output().unwrap()
    }

    /// The issuer's store, every table but the audit log: a refusal is
    /// audited, and changes nothing else.
    pub fn dump_without_audit(&self) -> String {
        dump_sqlite_except(&self.db(), &["audit"])
    }

    /// The key directory's files and their contents, sorted by name.
    pub fn key_files(&self) -> Vec<(String, String)> {
        let dir = self.dir.path().join("issuer.db.keys");
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// `user add NAME --role admin`, the password on stdin: the scenarios
    /// use every page; the roles have their own tests in the console's.
    pub fn add_user(&self, name: &str, password: &str) {
        self.ok(
            &["user", "add", name, "--role", "admin"],
            Some(&format!("{password}\n")),
        );
    }

    /// Starts `ren3-issuer serve --listen 127.0.0.1:0` on this store.
    pub fn serve(&self) -> Console {
        self.serve_with(&[])
    }

    /// [`Issuer::serve`] with more options for `serve`.
    pub fn serve_with(&self, options: &[&str]) -> Console {
        let mut child = issuer_command()
            .arg("--db")
            .arg(self.db())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(options)
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let base = listening_address(&mut child, "ren3-issuer serve");
        Console { child, base }
    }
}
