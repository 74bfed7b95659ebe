//! The `ren3-issuer` command line: arguments in, library call, result out.
//!
//! The contract scripts rely on: a command's result, and only its result,
//! goes to stdout (as JSON with `--json`), so `KEY=$(ren3-issuer license
//! create ...)` works; messages for people go to stderr; an error prints
//! `error: ...` on stderr and exits 1; a usage error exits 2 (clap).

use std::fmt::Write as _;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use ren3_shared::token::MAX_INPUT_LEN;
use ren3_shared::{ClockPolicy, LicenseKey, TrustRoot, timestamp};
use serde::Serialize;
use serde_json::json;

use crate::web;
use ren3_issuer_core::atomic_file::{self, Existing};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::inspect::{self, Fields, Inspection, TrustSource};
use ren3_issuer_core::keystore::AtRest;
use ren3_issuer_core::licenses::{self, LicenseDetails, NewLicense, TermsEdit};
use ren3_issuer_core::setup::{self, InitOptions, StorePaths};
use ren3_issuer_core::store::{LicenseStatus, LicenseSummary};
use ren3_issuer_core::{chain, devices, issuance, signing_keys, users};

mod batch;
mod lifecycle;
mod trust;

/// Files the tool writes for others to read: payloads, certificates,
/// revocation lists, the root public key file.
const PUBLIC_FILE_MODE: u32 = 0o644;

#[derive(Debug, Parser)]
#[command(
    name = "ren3-issuer",
    version,
    about = "The ReN3 vendor tool: license keys, device ids and signed license payloads"
)]
struct Cli {
    /// The issuer store (an SQLite file).
    #[arg(
        long,
        global = true,
        env = "REN3_ISSUER_DB",
        value_name = "PATH",
        default_value = "ren3-issuer.db"
    )]
    db: PathBuf,
    /// The directory of the private signing keys [default: <PATH>.keys]
    #[arg(long, global = true, env = "REN3_ISSUER_KEYS", value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Print each result as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the store and its first signing key, certified by the root in
    /// --root-dir (created there if it holds none); print the key id.
    Init(InitArgs),
    /// The offline root key: only these commands and `init` open its
    /// directory.
    #[command(subcommand)]
    Root(trust::RootCommand),
    /// Revocation lists the root signed.
    #[command(subcommand)]
    Revocations(trust::RevocationsCommand),
    /// The store's trust root, for building clients.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Free the seat a customer's release receipt gives back.
    Release {
        /// The receipt as the customer sent it; `-` reads stdin.
        #[arg(long, value_name = "FILE|-")]
        receipt: String,
    },
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Licenses.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Devices (seats) of a license.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Turn a customer's license request into a signed license payload.
    Issue(IssueArgs),
    /// Show what a token holds and whether it verifies (exit 0 if it does,
    /// 1 if not): requests, payloads (with their chain), receipts,
    /// certificates, revocation lists and certification requests.
    Inspect(InspectArgs),
    /// Users of the web console.
    #[command(subcommand)]
    User(UserCommand),
    /// Run the web console.
    Serve(ServeArgs),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a console user; the password is read from stdin (one line,
    /// at least 12 characters).
    Add { name: String },
    /// Remove a console user and end their sessions.
    Remove { name: String },
    /// List the console users.
    List,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// The address and port to listen on.
    #[arg(
        long,
        env = "REN3_ISSUER_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    listen: String,
    /// The console is reached through a TLS-terminating proxy: mark the
    /// session cookie Secure.
    #[arg(long, env = "REN3_ISSUER_BEHIND_TLS")]
    behind_tls: bool,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// The root key's own directory (mode 0700): a new root is made there
    /// if it holds no root.key, else that root is adopted. Keep it offline.
    #[arg(long, value_name = "DIR")]
    root_dir: PathBuf,
    /// Keep a new root key in plain text instead of sealing it with a
    /// passphrase (REN3_ROOT_PASSPHRASE, or asked for): for tests and demos.
    #[arg(long)]
    plain_root: bool,
    /// Encrypt the first signing key with a passphrase (from
    /// REN3_ISSUER_PASSPHRASE, or asked for at the terminal).
    #[arg(long)]
    encrypt: bool,
    /// Days the first key's certificate lasts.
    #[arg(long, value_name = "N", default_value_t = signing_keys::DEFAULT_KEY_VALID_DAYS)]
    key_valid_days: u32,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List the signing keys with their certificates.
    List,
    /// Create a new signing key; print its id. It signs once its
    /// certificate is installed (at once with --root-dir).
    Rotate {
        /// Encrypt its private key with a passphrase.
        #[arg(long)]
        encrypt: bool,
        /// Certify it at once with the root in DIR (a root on this machine).
        #[arg(long, value_name = "DIR")]
        root_dir: Option<PathBuf>,
        /// Days its certificate lasts, with --root-dir.
        #[arg(long, value_name = "N", requires = "root_dir",
              default_value_t = signing_keys::DEFAULT_KEY_VALID_DAYS)]
        valid_days: u32,
    },
    /// Write the certification request of a signing key, for the root to
    /// certify (`root certify`).
    CertificationRequest {
        /// The key id, as `keys list` shows it.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
        /// Days the certificate should last.
        #[arg(long, value_name = "N", default_value_t = signing_keys::DEFAULT_KEY_VALID_DAYS)]
        valid_days: u32,
        /// Write the request here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Install the certificate the root made for a signing key; the newest
    /// certified key signs from then on.
    InstallCertificate {
        /// The certificate; `-` reads stdin.
        #[arg(value_name = "FILE|-")]
        certificate: String,
    },
    /// Retire a signing key: it signs nothing more, and clients refuse
    /// payloads it would sign from now on.
    Retire {
        /// The key id, as `keys list` shows it.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
    /// Encrypt the private key of a signing key with a passphrase.
    Encrypt {
        /// The key id, as `keys list` shows it.
        #[arg(allow_hyphen_values = true)]
        key_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum LicenseCommand {
    /// Create a license; print its key (shown this once only).
    Create(CreateArgs),
    /// List licenses with their seats.
    List {
        /// Only licenses whose customer name or key starts with TEXT (ignoring
        /// case; the key with or without `REN3K1-`), or whose whole key or
        /// key fingerprint is TEXT.
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
    },
    /// Show a license, its devices and its issuances.
    Show {
        /// The license key, in any spelling.
        key: String,
    },
    /// Change a license's features, limits or expiry; what is not given
    /// stays as it is.
    Update(UpdateArgs),
    /// Suspend a license: no payload is issued for it until reactivated.
    Suspend {
        /// The license key, in any spelling.
        key: String,
    },
    /// Make a suspended license active again.
    Reactivate {
        /// The license key, in any spelling.
        key: String,
    },
    /// Revoke a license, for good.
    Revoke {
        /// The license key, in any spelling.
        key: String,
    },
}

#[derive(Debug, Args)]
struct UpdateArgs {
    /// The license key, in any spelling.
    key: String,
    /// The new features, comma-separated; `--features ""` removes all.
    #[arg(long, value_name = "A,B")]
    features: Option<String>,
    /// A numeric limit; repeat for several. Replaces all limits.
    #[arg(
        long = "limit",
        value_name = "NAME=VALUE",
        conflicts_with = "no_limits"
    )]
    limits: Vec<String>,
    /// Remove all limits.
    #[arg(long)]
    no_limits: bool,
    /// YYYY-MM-DD (valid through that UTC day), an RFC 3339 time, or `never`.
    #[arg(long, value_name = "DATE")]
    expires: Option<String>,
    /// Days payloads keep working after the expiry (0 to 366).
    #[arg(long, value_name = "N")]
    grace_days: Option<u64>,
    /// On a clock that looks wound back, `advisory` only warns and
    /// `enforcing` makes the client refuse licensed work.
    #[arg(long, value_name = "POLICY")]
    clock_policy: Option<ClockPolicy>,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The customer's name.
    #[arg(long)]
    customer: String,
    /// Features, comma-separated (a-z, 0-9, `.`, `_`, `-`).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    features: Vec<String>,
    /// A numeric limit; repeat for several.
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    limits: Vec<String>,
    /// YYYY-MM-DD (valid through that UTC day) or an RFC 3339 time
    /// [default: never expires]
    #[arg(long, value_name = "DATE")]
    expires: Option<String>,
    /// How many installations may hold the license at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    max_devices: u32,
    /// Days payloads keep working after the expiry (0 to 366).
    #[arg(long, value_name = "N", default_value_t = 0)]
    grace_days: u64,
    /// On a clock that looks wound back, `advisory` only warns and
    /// `enforcing` makes the client refuse licensed work.
    #[arg(long, value_name = "POLICY", default_value = "advisory")]
    clock_policy: ClockPolicy,
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Register a device for a license; print its client_device_id.
    Add {
        /// The license key, in any spelling.
        #[arg(long, value_name = "KEY")]
        license: String,
        /// A note for the vendor, e.g. where the device runs.
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
    },
    /// Free a device's seat without a release receipt, e.g. for a lost
    /// machine; recorded as forced. With a receipt, use `release`.
    Release {
        /// The client device id.
        #[arg(long, value_name = "ID")]
        device: String,
        /// Required: there is no receipt proving the installation stopped.
        #[arg(long, required = true)]
        force: bool,
        /// Why, for the audit log, e.g. "machine stolen".
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// The request as the customer sent it; `-` reads stdin, which may hold
    /// several (one token a line, or armoured blocks); a directory issues
    /// every file in it, in name order.
    #[arg(long, value_name = "FILE|DIR|-")]
    request: String,
    /// Write the payload here instead of to stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "out_dir")]
    out: Option<PathBuf>,
    /// Write one payload file per request here, named after the request
    /// file (`NAME.payload`) or, from stdin, the request id.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Requests issued per transaction when there are several.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The token; `-` reads stdin.
    #[arg(value_name = "FILE|-")]
    input: String,
    /// Check against this root public key file (root.pub) instead of the
    /// store's root.
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(outcome) => {
            if let Some(note) = &outcome.note {
                eprintln!("{note}");
            }
            match io::stdout().lock().write_all(outcome.stdout.as_bytes()) {
                Ok(()) => outcome.exit,
                Err(e) => {
                    eprintln!("error: cannot write the result to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error as the CLI prints it: each context, then the cause, and the
/// stable code of the core's error in the chain, if there is one, at the
/// end, as `[code]`: what a script matches on.
fn error_line(e: &anyhow::Error) -> String {
    let line = format!("{e:#}");
    match ren3_issuer_core::error::find_coded(e.as_ref()) {
        Some(coded) if !line.ends_with(&format!("[{}]", coded.code())) => {
            format!("{line} [{}]", coded.code())
        }
        _ => line,
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
        Command::Release { receipt } => lifecycle::release(&paths, json, &receipt, now),
        Command::Keys(KeysCommand::Rotate {
            encrypt,
            root_dir,
            valid_days,
        }) => lifecycle::keys_rotate(&paths, json, encrypt, root_dir.as_deref(), valid_days, now),
        Command::Keys(KeysCommand::CertificationRequest {
            key_id,
            valid_days,
            out,
        }) => trust::certification_request(&paths, json, &key_id, valid_days, out.as_deref(), now),
        Command::Keys(KeysCommand::InstallCertificate { certificate }) => {
            trust::install_certificate(&paths, json, &certificate, now)
        }
        Command::Keys(KeysCommand::Retire { key_id }) => {
            lifecycle::keys_retire(&paths, json, &key_id, now)
        }
        Command::Keys(KeysCommand::Encrypt { key_id }) => {
            lifecycle::keys_encrypt(&paths, json, &key_id, now)
        }
        Command::Device(DeviceCommand::Release {
            device,
            force: _,
            reason,
        }) => lifecycle::device_release(&paths, json, &device, &reason, now),
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
        Command::User(UserCommand::Add { name }) => user_add(&paths, json, &name, now),
        Command::User(UserCommand::Remove { name }) => user_remove(&paths, json, &name, now),
        Command::User(UserCommand::List) => user_list(&paths, json),
        Command::Serve(args) => serve(&paths, &args),
    }
}

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

fn init(paths: &StorePaths, json: bool, args: &InitArgs, now: i64) -> Result<Outcome> {
    let at_rest = |encrypted: bool| {
        if encrypted {
            AtRest::Encrypted
        } else {
            AtRest::Plain
        }
    };
    let mut options = InitOptions::new(args.root_dir.clone());
    options.root_at_rest = at_rest(!args.plain_root);
    options.root_passphrase = lifecycle::passphrase_source();
    options.at_rest = at_rest(args.encrypt);
    options.passphrase = lifecycle::passphrase_source();
    options.key_valid_days = args.key_valid_days;
    let made =
        setup::init(paths, &options, &Actor::cli(), now).context("nothing was initialised")?;
    let key_id = made.key.key_id.to_string();
    let window = &made.certificate.body;
    let stdout = result(
        json,
        &key_id,
        &json!({
            "keyId": key_id,
            "publicKey": made.key.public_key,
            "db": paths.db,
            "keysDir": paths.keys_dir,
            "keyFile": made.key_file,
            "rootDir": made.root_dir,
            "rootCreated": made.root_created,
            "rootKeyId": made.root.key_id(),
            "rootFingerprint": made.root.fingerprint(),
            "rootPublicFile": made.root_public_file,
            "certificate": {
                "notBefore": timestamp::format(window.not_before),
                "notAfter": timestamp::format(window.not_after),
            },
            "revocationsVersion": made.revocations_version,
        }),
    )?;
    let root_how = if made.root_created {
        if args.plain_root {
            "created a new root (NOT sealed: --plain-root)"
        } else {
            "created a new root, sealed with a passphrase,"
        }
    } else {
        "adopted the root"
    };
    Ok(Outcome::new(stdout).note(format!(
        "created the issuer store {db} and signing key {key_id}, certified until {until}.\n\
         - the signing keys are in {keys}: back up that directory (encrypted), a lost key \
         cannot be recovered;\n\
         - {root_how} in {root}: root {root_id}, fingerprint {fingerprint}. That directory \
         belongs OFFLINE: move it to a machine that never runs `serve`, and keep a backup; \
         only `ren3-issuer root ...` and `init` ever open it;\n\
         - build clients pinned to {public}: REN3_TRUST_ROOT={public} cargo build --release \
         -p ren3-client",
        db = paths.db.display(),
        until = timestamp::format(window.not_after),
        keys = paths.keys_dir.display(),
        root = made.root_dir.display(),
        root_id = made.root.key_id(),
        fingerprint = made.root.fingerprint(),
        public = made.root_public_file.display(),
    )))
}

fn keys_list(paths: &StorePaths, json: bool, now: i64) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let keys = signing_keys::list(&store)?;
    let at_rest = lifecycle::private_keys_at_rest(paths, &keys);
    let mut table = Table::new([
        "KEY ID",
        "CREATED",
        "STATUS",
        "CERTIFIED",
        "PRIVATE KEY",
        "PUBLIC KEY",
    ]);
    for (entry, at_rest) in keys.iter().zip(&at_rest) {
        let key = &entry.key;
        let status = match (&entry.revoked, key.retired_at) {
            (Some(revoked), _) => format!("REVOKED (list v{})", revoked.version),
            (None, Some(at)) => format!("retired {}", timestamp::format(at)),
            (None, None) if entry.signs_new_payloads => "signing".to_owned(),
            (None, None) if entry.certificate.is_none() => "awaiting certificate".to_owned(),
            (None, None) => "active".to_owned(),
        };
        let certified = match &entry.certificate {
            None => "no".to_owned(),
            Some(w) => {
                let mut text = format!(
                    "{} to {}",
                    timestamp::format(w.not_before),
                    timestamp::format(w.not_after)
                );
                if now >= w.not_after {
                    text.push_str(" (ended)");
                }
                text
            }
        };
        table.row([
            key.key_id.to_string(),
            timestamp::format(key.created_at),
            status,
            certified,
            (*at_rest).to_owned(),
            key.public_key.to_string(),
        ]);
    }
    let keys: Vec<_> = keys
        .iter()
        .zip(&at_rest)
        .map(|(entry, at_rest)| {
            let mut value = json!(entry);
            value["privateKey"] = json!(at_rest);
            value
        })
        .collect();
    let value = json!({ "keys": keys });
    Ok(Outcome::new(result(json, &table.render(), &value)?))
}

fn license_create(paths: &StorePaths, json: bool, args: CreateArgs, now: i64) -> Result<Outcome> {
    let features = args
        .features
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let limits = args
        .limits
        .iter()
        .map(|l| licenses::parse_limit(l))
        .collect::<Result<_, _>>()?;
    let expires_at = args
        .expires
        .as_deref()
        .map(licenses::parse_expiry)
        .transpose()?;
    let new = NewLicense {
        customer: args.customer,
        features,
        limits,
        expires_at,
        max_devices: args.max_devices,
        grace_seconds: licenses::grace_from_days(args.grace_days)?,
        clock_policy: args.clock_policy,
    };
    // Check before opening the store, so a typo is reported as such even
    // where no store exists yet.
    new.check(now)?;
    let mut store = setup::open_store(paths)?;
    let created = licenses::create(&mut store, &Actor::cli(), &new, now)?;
    let mut value = serde_json::to_value(&created.license).context("cannot render the result")?;
    value["licenseKey"] = json!(created.key.reveal());
    let stdout = result(json, created.key.reveal(), &value)?;
    Ok(Outcome::new(stdout).note(format!(
        "created license {} for {}; give this key to the customer: it is shown only now \
         and cannot be recovered from the store",
        created.license.key_hint, created.license.customer
    )))
}

fn license_list(paths: &StorePaths, json: bool, search: Option<&str>) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let summaries = licenses::list(&store, search)?;
    let mut table = Table::new(["CUSTOMER", "KEY", "STATUS", "EXPIRES", "DEVICES"]);
    for s in &summaries {
        table.row([
            s.license.customer.clone(),
            s.license.key_hint.clone(),
            s.license.status.to_string(),
            expiry_text(s.license.expires_at),
            seats_text(s),
        ]);
    }
    let stdout = result(json, &table.render(), &json!({ "licenses": summaries }))?;
    let outcome = Outcome::new(stdout);
    Ok(if summaries.is_empty() {
        outcome.note(match search {
            Some(text) => format!("no license matches `{text}`"),
            None => "no licenses yet; create one with `ren3-issuer license create`".to_owned(),
        })
    } else {
        outcome
    })
}

fn seats_text(s: &LicenseSummary) -> String {
    let mut text = format!("{}/{} bound", s.bound_devices, s.license.max_devices);
    let unbound = s.devices.saturating_sub(s.bound_devices);
    if unbound > 0 {
        let _ = write!(text, ", {unbound} unbound");
    }
    text
}

fn expiry_text(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(|| "never".to_owned(), timestamp::format)
}

fn license_show(paths: &StorePaths, json: bool, key: &str) -> Result<Outcome> {
    let key = LicenseKey::parse(key)?;
    let store = setup::open_store(paths)?;
    let details = licenses::show(&store, &key)?;
    Ok(Outcome::new(result(json, &show_text(&details), &details)?))
}

fn show_text(details: &LicenseDetails) -> String {
    let license = &details.license;
    let list_or_none = |items: Vec<String>| {
        if items.is_empty() {
            "(none)".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut fields = LabelledLines::default();
    fields.add("customer", &license.customer);
    fields.add("license key", &license.key_hint);
    fields.add("key fingerprint", &license.key_fingerprint.to_string());
    fields.add("status", license.status.as_str());
    fields.add("created", &timestamp::format(license.created_at));
    fields.add("expires", &expiry_text(license.expires_at));
    fields.add(
        "grace period",
        &lifecycle::grace_text(license.grace_seconds),
    );
    fields.add("clock policy", license.clock_policy.as_str());
    fields.add(
        "seats",
        &format!(
            "{} of {} bound",
            details.bound_devices(),
            license.max_devices
        ),
    );
    fields.add("features", &list_or_none(license.features.clone()));
    fields.add(
        "limits",
        &list_or_none(
            license
                .limits
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
    );
    let mut text = fields.render();

    text.push_str("\ndevices:");
    if details.devices.is_empty() {
        text.push_str(" (none; add one with `ren3-issuer device add`)");
    }
    let mut devices = Table::new([
        "CLIENT DEVICE ID",
        "ADDED",
        "BINDING",
        "LABEL",
        "DEVICE KEY",
    ]);
    for device in &details.devices {
        let binding = match device.bound_at {
            Some(at) => format!("bound {}", timestamp::format(at)),
            None => "unbound".to_owned(),
        };
        devices.row([
            device.client_device_id.to_string(),
            timestamp::format(device.created_at),
            binding,
            device.label.clone().unwrap_or_default(),
            device.public_key.map(|k| k.to_string()).unwrap_or_default(),
        ]);
    }
    if !details.devices.is_empty() {
        text.push('\n');
        text.push_str(&indent(&devices.render()));
    }

    text.push_str("\nissuances:");
    if details.issuances.is_empty() {
        text.push_str(" (none)");
    } else {
        let mut issuances = Table::new([
            "ISSUED",
            "CLIENT DEVICE ID",
            "SERIAL",
            "KEY ID",
            "REQUEST ID",
        ]);
        for issuance in &details.issuances {
            issuances.row([
                timestamp::format(issuance.issued_at),
                issuance.client_device_id.to_string(),
                issuance.serial.to_string(),
                issuance.key_id.to_string(),
                issuance.request_id.to_string(),
            ]);
        }
        text.push('\n');
        text.push_str(&indent(&issuances.render()));
    }
    lifecycle::releases_text(&mut text, &details.releases);
    text
}

fn device_add(
    paths: &StorePaths,
    json: bool,
    license: &str,
    label: Option<&str>,
    now: i64,
) -> Result<Outcome> {
    let key = LicenseKey::parse(license)?;
    let mut store = setup::open_store(paths)?;
    let added = devices::add(&mut store, &Actor::cli(), &key, label, now)?;
    let id = added.device.client_device_id.to_string();
    let mut value = serde_json::to_value(&added.device).context("cannot render the result")?;
    value["licenseKeyHint"] = json!(added.license.key_hint);
    value["customer"] = json!(added.license.customer);
    let stdout = result(json, &id, &value)?;
    Ok(Outcome::new(stdout).note(format!(
        "registered device {id} for license {} of {}; give this client_device_id to the customer",
        added.license.key_hint, added.license.customer
    )))
}

fn issue(paths: &StorePaths, json: bool, args: &IssueArgs, now: i64) -> Result<Outcome> {
    let request = match batch::read(&args.request, args.out_dir.is_some())? {
        batch::Requests::One(request) => request,
        batch::Requests::Many(inputs) => {
            if args.out.is_some() {
                bail!("--out takes one payload; give --out-dir DIR for several requests");
            }
            return batch::issue(
                paths,
                json,
                &inputs,
                args.out_dir.as_deref(),
                args.batch_size as usize,
                now,
            );
        }
    };
    let mut store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?.with_passphrase(lifecycle::passphrase_source());
    let issued = issuance::issue(&mut store, &keys, &Actor::cli(), &request, now)?;
    let token = issued.payload.token();
    let license = &issued.payload.license;
    if let Some(out) = &args.out {
        write_public_file(out, format!("{token}\n").as_bytes())?;
    }
    let value = json!({
        "payload": token,
        "repeated": issued.repeated,
        "serial": license.serial,
        "customer": license.customer,
        "licenseKeyHint": issued.license.key_hint,
        "clientDeviceId": license.client_device_id,
        "keyId": issued.payload.key_id,
        "issuedAt": timestamp::format(license.issued_at),
        "expiresAt": license.expires_at.map(timestamp::format),
        "out": args.out,
    });
    let stdout = match (&args.out, json) {
        (_, true) => to_json(&value)?,
        (Some(_), false) => String::new(),
        (None, false) => format!("{token}\n"),
    };
    let to = args
        .out
        .as_ref()
        .map(|p| format!(" (written to {})", p.display()))
        .unwrap_or_default();
    let note = if issued.repeated {
        format!(
            "this request was answered before: here is the same payload again{to} \
             (serial {}); no seat or serial was used",
            license.serial
        )
    } else {
        format!(
            "issued payload serial {} for device {} of {} (license {}), {}{to}; \
             send it to the customer",
            license.serial,
            license.client_device_id,
            license.customer,
            issued.license.key_hint,
            match license.expires_at {
                Some(at) => format!("valid until {}", timestamp::format(at)),
                None => "valid without expiry".to_owned(),
            }
        )
    };
    Ok(Outcome::new(stdout).note(note))
}

fn inspect(paths: &StorePaths, json: bool, args: &InspectArgs, now: i64) -> Result<Outcome> {
    let input = read_input(&args.input, "token")?;
    let trust = trust_source(paths, args.root.as_deref())?;
    let mut inspection = inspect::inspect(&input, &trust, now)?;
    lifecycle::check_receipt(paths, &input, &mut inspection)?;
    let stdout = result(json, &inspection_text(&inspection), &inspection)?;
    let mut outcome = Outcome::new(stdout);
    if !inspection.verified {
        outcome.exit = ExitCode::FAILURE;
    }
    Ok(outcome)
}

/// `--root FILE` if given, else the store's root if there is a store.
fn trust_source(paths: &StorePaths, root: Option<&Path>) -> Result<TrustSource> {
    if let Some(file) = root {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the root public key file {}", file.display()))?;
        let root =
            TrustRoot::parse_public_file(&text).with_context(|| file.display().to_string())?;
        return Ok(TrustSource::Root {
            root,
            source: format!("the root public key file {}", file.display()),
        });
    }
    if !paths.db.exists() {
        return Ok(TrustSource::Unavailable {
            why: format!(
                "there is no issuer store at {} and no --root FILE was given",
                paths.db.display()
            ),
        });
    }
    let store = setup::open_store(paths)?;
    Ok(match chain::stored_root(&store)? {
        Some(root) => TrustSource::Root {
            root,
            source: format!("the issuer store {}", paths.db.display()),
        },
        None => TrustSource::Unavailable {
            why: format!(
                "the issuer store {} has no root; give --root FILE",
                paths.db.display()
            ),
        },
    })
}

fn inspection_text(inspection: &Inspection) -> String {
    let mut f = LabelledLines::default();
    f.add(
        "kind",
        match inspection.kind {
            "request" => "license request",
            "receipt" => "release receipt",
            "certificate" => "issuer certificate",
            "revocations" => "revocation list",
            "certification-request" => "certification request",
            _ => "license payload",
        },
    );
    let signature = match (&inspection.problem, &inspection.checked_against) {
        (None, Some(by)) => format!("verifies against {by}"),
        (None, None) => "verifies".to_owned(),
        (Some(problem), _) => format!("does NOT verify: {}", problem.message),
    };
    f.add("signature", &signature);
    match &inspection.fields {
        None => f.add("fields", "cannot be read (see above)"),
        Some(Fields::Request(r)) => {
            f.add("request id", &r.request_id);
            f.add("created at", &timestamp::format(r.created_at));
            f.add("client device id", &r.client_device_id);
            f.add(
                "license key fingerprint",
                &r.license_key_fingerprint.to_string(),
            );
            f.add(
                "product",
                &format!("{} {}", r.product.name, r.product.version),
            );
            f.add("counter", &r.counter.to_string());
            f.add("device public key", &r.device_public_key);
            if let Some(hash) = &r.request_hash {
                f.add("request hash", &hash.to_string());
            }
        }
        Some(Fields::Payload(p)) => {
            f.add("signed by key", &p.key_id.to_string());
            f.add("customer", &p.customer);
            f.add("features", &p.features.join(", "));
            let limits: Vec<String> = p.limits.iter().map(|(n, v)| format!("{n}={v}")).collect();
            f.add("limits", &limits.join(", "));
            f.add("issued at", &timestamp::format(p.issued_at));
            f.add("not before", &timestamp::format(p.not_before));
            f.add("expires at", &expiry_text(p.expires_at));
            f.add("grace period", &lifecycle::grace_text(p.grace_seconds));
            f.add("clock policy", p.clock_policy.as_str());
            f.add("valid now", p.window_now);
            f.add("serial", &p.serial.to_string());
            f.add(
                "license key fingerprint",
                &p.license_key_fingerprint.to_string(),
            );
            f.add("client device id", &p.client_device_id);
            f.add("device public key", &p.device_public_key);
            f.add("request hash", &p.request_hash.to_string());
            match &p.certificate {
                Some(c) => {
                    f.add(
                        "certificate",
                        &format!("key {} by root {}", c.key_id, c.root_key_id),
                    );
                    f.add("certified", &trust::window_text(c.not_before, c.not_after));
                }
                None => f.add("certificate", "cannot be read"),
            }
            match &p.revocations {
                Some(r) => f.add("revocation list", &trust::revocations_text(r)),
                None => f.add("revocation list", "cannot be read"),
            }
        }
        Some(Fields::Receipt(r)) => lifecycle::receipt_lines(&mut f, r),
        Some(Fields::Certificate(c)) => {
            f.add("key id", &c.key_id.to_string());
            f.add("public key", &c.public_key);
            f.add("purpose", &format!("{} for {}", c.purpose, c.product));
            f.add("valid", &trust::window_text(c.not_before, c.not_after));
            f.add("issued at", &timestamp::format(c.issued_at));
            f.add("root", &c.root_key_id);
        }
        Some(Fields::Revocations(r)) => {
            f.add("version", &r.version.to_string());
            f.add("issued at", &timestamp::format(r.issued_at));
            f.add("root", &r.root_key_id);
            f.add("revoked", &trust::revoked_keys_text(r));
        }
        Some(Fields::CertificationRequest(c)) => {
            f.add("key id", &c.key_id.to_string());
            f.add("public key", &c.public_key);
            f.add("purpose", &format!("{} for {}", c.purpose, c.product));
            f.add("asks for", &trust::window_text(c.not_before, c.not_after));
            f.add("created at", &timestamp::format(c.created_at));
        }
    }
    f.render()
}

/// Reads a token from a file or, for `-`, stdin; `what` names it in errors.
fn read_input(source: &str, what: &str) -> Result<String> {
    let (reader, name): (Box<dyn io::Read>, String) = if source == "-" {
        (Box::new(io::stdin().lock()), "standard input".to_owned())
    } else {
        let file = std::fs::File::open(source)
            .with_context(|| format!("cannot read the {what} from {source}"))?;
        (Box::new(file), source.to_owned())
    };
    read_limited(reader, &name, what)
}

/// Reads one token's worth of text from `reader`, refusing more.
fn read_limited(mut reader: impl io::Read, name: &str, what: &str) -> Result<String> {
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "at the limit" from "over it",
    // without reading an arbitrarily large file.
    reader
        .by_ref()
        .take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} from {name}"))?;
    if bytes.len() > MAX_INPUT_LEN {
        bail!(
            "{name} holds more than {} KiB, and a {what} is never that long; give only the token",
            MAX_INPUT_LEN / 1024
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{name} is not UTF-8 text"))
}

fn write_public_file(path: &Path, contents: &[u8]) -> Result<()> {
    atomic_file::write(path, contents, PUBLIC_FILE_MODE, Existing::Replace)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `label: value` lines with the values aligned.
#[derive(Default)]
struct LabelledLines {
    rows: Vec<(&'static str, String)>,
}

impl LabelledLines {
    fn add(&mut self, label: &'static str, value: &str) {
        self.rows.push((label, value.to_owned()));
    }

    fn render(&self) -> String {
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for (label, value) in &self.rows {
            let _ = writeln!(out, "{:<width$} {value}", format!("{label}:"));
        }
        out.pop();
        out
    }
}

/// A plain text table with a header, columns padded to their widest cell.
struct Table<const N: usize> {
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    fn new(header: [&str; N]) -> Self {
        Self {
            rows: vec![header.map(str::to_owned)],
        }
    }

    fn row(&mut self, cells: [String; N]) {
        self.rows.push(cells);
    }

    /// Empty when the table has no row but its header.
    fn render(&self) -> String {
        if self.rows.len() < 2 {
            return String::new();
        }
        let mut widths = [0usize; N];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    let pad = width - cell.chars().count();
                    let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.pop();
        out
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn license_update(paths: &StorePaths, json: bool, args: &UpdateArgs, now: i64) -> Result<Outcome> {
    let key = LicenseKey::parse(&args.key)?;
    let limits = if args.no_limits {
        Some(Vec::new())
    } else if args.limits.is_empty() {
        None
    } else {
        Some(
            args.limits
                .iter()
                .map(|l| licenses::parse_limit(l))
                .collect::<Result<_, _>>()?,
        )
    };
    let expires_at = match args.expires.as_deref().map(str::trim) {
        None => None,
        Some("never") => Some(None),
        Some(text) => Some(Some(licenses::parse_expiry(text)?)),
    };
    let edit = TermsEdit {
        features: args.features.as_deref().map(licenses::parse_features),
        limits,
        expires_at,
        grace_seconds: args.grace_days.map(licenses::grace_from_days).transpose()?,
        clock_policy: args.clock_policy,
    };
    let mut store = setup::open_store(paths)?;
    let updated = licenses::edit(&mut store, &Actor::cli(), &key, &edit, now)?;
    let stdout = result(json, "", &updated)?;
    Ok(Outcome::new(stdout).note(format!(
        "updated license {} of {}; the next payload issued carries the new terms",
        updated.key_hint, updated.customer
    )))
}

fn license_set_status(
    paths: &StorePaths,
    json: bool,
    key: &str,
    status: LicenseStatus,
    now: i64,
) -> Result<Outcome> {
    let key = LicenseKey::parse(key)?;
    let mut store = setup::open_store(paths)?;
    let license = licenses::set_status(&mut store, &Actor::cli(), &key, status, now)?;
    let stdout = result(json, "", &license)?;
    Ok(Outcome::new(stdout).note(format!(
        "license {} of {} is now {status}",
        license.key_hint, license.customer
    )))
}

fn user_add(paths: &StorePaths, json: bool, name: &str, now: i64) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    let mut line = String::new();
    io::stdin()
        .lock()
        .take(users::MAX_PASSWORD_CHARS as u64 * 4 + 2)
        .read_to_string(&mut line)
        .context("cannot read the password from stdin")?;
    // One line: the password is what comes before the first line break.
    let password = line.lines().next().unwrap_or_default();
    let user = users::add(&mut store, &Actor::cli(), name, password, now)?;
    let stdout = result(json, "", &user)?;
    Ok(Outcome::new(stdout).note(format!(
        "created console user {}; they log in at the `ren3-issuer serve` address",
        user.name
    )))
}

fn user_remove(paths: &StorePaths, json: bool, name: &str, now: i64) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    users::remove(&mut store, &Actor::cli(), name, now)?;
    let stdout = result(json, "", &json!({ "removed": name }))?;
    Ok(Outcome::new(stdout).note(format!(
        "removed console user {name} and ended their sessions"
    )))
}

fn user_list(paths: &StorePaths, json: bool) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let all = users::list(&store)?;
    let mut table = Table::new(["NAME", "CREATED"]);
    for user in &all {
        table.row([user.name.clone(), timestamp::format(user.created_at)]);
    }
    let outcome = Outcome::new(result(json, &table.render(), &json!({ "users": all }))?);
    Ok(if all.is_empty() {
        outcome.note("no console users yet; add one with `ren3-issuer user add NAME`")
    } else {
        outcome
    })
}

/// Runs the console until Ctrl-C or SIGTERM. After binding, prints exactly
/// one line, `listening on http://ADDR`, to stdout.
fn serve(paths: &StorePaths, args: &ServeArgs) -> Result<Outcome> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .init();
    let store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?;
    let state = web::AppState::new(
        store,
        keys,
        web::Config {
            behind_tls: args.behind_tls,
        },
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listening address")?;
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        drop(stdout);
        web::serve(listener, state, web::shutdown_signal())
            .await
            .context("the console stopped with an error")
    })?;
    Ok(Outcome::new(String::new()))
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
