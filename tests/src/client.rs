//! The customer's side: a running `ren3-client` with a store of its own,
//! driven over its HTTP API, stopped, restarted and killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::binaries::listening_address;
use crate::{client_bin, dump_sqlite};

/// An HTTP answer: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// The `code` of a problem+json answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

/// The customer's side: a running `ren3-client` with its own store.
pub struct Client {
    child: Child,
    pub base: String,
    dir: TempDir,
    env: Vec<(String, String)>,
    bin: PathBuf,
    agent: ureq::Agent,
    /// Where the process's stderr goes, when it is captured to a file.
    log: Option<PathBuf>,
}

impl Client {
    /// Starts a client with offline licensing on, as the document says:
    /// its two variables are all it needs.
    pub fn start(device_id: &str) -> Self {
        Self::start_with(&[
            ("enable_offline_license", "true"),
            ("client_device_id", device_id),
        ])
    }

    /// Starts a client with exactly these variables (plus its store path and
    /// port 0).
    pub fn start_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(client_bin(), dir, env, None)
    }

    /// [`Client::start_with`], with the process's stderr written to a file
    /// of its own instead of the test's, for [`Client::stderr_log`].
    pub fn start_logging_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = dir.path().join("stderr.log");
        Self::spawn(client_bin(), dir, env, Some(log))
    }

    /// Starts the client binary `bin` with exactly these variables, and
    /// `files` (name, text) written to its working directory first, such
    /// as a `.env`; its stderr goes to a file of its own
    /// ([`Client::stderr_log`]).
    pub fn start_with_files(bin: PathBuf, vars: &[(&str, &str)], files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = dir.path().join("stderr.log");
        Self::spawn(bin, dir, env, Some(log))
    }

    /// The working directory the client runs in (its `.env` is read there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the client binary `bin` (another build of it) with exactly
    /// these variables, plus its store path and port 0.
    pub fn start_bin_with(bin: PathBuf, vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(bin, dir, env, None)
    }

    fn spawn(bin: PathBuf, dir: TempDir, env: Vec<(String, String)>, log: Option<PathBuf>) -> Self {
        let stderr = match &log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(&bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("license_db_path", dir.path().join("license.db"))
            .env("listen_addr", "127.0.0.1:0")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let base = listening_address(&mut child, "ren3-client");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            child,
            base,
            dir,
            env,
            bin,
            agent,
            log,
        }
    }

    /// Stops the process, runs `edit` (on the store, say), and starts it
    /// again on the same store.
    pub fn stopped(mut self, edit: impl FnOnce()) -> Self {
        self.stop();
        edit();
        self.restart()
    }

    /// Stops the process and starts it again on the same store.
    pub fn restart(mut self) -> Self {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let env = std::mem::take(&mut self.env);
        let bin = std::mem::take(&mut self.bin);
        let log = self.log.take();
        Self::spawn(bin, dir, env, log)
    }

    /// Whether the process is still running (it has not exited or died).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What the process wrote to stderr so far, when started with
    /// [`Client::start_logging_with`].
    pub fn stderr_log(&self) -> String {
        let path = self.log.as_ref().expect("started with start_logging_with");
        String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
    }

    /// The SHA-256 of the store's files as they are on disk: the database
    /// and its write-ahead log (not the `-shm` index, which readers touch).
    /// Equal digests mean a byte-identical store.
    pub fn store_file_digest(&self) -> String {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        for suffix in ["", "-wal"] {
            let mut name = self.store_path().into_os_string();
            name.push(suffix);
            match std::fs::read(&name) {
                Ok(bytes) => {
                    hasher.update(suffix.as_bytes());
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(&bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot read {}: {e}", Path::new(&name).display()),
            }
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("license.db")
    }

    fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text}"));
        Answer {
            status,
            content_type,
            body,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.base))
                .call()
                .unwrap(),
        )
    }

    /// POSTs raw bytes with the given content type (none if `None`).
    pub fn post_raw(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        let mut request = self.agent.post(format!("{}{path}", self.base));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        Self::answer(request.send(body).unwrap())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, Some("application/json"), body.to_string().as_bytes())
    }

    /// Step 3 of the document; returns the license request token.
    pub fn register(&self, license_key: &str) -> String {
        let answer = self.post_json(
            "/license/register",
            &serde_json::json!({ "licenseKey": license_key, "export": true }),
        );
        assert_eq!(answer.status, 200, "register failed: {}", answer.body);
        answer.body["licenseRequest"].as_str().unwrap().to_owned()
    }

    /// Step 5 of the document.
    pub fn import(&self, license_key: &str, payload: &str) -> Answer {
        self.post_json(
            "/license/import",
            &serde_json::json!({ "licenseKey": license_key, "licensePayload": payload }),
        )
    }

    /// Every row of every table, in order: equal dumps mean an unchanged store.
    pub fn store_dump(&self) -> String {
        dump_sqlite(&self.store_path())
    }

    /// SIGKILLs the process (on Unix `Child::kill` sends SIGKILL) and reaps
    /// it, leaving the store as a crash would; [`Client::restart`] then
    /// starts it again on the same store.
    pub fn kill(&mut self) {
        self.stop();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop();
    }
}
