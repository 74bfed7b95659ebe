//! `ren3-client`: the ingestor's licensing endpoints as a service.
//!
//! Configuration comes from the environment and `./.env` (see
//! `ren3_client::config`). Once listening, it prints exactly one line to
//! stdout, `listening on http://<address>`, which tests read to find the
//! port when `listen_addr` asks for port 0.

use std::process::ExitCode;

use anyhow::Context as _;
use ren3_client::{AppState, Config};

#[tokio::main]
async fn main() -> ExitCode {
    ren3_server::init_tracing();

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let state = AppState::open(&config).await.with_context(|| {
        format!(
            "cannot open the license store `{}`; check license_db_path and that its \
             directory exists and is writable",
            config.license_db_path.display()
        )
    })?;
    let listener = ren3_server::bind(config.listen_addr)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; set listen_addr to a free address"))?;

    match state.offline() {
        Some(offline) => tracing::info!(
            client_device_id = %offline.client_device_id,
            device_public_key = %state.device_public_key(),
            licensed = state.license().is_licensed(),
            "offline licensing is enabled"
        ),
        None => tracing::info!("offline licensing is disabled"),
    }

    ren3_client::serve(listener, state, ren3_server::shutdown_signal())
        .await
        .context("the HTTP server failed")
}
