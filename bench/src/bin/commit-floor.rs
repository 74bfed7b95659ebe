//! The durable-write baseline of `bench/http.sh`: one durable SQLite commit
//! per request, over the same HTTP stack as `ren3-client`, and nothing else.
//!
//! `POST /commit` (and `POST` on any other path) parses the JSON body, then
//! runs exactly one `BEGIN IMMEDIATE; INSERT …; COMMIT` that stores the
//! body, and answers `{"seq": N}`. The connection is set up with the
//! client's pragmas (`busy_timeout` 5 s, WAL, `synchronous=FULL`,
//! `foreign_keys=ON`) and used as the client's `Store::call` uses its own:
//! one connection behind a mutex, reached only from `spawn_blocking`. The
//! runtime is the client's too (`#[tokio::main]`).
//!
//! Like the client, it prints exactly one line to stdout once listening,
//! `listening on http://<address>`.
//!
//! ```text
//! cargo run --release -p ren3-bench --bin commit-floor -- --db /tmp/floor.db
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use clap::Parser;
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "One durable SQLite commit per HTTP request: the floor of bench/http.sh")]
struct Args {
    /// The SQLite file (created if missing).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Where to listen; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

type Shared = Arc<Mutex<Connection>>;

/// The client's pragmas (client/src/store/schema.rs `configure`).
fn open(path: &PathBuf) -> Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("SQLite did not switch to WAL (it reports `{mode}`)");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS writes (
             seq         INTEGER PRIMARY KEY AUTOINCREMENT,
             body        TEXT    NOT NULL,
             created_at  INTEGER NOT NULL
         ) STRICT;",
    )?;
    Ok(conn)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let db = args.db.clone();
    let conn = tokio::task::spawn_blocking(move || open(&db))
        .await
        .context("the task opening the store panicked")??;
    let app = Router::new()
        .route("/commit", post(commit))
        .fallback(post(commit))
        .with_state(Arc::new(Mutex::new(conn)));

    ren3_bench::serve_announced(args.listen, app).await
}

async fn commit(
    State(conn): State<Shared>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let text = body.to_string();
    let seq = tokio::task::spawn_blocking(move || {
        let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT INTO writes (body, created_at) VALUES (?1, unixepoch())")?
            .execute(params![text])?;
        let seq = tx.last_insert_rowid();
        tx.commit()?;
        Ok::<_, rusqlite::Error>(seq)
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "seq": seq })))
}
