//! Shell completions and man pages, generated from a command line's clap
//! grammar so that they never fall behind it: what `ren3-issuer` and
//! `ren3-client` print for their `completions SHELL` and `man` commands,
//! and what the Debian packages install (`packaging/check.sh`).
//!
//! The two binaries share the arguments ([`CompletionsArgs`], [`ManArgs`])
//! and the generation; each prints the result its own way. They also share
//! the [`COMMIT`] their `--version` names.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Command};
pub use clap_complete::Shell;

/// The commit the binaries were built from: `REN3_COMMIT` at build time
/// when set (a build from a source archive, which has no checkout), else
/// `git describe` of the checkout, ending in `-modified` when it had changes
/// not committed; `unknown` without either.
pub const COMMIT: &str = match option_env!("REN3_COMMIT") {
    Some(commit) => commit,
    None => git_version::git_version!(
        args = ["--always", "--dirty=-modified", "--abbrev=12"],
        fallback = "unknown"
    ),
};

/// `completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// `man [--out-dir DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write a page for the command and one for each subcommand
    /// (`<command>-<subcommand>.1`, such as `ren3-issuer-license-create.1`)
    /// into DIR, created if needed, and print their paths; without it,
    /// print the main page to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// A page that could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A page could not be rendered or written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The page's file, or `-` for stdout.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard output was closed or could not take the text.
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
}

/// Writes a script or a page to stdout as it is, and flushes it. Not
/// through `ren3_shared::terminal::escape`, as every other output of the
/// two binaries goes: a completion script needs its tabs, and the text is
/// our own grammar's, with nothing from a store or a user in it.
///
/// # Errors
///
/// [`DocsError::Stdout`] if stdout is closed or full.
pub fn write_stdout(text: &[u8]) -> Result<(), DocsError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text)
        .and_then(|()| stdout.flush())
        .map_err(DocsError::Stdout)
}

/// The completion script of `command`, run as `name`, for `shell`.
pub fn completion_script(mut command: Command, name: &str, shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    script
}

/// The main page of `command`, run as `name`, in roff.
///
/// # Errors
///
/// [`DocsError::Write`] if rendering fails.
pub fn main_page(command: Command, name: &str) -> Result<Vec<u8>, DocsError> {
    let mut roff = Vec::new();
    page_of(command, name)
        .render(&mut roff)
        .map_err(|source| DocsError::Write {
            path: PathBuf::from("-"),
            source,
        })?;
    Ok(roff)
}

/// Writes the page of `command` and one for each subcommand, at every
/// depth, into `dir` (created if needed); returns their paths in that
/// order. Hidden subcommands and `help` get none.
///
/// # Errors
///
/// The directory or a page that could not be written, named.
pub fn write_pages(command: Command, name: &str, dir: &Path) -> Result<Vec<PathBuf>, DocsError> {
    fs::create_dir_all(dir).map_err(|source| DocsError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut command = command.disable_help_subcommand(true);
    // Built first, so that each subcommand's display name is the whole
    // path (`ren3-issuer-license-create`), which names its page.
    command.build();
    let mut written = Vec::new();
    write_tree(&command, name, dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    command: &Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), DocsError> {
    let page = page_of(command.clone(), name);
    let path = dir.join(page.get_filename());
    let mut roff = Vec::new();
    page.render(&mut roff)
        .and_then(|()| fs::write(&path, roff))
        .map_err(|source| DocsError::Write {
            path: path.clone(),
            source,
        })?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_tree(sub, name, dir, written)?;
    }
    Ok(())
}

/// A section 1 page whose footer names the package version alone (not the
/// commit or the trust root), so that one release gives the same pages
/// wherever it is built.
fn page_of(command: Command, name: &str) -> clap_mangen::Man {
    clap_mangen::Man::new(command)
        .source(format!("{name} {}", env!("CARGO_PKG_VERSION")))
        .manual("ReN3 offline licensing")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grammar() -> Command {
        Command::new("tool")
            .about("A tool")
            .subcommand(
                Command::new("license")
                    .about("Licenses")
                    .subcommand(Command::new("create").about("Create one")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn a_page_for_every_visible_command_at_every_depth() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_pages(grammar(), "tool", &dir.path().join("man")).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["tool.1", "tool-license.1", "tool-license-create.1"]);
        let page = fs::read_to_string(&written[2]).unwrap();
        assert!(page.contains(".TH tool-license-create 1"), "{page}");
        assert!(page.contains(&format!("tool {}", env!("CARGO_PKG_VERSION"))));
    }

    #[test]
    fn completions_and_the_main_page_name_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion_script(grammar(), "tool", shell)).unwrap();
            assert!(
                script.contains("license") && script.contains("create"),
                "{shell}"
            );
        }
        let page = String::from_utf8(main_page(grammar(), "tool").unwrap()).unwrap();
        assert!(
            page.contains(".TH tool 1") && page.contains("license"),
            "{page}"
        );
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, "").unwrap();
        let err = write_pages(grammar(), "tool", &file.join("man")).unwrap_err();
        assert!(err.to_string().contains("a-file"), "{err}");
    }
}
