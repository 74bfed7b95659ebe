//! Handler tests: the licensing router in-process, each test on its own
//! temporary store with an injected clock.

// `allow-unwrap-in-tests` covers test functions only; in the helpers here a
// panic is a test failure too.
#![allow(clippy::unwrap_used)]

mod clock;
mod deactivate;
mod guard;
mod host;
mod hostile;
mod import;
mod keys;
mod monitoring;
mod page;
mod problems;
mod register;
mod restart;
mod revocation;
mod sequence;
mod state_machine;
mod status;
mod support;
mod trust;
