//! `serve`: the web console, with its runtime and tracing set-up.

use super::*;

/// Runs the console until Ctrl-C or SIGTERM. After binding, prints
/// `listening on http://ADDR` to stdout, then, with `--metrics-listen`,
/// `metrics on http://ADDR`.
pub(super) fn serve(paths: &StorePaths, args: &ServeArgs) -> Result<Outcome> {
    ren3_server::init_tracing();
    if let Some(path) = LOADED.get().and_then(|loaded| loaded.path.as_ref()) {
        tracing::info!(config = %path.display(), "settings read from the configuration file");
    }
    let store = setup::open_store(paths)?;
    warn_of_roles_from_migration(&store)?;
    let keys = setup::open_keys(paths)?;
    let state = web::AppState::new(
        store,
        keys,
        web::Config {
            behind_tls: args.behind_tls,
        },
    )
    .with_trusted_proxies(&args.trusted_proxies);
    let metrics = web::Metrics::install().context("cannot install the metrics recorder")?;
    let upkeep = metrics.handle().clone();
    let state = state.with_metrics(metrics);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = ren3_server::bind(args.listen.as_str()).await?;
        let hosts = ren3_server::host::AllowedHosts::new(
            listener
                .local_addr()
                .context("cannot read the listening address")?,
            &args.allowed_hosts,
        );
        let limits = ren3_server::Limits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections,
        };
        let metrics_listener = match &args.metrics_listen {
            Some(address) => Some(ren3_server::bind_metrics(address.as_str()).await?),
            None => None,
        };
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(METRICS_UPKEEP);
            loop {
                ticks.tick().await;
                upkeep.run_upkeep();
            }
        });
        let shutdown = ren3_server::Shutdown::on_signal();
        let metrics_served = async {
            match metrics_listener {
                Some(listener) => {
                    web::serve_metrics(listener, state.clone(), limits, shutdown.signalled()).await
                }
                None => Ok(()),
            }
        };
        let (served, metrics_served) = tokio::join!(
            web::serve(listener, state.clone(), hosts, limits, shutdown.signalled()),
            metrics_served
        );
        served.context("the console stopped with an error")?;
        metrics_served.context("the metrics listener stopped with an error")
    })?;
    Ok(Outcome::new(String::new()))
}

/// How often the metrics recorder drops what it no longer needs between
/// scrapes.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Warns while any user still has the `admin` role the roles' migration
/// gave every user, so that someone decides what each may do.
fn warn_of_roles_from_migration(store: &ren3_issuer_core::store::Store) -> Result<()> {
    let names = users::roles_from_migration(store)?;
    if !names.is_empty() {
        tracing::warn!(
            "console users {} are admins only because they were made before roles; set each \
             one's role with `ren3-issuer user role NAME admin|issuer|viewer`",
            names.join(", ")
        );
    }
    Ok(())
}
