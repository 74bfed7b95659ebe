//! `ren3-client`: the ingestor's licensing endpoints as a service.
//!
//! Configuration comes from the environment and `./.env` (see
//! `ren3_client::config`). Once listening, it prints exactly one line to
//! stdout, `listening on http://<address>`, which tests read to find the
//! port when `listen_addr` asks for port 0.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use ren3_client::{AppState, Config};
use tracing_subscriber::EnvFilter;

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
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; set listen_addr to a free address",
                config.listen_addr
            )
        })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    drop(stdout);

    match state.offline() {
        Some(offline) => tracing::info!(
            client_device_id = %offline.client_device_id,
            device_public_key = %state.device_public_key(),
            licensed = state.license().is_licensed(),
            "offline licensing is enabled"
        ),
        None => tracing::info!("offline licensing is disabled"),
    }

    ren3_client::serve(listener, state, shutdown_signal())
        .await
        .context("the HTTP server failed")
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for SIGINT: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
