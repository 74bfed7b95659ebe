//! The real `ren3-issuer` binary, run as an operator runs it: one test
//! binary (one link of the crate graph) whose modules are the scenarios.
//! Each test works in a temporary directory of its own (`support`). The
//! exchanges with a real client are in `tests/e2e/`.

// clippy's allow-unwrap-in-tests covers `#[test]` functions only, not the
// helpers they share here.
#![allow(clippy::unwrap_used)]

mod audit;
mod backup;
mod batch;
mod cli;
mod config;
mod hostile;
mod lifecycle;
mod packaging;
mod private_store;
mod support;
mod terminal;
mod trust;
mod users;
