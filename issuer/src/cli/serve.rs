//! `serve`: the web console, with its runtime and tracing set-up.

use super::*;

/// Runs the console until Ctrl-C or SIGTERM. After binding, prints exactly
/// one line, `listening on http://ADDR`, to stdout.
pub(super) fn serve(paths: &StorePaths, args: &ServeArgs) -> Result<Outcome> {
    ren3_server::init_tracing();
    let store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?;
    let state = web::AppState::new(
        store,
        keys,
        web::Config {
            behind_tls: args.behind_tls,
        },
    )
    .with_trusted_proxies(&args.trusted_proxies);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = ren3_server::bind(args.listen.as_str()).await?;
        let limits = ren3_server::Limits {
            header_timeout: args.header_timeout,
            max_connections: args.max_connections,
        };
        web::serve(listener, state, limits, ren3_server::shutdown_signal())
            .await
            .context("the console stopped with an error")
    })?;
    Ok(Outcome::new(String::new()))
}
