//! The trust root is compiled in (docs/FORMAT.md §7): nothing at run time
//! can add trust, so a customer who controls the host still cannot make
//! the client accept a key the vendor's root did not certify.
//!
//! - `REN3_TRUST_ROOT=/path/to/root.pub`: the root public-key file
//!   (`ren3-issuer init` or `ren3-issuer root init` writes it). Its 32 key
//!   bytes are embedded. This workspace's `.cargo/config.toml` points it at
//!   the TEST-ONLY root, which a build without debug assertions refuses.
//! - `REN3_REVOCATION_FLOOR=/path/to/revocations.token` (optional): a
//!   revocation list signed by that root, embedded as the floor below which
//!   the effective list never goes. Without it the floor is version 0.
//! - Development mode: the `dev-root` feature *and* debug assertions. Then
//!   nothing is pinned and the client reads `REN3_DEV_TRUST_ROOT` at run
//!   time. Cargo unifies features across a whole dependency graph, so the
//!   feature alone could be switched on by any crate of the ingestor's;
//!   debug assertions keep it out of a release build.
//!
//! Writes `$OUT_DIR/build_trust.rs`, which `src/trust.rs` includes.

use std::path::{Path, PathBuf};

use ren3_shared::{RevocationList, TrustRoot};

const ROOT_ENV: &str = "REN3_TRUST_ROOT";
const FLOOR_ENV: &str = "REN3_REVOCATION_FLOOR";
const DEV_ROOT_ENV: &str = "REN3_DEV_TRUST_ROOT";

fn main() {
    println!("cargo::rerun-if-env-changed={ROOT_ENV}");
    println!("cargo::rerun-if-env-changed={FLOOR_ENV}");
    let dev_feature = std::env::var_os("CARGO_FEATURE_DEV_ROOT").is_some();
    let debug_assertions = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some();
    let root_path = path_from_env(ROOT_ENV);
    let floor_path = path_from_env(FLOOR_ENV);

    let generated = if dev_feature && debug_assertions {
        if root_path.is_some() || floor_path.is_some() {
            println!(
                "cargo::warning=development build (feature `dev-root`): {ROOT_ENV} and \
                 {FLOOR_ENV} are ignored; the client reads its root from {DEV_ROOT_ENV} at \
                 run time and must never ship"
            );
        }
        "/// A development build pins no root and has no floor.\n\
         const REVOCATION_FLOOR: Option<&str> = None;\n"
            .to_owned()
    } else {
        pinned(root_path, floor_path, dev_feature, debug_assertions)
    };

    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        fail("cargo did not set OUT_DIR");
    };
    let target = Path::new(&out_dir).join("build_trust.rs");
    if let Err(e) = std::fs::write(&target, generated) {
        fail(&format!("cannot write `{}`: {e}", target.display()));
    }
}

/// The generated constants of a pinned build, after every check.
fn pinned(
    root_path: Option<PathBuf>,
    floor_path: Option<PathBuf>,
    dev_feature: bool,
    debug_assertions: bool,
) -> String {
    let Some(root_path) = root_path else {
        let dev_hint = if dev_feature {
            " (the `dev-root` feature is on, but a build without debug assertions never \
             takes its root at run time)"
        } else {
            ""
        };
        fail(&format!(
            "{ROOT_ENV} is not set, and this is not a development build{dev_hint}. A client \
             trusts only the root compiled into it: set {ROOT_ENV} to the path of your \
             root's public-key file (`root.pub`, written by `ren3-issuer init` or \
             `ren3-issuer root init`), for example\n    \
             {ROOT_ENV}=/path/to/root.pub cargo build --release -p ren3-client-cli\n\
             For development only, build with `--features dev-root` in a debug profile and \
             set {DEV_ROOT_ENV} when running it."
        ));
    };
    println!("cargo::rerun-if-changed={}", root_path.display());
    let text = read(ROOT_ENV, &root_path);
    let root = match TrustRoot::parse_public_file(&text) {
        Ok(root) => root,
        Err(e) => fail(&format!(
            "{ROOT_ENV}=`{}`: {e}; point it at your root's public-key file",
            root_path.display()
        )),
    };
    if root.is_test_only() && !debug_assertions {
        fail(&format!(
            "{ROOT_ENV}=`{}` is the TEST-ONLY root of `fixtures/`, whose private seed is \
             public: a release build must not trust it. Set {ROOT_ENV} to your own root's \
             public-key file (`ren3-issuer root init` writes one), for example\n    \
             {ROOT_ENV}=/path/to/root.pub cargo build --release -p ren3-client-cli",
            root_path.display()
        ));
    }

    let floor = floor_path.map(|path| {
        println!("cargo::rerun-if-changed={}", path.display());
        let text = read(FLOOR_ENV, &path);
        match RevocationList::open(text.trim(), &root) {
            Ok(list) => list,
            Err(e) => fail(&format!(
                "{FLOOR_ENV}=`{}` is not a revocation list signed by the root `{}`: {e}; \
                 point it at a revocation list that root signed, or unset it",
                path.display(),
                root.fingerprint()
            )),
        }
    });

    let key = root.public_key().to_bytes();
    let floor = match floor {
        Some(list) => format!("Some({:?})", list.token()),
        None => "None".to_owned(),
    };
    format!(
        "/// The pinned root's public key (`{ROOT_ENV}` at build time).\n\
         const PINNED_ROOT_PUBLIC_KEY: [u8; 32] = {key:?};\n\
         /// The revocation floor's token (`{FLOOR_ENV}`), verified under that root.\n\
         const REVOCATION_FLOOR: Option<&str> = {floor};\n"
    )
}

/// The path a variable names; unset and empty are the same.
fn path_from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn read(variable: &str, path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => fail(&format!(
            "{variable}=`{}`: cannot read it: {e}",
            path.display()
        )),
    }
}

fn fail(problem: &str) -> ! {
    eprintln!("error: {problem}");
    std::process::exit(1);
}
