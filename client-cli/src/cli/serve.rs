//! `ren3-client serve`, the default: the licensing service, started exactly
//! as the binary always started it.

use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ren3_client::{AppState, Config};

/// How often the recorder drops what it no longer needs between scrapes.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

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
    let metrics = install_metrics()?;
    let state = AppState::open(&config)
        .await
        .with_context(|| {
            format!(
                "cannot open the license store `{}`; check license_db_path and that its \
                 directory exists and is writable",
                config.license_db_path.display()
            )
        })?
        .with_metrics(move || metrics.render());
    let listener = ren3_server::bind(config.listen_addr)
        .await
        .map_err(|e| anyhow::anyhow!("{e}; set listen_addr to a free address"))?;
    let metrics_listener = match config.metrics_addr {
        Some(address) => Some(ren3_server::bind_metrics(address).await.map_err(|e| {
            anyhow::anyhow!("{e}; set license_metrics_addr to a free address, or unset it")
        })?),
        None => None,
    };

    match state.offline() {
        Some(offline) => tracing::info!(
            client_device_id = %offline.client_device_id,
            device_public_key = %state.device_public_key(),
            licensed = state.license().is_licensed(),
            "offline licensing is enabled"
        ),
        None => tracing::info!("offline licensing is disabled"),
    }

    let shutdown = ren3_server::Shutdown::on_signal();
    let metrics_served = async {
        match metrics_listener {
            Some(listener) => {
                ren3_client::serve_metrics(listener, state.clone(), shutdown.signalled()).await
            }
            None => Ok(()),
        }
    };
    let (served, metrics_served) = tokio::join!(
        ren3_client::serve(listener, state.clone(), shutdown.signalled()),
        metrics_served
    );
    served.context("the HTTP server failed")?;
    metrics_served.context("the metrics listener failed")
}

/// Installs the Prometheus recorder the library's metrics go to, without
/// a listener of its own (the service renders it on `/metrics`), and keeps
/// it tidy between scrapes.
fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    ren3_client::monitoring::describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(METRICS_UPKEEP);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
