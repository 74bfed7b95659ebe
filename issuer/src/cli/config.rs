//! The issuer's configuration file: TOML, layered under the environment
//! and the command line.
//!
//! Each setting comes from the first of: a flag, its environment variable,
//! the file, the built-in default. The file's values become the command
//! line's defaults before it is parsed ([`apply`]), so clap decides the
//! order, every value goes through the flag's own parser, and the parsed
//! [`Cli`] stays the one typed struct the commands read.
//!
//! The file is `--config FILE` (or `REN3_ISSUER_CONFIG`); without either,
//! [`DEFAULT_PATH`] if it exists. A file that is named but missing, that is
//! not valid TOML, that has a key this build does not know, or a value its
//! flag refuses stops the command before it does anything, with the file,
//! the line and the key at fault.
//!
//! ```toml
//! db = "/var/lib/ren3-issuer/ren3-issuer.db"
//! keys_dir = "/var/lib/ren3-issuer/keys"
//! passphrase_file = "/etc/ren3/issuer.passphrase"   # 0600
//!
//! [serve]
//! listen = "127.0.0.1:8080"
//! allowed_hosts = ["issuer.example"]
//! behind_tls = true
//! trusted_proxies = ["127.0.0.1"]
//! header_timeout = "10s"
//! max_connections = 4096
//! ```
//!
//! The signing keys' passphrase may come from `passphrase_file`, a file of
//! its own readable by its owner only, or, with a warning every time,
//! from `passphrase` in clear. `REN3_ISSUER_PASSPHRASE` still wins over
//! both. The root's passphrase never comes from this file: the root lives
//! on another machine.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Arg, Command};
use ren3_issuer_core::passphrase::Passphrase;
use serde::Deserialize;
use toml::Spanned;

/// Where the configuration is read from when neither `--config` nor
/// `REN3_ISSUER_CONFIG` names a file, if it exists.
pub const DEFAULT_PATH: &str = "/etc/ren3/issuer.toml";

/// The variable that names the file, as `--config` does.
pub const CONFIG_ENV: &str = "REN3_ISSUER_CONFIG";

/// The file as written: every key optional, no other key allowed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    db: Option<Spanned<String>>,
    keys_dir: Option<Spanned<String>>,
    /// In clear: allowed, with a warning.
    passphrase: Option<Spanned<String>>,
    passphrase_file: Option<Spanned<String>>,
    serve: Option<Serve>,
}

/// `[serve]`: the console's settings, named as `serve`'s flags are (with
/// `_` for `-`, and the plural for a flag given once per value).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Serve {
    listen: Option<Spanned<String>>,
    behind_tls: Option<Spanned<bool>>,
    allowed_hosts: Option<Spanned<Vec<String>>>,
    header_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<u64>>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    metrics_listen: Option<Spanned<String>>,
}

/// What the file gave beyond the command line's defaults.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// The signing keys' passphrase from the file, if it gave one.
    pub passphrase: Option<Passphrase>,
}

/// A value as the command line would spell it, with where it came from.
struct Setting {
    key: String,
    line: usize,
    values: Vec<String>,
}

/// Reads the configuration file named by `args` (the process's arguments)
/// or the environment, if any, and makes its values `command`'s defaults.
///
/// # Errors
///
/// A named file that cannot be read, or a file with a problem: its path,
/// line and key, and what to do.
pub(super) fn apply(
    command: Command,
    args: &[OsString],
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<(Command, Loaded)> {
    let Some((path, named)) = which_file(args, &env) else {
        return Ok((command, Loaded::default()));
    };
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((command, Loaded::default()));
        }
        Err(e) => bail!(
            "cannot read the configuration file {}: {e}; give an existing file with --config, \
             or unset {CONFIG_ENV}",
            path.display()
        ),
    };
    let shown = path.display().to_string();
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |span| line_of(&text, span.start));
        let key = key_on_line(&text, line).map_or_else(String::new, |key| format!(" `{key}`:"));
        anyhow::anyhow!(
            "{shown}: line {line}:{key} {}; fix the file (the README lists its keys)",
            e.message()
        )
    })?;

    let mut top = Vec::new();
    let mut serve = Vec::new();
    push_string(&mut top, "db", &file.db, &text);
    push_string(&mut top, "keys_dir", &file.keys_dir, &text);
    if let Some(settings) = &file.serve {
        push_string(&mut serve, "listen", &settings.listen, &text);
        if let Some(value) = &settings.behind_tls {
            serve.push(setting(
                "behind_tls",
                value,
                &text,
                vec![value.get_ref().to_string()],
            ));
        }
        push_list(&mut serve, "allowed_hosts", &settings.allowed_hosts, &text);
        push_string(
            &mut serve,
            "header_timeout",
            &settings.header_timeout,
            &text,
        );
        if let Some(value) = &settings.max_connections {
            serve.push(setting(
                "max_connections",
                value,
                &text,
                vec![value.get_ref().to_string()],
            ));
        }
        push_list(
            &mut serve,
            "trusted_proxies",
            &settings.trusted_proxies,
            &text,
        );
        push_string(
            &mut serve,
            "metrics_listen",
            &settings.metrics_listen,
            &text,
        );
    }

    let mut command = command;
    for setting in &top {
        command = default_from_file(command, setting, &shown)?;
    }
    if !serve.is_empty() {
        let mut failure = None;
        command = command.mut_subcommand("serve", |sub| {
            let mut sub = sub;
            for setting in &serve {
                match default_from_file(sub.clone(), setting, &shown) {
                    Ok(updated) => sub = updated,
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            sub
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }

    let passphrase = passphrase(&file, &path, &text)?;
    Ok((
        command,
        Loaded {
            path: Some(path),
            passphrase,
        },
    ))
}

/// The file `--config` or `REN3_ISSUER_CONFIG` names (`true`), else the
/// default path (`false`).
fn which_file(
    args: &[OsString],
    env: &impl Fn(&str) -> Option<OsString>,
) -> Option<(PathBuf, bool)> {
    let mut given = None;
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            given = args.next().map(PathBuf::from);
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            given = Some(PathBuf::from(value));
        }
    }
    if let Some(path) =
        given.or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
    {
        return Some((path, true));
    }
    Some((PathBuf::from(DEFAULT_PATH), false))
}

/// `command` with the argument `setting.key` defaulting to the file's
/// value, once that value passed the argument's own parser.
fn default_from_file(command: Command, setting: &Setting, file: &str) -> Result<Command> {
    let Some(arg) = command
        .get_arguments()
        .find(|arg| arg.get_id() == setting.key.as_str())
        .cloned()
    else {
        bail!(
            "{file}: line {}: `{}` is not a setting of this build; remove it",
            setting.line,
            setting.key
        );
    };
    for value in &setting.values {
        check_value(&arg, value).with_context(|| {
            format!(
                "{file}: line {}: `{}` = `{value}` is refused",
                setting.line, setting.key
            )
        })?;
    }
    let values: Vec<clap::builder::OsStr> = setting
        .values
        .iter()
        .map(|v| clap::builder::OsStr::from(v.as_str().to_owned()))
        .collect();
    Ok(command.mut_arg(setting.key.clone(), |arg| arg.default_values(values)))
}

/// Runs `value` through `arg`'s own parser, alone: a command of that one
/// argument, without its variable or default. A flag that takes no value
/// (`behind_tls`) was typed by the file's `bool` already.
fn check_value(arg: &Arg, value: &str) -> Result<()> {
    let Some(long) = arg.get_long().filter(|_| arg.get_action().takes_values()) else {
        return Ok(());
    };
    let probe = arg
        .clone()
        .env(None::<&'static str>)
        .default_value(None::<&'static str>)
        .required(false);
    Command::new("ren3-issuer")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--{long}={value}")])
        .map(drop)
        .map_err(|e| {
            // clap's message starts with "error: " and ends with usage.
            let message = e.to_string();
            let message = message.trim_start_matches("error: ");
            anyhow::anyhow!(message.lines().next().unwrap_or(message).to_owned())
        })
}

/// The signing keys' passphrase the file gives: from `passphrase_file`,
/// which must be readable by its owner only, or from `passphrase` in
/// clear, with a warning.
fn passphrase(file: &File, path: &Path, text: &str) -> Result<Option<Passphrase>> {
    let shown = path.display();
    match (&file.passphrase, &file.passphrase_file) {
        (Some(_), Some(second)) => bail!(
            "{shown}: line {}: `passphrase_file` and `passphrase` are both set; keep one \
             (passphrase_file)",
            line_of(text, second.span().start)
        ),
        (Some(clear), None) => {
            eprintln!(
                "warning: {shown} holds the signing keys' passphrase in clear (`passphrase`, \
                 line {}): whoever reads the file can unseal the keys. Move it to a file of its \
                 own readable by this user only and name it with `passphrase_file`, or set \
                 REN3_ISSUER_PASSPHRASE",
                line_of(text, clear.span().start)
            );
            Passphrase::new(clear.get_ref().clone())
                .map(Some)
                .with_context(|| format!("{shown}: `passphrase`"))
        }
        (None, Some(secret)) => {
            let secret_path = Path::new(secret.get_ref());
            let line = line_of(text, secret.span().start);
            let meta = fs::metadata(secret_path).with_context(|| {
                format!(
                    "{shown}: line {line}: cannot read passphrase_file {}",
                    secret_path.display()
                )
            })?;
            if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
                bail!(
                    "{shown}: line {line}: passphrase_file {} must be a file readable by its \
                     owner only (chmod 600 {0})",
                    secret_path.display()
                );
            }
            let text = fs::read_to_string(secret_path).with_context(|| {
                format!(
                    "{shown}: line {line}: cannot read passphrase_file {}",
                    secret_path.display()
                )
            })?;
            // One line: the trailing line break an editor adds is not part
            // of the passphrase.
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            Passphrase::new(text.to_owned())
                .map(Some)
                .with_context(|| format!("{shown}: line {line}: passphrase_file"))
        }
        (None, None) => Ok(None),
    }
}

fn push_string(out: &mut Vec<Setting>, key: &str, value: &Option<Spanned<String>>, text: &str) {
    if let Some(value) = value {
        out.push(setting(key, value, text, vec![value.get_ref().clone()]));
    }
}

fn push_list(out: &mut Vec<Setting>, key: &str, value: &Option<Spanned<Vec<String>>>, text: &str) {
    if let Some(value) = value {
        out.push(setting(key, value, text, value.get_ref().clone()));
    }
}

fn setting<T>(key: &str, value: &Spanned<T>, text: &str, values: Vec<String>) -> Setting {
    Setting {
        key: key.to_owned(),
        line: line_of(text, value.span().start),
        values,
    }
}

/// The key a `key = value` line sets, to name it in an error: never the
/// value, which may be a passphrase.
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    (!key.is_empty() && key.chars().all(plain)).then_some(key)
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_flag_of_serve_has_its_key_in_the_file() {
        let command = super::super::Cli::command();
        let serve = command.find_subcommand("serve").unwrap();
        let mut flags: Vec<&str> = serve
            .get_arguments()
            .map(|arg| arg.get_id().as_str())
            .filter(|id| !["help", "version"].contains(id))
            .collect();
        flags.sort_unstable();
        // serde lists the keys `[serve]` takes when it meets another.
        let refusal = toml::from_str::<File>("[serve]\nnot_a_key = 1\n")
            .unwrap_err()
            .message()
            .to_owned();
        let listed = refusal.split("expected one of").nth(1).unwrap();
        let mut keys: Vec<&str> = listed
            .split(',')
            .map(|key| key.trim().trim_matches('`'))
            .collect();
        keys.sort_unstable();
        assert_eq!(
            flags, keys,
            "a flag of serve without its [serve] key, or the reverse"
        );
    }

    #[test]
    fn an_error_names_the_key_of_its_line_but_never_the_value() {
        let text = "db = \"x\"\npassphrase = 12345\n[serve]\n";
        assert_eq!(key_on_line(text, 1), Some("db"));
        assert_eq!(key_on_line(text, 2), Some("passphrase"));
        assert_eq!(key_on_line(text, 3), None);
        assert_eq!(key_on_line(text, 9), None);
        assert_eq!(key_on_line(text, 0), None);
    }

    #[test]
    fn lines_are_counted_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
