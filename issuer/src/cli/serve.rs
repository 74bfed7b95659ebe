//! `serve`: the web console, with its runtime and tracing set-up.

use super::*;

/// Runs the console until Ctrl-C or SIGTERM. After binding, prints exactly
/// one line, `listening on http://ADDR`, to stdout.
pub(super) fn serve(paths: &StorePaths, args: &ServeArgs) -> Result<Outcome> {
    ren3_server::init_tracing();
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
        web::serve(
            listener,
            state,
            hosts,
            limits,
            ren3_server::shutdown_signal(),
        )
        .await
        .context("the console stopped with an error")
    })?;
    Ok(Outcome::new(String::new()))
}

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
