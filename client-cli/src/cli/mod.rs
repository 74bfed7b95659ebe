//! The `ren3-client` command line. `serve`, the default, runs the licensing
//! service; `request`, `import`, `status` and `deactivate` do the customer
//! document's steps by talking to the running service over HTTP, with the
//! service's own configuration, so they work on a live ingestor and change
//! nothing the `curl` steps would not.
//!
//! The contract is the issuer's: a command's result, and only its result,
//! goes to stdout (the service's JSON with `--json`), so
//! `REQ=$(ren3-client request --license-key-file key.txt)` works; messages
//! for people go to stderr; an error prints `error: ...` on stderr and
//! exits 1 (a refusal by the service as `error: <detail> [<code>]`); a
//! usage or configuration error exits 2.
//!
//! The license key is never an argument: it would stay in the shell's
//! history and show in `ps`. It comes from `--license-key-file` or a prompt
//! at a terminal.
//!
//! `status` also says the state in its exit code ([`status::exit_code`]):
//! 0 licensed, 3 licensed but act soon, 4 not licensed. `request` and
//! `deactivate` draw their token as a QR code on stderr with `--qr`, and
//! write it as SVG with `--qr-svg FILE` ([`qr`]).

use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgGroup, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use ren3_shared::terminal::{Form, escape};
use serde_json::json;

mod files;
mod packaging;
mod qr;
mod serve;
mod service;
mod status;

use files::{OutFile, license_key, read_payload};
use qr::QrPlan;
use service::{Answer, Service};

/// The variable that overrides the service's address, for scripts and
/// tests (`--url`).
const URL_VARIABLE: &str = "REN3_CLIENT_URL";

#[derive(Debug, Parser)]
#[command(
    name = "ren3-client",
    about = "The ReN3 ingestor's offline licensing: the service, and commands that talk to it",
    after_help = "With no command, runs the service (`serve`). The other commands talk to the \
                  running service at the address its configuration gives (listen_addr, from the \
                  environment or ./.env), so run them where the service runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the licensing service (the default): configuration from the
    /// environment and ./.env.
    Serve,
    /// Register the license key and export a license request for the ReN3
    /// team; print the request token.
    #[command(after_help = QR_HELP)]
    Request {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        out: OutArgs,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Import the license payload the ReN3 team sent; print the resulting
    /// status.
    Import {
        /// The payload as it arrived (line breaks from a mail client and an
        /// armoured block are fine); `-` reads stdin.
        #[arg(value_name = "FILE|-")]
        payload: String,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Print the license status: its state, why, and what to do.
    #[command(after_help = STATUS_HELP)]
    Status {
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Stop using the license and print the release receipt, which the
    /// ReN3 team needs to free the seat.
    #[command(after_help = QR_HELP)]
    Deactivate {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        out: OutArgs,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Print the completion script for a shell (bash, zsh, fish, ...), as
    /// the Debian package installs it.
    Completions(packaging::CompletionsArgs),
    /// Print the man page, or write one for each command into a directory.
    Man(packaging::ManArgs),
}

/// Where the license key comes from: never the command line.
#[derive(Debug, Args)]
struct KeyArgs {
    /// A file holding the license key (surrounding white space is ignored);
    /// `-` reads stdin. Without it, the key is asked for at the terminal.
    #[arg(long, value_name = "FILE|-")]
    license_key_file: Option<String>,
}

/// What `request --help` and `deactivate --help` add about QR codes.
const QR_HELP: &str = "With --qr, the token is also drawn as a QR code (level M) on stderr, for a \
                       phone's camera to carry across the air gap; stdout keeps the token alone. \
                       When the terminal (else COLUMNS, else 80 columns) is too narrow for the \
                       code, a warning says how many columns it needs and offers --qr-svg FILE \
                       or the local license page; the token is still printed and the command \
                       exits 0. A request's code carries license_portal_url?request=TOKEN when \
                       that is configured, else the token alone; a receipt's, the receipt alone.";

/// What `status --help` adds: the exit codes.
const STATUS_HELP: &str = "Exit status, with --json too: 0 licensed, nothing to do now; 3 licensed \
                           but act soon (expiry warning, grace period, revoked key in its grace, \
                           suspect clock under an advisory policy: see `what to do`); 4 not \
                           licensed (no license, pending, expired, not yet valid, revoked, \
                           refused clock); 1 the service could not be asked; 2 usage or \
                           configuration error.";

/// Where a token goes when not to stdout, and its QR code.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("written").args(["out", "qr_svg"]).multiple(true)))]
struct OutArgs {
    /// Write the token to FILE (created 0644) instead of stdout; an
    /// existing FILE is refused unless --force.
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
    /// Also draw the token as a QR code on stderr (stdout keeps the token
    /// alone).
    #[arg(long)]
    qr: bool,
    /// Write the token's QR code to FILE as an SVG image; an existing FILE
    /// is refused unless --force.
    #[arg(long, value_name = "FILE")]
    qr_svg: Option<std::path::PathBuf>,
    /// Replace the --out or --qr-svg FILE if it exists.
    #[arg(long, requires = "written")]
    force: bool,
}

/// The files of [`OutArgs`], claimed.
struct Claimed {
    /// `--out`; `None` for stdout.
    token: Option<OutFile>,
    /// `--qr-svg`.
    svg: Option<OutFile>,
}

impl OutArgs {
    /// The `--out` and `--qr-svg` files, claimed before the service is
    /// called.
    fn claim(&self) -> Result<Claimed> {
        if let (Some(out), Some(svg)) = (&self.out, &self.qr_svg)
            && out == svg
        {
            return Err(UsageError(format!(
                "--out and --qr-svg both name {}; give the token and its QR code a file each",
                out.display()
            ))
            .into());
        }
        let claim = |path: &Option<std::path::PathBuf>| {
            path.as_deref()
                .map(|path| OutFile::claim(path, self.force))
                .transpose()
        };
        Ok(Claimed {
            token: claim(&self.out)?,
            svg: claim(&self.qr_svg)?,
        })
    }
}

/// How to reach the service, and how to print its answer.
#[derive(Debug, Args)]
struct ServiceArgs {
    /// The service's base URL, such as http://127.0.0.1:5000; for scripts
    /// and tests. By default it comes from listen_addr, through loopback
    /// when that is a wildcard address.
    #[arg(long, env = URL_VARIABLE, value_name = "URL")]
    url: Option<String>,
    /// Print the service's JSON answer on stdout, as it is.
    #[arg(long)]
    json: bool,
}

/// An error the operator fixes in how they run the command: exit 2, as
/// clap's own usage errors and the service's configuration errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

/// Parses the arguments, runs the command and reports, as the binary does.
pub fn main() -> ExitCode {
    let matches = grammar().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let command = match cli.command {
        None | Some(Command::Serve) => return serve::serve(),
        Some(command) => command,
    };
    match run(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", escape(&format!("{e:#}"), Form::Line));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The version line's text: the package version, the commit, and the
/// fingerprint of the root this build trusts, for a vendor to compare with
/// the root they meant to pin.
fn version() -> &'static str {
    let dev_root = ren3_client::trust::DEV_TRUST_ROOT;
    let root = match ren3_client::Trust::this_build() {
        Ok(trust) if trust.is_pinned() => format!("trust root {}, pinned", trust.fingerprint()),
        Ok(trust) => format!(
            "trust root {}, development build: from {dev_root}, never ship it",
            trust.fingerprint()
        ),
        Err(e) => format!("trust root unavailable: {e}"),
    };
    // clap keeps the version for the life of the process; this is built
    // once per run.
    Box::leak(
        format!(
            "{} (commit {}; {root})",
            env!("CARGO_PKG_VERSION"),
            ren3_cli_docs::COMMIT
        )
        .into_boxed_str(),
    )
}

/// The command line's grammar, with the version line.
fn grammar() -> clap::Command {
    Cli::command().version(version())
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve => unreachable!("`serve` returns before run"),
        Command::Request { key, out, service } => request(&key, &out, &service)?,
        Command::Import {
            payload,
            key,
            service,
        } => import(&payload, &key, &service)?,
        Command::Status { service } => {
            let answer = Service::locate(service.url.as_deref())?.get("/license")?;
            let code = status::exit_code(&answer.value)?;
            print_status(&answer, service.json)?;
            return Ok(ExitCode::from(code));
        }
        Command::Deactivate { key, out, service } => deactivate(&key, &out, &service)?,
        Command::Completions(args) => packaging::completions(grammar(), &args)?,
        Command::Man(args) => packaging::man(grammar(), &args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn request(key: &KeyArgs, out: &OutArgs, args: &ServiceArgs) -> Result<()> {
    let service = Service::locate(args.url.as_deref())?;
    // The files are claimed before the service records a request, so an
    // existing one is refused with nothing changed.
    let files = out.claim()?;
    let qr = QrPlan::new(out.qr, files.svg, &service)?;
    let license_key = license_key(key.license_key_file.as_deref())?;
    let answer = service.post(
        "/license/register",
        &json!({ "licenseKey": license_key, "export": true }),
    )?;
    let token = token_in(&answer, "licenseRequest")?;
    // With the vendor's portal configured, one scan opens it with the
    // request filled in.
    let qr = qr.map(|plan| {
        let text = ren3_qr::carried_text(&token, plan.portal_url.as_deref());
        (plan, text)
    });
    let next = "send it to the ReN3 team, and import their answer with \
                `ren3-client import FILE`";
    deliver(
        &answer,
        &token,
        files.token,
        qr,
        args.json,
        "license request",
        next,
    )
}

fn import(source: &str, key: &KeyArgs, args: &ServiceArgs) -> Result<()> {
    if source == "-" && key.license_key_file.as_deref() == Some("-") {
        return Err(UsageError(
            "the payload and the license key cannot both come from stdin; \
             give the key with --license-key-file FILE"
                .into(),
        )
        .into());
    }
    let service = Service::locate(args.url.as_deref())?;
    // A missing payload file is reported before the key is asked for; from
    // stdin, the key is asked for first, so the prompt comes before typing.
    let (payload, license_key) = if source == "-" {
        let license_key = license_key(key.license_key_file.as_deref())?;
        (read_payload(source)?, license_key)
    } else {
        let payload = read_payload(source)?;
        (payload, license_key(key.license_key_file.as_deref())?)
    };
    // The service accepts the token wrapped by a mail client or armoured,
    // so it goes as it arrived.
    let answer = service.post(
        "/license/import",
        &json!({ "licenseKey": license_key, "licensePayload": payload }),
    )?;
    print_status(&answer, args.json)
}

fn deactivate(key: &KeyArgs, out: &OutArgs, args: &ServiceArgs) -> Result<()> {
    let service = Service::locate(args.url.as_deref())?;
    // Claimed first: the receipt exists only in this answer, so there must
    // be somewhere to put it before the license is released.
    let files = out.claim()?;
    let qr = QrPlan::new(out.qr, files.svg, &service)?;
    let license_key = license_key(key.license_key_file.as_deref())?;
    let answer = service.post("/license/deactivate", &json!({ "licenseKey": license_key }))?;
    let token = token_in(&answer, "releaseReceipt")?;
    // The portal takes requests; a receipt's code carries the receipt alone.
    let qr = qr.map(|plan| (plan, token.clone()));
    let next = "this installation is now unlicensed; send the receipt to the ReN3 team \
                so they free the seat";
    deliver(
        &answer,
        &token,
        files.token,
        qr,
        args.json,
        "release receipt",
        next,
    )
}

/// The string member `name` of a successful answer.
fn token_in(answer: &Answer, name: &str) -> Result<String> {
    answer.value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the service's answer has no `{name}`; check that --url or listen_addr points \
             at the ReN3 licensing service"
            )
        })
}

/// Writes `token` to `file`, or to stdout without one (with `--json`,
/// stdout gets the whole answer instead); then the QR code of the text
/// `qr` carries, as its plan says.
fn deliver(
    answer: &Answer,
    token: &str,
    file: Option<OutFile>,
    qr: Option<(QrPlan, String)>,
    json: bool,
    what: &str,
    next: &str,
) -> Result<()> {
    if json {
        print_json(answer)?;
    }
    let (kept, done) = match file {
        Some(file) => {
            let path = file.path().display().to_string();
            if let Err(e) = file.write(token) {
                // The service has acted, and its answer is the only copy.
                if !json {
                    print_stdout(&format!("{token}\n"), Form::Lines)?;
                }
                anyhow::bail!(
                    "the {what} could not be written to {path} ({e:#}); it is on stdout \
                     instead: save it from there"
                );
            }
            (
                format!("in {path}"),
                format!("wrote the {what} to {path}; {next}"),
            )
        }
        None => {
            if !json {
                print_stdout(&format!("{token}\n"), Form::Lines)?;
            }
            ("on stdout".to_owned(), format!("{next}."))
        }
    };
    if let Some((plan, text)) = qr {
        plan.show(&text, what, &kept)?;
    }
    note(&done);
    Ok(())
}

/// The status answer: the service's JSON with `--json`, else lines for
/// people.
fn print_status(answer: &Answer, json: bool) -> Result<()> {
    if json {
        print_json(answer)
    } else {
        print_stdout(&status::explain(&answer.value), Form::Lines)
    }
}

/// The service's JSON as it sent it, on one line.
fn print_json(answer: &Answer) -> Result<()> {
    print_stdout(&format!("{}\n", answer.text.trim_end()), Form::Json)
}

fn print_stdout(text: &str, form: Form) -> Result<()> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(escape(text, form).as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| anyhow::anyhow!("cannot write the result to stdout: {e}"))
}

fn note(text: &str) {
    eprintln!("{}", escape(text, Form::Lines));
}
