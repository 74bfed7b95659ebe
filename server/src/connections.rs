//! The accept loop both servers run instead of `axum::serve`, which gives
//! hyper no timer (so no header timeout ever fires) and bounds nothing per
//! connection. Here:
//!
//! - **a header timeout**: a connection must deliver a request's complete
//!   headers within [`Limits::header_timeout`] of being opened, or of its
//!   previous response; hyper measures it from the first wait for headers,
//!   so it bounds a half-sent request and an idle keep-alive connection
//!   alike, and trickling a byte at a time does not extend it;
//! - **a bound on open connections that never starves a caller**: at
//!   [`Limits::max_connections`], the connection that has waited longest
//!   for headers (stalled, or idle between requests) is closed to make room,
//!   rather than the new one refused; only when every connection is inside a
//!   request does a new one wait. The process's open-file limit is raised
//!   to its hard limit first, and the bound kept below it;
//! - **a lingering close**: when a response says `Connection: close` (as
//!   every `413 Payload Too Large` is made to), the server sends it, stops writing,
//!   and reads and discards what the caller is still sending, up to
//!   [`LINGER_BYTES`] or [`LINGER_TIME`]. Closing with unread data would
//!   make the kernel reset the connection, and the caller would see
//!   "connection reset" instead of the answer;
//! - each request carries the peer's address as axum's
//!   [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
//!
//! HTTP/1.1 only: both servers' callers (curl, the ingestor, browsers on
//! loopback or behind a TLS proxy) speak it, and hyper's HTTP/1 connection
//! hands the socket back for the lingering close.

use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

/// What a lingering close reads and discards at most.
pub const LINGER_BYTES: u64 = 8 * 1024 * 1024;
/// How long a lingering close waits at most for the caller to finish.
pub const LINGER_TIME: Duration = Duration::from_secs(5);
/// Open files kept free for everything but connections: the store, its
/// journal, logs, the files a request reads.
const RESERVED_FILES: u64 = 64;

/// The longest timeout a setting accepts: ten minutes.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What [`parse_timeout`] accepts, for the error that quotes the value.
pub const TIMEOUT_SYNTAX: &str = "expected a duration from 1ms to 10m: a number with an \
    optional unit ms, s or m (seconds without one), such as 10s or 500ms";

/// A timeout setting of either server: `500ms`, `10s`, `2m` or `10`
/// (seconds), from 1 ms to [`MAX_TIMEOUT`]; `None` otherwise
/// ([`TIMEOUT_SYNTAX`] says why).
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = if let Some(digits) = lower.strip_suffix("ms") {
        (digits, Duration::from_millis(1))
    } else if let Some(digits) = lower.strip_suffix('s') {
        (digits, Duration::from_secs(1))
    } else if let Some(digits) = lower.strip_suffix('m') {
        (digits, Duration::from_secs(60))
    } else {
        (lower.as_str(), Duration::from_secs(1))
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u32 = digits.parse().ok()?;
    unit.checked_mul(count)
        .filter(|t| !t.is_zero() && *t <= MAX_TIMEOUT)
}

/// The most [`Limits::max_connections`] can be.
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// The bounds every connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection has to deliver a request's headers, from its
    /// opening or its previous response.
    pub header_timeout: Duration,
    /// How many connections are open at most (lowered to fit the
    /// process's open-file limit).
    pub max_connections: usize,
}

impl Limits {
    /// 10 s for headers: a caller on this machine or the customer's
    /// network sends them at once, and a person typing `curl` has already
    /// typed. 4,096 connections: far more than any ingestor or vendor team
    /// opens, and the oldest waiting ones make room beyond that anyway.
    pub const DEFAULT: Limits = Limits {
        header_timeout: Duration::from_secs(10),
        max_connections: 4096,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown`
/// completes, then stops accepting, lets every request in progress finish
/// and returns once every connection is closed.
///
/// # Errors
/// Never, today: an accept error (out of file descriptors, say) is
/// logged, and the loop goes on after a pause. The `Result` is kept for
/// the callers' `?`, as `axum::serve`'s.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = usize::try_from(raise_open_file_limit())
        .unwrap_or(usize::MAX)
        .min(limits.max_connections)
        .clamp(1, MAX_CONNECTIONS);
    let permits = Arc::new(Semaphore::new(max));
    let waiting = Arc::new(Waiting::default());
    let (stop_tx, stop) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, mostly: wait for some to close.
                    tracing::error!("accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Room is made when a connection arrives, not ahead of one: a
        // waiting connection is closed only for a new one.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = make_room(&permits, &waiting) => permit,
        };
        // Registered here, not in its task, so that the next arrival can
        // close it even before its task has run.
        let in_request = Arc::new(InRequest {
            id: waiting.id(),
            bell: Arc::new(Notify::new()),
            waiting: waiting.clone(),
        });
        in_request.waits();
        let connection = Connection {
            in_request,
            router: router.clone(),
            header_timeout: limits.header_timeout,
            stop: stop.clone(),
            _permit: permit,
        };
        tokio::spawn(connection.run(stream, peer));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until its task ends.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// A permit for one more connection: at once if the bound is not reached,
/// else once the connection that has waited longest for headers, closed
/// here, has gone. If every connection is inside a request, the first to
/// finish one (and wait for the next) is closed, unless one closes first.
/// Exactly one is closed per connection accepted past the bound.
async fn make_room(permits: &Arc<Semaphore>, waiting: &Waiting) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return permit;
        }
        // Created before the map is read, so no arrival in between is missed.
        let arrived = waiting.arrived.notified();
        if waiting.evict_oldest() {
            return acquire(permits).await;
        }
        tokio::select! {
            permit = acquire(permits) => return permit,
            () = arrived => {}
        }
    }
}

async fn acquire(permits: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    permits
        .clone()
        .acquire_owned()
        .await
        .unwrap_or_else(|_| unreachable!("the semaphore is never closed"))
}

/// Raises the soft open-file limit to the hard one and returns how many
/// connections fit under it.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit.saturating_sub(RESERVED_FILES),
        Err(e) => {
            tracing::warn!("cannot read or raise the open-file limit: {e}");
            u64::MAX
        }
    }
}

/// The connections waiting for a request's headers, oldest first (by the
/// order they were opened), each with the bell that closes it.
#[derive(Default)]
struct Waiting {
    next_id: AtomicU64,
    by_age: Mutex<BTreeMap<u64, Arc<Notify>>>,
    /// Rung when a connection starts waiting, for [`make_room`].
    arrived: Notify,
}

impl Waiting {
    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn insert(&self, id: u64, bell: Arc<Notify>) {
        self.lock().insert(id, bell);
        self.arrived.notify_waiters();
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the oldest waiting connection; false if none is waiting.
    fn evict_oldest(&self) -> bool {
        let oldest = self.lock().pop_first();
        match oldest {
            Some((_, bell)) => {
                bell.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Notify>>> {
        // The map stays consistent whatever panicked while holding it.
        self.by_age.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Connection {
    in_request: Arc<InRequest>,
    router: Router,
    header_timeout: Duration,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr) {
        let in_request = self.in_request.clone();
        let evicted = in_request.bell.clone();
        let linger = Arc::new(AtomicBool::new(false));

        let router = self.router.clone();
        let service = tower::service_fn({
            let linger = linger.clone();
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let busy = in_request.starts();
                let answer = router.clone().oneshot(request);
                let linger = linger.clone();
                // Boxed: hyper's HTTP/1 connection, polled without
                // shutdown, needs an `Unpin` service future.
                Box::pin(async move {
                    let mut response: Response<_> = answer.await?;
                    // The rest of a body refused for its size is never
                    // read, so the connection cannot carry another request.
                    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        response
                            .headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    }
                    if closes(&response) {
                        linger.store(true, Ordering::Relaxed);
                    }
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(response)
                })
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        let mut conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));

        let mut stopping = *self.stop.borrow();
        if stopping {
            Pin::new(&mut conn).graceful_shutdown();
        }
        let served = loop {
            tokio::select! {
                served = poll_fn(|cx| conn.poll_without_shutdown(cx)) => break Some(served),
                () = evicted.notified() => break None,
                changed = self.stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_err() || *self.stop.borrow() {
                        Pin::new(&mut conn).graceful_shutdown();
                    }
                }
            }
        };
        // The connection (and a request future it still held, whose
        // `Busy` puts it back among the waiting) goes before its entry.
        let stream = conn.into_parts().io.into_inner();
        self.in_request.leaves();
        match served {
            None => tracing::debug!(
                "closed {peer}, the connection waiting longest for headers, to make room"
            ),
            Some(Err(e)) => tracing::debug!("connection from {peer} ended: {e}"),
            Some(Ok(())) if linger.load(Ordering::Relaxed) => linger_close(stream).await,
            Some(Ok(())) => {}
        }
    }
}

/// Whether a response closes its connection after it is sent.
fn closes<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Stops writing (the answer is sent), then reads and discards what the
/// caller still sends, so that closing does not reset the connection
/// under an answer the caller has not read yet.
async fn linger_close(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut discarded = 0u64;
        let mut buffer = vec![0u8; 64 * 1024];
        while discarded < LINGER_BYTES {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n as u64,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// A connection's place among those waiting for headers: it leaves while
/// a request is handled, and comes back after the response.
struct InRequest {
    id: u64,
    bell: Arc<Notify>,
    waiting: Arc<Waiting>,
}

impl InRequest {
    fn waits(&self) {
        self.waiting.insert(self.id, self.bell.clone());
    }

    fn starts(self: &Arc<Self>) -> Busy {
        self.waiting.remove(self.id);
        Busy(self.clone())
    }

    /// Leaves the waiting connections for good: the connection closed.
    fn leaves(&self) {
        self.waiting.remove(self.id);
    }
}

/// Puts the connection back among the waiting ones when dropped, after
/// its response (or when the request was cancelled).
struct Busy(Arc<InRequest>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.waits();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_a_number_with_an_optional_unit_up_to_ten_minutes() {
        let cases = [
            ("1ms", Duration::from_millis(1)),
            ("250ms", Duration::from_millis(250)),
            ("250MS", Duration::from_millis(250)),
            ("3", Duration::from_secs(3)),
            ("10s", Duration::from_secs(10)),
            ("2m", Duration::from_secs(120)),
            ("600000ms", Duration::from_secs(600)),
            ("10m", Duration::from_secs(600)),
        ];
        for (text, timeout) in cases {
            assert_eq!(parse_timeout(text), Some(timeout), "{text}");
        }
        for text in [
            "",
            "0",
            "0ms",
            "0s",
            "ms",
            "s",
            "-1s",
            "1.5s",
            "10 s",
            "11m",
            "600001ms",
            "1h",
            "1w",
            "soon",
            "99999999999",
        ] {
            assert_eq!(parse_timeout(text), None, "{text}");
        }
    }

    #[test]
    fn only_a_close_response_lingers() {
        let close = Response::builder()
            .header(header::CONNECTION, "Close")
            .body(())
            .unwrap();
        let keep = Response::builder().body(()).unwrap();
        assert!(closes(&close));
        assert!(!closes(&keep));
    }

    #[test]
    fn eviction_takes_the_oldest_waiting_connection_and_skips_busy_ones() {
        let waiting = Waiting::default();
        let bells: Vec<_> = (0..3).map(|_| Arc::new(Notify::new())).collect();
        let ids: Vec<_> = bells.iter().map(|_| waiting.id()).collect();
        for (id, bell) in ids.iter().zip(&bells) {
            waiting.insert(*id, bell.clone());
        }
        // The oldest is inside a request: the next oldest goes.
        waiting.remove(ids[0]);
        assert!(waiting.evict_oldest());
        assert_eq!(waiting.lock().keys().copied().collect::<Vec<_>>(), [ids[2]]);
        assert!(waiting.evict_oldest());
        assert!(!waiting.evict_oldest(), "nobody is waiting");
    }
}
