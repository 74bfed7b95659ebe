//! The `ren3-client` command line on its own, with no service or issuer
//! running: what it says when the service is not there, and the shell
//! completions and man pages the Debian package installs. The exchange
//! through these commands is in the end-to-end suite
//! (`tests/e2e/client_cli.rs`), which runs the service and the issuer too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Output, Stdio};

use ren3_testkit::{client_in, free_port};

/// Runs `ren3-client ARGS` in `dir` with only `PATH`, a store in `dir`, and
/// `vars`, as a service's environment would have them; no standard input.
fn run(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    client_in(env!("CARGO_BIN_EXE_ren3-client"), dir)
        .args(args)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_service_that_is_not_running_is_said_so_with_how_to_start_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), "REN3K1-X\n").unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for (extra, args) in [
        (vec![("REN3_CLIENT_URL", url.as_str())], vec!["status"]),
        (
            vec![("REN3_CLIENT_URL", url.as_str())],
            vec!["request", "--license-key-file", "key.txt"],
        ),
        (vec![], vec!["status", "--url", url.as_str()]),
    ] {
        let out = run(dir.path(), &extra, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!("not running at {url}")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("ren3-client serve"), "{stderr}");
    }
    // The address from listen_addr, when the service is not there.
    let listen = format!("0.0.0.0:{port}");
    let out = run(dir.path(), &[("listen_addr", &listen)], &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("not running at http://127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// What the Debian package installs from the grammar: each shell's
/// completion script offers every command `--help` lists, and a man page
/// renders for the command and for each of them.
#[test]
fn completions_offer_every_command_and_man_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &[], &["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(commands.contains(&"request"), "{help}");

    for shell in ["bash", "zsh", "fish"] {
        let out = run(dir.path(), &[], &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for name in &commands {
            // How each script lists a command it completes.
            let offered = match shell {
                "bash" => format!(",{name})"),
                "zsh" => format!("'{name}:"),
                _ => format!("-a \"{name}\""),
            };
            assert!(script.contains(&offered), "{shell}: {name} ({offered})");
        }
    }

    let out = run(dir.path(), &[], &["man"]);
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.lines()
            .any(|line| line.starts_with(".TH ren3-client 1 ")),
        "{page}"
    );
    assert!(page.contains(".SH NAME\nren3\\-client \\- "), "{page}");

    let out = run(dir.path(), &[], &["man", "--out-dir", "pages"]);
    assert!(out.status.success());
    let listed = String::from_utf8(out.stdout).unwrap();
    for name in std::iter::once("ren3-client".to_owned())
        .chain(commands.iter().map(|name| format!("ren3-client-{name}")))
    {
        let file = format!("pages/{name}.1");
        assert!(
            listed.lines().any(|line| line == file),
            "{file} in {listed}"
        );
        let roff = std::fs::read_to_string(dir.path().join(&file)).unwrap();
        assert!(
            roff.lines()
                .any(|line| line.starts_with(&format!(".TH {name} 1 "))),
            "{name}: {roff}"
        );
    }
}
