//! A minimal ingestor that embeds the licensing service: the `/license`
//! endpoints, plus a demo route that only works with a license granting
//! the feature `ingest`, and that reads the limit `max-sources`.
//!
//! ```sh
//! enable_offline_license=true client_device_id=REN3D1-… listen_addr=127.0.0.1:5000 \
//!     cargo run -p ren3-client --example ingestor
//! curl -X POST http://127.0.0.1:5000/ingest -H 'Content-Type: application/json' \
//!     -d '{"sources": 3}'
//! ```
//!
//! The example trusts the root this build pins (`REN3_TRUST_ROOT` at build
//! time; in this workspace the TEST-ONLY root of `fixtures/`).
//!
//! Without a license in effect, `/ingest` answers `403` with a
//! problem+json `code` (`unlicensed`, `expired`, `clock_suspect`,
//! `key_revoked`, `feature_missing`, ...).

use std::process::ExitCode;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use ren3_client::{AppState, Config, LicenseHandle, Licensed, RequireLicense};
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

#[derive(Deserialize)]
struct IngestBody {
    sources: u64,
}

#[derive(Serialize)]
struct Ingested {
    accepted: u64,
    max_sources: Option<u64>,
    customer: String,
}

/// The ingestor's own work, reached only through the license guard.
async fn ingest(
    licensed: Licensed,
    axum::Json(body): axum::Json<IngestBody>,
) -> Result<axum::Json<Ingested>, (StatusCode, String)> {
    let max_sources = licensed.limit("max-sources");
    if max_sources.is_some_and(|max| body.sources > max) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the license allows at most {} sources",
                max_sources.unwrap_or_default()
            ),
        ));
    }
    Ok(axum::Json(Ingested {
        accepted: body.sources,
        max_sources,
        customer: licensed.license().customer.clone(),
    }))
}

fn ingestor_routes(license: LicenseHandle) -> Router {
    Router::new()
        .route("/ingest", post(ingest))
        .route_layer(RequireLicense::new(license.clone()).feature("ingest"))
        .with_state(license)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let state = match AppState::open(&config).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: cannot open the license store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen_addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.listen_addr);
            return ExitCode::FAILURE;
        }
    };
    let router = ren3_client::app(state.clone()).merge(ingestor_routes(state.license()));
    tracing::info!(addr = %config.listen_addr, "the example ingestor is listening");
    // The license page is served only to peers on this machine, so the
    // server records each connection's peer address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    if let Err(e) = state.persist_clock().await {
        eprintln!("error: cannot record the clock: {e}");
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
