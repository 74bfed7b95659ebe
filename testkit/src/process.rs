//! Commands started as a service would be: with an environment of their
//! own, not the test's.

use std::ffi::OsString;
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

/// `ren3-issuer` (at `bin`), isolated from the machine the tests run on:
/// none of the runner's `REN3_*` variables (a developer's shell may hold a
/// passphrase, a store or a listen address); no configuration file:
/// `REN3_ISSUER_CONFIG` names `/dev/null`, an empty file, so an installed
/// package's `/etc/ren3/issuer.toml` is never read; and `RUST_LOG=warn`,
/// whatever the runner's, so what a test reads on stderr does not depend
/// on the shell it ran from. A test that wants a file, a variable or more
/// logs sets it on the command returned.
pub fn issuer_isolated(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    without_ren3_settings(Command::new(bin), std::env::vars_os())
}

/// `command` without the `REN3_*` variables among `inherited`, with
/// `REN3_ISSUER_CONFIG` naming an empty file and warnings logged only.
fn without_ren3_settings(
    mut command: Command,
    inherited: impl Iterator<Item = (OsString, OsString)>,
) -> Command {
    for (name, _) in inherited {
        if name.to_string_lossy().starts_with("REN3_") {
            command.env_remove(name);
        }
    }
    command
        .env("REN3_ISSUER_CONFIG", "/dev/null")
        .env("RUST_LOG", "warn");
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_isolated_issuer_inherits_no_ren3_setting_and_reads_no_configuration_file() {
        let mut command = Command::new("env");
        command
            .env_clear()
            .env("REN3_ISSUER_PASSPHRASE", "from the developer's shell")
            .env("REN3_ISSUER_CONFIG", "/etc/ren3/issuer.toml")
            .env("LANG", "C")
            .env("RUST_LOG", "debug");
        let inherited = [
            ("REN3_ISSUER_PASSPHRASE".into(), "x".into()),
            ("LANG".into(), "C".into()),
        ];
        let output = without_ren3_settings(command, inherited.into_iter())
            .output()
            .expect("env runs");
        let env = String::from_utf8(output.stdout).expect("UTF-8");
        let mut lines: Vec<&str> = env.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            ["LANG=C", "REN3_ISSUER_CONFIG=/dev/null", "RUST_LOG=warn"]
        );
    }
}
