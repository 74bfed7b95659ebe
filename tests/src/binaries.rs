//! The binaries under test: built once per test run with the test's own
//! profile, found in its target directory, and their start-up line read.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

/// Where this test executable's build lives: the target directory and the
/// profile's directory in it, read from the executable's own path
/// (`<target>/<profile>/deps/<test>`), so that `CARGO_TARGET_DIR`, a
/// `build.target-dir` setting and `--release` are all honoured.
struct BuildDirs {
    target: PathBuf,
    profile: PathBuf,
}

fn build_dirs() -> BuildDirs {
    let exe = std::env::current_exe().unwrap();
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps")
        .to_path_buf();
    let target = profile.parent().unwrap().to_path_buf();
    BuildDirs { target, profile }
}

/// `cargo SUBCOMMAND --locked` in the workspace, into `target`, with the
/// profile this test executable was built with.
fn cargo_in(subcommand: &str, target: &Path, profile: &Path, args: &[&str]) -> Command {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([subcommand, "--locked", "--quiet", "--target-dir"])
        .arg(target);
    match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
        None => panic!("no profile directory in {}", profile.display()),
    }
    command.args(args);
    command
}

/// Builds the binaries once per test run, into the target directory and
/// profile of this test run, and returns the directory they are in. Cargo
/// only builds a package's binaries for that package's own tests
/// (`CARGO_BIN_EXE_*`), so this crate builds those tests: the `cli` tests
/// of `ren3-issuer` and `ren3-client-cli`, which need their binaries.
///
/// They are built as `cargo test --workspace` builds them, so that after
/// that command this is a no-op. A plain `cargo build -p ...` would choose
/// the dependencies' features from those two packages alone, where `cargo
/// test --workspace` unifies them across the workspace and its
/// dev-dependencies: a different build of about 70 crates, which cost a
/// cold CI run two minutes.
///
/// The development build of `ren3-client` ([`dev_client_bin`]) comes first,
/// the same way with the `dev-root` feature added: only `ren3-client` and
/// its binary are compiled again. Cargo puts that binary where the pinned
/// one goes, so it is copied aside, and the pinned build that follows puts
/// the pinned binary back before any test runs one.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dirs = build_dirs();
        let build = |features: &[&str]| {
            let status = cargo_in(
                "test",
                &dirs.target,
                &dirs.profile,
                &[&["--workspace", "--no-run", "--test", "cli"], features].concat(),
            )
            .status()
            .expect("cargo runs");
            assert!(
                status.success(),
                "building ren3-client and ren3-issuer {features:?} failed"
            );
        };
        // The development root needs debug assertions: a `--release` run
        // has no development build (see `dev_client_bin`).
        if cfg!(debug_assertions) {
            build(&["--features", "ren3-client-cli/dev-root"]);
            let dev = dev_dir(&dirs.profile);
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::copy(dirs.profile.join("ren3-client"), dev.join("ren3-client"))
                .expect("the development build of ren3-client is there");
        }
        build(&[]);
        dirs.profile
    })
}

/// Where [`bin_dir`] keeps the development build of `ren3-client`.
fn dev_dir(profile: &Path) -> PathBuf {
    profile.join("ren3-client-dev-root")
}

/// A development build of `ren3-client` (feature `dev-root`), which takes
/// its root from `REN3_DEV_TRUST_ROOT` at run time. `bin_dir` builds it
/// beside the pinned one, which it never replaces.
///
/// The development root also needs debug assertions, which a `--release`
/// test run does not have: there, this panics and says so.
pub fn dev_client_bin() -> PathBuf {
    if !cfg!(debug_assertions) {
        panic!(
            "a development build of ren3-client needs debug assertions: run this test without --release"
        );
    }
    dev_dir(bin_dir()).join("ren3-client")
}

pub fn issuer_bin() -> PathBuf {
    bin_dir().join("ren3-issuer")
}

/// `ren3-issuer`, isolated from the machine: none of the runner's `REN3_*`
/// variables and no configuration file ([`ren3_testkit::issuer_isolated`]).
pub fn issuer_command() -> Command {
    ren3_testkit::issuer_isolated(issuer_bin())
}

pub fn client_bin() -> PathBuf {
    bin_dir().join("ren3-client")
}

/// Writes `input` to a spawned command's stdin and closes it. A command
/// refused before it reads its input (a usage error, say) closes the pipe
/// first; what it printed, which the caller asserts on, says why.
pub fn feed(child: &mut Child, input: &str) {
    let mut stdin = child.stdin.take().unwrap();
    if let Err(e) = stdin.write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
}

/// The base URL a just-started server prints as its first stdout line,
/// `listening on http://ADDR`.
pub(crate) fn listening_address(child: &mut Child, what: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{what} did not start: {line:?}"))
        .to_owned()
}
