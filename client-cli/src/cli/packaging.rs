//! `completions SHELL` and `man`: the shell completions and man pages the
//! Debian package installs, generated from this command line's grammar so
//! they never fall behind it (`packaging/check.sh` runs both).
//!
//! They write to stdout as they are, not through `escape`: a completion
//! script needs its tabs, and the text is our own grammar's.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;
use clap_complete::Shell;
use ren3_shared::terminal::{Form, escape};

#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// Write a page for the command and one for each subcommand
    /// (`ren3-client-request.1`, ...) into DIR, created if needed, and
    /// print their paths; without it, print the main page to stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// The program's name in the scripts and pages.
const NAME: &str = "ren3-client";

/// `completions SHELL`: the completion script of `command` on stdout.
pub(super) fn completions(mut command: clap::Command, args: &CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, NAME, &mut script);
    write_stdout(&script)
}

/// `man [--out-dir DIR]` for `command`.
pub(super) fn man(command: clap::Command, args: &ManArgs) -> Result<()> {
    let Some(dir) = &args.out_dir else {
        let mut page = Vec::new();
        page_of(command)
            .render(&mut page)
            .context("cannot render the man page")?;
        return write_stdout(&page);
    };
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut command = command.disable_help_subcommand(true);
    // Built first, so that each subcommand's display name is the whole
    // path (`ren3-client-request`), which names its page.
    command.build();
    let mut written = Vec::new();
    write_pages(&command, dir, &mut written)?;
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

/// The page of `command`, then of each of its subcommands, into `dir`.
fn write_pages(command: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let page = page_of(command.clone());
    let path = dir.join(page.get_filename());
    let mut roff = Vec::new();
    page.render(&mut roff)
        .with_context(|| format!("cannot render {}", path.display()))?;
    fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// A section 1 page whose footer names the version alone (not the commit
/// or the root), so that the same release gives the same pages.
fn page_of(command: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command)
        .source(format!("{NAME} {}", env!("CARGO_PKG_VERSION")))
        .manual("ReN3 offline licensing")
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}
