//! `completions SHELL` and `man`: the shell completions and man pages the
//! Debian package installs, generated from this command line's grammar by
//! `ren3-cli-docs` so they never fall behind it (`packaging/check.sh` runs
//! both).
//!
//! Unlike every other command, these write their output to stdout as it
//! is ([`ren3_cli_docs::write_stdout`]).

use clap::CommandFactory as _;
use ren3_cli_docs::write_stdout;
pub(super) use ren3_cli_docs::{CompletionsArgs, ManArgs};

use super::*;

/// The program's name in the scripts and pages.
const NAME: &str = "ren3-issuer";

/// `completions SHELL`: the completion script on stdout.
pub(super) fn completions(args: &CompletionsArgs) -> Result<Outcome> {
    write_stdout(&ren3_cli_docs::completion_script(
        Cli::command(),
        NAME,
        args.shell,
    ))?;
    Ok(Outcome::new(String::new()))
}

/// `man [--out-dir DIR]`: the main page on stdout, or every page into DIR
/// and their paths as the result.
pub(super) fn man(json: bool, args: &ManArgs) -> Result<Outcome> {
    let Some(dir) = &args.out_dir else {
        write_stdout(&ren3_cli_docs::main_page(Cli::command(), NAME)?)?;
        return Ok(Outcome::new(String::new()));
    };
    let written = ren3_cli_docs::write_pages(Cli::command(), NAME, dir)?;
    let lines: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    Ok(
        Outcome::new(result(json, &lines.join("\n"), &lines)?).note(format!(
            "wrote {} man pages to {}",
            lines.len(),
            dir.display()
        )),
    )
}
