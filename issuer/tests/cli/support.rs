//! What every scenario here shares: a working directory of its own (one
//! machine, holding the default store `ren3-issuer.db`), the real binary run
//! in it with none of the caller's store or passphrase variables, and
//! requests signed by a numbered installation.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ren3_shared::{DeviceId, DeviceKey, LicenseKey, LicenseRequest, Product, TrustRoot, binary};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// `init` with a throwaway root beside the store.
pub const INIT: &[&str] = &["init", "--root-dir", "root", "--plain-root"];

/// A temporary working directory: one machine, with the default store.
pub struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    /// An empty directory: no store, no root.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A workdir with an initialised store.
    pub fn initialised() -> Self {
        let w = Self::new();
        w.ok(INIT);
        w
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("ren3-issuer.db")
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.path("ren3-issuer.db.keys")
    }

    /// `ren3-issuer ARGS` in this directory, with none of the variables
    /// that would pick another store or supply a passphrase.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = ren3_testkit::issuer_isolated(env!("CARGO_BIN_EXE_ren3-issuer"));
        cmd.args(args);
        self.isolate(cmd)
    }

    /// [`Workdir::command`] started by `sh` after `umask UMASK`: the
    /// process's umask is the test runner's otherwise, and tests share it.
    pub fn command_with_umask(&self, umask: &str, args: &[&str]) -> Command {
        let mut cmd = ren3_testkit::issuer_isolated("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_ren3-issuer"))
            .args(args);
        self.isolate(cmd)
    }

    fn isolate(&self, mut cmd: Command) -> Command {
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs a command with nothing on stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// [`Workdir::run`] with these variables set.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command refused before it reads its input (a usage error, say)
        // closes the pipe; what it printed, which the caller asserts on,
        // says why.
        if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Runs a command that must fail with exit 1, `error: ...` and nothing
    /// on stdout; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{args:?}");
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        err
    }

    /// Runs `--json ARGS`, which must succeed; returns its parsed stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// `license create` for features `ingest,export`, `max-sources=10` and
    /// `max_devices` seats.
    pub fn create_license(&self, customer: &str, max_devices: u32) -> LicenseKey {
        let key = self.ok(&[
            "license",
            "create",
            "--customer",
            customer,
            "--features",
            "ingest,export",
            "--limit",
            "max-sources=10",
            "--max-devices",
            &max_devices.to_string(),
        ]);
        LicenseKey::parse(key.trim_end()).unwrap()
    }

    pub fn add_device(&self, key: &LicenseKey) -> DeviceId {
        let id = self.ok(&["device", "add", "--license", key.reveal()]);
        DeviceId::parse(id.trim_end()).unwrap()
    }

    /// `license show` as JSON: the license, its devices and issuances.
    pub fn show(&self, key: &LicenseKey) -> Value {
        self.json(&["license", "show", key.reveal()])
    }

    /// The root this store trusts, as `trust export-root` gives it.
    pub fn trust(&self) -> TrustRoot {
        TrustRoot::parse_public_file(&self.ok(&["trust", "export-root"])).unwrap()
    }

    /// Writes `bytes` to the file `name` here; returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Writes `token` to a file named after its kind and digest; returns
    /// its path.
    pub fn token_file(&self, kind: &str, token: &str) -> String {
        let name = format!("{kind}-{}.txt", binary::encode(&Sha256::digest(token)[..6]));
        self.file(&name, token.as_bytes())
    }

    /// The store, every table but the audit log, where a refusal is
    /// recorded: equal dumps mean a refusal changed nothing.
    pub fn dump_without_audit(&self) -> String {
        ren3_testkit::dump_sqlite_except(&self.db(), &["audit"])
    }
}

/// Starts `command`, a `serve`, and returns it running, with the first
/// line it printed (`listening on http://ADDR` once it listens).
pub fn start_serving(mut command: Command) -> (std::process::Child, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A request made now for `device` of `key`, signed by installation
/// `installation` (its device key's seed) with sequence number `counter`.
pub fn request_token(
    key: &LicenseKey,
    device: &DeviceId,
    installation: u8,
    counter: u64,
) -> String {
    LicenseRequest::new(
        device.clone(),
        key,
        Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        },
        ren3_shared::timestamp::now(),
    )
    .unwrap()
    .with_counter(counter)
    .sign(&DeviceKey::from_seed(&[installation; 32]))
    .unwrap()
    .token()
}
