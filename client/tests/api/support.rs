//! A licensing app on a temporary store with an injected clock, and a
//! vendor that signs payloads in-process.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use ren3_client::{AppState, Config, InstalledLicense, app};
use ren3_shared::{
    ClockPolicy, DeviceId, License, LicenseKey, PayloadSigner, TrustRoot, VerifiedRequest, binary,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use tower::ServiceExt as _;

/// 2027-01-15T08:00:00Z.
pub const NOW: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;
pub const DEVICE_ID: &str = "REN3D1-00000-00000-00000-00000";
pub const KEY: &str = "REN3K1-00000-00000-00000-00000-00000";

/// The vendor: the TEST-ONLY issuer key, certified by the TEST-ONLY root
/// this build pins, with the fixtures' revocation list (version 1).
pub fn issuer() -> &'static PayloadSigner {
    static SIGNER: OnceLock<PayloadSigner> = OnceLock::new();
    SIGNER.get_or_init(ren3_testkit::test_only_signer)
}

/// A "vendor" under a root of its own, which this build does not trust:
/// what a customer can make.
pub fn rogue_issuer() -> PayloadSigner {
    ren3_testkit::chain::rogue_signer()
}

/// The root this build pins (`.cargo/config.toml`).
pub fn test_only_root() -> TrustRoot {
    ren3_testkit::test_only_root_key().trust_root()
}

pub fn key() -> LicenseKey {
    LicenseKey::parse(KEY).unwrap()
}

/// A second valid license key.
pub fn other_key() -> LicenseKey {
    for last in b"0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
        let text = format!("REN3K1-11111-11111-11111-11111-1111{}", char::from(*last));
        if let Ok(key) = LicenseKey::parse(&text) {
            return key;
        }
    }
    unreachable!("one check character fits")
}

/// The answer a vendor would sign for `request_token`.
pub fn answer(request_token: &str, serial: u64) -> License {
    let request = VerifiedRequest::open(request_token).unwrap();
    License {
        customer: "ACME Logistics GmbH".into(),
        features: vec!["ingest".into(), "reports".into()],
        limits: BTreeMap::from([("max-sources".into(), 12)]),
        issued_at: NOW,
        not_before: NOW,
        expires_at: Some(NOW + 365 * DAY),
        grace_seconds: 0,
        clock_policy: ClockPolicy::Advisory,
        serial,
        license_key_fingerprint: request.request.license_key_fingerprint,
        client_device_id: request.request.client_device_id.clone(),
        device_public_key: request.device_public_key.into(),
        request_hash: request.hash(),
    }
}

pub fn sign(license: &License) -> String {
    issuer().sign_payload(license).unwrap().token()
}

/// A token of `kind_prefix` around `message` and `signature`, with a
/// correct checksum, as docs/FORMAT.md defines it.
pub fn assemble_token(prefix: &str, message: &[u8], signature: &[u8; 64]) -> String {
    let signed_part = format!(
        "{prefix}{}.{}",
        binary::encode(message),
        binary::encode(signature)
    );
    let check = binary::encode(&Sha256::digest(signed_part.as_bytes())[..6]);
    format!("{signed_part}.{check}")
}

/// The message and signature of a well-formed token.
pub fn disassemble_token(token: &str) -> (String, Vec<u8>, [u8; 64]) {
    let (prefix, rest) = token.split_at(token.find('.').unwrap() + 1);
    let parts: Vec<&str> = rest.split('.').collect();
    let message = binary::decode(parts[0]).unwrap();
    let signature: [u8; 64] = binary::decode(parts[1]).unwrap().try_into().unwrap();
    (prefix.to_owned(), message, signature)
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with `status` and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: StatusCode, code: &str, context: &str) {
        assert_eq!(self.status, status, "{context}: {}", self.text);
        assert_eq!(self.content_type(), "application/problem+json", "{context}");
        assert_eq!(self.json["code"], code, "{context}: {}", self.text);
        assert_eq!(
            self.json["type"],
            format!("urn:ren3:problem:{code}"),
            "{context}"
        );
        assert_eq!(self.json["status"], status.as_u16(), "{context}");
        assert!(
            self.json["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{context}: {}",
            self.text
        );
        assert!(
            self.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{context}: {}",
            self.text
        );
        assert_eq!(
            self.json.as_object().map(|o| o.len()),
            Some(5),
            "{context}: {}",
            self.text
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRow {
    pub token: String,
    pub serial: i64,
    pub replaced_at: Option<i64>,
    pub deactivated_at: Option<i64>,
}

/// The whole store, row by row, to prove that a refusal changed nothing.
pub type Dump = Vec<String>;

pub struct TestApp {
    pub dir: TempDir,
    pub state: AppState,
    pub router: Router,
    pub clock: Arc<AtomicI64>,
    vars: HashMap<String, String>,
}

impl TestApp {
    /// Offline licensing enabled; the build trusts [`issuer`]'s root.
    pub async fn new() -> Self {
        Self::with_vars(&[]).await
    }

    /// As [`TestApp::new`], with more variables (or other values).
    pub async fn with_vars(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vars = HashMap::from([
            ("enable_offline_license".to_owned(), "true".to_owned()),
            ("client_device_id".to_owned(), DEVICE_ID.to_owned()),
            (
                "license_db_path".to_owned(),
                path_text(&dir.path().join("license.db")),
            ),
        ]);
        let mut vars = vars;
        for (name, value) in extra {
            vars.insert((*name).to_owned(), (*value).to_owned());
        }
        Self::start(dir, vars, Arc::new(AtomicI64::new(NOW))).await
    }

    /// Offline licensing disabled.
    pub async fn disabled() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let vars = HashMap::from([(
            "license_db_path".to_owned(),
            path_text(&dir.path().join("license.db")),
        )]);
        Self::start(dir, vars, Arc::new(AtomicI64::new(NOW))).await
    }

    async fn start(dir: TempDir, vars: HashMap<String, String>, clock: Arc<AtomicI64>) -> Self {
        let config = Config::from_lookup(|name| vars.get(name).cloned()).unwrap();
        let read = Arc::clone(&clock);
        let state =
            AppState::open_with_clock(&config, Arc::new(move || read.load(Ordering::SeqCst)))
                .await
                .unwrap();
        let router = app(state.clone());
        Self {
            dir,
            state,
            router,
            clock,
            vars,
        }
    }

    /// Stops this app and starts it again on the same store, with `changes`
    /// applied to its environment (an empty value unsets a variable).
    pub async fn restart_with(self, changes: &[(&str, &str)]) -> Self {
        let Self {
            dir,
            state,
            router,
            clock,
            mut vars,
        } = self;
        drop(router);
        drop(state);
        for (name, value) in changes {
            vars.insert((*name).to_owned(), (*value).to_owned());
        }
        Self::start(dir, vars, clock).await
    }

    pub async fn restart(self) -> Self {
        self.restart_with(&[]).await
    }

    /// Stops this app, lets `edit` change its store as an operator with a
    /// SQLite shell would, and starts it again.
    pub async fn restart_after_editing(self, edit: impl FnOnce(&rusqlite::Connection)) -> Self {
        let Self {
            dir,
            state,
            router,
            clock,
            vars,
        } = self;
        drop(router);
        drop(state);
        let conn = rusqlite::Connection::open(dir.path().join("license.db")).unwrap();
        edit(&conn);
        drop(conn);
        Self::start(dir, vars, clock).await
    }

    pub fn set_now(&self, now: i64) {
        self.clock.store(now, Ordering::SeqCst);
    }

    /// Sends `request` as an HTTP client would: with `Host: localhost`
    /// unless it names its own host (or removes it, [`Self::send_raw`]).
    pub async fn send(&self, mut request: Request<Body>) -> Reply {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, "localhost:5000".parse().unwrap());
        }
        self.send_raw(request).await
    }

    /// Sends `request` exactly as it is.
    pub async fn send_raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn post(&self, uri: &str, body: Value) -> Reply {
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub async fn get_status(&self) -> Reply {
        let reply = self
            .send(
                Request::builder()
                    .uri("/license")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply
    }

    /// Registers `key` and returns the license request token.
    pub async fn register(&self, key: &LicenseKey) -> String {
        let reply = self
            .post(
                "/license/register",
                json!({"licenseKey": key.reveal(), "export": true}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json["licenseRequest"].as_str().unwrap().to_owned()
    }

    pub async fn import(&self, key: &LicenseKey, payload: &str) -> Reply {
        self.post(
            "/license/import",
            json!({"licenseKey": key.reveal(), "licensePayload": payload}),
        )
        .await
    }

    /// Registers [`key`], and imports the vendor's answer with `serial`.
    pub async fn install(&self, serial: u64) -> String {
        let request = self.register(&key()).await;
        let payload = sign(&answer(&request, serial));
        let reply = self.import(&key(), &payload).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        payload
    }

    /// Registers [`key`], and imports `change`d answer with `serial`.
    pub async fn install_with(&self, serial: u64, change: impl FnOnce(&mut License)) -> String {
        let request = self.register(&key()).await;
        let mut license = answer(&request, serial);
        change(&mut license);
        let payload = sign(&license);
        let reply = self.import(&key(), &payload).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        payload
    }

    pub async fn deactivate(&self, key: &str) -> Reply {
        self.post("/license/deactivate", json!({ "licenseKey": key }))
            .await
    }

    /// Every stored license, oldest first.
    pub async fn licenses(&self) -> Vec<LicenseRow> {
        self.state
            .store()
            .call(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT token, serial, replaced_at, deactivated_at FROM licenses ORDER BY id",
                )?;
                let rows = stmt
                    .query_map([], |row| {
                        Ok(LicenseRow {
                            token: row.get(0)?,
                            serial: row.get(1)?,
                            replaced_at: row.get(2)?,
                            deactivated_at: row.get(3)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, ren3_client::StoreError>(rows)
            })
            .await
            .unwrap()
    }

    /// The clock's high-water mark in the store.
    pub async fn recorded_mark(&self) -> Option<i64> {
        self.state
            .store()
            .call(|conn| ren3_client::store::high_water_mark(conn))
            .await
            .unwrap()
    }

    pub fn installed(&self) -> Option<Arc<InstalledLicense>> {
        self.state.license().installed()
    }

    pub async fn dump(&self) -> Dump {
        self.state
            .store()
            .call(|conn| {
                let mut rows = Vec::new();
                for table in [
                    "device_key",
                    "pending_requests",
                    "licenses",
                    "clock",
                    "release_receipts",
                    "revocation_list",
                    "signing_sequence",
                ] {
                    let mut stmt =
                        conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
                    let columns = stmt.column_count();
                    let mut query = stmt.query([])?;
                    while let Some(row) = query.next()? {
                        let values = (0..columns)
                            .map(|i| row.get::<_, rusqlite::types::Value>(i))
                            .collect::<Result<Vec<_>, _>>()?;
                        rows.push(format!("{table}: {values:?}"));
                    }
                }
                Ok::<_, ren3_client::StoreError>(rows)
            })
            .await
            .unwrap()
    }

    /// How many requests are pending, as the status reports them; a
    /// forgotten request may stay stored until it is deleted in a batch.
    pub async fn pending(&self) -> u64 {
        self.state
            .store()
            .call(|conn| {
                let count = ren3_client::store::pending_request_count(conn)?;
                let hashes = ren3_client::store::pending_request_hashes(conn)?;
                assert_eq!(count, hashes.len() as u64, "the count and the list agree");
                Ok::<_, ren3_client::StoreError>(count)
            })
            .await
            .unwrap()
    }

    pub async fn count(&self, table: &'static str) -> usize {
        self.dump()
            .await
            .iter()
            .filter(|row| row.starts_with(&format!("{table}: ")))
            .count()
    }

    /// The effective revocation list's version, as the status reports it.
    pub async fn revocation_list_version(&self) -> u64 {
        self.get_status().await.json["trust"]["revocationListVersion"]
            .as_u64()
            .unwrap()
    }

    /// The stored revocation list's version, if a row is stored.
    pub async fn stored_list_version(&self) -> Option<i64> {
        self.state
            .store()
            .call(|conn| {
                use rusqlite::OptionalExtension as _;
                Ok::<_, ren3_client::StoreError>(
                    conn.query_row("SELECT version FROM revocation_list", [], |row| row.get(0))
                        .optional()?,
                )
            })
            .await
            .unwrap()
    }
}

/// A file in `dir` with `text`.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn path_text(path: &std::path::Path) -> String {
    path.to_str().unwrap().to_owned()
}

pub fn other_device_id() -> DeviceId {
    for last in b"0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
        if let Ok(id) = DeviceId::parse(&format!(
            "REN3D1-11111-11111-11111-1111{}",
            char::from(*last)
        )) {
            return id;
        }
    }
    unreachable!("one check character fits")
}
