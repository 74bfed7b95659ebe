//! The command line's grammar: every command, argument and flag, with
//! the help text clap prints.

use std::time::Duration;

use ren3_server::host::AllowedHost;

use super::*;

/// `--version`'s text: the package version and the commit.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        ren3_cli_docs::COMMIT
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "ren3-issuer",
    version = VERSION.as_str(),
    about = "The ReN3 vendor tool: license keys, device ids and signed license payloads"
)]
pub(super) struct Cli {
    /// A configuration file (TOML) whose settings come after the flags and
    /// the variables [default: /etc/ren3/issuer.toml, if it exists]
    #[arg(long, global = true, env = "REN3_ISSUER_CONFIG", value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// The issuer store (an SQLite file).
    #[arg(
        long,
        global = true,
        env = "REN3_ISSUER_DB",
        value_name = "PATH",
        default_value = "ren3-issuer.db"
    )]
    pub(super) db: PathBuf,
    /// The directory of the private signing keys [default: <PATH>.keys]
    #[arg(long, global = true, env = "REN3_ISSUER_KEYS", value_name = "DIR")]
    pub(super) keys_dir: Option<PathBuf>,
    /// Print each result as JSON on stdout.
    #[arg(long, global = true)]
    pub(super) json: bool,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
    /// The audit log: list it, verify its hash chain, export it, print its
    /// head.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a verified copy of the store to a file (0600), or into a
    /// directory of dated backups with the oldest removed, while the
    /// console and other commands go on using it.
    Backup(backup::BackupArgs),
    /// Replace the store with a backup, after checking it; refuses a store
    /// in use (stop the console first).
    Restore(backup::RestoreArgs),
    /// Print the completion script for a shell (bash, zsh, fish, ...), as
    /// the Debian package installs it.
    Completions(packaging::CompletionsArgs),
    /// Print the man page, or write one for each command into a directory.
    Man(packaging::ManArgs),
}

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Create a console user; the password is read from stdin (one line,
    /// at least 12 characters, not easy to guess: a passphrase of a few
    /// uncommon words).
    Add {
        name: String,
        /// What they may do in the console: `viewer` reads only; `issuer`
        /// also changes licenses and devices, issues and releases seats;
        /// `admin` also rotates and retires signing keys. The default is
        /// the least, so a forgotten flag never gives more than reading.
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Set a console user's role (admin, issuer or viewer); it applies to
    /// their next request.
    Role { name: String, role: String },
    /// Replace a console user's password, read from stdin like `user add`,
    /// and end their sessions.
    Passwd { name: String },
    /// Remove a console user and end their sessions.
    Remove { name: String },
    /// List the console users.
    List,
}

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The address and port to listen on.
    #[arg(
        long,
        env = "REN3_ISSUER_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub(super) listen: String,
    /// The console is reached through a TLS-terminating proxy: mark the
    /// session cookie Secure.
    #[arg(long, env = "REN3_ISSUER_BEHIND_TLS")]
    pub(super) behind_tls: bool,
    /// A name or address the console answers to, besides localhost, the
    /// loopback addresses and the listen address (the name users type,
    /// or the one the TLS proxy forwards): repeat for each, or separate
    /// them with commas in the variable. No port, no wildcard.
    #[arg(
        long = "allowed-host",
        env = "REN3_ISSUER_ALLOWED_HOSTS",
        value_name = "HOST",
        value_delimiter = ',',
        value_parser = allowed_host
    )]
    pub(super) allowed_hosts: Vec<AllowedHost>,
    /// How long a connection may take to send a request's headers, from
    /// its opening or its previous response (so it also closes idle
    /// connections): 500ms, 10s, 2m, up to 10m.
    #[arg(
        long,
        env = "REN3_ISSUER_HEADER_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = timeout
    )]
    pub(super) header_timeout: Duration,
    /// How many connections are open at most; past it, the one that has
    /// waited longest for headers is closed to make room.
    #[arg(
        long,
        env = "REN3_ISSUER_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = ren3_server::Limits::DEFAULT.max_connections,
        value_parser = connections
    )]
    pub(super) max_connections: usize,
    /// A TLS or reverse proxy in front of the console, as the console sees
    /// its address; repeat for each (the variable takes them comma-separated).
    /// Only a request from one of them has its client read from
    /// `X-Forwarded-For`; otherwise that header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "REN3_ISSUER_TRUSTED_PROXY",
        value_name = "ADDR",
        value_delimiter = ',',
        value_parser = proxy_address
    )]
    pub(super) trusted_proxies: Vec<std::net::IpAddr>,
    /// Also serve /metrics, /healthz and /readyz (and nothing else) on
    /// this address and port, for any Host: for a Prometheus on another
    /// host. With port 0, the address bound is printed on a second line,
    /// `metrics on http://ADDR`.
    #[arg(long, env = "REN3_ISSUER_METRICS_LISTEN", value_name = "ADDR")]
    pub(super) metrics_listen: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct InitArgs {
    /// The root key's own directory (mode 0700): a new root is made there
    /// if it holds no root.key, else that root is adopted. Keep it offline.
    #[arg(long, value_name = "DIR")]
    pub(super) root_dir: PathBuf,
    /// Keep a new root key in plain text instead of sealing it with a
    /// passphrase (REN3_ROOT_PASSPHRASE, or asked for): for tests and demos.
    #[arg(long)]
    pub(super) plain_root: bool,
    /// Encrypt the first signing key with a passphrase (from
    /// REN3_ISSUER_PASSPHRASE, or asked for at the terminal).
    #[arg(long)]
    pub(super) encrypt: bool,
    /// Days the first key's certificate lasts.
    #[arg(long, value_name = "N", default_value_t = signing_keys::DEFAULT_KEY_VALID_DAYS)]
    pub(super) key_valid_days: u32,
}

#[derive(Debug, Subcommand)]
pub(super) enum KeysCommand {
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
pub(super) enum LicenseCommand {
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
pub(super) struct UpdateArgs {
    /// The license key, in any spelling.
    pub(super) key: String,
    /// The new features, comma-separated; `--features ""` removes all.
    #[arg(long, value_name = "A,B")]
    pub(super) features: Option<String>,
    /// A numeric limit; repeat for several. Replaces all limits.
    #[arg(
        long = "limit",
        value_name = "NAME=VALUE",
        conflicts_with = "no_limits"
    )]
    pub(super) limits: Vec<String>,
    /// Remove all limits.
    #[arg(long)]
    pub(super) no_limits: bool,
    /// YYYY-MM-DD (valid through that UTC day), an RFC 3339 time, or `never`.
    #[arg(long, value_name = "DATE")]
    pub(super) expires: Option<String>,
    /// Days payloads keep working after the expiry (0 to 366).
    #[arg(long, value_name = "N")]
    pub(super) grace_days: Option<u64>,
    /// On a clock that looks wound back, `advisory` only warns and
    /// `enforcing` makes the client refuse licensed work.
    #[arg(long, value_name = "POLICY")]
    pub(super) clock_policy: Option<ClockPolicy>,
}

#[derive(Debug, Args)]
pub(super) struct CreateArgs {
    /// The customer's name.
    #[arg(long)]
    pub(super) customer: String,
    /// Features, comma-separated (a-z, 0-9, `.`, `_`, `-`).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub(super) features: Vec<String>,
    /// A numeric limit; repeat for several.
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    pub(super) limits: Vec<String>,
    /// YYYY-MM-DD (valid through that UTC day) or an RFC 3339 time
    /// [default: never expires]
    #[arg(long, value_name = "DATE")]
    pub(super) expires: Option<String>,
    /// How many installations may hold the license at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(super) max_devices: u32,
    /// Days payloads keep working after the expiry (0 to 366).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(super) grace_days: u64,
    /// On a clock that looks wound back, `advisory` only warns and
    /// `enforcing` makes the client refuse licensed work.
    #[arg(long, value_name = "POLICY", default_value = "advisory")]
    pub(super) clock_policy: ClockPolicy,
}

#[derive(Debug, Subcommand)]
pub(super) enum DeviceCommand {
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
pub(super) struct IssueArgs {
    /// The request as the customer sent it; `-` reads stdin, which may hold
    /// several (one token a line, or armoured blocks); a directory issues
    /// every file in it, in name order.
    #[arg(long, value_name = "FILE|DIR|-")]
    pub(super) request: String,
    /// Write the payload here instead of to stdout.
    #[arg(long, value_name = "FILE", conflicts_with = "out_dir")]
    pub(super) out: Option<PathBuf>,
    /// Write one payload file per request here, named after the request
    /// file (`NAME.payload`) or, from stdin, the request id.
    #[arg(long, value_name = "DIR")]
    pub(super) out_dir: Option<PathBuf>,
    /// Requests issued per transaction when there are several.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) batch_size: u32,
}

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// The token; `-` reads stdin.
    #[arg(value_name = "FILE|-")]
    pub(super) input: String,
    /// Check against this root public key file (root.pub) instead of the
    /// store's root.
    #[arg(long, value_name = "FILE")]
    pub(super) root: Option<PathBuf>,
}

/// A connection bound, from 1 to `ren3_server::MAX_CONNECTIONS`.
fn connections(text: &str) -> Result<usize, String> {
    text.parse()
        .ok()
        .filter(|n| (1..=ren3_server::MAX_CONNECTIONS).contains(n))
        .ok_or_else(|| {
            format!(
                "expected a whole number of connections from 1 to {}",
                ren3_server::MAX_CONNECTIONS
            )
        })
}

/// A timeout option, in the syntax both servers share.
fn timeout(text: &str) -> Result<Duration, String> {
    ren3_server::parse_timeout(text).ok_or_else(|| ren3_server::TIMEOUT_SYNTAX.to_owned())
}

/// A `--trusted-proxy` address.
fn proxy_address(text: &str) -> Result<std::net::IpAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "`{text}` is not an IP address; give the proxy's address as the console sees it, \
             without a port or a name (127.0.0.1, ::1)"
        )
    })
}

/// An `--allowed-host`: a name, or an address without a port.
fn allowed_host(text: &str) -> Result<AllowedHost, String> {
    AllowedHost::parse_configured(text.trim()).map_err(|problem| format!("`{text}` {problem}"))
}
