//! What every ReN3 HTTP server (the client's licensing service, the
//! issuer's console, the benchmarks' servers) does the same way, in one
//! place:
//!
//! - [`init_tracing`]: logs to stderr, filtered by `RUST_LOG` (default
//!   `info`), so stdout stays for results;
//! - [`bind`]: binds the listener and prints exactly one line to stdout,
//!   `listening on http://ADDRESS`, the contract tests and scripts read
//!   to learn the port when the address asks for port 0;
//! - [`bind_metrics`]: binds a metrics listener and prints its address on
//!   a second line, `metrics on http://ADDRESS`;
//! - [`shutdown_signal`]: completes at SIGINT or SIGTERM, for a graceful
//!   shutdown ([`Shutdown`]: the same for several servers);
//! - [`host`]: the `Host` check against DNS rebinding;
//! - [`serve`]: the accept loop, with a header timeout, a bound on open
//!   connections that closes the longest-waiting one to make room, and a
//!   lingering close (see [`connections`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, ToSocketAddrs};

pub mod connections;
pub mod host;
pub mod page_headers;

pub use connections::{
    LINGER_BYTES, LINGER_TIME, Limits, MAX_CONNECTIONS, MAX_TIMEOUT, TIMEOUT_SYNTAX, parse_timeout,
    serve,
};
use tracing_subscriber::EnvFilter;

/// Sends the process's logs to stderr, filtered by `RUST_LOG` (default
/// `info`). Call it once, first thing; a second call changes nothing.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A subscriber set already (by a test harness, say) stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}

/// Why a server could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The address is taken, not this host's, or not allowed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address as configured.
        address: String,
        /// What the system said.
        source: io::Error,
    },
    /// Bound, but the address or the announcement failed.
    #[error("cannot announce the listening address: {0}")]
    Announce(io::Error),
}

/// Binds `address` and prints `listening on http://ADDRESS` (the address
/// actually bound, with the port the system chose for port 0) to stdout,
/// flushed, before returning the listener.
pub async fn bind(address: impl ToSocketAddrs + fmt::Display) -> Result<TcpListener, BindError> {
    let (listener, bound) = listen(address).await?;
    announce(&mut io::stdout().lock(), bound).map_err(BindError::Announce)?;
    Ok(listener)
}

/// Binds `address` for a metrics listener and prints `metrics on
/// http://ADDRESS` (the address bound, with the port the system chose for
/// port 0) to stdout, after [`bind`]'s line: the second line, which tests
/// and scripts read to find a metrics port 0 gave. A failure to print it
/// (a reader that stopped after the first line) is only logged: the
/// address is in the log too.
pub async fn bind_metrics(
    address: impl ToSocketAddrs + fmt::Display,
) -> Result<TcpListener, BindError> {
    let (listener, bound) = listen(address).await?;
    tracing::info!("metrics on http://{bound}");
    if let Err(e) = announce_metrics(&mut io::stdout().lock(), bound) {
        tracing::debug!("cannot print the metrics address: {e}");
    }
    Ok(listener)
}

/// Binds `address`; the listener and the address it is bound to, with
/// the port the system chose for port 0.
async fn listen(
    address: impl ToSocketAddrs + fmt::Display,
) -> Result<(TcpListener, SocketAddr), BindError> {
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| BindError::Bind {
            address: address.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(BindError::Announce)?;
    Ok((listener, bound))
}

fn announce_metrics(out: &mut impl io::Write, address: SocketAddr) -> io::Result<()> {
    writeln!(out, "metrics on http://{address}")?;
    out.flush()
}

/// Writes the one line a started server prints.
fn announce(out: &mut impl io::Write, address: SocketAddr) -> io::Result<()> {
    writeln!(out, "listening on http://{address}")?;
    out.flush()
}

/// Completes at SIGINT (Ctrl-C) or, on Unix, SIGTERM. A signal that cannot
/// be listened for is logged and never completes this future.
pub async fn shutdown_signal() {
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

/// One SIGINT or SIGTERM for several servers of one process (the service
/// and its metrics listener): each [`Shutdown::signalled`] future
/// completes at the first signal. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Starts listening for the signal ([`shutdown_signal`]).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn on_signal() -> Self {
        let (signalled, receiver) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = signalled.send(true);
        });
        Self(receiver)
    }

    /// Completes once the signal came (or nothing listens for it any more).
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.clone();
        async move {
            let _ = receiver.wait_for(|signalled| *signalled).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_announcement_is_one_line_with_the_bound_address() {
        let mut out = Vec::new();
        announce(&mut out, "127.0.0.1:5000".parse().unwrap()).unwrap();
        assert_eq!(out, b"listening on http://127.0.0.1:5000\n");
    }

    #[test]
    fn the_metrics_announcement_is_its_own_line() {
        let mut out = Vec::new();
        announce_metrics(&mut out, "0.0.0.0:9464".parse().unwrap()).unwrap();
        assert_eq!(out, b"metrics on http://0.0.0.0:9464\n");
    }

    #[tokio::test]
    async fn binding_port_0_gets_a_port_and_a_taken_address_is_named() {
        let listener = bind("127.0.0.1:0").await.unwrap();
        let taken = listener.local_addr().unwrap();
        assert_ne!(taken.port(), 0);
        let err = bind(taken).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on {taken}: ")),
            "{err}"
        );
    }
}
