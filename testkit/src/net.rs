//! Ports for tests that need one nothing listens on.

use std::net::TcpListener;

/// A loopback port nothing listens on: bound, then released. Another
/// program could take it in between, which on a test machine does not
/// happen in practice.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
