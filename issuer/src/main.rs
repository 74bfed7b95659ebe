//! `ren3-issuer`: see `ren3_issuer::cli`.

fn main() -> std::process::ExitCode {
    ren3_issuer::cli::main()
}
