//! The HTTP baseline of `bench/http.sh`: a bare axum JSON server on the
//! same runtime as `ren3-client` (`#[tokio::main]`: the multi-threaded
//! runtime, one worker per core), with no store, no tracing and no layers.
//!
//! - `GET /license` answers a fixed JSON document, by default one of the
//!   size of the client's own `GET /license` answer; `--get-body FILE`
//!   serves that file's JSON instead (the script passes the client's real
//!   answer, so both sides serialise the same document on every request).
//! - `POST /echo` (and `POST` on any other path) parses the JSON body and
//!   answers it back.
//!
//! Like the client, it prints exactly one line to stdout once listening,
//! `listening on http://<address>`.
//!
//! ```text
//! cargo run --release -p ren3-bench --bin http-echo -- --listen 127.0.0.1:0
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(about = "A bare axum JSON echo: the HTTP baseline of bench/http.sh")]
struct Args {
    /// Where to listen; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A JSON file that `GET /license` answers (parsed once, serialised on
    /// every request).
    #[arg(long, value_name = "FILE")]
    get_body: Option<PathBuf>,
}

/// About the size and shape of the client's `GET /license` answer with an
/// active license (about 1 KiB).
const DEFAULT_GET_BODY: &str = r#"{
  "state": "active",
  "reasonCode": "active",
  "reason": "the license is active until 2096-10-02 (no expiry warning yet)",
  "licensed": true,
  "nextAction": "nothing to do; renew before 2096-10-02 by exporting a new request",
  "offlineLicensing": true,
  "clientDeviceId": "REN3D1-TEST0-DEV1C-E0000-00002",
  "pendingRequests": 0,
  "keyId": "M3axtAAGH78",
  "deviceMatches": true,
  "daysRemaining": 25508,
  "warning": false,
  "grace": {"inGrace": false, "seconds": 0, "endsAt": "2096-10-02T07:06:40Z"},
  "clock": {"suspect": false, "policy": "advisory", "toleranceSeconds": 86400,
            "highWaterMark": "2026-11-29T05:00:00Z"},
  "license": {"customer": "ReN3 HTTP bench (TEST-ONLY key)", "features": ["export", "ingest"],
              "limits": {"max-sources": 25}, "issuedAt": "2026-11-29T04:59:00Z",
              "notBefore": "2026-11-29T04:59:00Z", "expiresAt": "2096-10-02T07:06:40Z",
              "gracePeriodSeconds": 0, "clockPolicy": "advisory", "serial": 1,
              "keyId": "M3axtAAGH78"}
}"#;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let text = match &args.get_body {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?,
        None => DEFAULT_GET_BODY.to_owned(),
    };
    let document: Value = serde_json::from_str(&text).context("the GET body is not JSON")?;

    let app = Router::new()
        .route("/license", get(fixed))
        .route("/echo", post(echo))
        .fallback(post(echo))
        .with_state(Arc::new(document));

    ren3_bench::serve_announced(args.listen, app).await
}

/// Serialises the document on every request, as the client serialises its
/// status, without cloning it first.
async fn fixed(State(document): State<Arc<Value>>) -> Response {
    match serde_json::to_vec(&*document) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn echo(Json(body): Json<Value>) -> Json<Value> {
    Json(body)
}
