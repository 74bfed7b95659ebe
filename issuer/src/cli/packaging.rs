//! `completions SHELL` and `man`: the shell completions and man pages the
//! Debian package installs, generated from this command line's grammar so
//! they never fall behind it (`packaging/check.sh` runs both).
//!
//! Unlike every other command, these write their output to stdout as it
//! is, not through `terminal`: a completion script needs its tabs, and the
//! text is our own grammar's, with nothing from a store or a user in it.

use std::fs;
use std::io::Write as _;

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::*;

#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// Write a page for the command and one for each subcommand
    /// (`ren3-issuer-license-create.1`, ...) into DIR, created if needed,
    /// and print their paths; without it, print the main page to stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// The program's name in the scripts and pages.
const NAME: &str = "ren3-issuer";

/// `completions SHELL`: the completion script on stdout.
pub(super) fn completions(args: &CompletionsArgs) -> Result<Outcome> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), NAME, &mut script);
    write_stdout(&script)?;
    Ok(Outcome::new(String::new()))
}

/// `man [--out-dir DIR]`.
pub(super) fn man(json: bool, args: &ManArgs) -> Result<Outcome> {
    let Some(dir) = &args.out_dir else {
        let mut page = Vec::new();
        page_of(Cli::command())
            .render(&mut page)
            .context("cannot render the man page")?;
        write_stdout(&page)?;
        return Ok(Outcome::new(String::new()));
    };
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut command = Cli::command().disable_help_subcommand(true);
    // Built first, so that each subcommand's display name is the whole
    // path (`ren3-issuer-license-create`), which names its page.
    command.build();
    let mut written = Vec::new();
    write_pages(&command, dir, &mut written)?;
    let lines: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    Ok(
        Outcome::new(result(json, &lines.join("\n"), &lines)?).note(format!(
            "wrote {} man pages to {}",
            lines.len(),
            dir.display()
        )),
    )
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

/// A section 1 page whose footer names the version without the commit, so
/// that the same release gives the same pages.
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
