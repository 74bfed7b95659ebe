//! `ren3-client serve`, the default: the licensing service, started exactly
//! as the binary always started it.

use std::process::ExitCode;

use anyhow::Context as _;
use ren3_client::{AppState, Config};

/// Reads the configuration, opens the store and serves until SIGINT or
/// SIGTERM. Exit 2 for a configuration the operator must fix, 1 for a
/// failure to open, bind or serve.
pub(super) fn serve() -> ExitCode {
    ren3_server::init_tracing();

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
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
