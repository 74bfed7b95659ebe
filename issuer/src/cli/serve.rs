//! `serve`: the web console, with its runtime and tracing set-up.

use super::*;

/// Runs the console until Ctrl-C or SIGTERM. After binding, prints exactly
/// one line, `listening on http://ADDR`, to stdout.
pub(super) fn serve(paths: &StorePaths, args: &ServeArgs) -> Result<Outcome> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    let store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?;
    let state = web::AppState::new(
        store,
        keys,
        web::Config {
            behind_tls: args.behind_tls,
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        drop(stdout);
        web::serve(listener, state, web::shutdown_signal())
            .await
            .context("the console stopped with an error")
    })?;
    Ok(Outcome::new(String::new()))
}
