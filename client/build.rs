//! Pinned builds: with `REN3_PINNED_TRUSTED_KEYS=/path/to/trusted-keys.json`
//! set at build time, the file is validated and embedded, and the client
//! ignores `license_trusted_keys` at run time.

use std::path::{Path, PathBuf};

const PINNED_ENV: &str = "REN3_PINNED_TRUSTED_KEYS";
const PINNED_CFG: &str = "ren3_pinned_trusted_keys";

fn main() {
    println!("cargo::rerun-if-env-changed={PINNED_ENV}");
    println!("cargo::rustc-check-cfg=cfg({PINNED_CFG})");
    let Some(path) = std::env::var_os(PINNED_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let path = PathBuf::from(path);
    println!("cargo::rerun-if-changed={}", path.display());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => fail(&path, &format!("cannot read it: {e}")),
    };
    if let Err(e) = ren3_shared::TrustedKeys::parse(&text) {
        fail(&path, &e.to_string());
    }
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        fail(&path, "cargo did not set OUT_DIR");
    };
    let target = Path::new(&out_dir).join("pinned-trusted-keys.json");
    if let Err(e) = std::fs::write(&target, &text) {
        fail(&path, &format!("cannot write `{}`: {e}", target.display()));
    }
    println!("cargo::rustc-cfg={PINNED_CFG}");
}

fn fail(path: &Path, problem: &str) -> ! {
    eprintln!(
        "error: {PINNED_ENV}=`{}`: {problem}; point it at the trusted-keys file from \
         `ren3-issuer keys export-public`, or unset it for a build that reads \
         license_trusted_keys at run time",
        path.display()
    );
    std::process::exit(1);
}
