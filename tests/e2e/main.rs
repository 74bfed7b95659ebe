//! End-to-end tests of the offline exchange in
//! `../shared/ren3-offline-license-registration.md`, with the real
//! `ren3-issuer` and `ren3-client` binaries, each on its own temporary store
//! and, for the client, on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod client_cli;
mod concurrency;
mod connections;
mod console;
mod console_host;
mod crash;
mod exchange;
mod hostile_client;
mod lifecycle_client;
mod lifecycle_issuer;
mod login;
mod metrics;
mod operator;
mod page;
mod refusals;
mod transit;
mod trust;
