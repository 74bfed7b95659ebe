//! `ren3-client`: the ingestor's licensing endpoints as a service, and the
//! commands a customer runs against that service instead of `curl`.
//!
//! With no subcommand (or `serve`) it starts the service, as it always has.
//! Configuration comes from the environment and `./.env` (see
//! `ren3_client::config`). Once listening, it prints exactly one line to
//! stdout, `listening on http://<address>`, which tests read to find the
//! port when `listen_addr` asks for port 0. The other subcommands are in
//! [`cli`].

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
