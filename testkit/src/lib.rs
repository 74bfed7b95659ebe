//! What the ReN3 test suites share below the level of a running binary:
//! the TEST-ONLY keys of `fixtures/` and the signer they make, chains of
//! trust made in-process ([`chain`]), a textual dump of an SQLite store
//! ([`dump_sqlite`]), the hostile-input generator ([`hostile`]), QR codes
//! read back by an independent decoder ([`qr`]), a port nothing listens
//! on ([`free_port`]) and the client started with a service's environment
//! ([`client_in`]).
//!
//! The client's and the issuer's own tests dev-depend on this crate; the
//! end-to-end crate (`ren3-tests`) re-exports it beside its process and
//! browser helpers. It has no browser stack (no WebDriver client, no HTTP
//! client, no async runtime) and depends on neither `ren3-client` nor
//! `ren3-issuer`, so it adds nothing but these helpers to their test
//! builds.

// A helper's panic is the failing test's report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod chain;
mod commit;
mod fixtures;
pub mod hostile;
mod net;
mod process;
pub mod qr;
mod store_dump;

pub use commit::assert_is_this_checkouts_commit;
pub use fixtures::{fixture, test_only_issuer_key, test_only_root_key, test_only_signer};
pub use net::free_port;
pub use process::{client_in, issuer_isolated};
pub use store_dump::{dump_sqlite, dump_sqlite_except};
