//! Commands started as a service would be: with an environment of their
//! own, not the test's.

use std::path::Path;
use std::process::Command;

/// `ren3-client` (at `bin`) in `dir`, with an environment that holds only
/// `PATH`, a store in `dir` (`license_db_path`) and `listen_addr` on port 0:
/// what a service's environment has before its own settings, which the
/// caller adds.
pub fn client_in(bin: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("license_db_path", dir.join("license.db"))
        .env("listen_addr", "127.0.0.1:0")
        .current_dir(dir);
    command
}
