//! The `ren3-issuer` command line: arguments in, library call, result out.
//!
//! The contract scripts rely on: a command's result, and only its result,
//! goes to stdout (as JSON with `--json`), so `KEY=$(ren3-issuer license
//! create ...)` works; messages for people go to stderr; an error prints
//! `error: ...` on stderr and exits 1; a usage error exits 2 (clap).
//! Everything this module prints goes through `terminal`, which shows
//! rather than sends the characters a terminal would obey.

use std::fmt::Write as _;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use ren3_shared::token::MAX_INPUT_LEN;
use ren3_shared::{ClockPolicy, LicenseKey, TrustRoot, timestamp};
use serde::Serialize;
use serde_json::json;

use crate::{present, web};
use ren3_issuer_core::atomic_file::{self, Existing};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::inspect::{self, Fields, Inspection, TrustSource};
use ren3_issuer_core::keystore::AtRest;
use ren3_issuer_core::licenses::{self, LicenseDetails, NewLicense, TermsEdit};
use ren3_issuer_core::passphrase::PassphraseSource;
use ren3_issuer_core::setup::{self, InitOptions, StorePaths};
use ren3_issuer_core::store::{LicenseStatus, LicenseSummary};
use ren3_issuer_core::{chain, devices, issuance, signing_keys, users};

mod args;
mod audit;
mod backup;
mod batch;
mod config;
mod console_users;
mod init;
mod issue;
mod keys;
mod license_commands;
mod output;
mod packaging;
mod seats;
mod serve;
mod terminal;
mod trust;

use args::*;
use console_users::*;
use init::*;
use issue::*;
use keys::*;
use license_commands::*;
use output::*;
use serve::*;
use terminal::{one_line, print_error, print_note, print_result};

/// Files the tool writes for others to read: payloads, certificates,
/// revocation lists, the root public key file.
const PUBLIC_FILE_MODE: u32 = 0o644;

/// What the configuration file gave that the parsed arguments do not hold
/// (`config::apply`), set once by [`main`].
static LOADED: std::sync::OnceLock<config::Loaded> = std::sync::OnceLock::new();

/// Passphrases come from `REN3_ISSUER_PASSPHRASE`, then (for signing keys)
/// the configuration file, then a prompt at a terminal.
fn passphrase_source() -> PassphraseSource {
    let configured = LOADED.get().and_then(|loaded| loaded.passphrase.clone());
    PassphraseSource::environment_configured_or_prompt(configured)
}

/// What a command produced.
struct Outcome {
    /// The result, for stdout.
    stdout: String,
    /// A message for the person at the terminal, for stderr.
    note: Option<String>,
    exit: ExitCode,
}

impl Outcome {
    fn new(stdout: String) -> Self {
        Self {
            stdout,
            note: None,
            exit: ExitCode::SUCCESS,
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// Parses the arguments, runs the command and reports, as the binary does.
pub fn main() -> ExitCode {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (command, loaded) =
        match config::apply(Cli::command(), &args, |name| std::env::var_os(name)) {
            Ok(applied) => applied,
            Err(e) => {
                // A configuration the operator must fix, as a usage error.
                print_error(&error_line(&e));
                return ExitCode::from(2);
            }
        };
    let matches = command.get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let _ = LOADED.set(loaded);
    let json = cli.json;
    match run(cli) {
        Ok(outcome) => {
            if let Some(note) = &outcome.note {
                print_note(note);
            }
            match print_result(&outcome.stdout, json) {
                Ok(()) => outcome.exit,
                Err(e) => {
                    print_error(&format!("cannot write the result to stdout: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            print_error(&error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error as the CLI prints it: each context, then the cause, and the
/// stable code of the core's error in the chain, if there is one, at the
/// end, as `[code]`: what a script matches on.
fn error_line(e: &anyhow::Error) -> String {
    match ren3_issuer_core::error::find_coded(e.as_ref()) {
        Some(coded) => format!("{e:#} [{}]", coded.code()),
        None => format!("{e:#}"),
    }
}

fn run(cli: Cli) -> Result<Outcome> {
    let paths = StorePaths::new(cli.db, cli.keys_dir);
    let json = cli.json;
    let now = timestamp::now();
    match cli.command {
        Command::Init(args) => init(&paths, json, &args, now),
        Command::Root(command) => trust::root(json, command, now),
        Command::Revocations(command) => trust::revocations(&paths, json, command, now),
        Command::Trust(command) => trust::trust(&paths, json, command),
        Command::Release { receipt } => seats::release(&paths, json, &receipt, now),
        Command::Keys(KeysCommand::Rotate {
            encrypt,
            root_dir,
            valid_days,
        }) => keys_rotate(&paths, json, encrypt, root_dir.as_deref(), valid_days, now),
        Command::Keys(KeysCommand::CertificationRequest {
            key_id,
            valid_days,
            out,
        }) => trust::certification_request(&paths, json, &key_id, valid_days, out.as_deref(), now),
        Command::Keys(KeysCommand::InstallCertificate { certificate }) => {
            trust::install_certificate(&paths, json, &certificate, now)
        }
        Command::Keys(KeysCommand::Retire { key_id }) => keys_retire(&paths, json, &key_id, now),
        Command::Keys(KeysCommand::Encrypt { key_id }) => keys_encrypt(&paths, json, &key_id, now),
        Command::Device(DeviceCommand::Release {
            device,
            force: _,
            reason,
        }) => seats::device_release(&paths, json, &device, &reason, now),
        Command::Keys(KeysCommand::List) => keys_list(&paths, json, now),
        Command::License(LicenseCommand::Create(args)) => license_create(&paths, json, args, now),
        Command::License(LicenseCommand::List { search }) => {
            license_list(&paths, json, search.as_deref())
        }
        Command::License(LicenseCommand::Show { key }) => license_show(&paths, json, &key),
        Command::Device(DeviceCommand::Add { license, label }) => {
            device_add(&paths, json, &license, label.as_deref(), now)
        }
        Command::Issue(args) => issue(&paths, json, &args, now),
        Command::Inspect(args) => inspect(&paths, json, &args, now),
        Command::License(LicenseCommand::Update(args)) => license_update(&paths, json, &args, now),
        Command::License(LicenseCommand::Suspend { key }) => {
            license_set_status(&paths, json, &key, LicenseStatus::Suspended, now)
        }
        Command::License(LicenseCommand::Reactivate { key }) => {
            license_set_status(&paths, json, &key, LicenseStatus::Active, now)
        }
        Command::License(LicenseCommand::Revoke { key }) => {
            license_set_status(&paths, json, &key, LicenseStatus::Revoked, now)
        }
        Command::User(UserCommand::Add { name, role }) => user_add(&paths, json, &name, &role, now),
        Command::User(UserCommand::Role { name, role }) => {
            user_role(&paths, json, &name, &role, now)
        }
        Command::User(UserCommand::Passwd { name }) => user_passwd(&paths, json, &name, now),
        Command::User(UserCommand::Remove { name }) => user_remove(&paths, json, &name, now),
        Command::User(UserCommand::List) => user_list(&paths, json),
        Command::Serve(args) => serve(&paths, &args),
        Command::Audit(command) => audit::audit(&paths, json, command),
        Command::Backup(args) => backup::backup(&paths, json, &args),
        Command::Restore(args) => backup::restore(&paths, json, &args),
        Command::Completions(args) => packaging::completions(&args),
        Command::Man(args) => packaging::man(json, &args),
    }
}

/// `value` as the pretty JSON `--json` prints (`terminal` escapes it).
fn to_json(value: &impl Serialize) -> Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("cannot render the result")?;
    text.push('\n');
    Ok(text)
}

/// The result in the chosen form: `text` (a line is added) or JSON.
fn result(json: bool, text: &str, value: &impl Serialize) -> Result<String> {
    if json {
        to_json(value)
    } else if text.is_empty() {
        Ok(String::new())
    } else {
        Ok(format!("{text}\n"))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use clap::error::ErrorKind;

    use super::{Cli, Command, KeysCommand};

    /// A key id is base64url, so one in 64 starts with `-`: it must read
    /// as the id, not as an unknown flag.
    #[test]
    fn a_key_id_may_start_with_a_hyphen() {
        for (command, id) in [("retire", "-_AbCdEfGh0"), ("encrypt", "--AbCdEfGh0")] {
            let cli = Cli::try_parse_from(["ren3-issuer", "keys", command, id])
                .unwrap_or_else(|e| panic!("keys {command} {id}: {e}"));
            let key_id = match cli.command {
                Command::Keys(KeysCommand::Retire { key_id } | KeysCommand::Encrypt { key_id }) => {
                    key_id
                }
                other => panic!("keys {command} parsed as {other:?}"),
            };
            assert_eq!(key_id, id, "keys {command}");
        }
        // Help and the global flags still work around it.
        let help = Cli::try_parse_from(["ren3-issuer", "keys", "encrypt", "--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        let cli = Cli::try_parse_from(["ren3-issuer", "--json", "keys", "retire", "-_AbCdEfGh0"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.json);
    }
}
