//! `completions SHELL` and `man`: the shell completions and man pages the
//! Debian package installs, generated from this command line's grammar by
//! `ren3-cli-docs` so they never fall behind it (`packaging/check.sh` runs
//! both).
//!
//! They write to stdout as they are ([`ren3_cli_docs::write_stdout`]).

use anyhow::Result;
use ren3_cli_docs::write_stdout;
pub(super) use ren3_cli_docs::{CompletionsArgs, ManArgs};
use ren3_shared::terminal::{Form, escape};

/// The program's name in the scripts and pages.
const NAME: &str = "ren3-client";

/// `completions SHELL`: the completion script of `command` on stdout.
pub(super) fn completions(command: clap::Command, args: &CompletionsArgs) -> Result<()> {
    Ok(write_stdout(&ren3_cli_docs::completion_script(
        command, NAME, args.shell,
    ))?)
}

/// `man [--out-dir DIR]` for `command`: the main page on stdout, or every
/// page into DIR and their paths on stdout.
pub(super) fn man(command: clap::Command, args: &ManArgs) -> Result<()> {
    let Some(dir) = &args.out_dir else {
        return Ok(write_stdout(&ren3_cli_docs::main_page(command, NAME)?)?);
    };
    let written = ren3_cli_docs::write_pages(command, NAME, dir)?;
    let list: String = written
        .iter()
        .map(|path| format!("{}\n", path.display()))
        .collect();
    // The paths hold the operator's DIR: shown, not obeyed, by a terminal.
    write_stdout(escape(&list, Form::Lines).as_bytes())?;
    eprintln!(
        "{}",
        escape(
            &format!("wrote {} man pages to {}", written.len(), dir.display()),
            Form::Line
        )
    );
    Ok(())
}
