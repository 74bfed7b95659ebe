//! Start-up configuration, from the environment and an optional `.env` file.
//!
//! The variable names are the ones the customer-facing registration guide
//! tells operators to set, so they are lower case and must not be renamed.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ren3_shared::DeviceId;

use crate::http::host::AllowedHost;
use crate::trust::{self, Trust};

mod values;
use values::*;

/// `true` (also `1`, `yes`) turns offline licensing on; unset, empty or
/// `false` (`0`, `no`) leaves it off ([`Config::offline`] is `None`).
pub const ENABLE_OFFLINE_LICENSE: &str = "enable_offline_license";
/// The client device id the ReN3 team sent (`REN3D1-…`). Required when
/// offline licensing is on; a typo is refused by its check character.
pub const CLIENT_DEVICE_ID: &str = "client_device_id";
/// The path of the SQLite store, which holds the device key and is created
/// readable by its owner only. Default [`DEFAULT_LICENSE_DB_PATH`].
pub const LICENSE_DB_PATH: &str = "license_db_path";
/// The IP address and port to listen on, such as `127.0.0.1:5000`; not a
/// host name. Default [`DEFAULT_LISTEN_ADDR`].
pub const LISTEN_ADDR: &str = "listen_addr";
/// No longer read: a build trusts only the root compiled into it. Start-up
/// warns when it is still set, so that an operator does not believe a file
/// of theirs decides what is trusted.
pub const LICENSE_TRUSTED_KEYS: &str = "license_trusted_keys";
/// How far the clock may go back behind the latest time seen before it is
/// suspect: a number with an optional unit `s`, `m`, `h` or `d` (seconds
/// without one), at most [`MAX_CLOCK_TOLERANCE_SECONDS`]. Default
/// [`DEFAULT_CLOCK_TOLERANCE_SECONDS`].
pub const LICENSE_CLOCK_TOLERANCE: &str = "license_clock_tolerance";
/// How many days before `expiresAt` status and the log start warning: a
/// whole number from 0 to [`MAX_WARNING_DAYS`]. Default
/// [`DEFAULT_WARNING_DAYS`].
pub const LICENSE_WARNING_DAYS: &str = "license_warning_days";
/// Names, besides `localhost`, the loopback addresses and the listen
/// address, under which the licensing endpoints answer (the `Host` check,
/// [`crate::http::host`]).
pub const LICENSE_ALLOWED_HOSTS: &str = "license_allowed_hosts";
/// How long a caller may take to send a request body to the licensing
/// endpoints before it is refused (`unreadable_body`): a number with an
/// optional unit `ms`, `s` or `m` (seconds without one), from 1 ms to
/// [`MAX_BODY_TIMEOUT`]. Default [`DEFAULT_BODY_TIMEOUT`].
pub const LICENSE_BODY_TIMEOUT: &str = "license_body_timeout";
/// How long a connection to the service may take to send a request's
/// headers, from its opening or its previous response (so it also closes
/// an idle keep-alive connection): the syntax and range of
/// [`LICENSE_BODY_TIMEOUT`]. Default 10 s ([`ren3_server::Limits::DEFAULT`]).
pub const LICENSE_HEADER_TIMEOUT: &str = "license_header_timeout";
/// How many connections the service holds open at most, from 1 to
/// [`ren3_server::MAX_CONNECTIONS`]; past it, the one that has waited
/// longest for headers is closed to make room. Default 4,096
/// ([`ren3_server::Limits::DEFAULT`]).
pub const LICENSE_MAX_CONNECTIONS: &str = "license_max_connections";
/// `true` (the default) serves the local license page at
/// `/license/page` to callers on this machine (their connection
/// comes from a loopback address); `false` leaves only the JSON endpoints.
pub const LICENSE_PAGE: &str = "license_page";
/// The vendor's license portal, an `https://` address without query or
/// fragment, such as `https://licensing.example/ren3/register`. When set, a
/// request's QR code carries this address with the request attached
/// (`?request=<token>`), so that one scan opens the portal with the form
/// filled in. Unset, the code carries the request token alone.
pub const LICENSE_PORTAL_URL: &str = "license_portal_url";
/// An IP address and port on which a listener of its own serves only
/// `/metrics`, `/healthz` and `/readyz`, for any `Host`, such as
/// `0.0.0.0:9464`: how a Prometheus on another host scrapes the service,
/// whose licensing port answers only this machine. Unset, there is no such
/// listener (the licensing port serves the same three routes to this
/// machine). Not the listen address.
pub const LICENSE_METRICS_ADDR: &str = "license_metrics_addr";

/// The longest [`LICENSE_PORTAL_URL`] accepted: the address travels in
/// every request's QR code, beside a token of about 530 characters.
pub const MAX_PORTAL_URL_LENGTH: usize = 200;

/// The store's path when [`LICENSE_DB_PATH`] is unset: in the working
/// directory.
pub const DEFAULT_LICENSE_DB_PATH: &str = "./ren3-license.db";
/// The listen address when [`LISTEN_ADDR`] is unset: loopback only.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:5000";
/// 24 hours: time-zone and daylight-saving mistakes do not make the clock
/// suspect.
pub const DEFAULT_CLOCK_TOLERANCE_SECONDS: i64 = 24 * 60 * 60;
/// The longest clock tolerance accepted: a year.
pub const MAX_CLOCK_TOLERANCE_SECONDS: i64 = 366 * 24 * 60 * 60;
/// The warning window when [`LICENSE_WARNING_DAYS`] is unset, in days.
pub const DEFAULT_WARNING_DAYS: i64 = 30;
/// The longest warning window accepted, in days.
pub const MAX_WARNING_DAYS: i64 = 3_650;
/// The body timeout when [`LICENSE_BODY_TIMEOUT`] is unset: a body of a few
/// kilobytes takes milliseconds, and a caller that stalls holds a
/// connection open.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest body timeout accepted: ten minutes.
pub const MAX_BODY_TIMEOUT: Duration = ren3_server::MAX_TIMEOUT;

/// The `.env` file read from the working directory, if present.
const DOTENV_FILE: &str = ".env";

/// The licensing configuration of one ingestor.
///
/// Made only by [`Config::from_env`] or [`Config::from_lookup`], which
/// check every value. The fields are public to be read; a value changed
/// afterwards is not checked again.
#[derive(Clone)]
pub struct Config {
    /// `None` when `enable_offline_license` is off: nothing can be
    /// registered or imported, and the ingestor is unlicensed.
    pub offline: Option<OfflineConfig>,
    /// Where the SQLite store lives ([`LICENSE_DB_PATH`]). Its directory
    /// must exist; the file is created on first start.
    pub license_db_path: PathBuf,
    /// The address to listen on ([`LISTEN_ADDR`]); binding it is the
    /// caller's job. Requests addressed to it pass the `Host` check, unless
    /// it is a wildcard such as `0.0.0.0`.
    pub listen_addr: SocketAddr,
    /// How far the clock may go back before it is suspect, in seconds.
    pub clock_tolerance_seconds: i64,
    /// How many days before expiry status and the log warn.
    pub warning_days: i64,
    /// The host names and addresses of `license_allowed_hosts`, normalised
    /// (lower case, no trailing dot, addresses in their canonical form).
    pub allowed_hosts: Vec<AllowedHost>,
    /// How long a caller may take to send a request body
    /// ([`LICENSE_BODY_TIMEOUT`]).
    pub body_timeout: Duration,
    /// The bounds the service holds every connection to
    /// ([`LICENSE_HEADER_TIMEOUT`], [`LICENSE_MAX_CONNECTIONS`]).
    pub connection_limits: ren3_server::Limits,
    /// Whether the local license page is served ([`LICENSE_PAGE`]).
    pub page: bool,
    /// The vendor's portal that QR codes of requests point to
    /// ([`LICENSE_PORTAL_URL`]), checked: `https://`, no query, no fragment.
    pub portal_url: Option<String>,
    /// Where the metrics listener listens ([`LICENSE_METRICS_ADDR`]);
    /// `None`: no such listener. Binding it is the caller's job
    /// ([`crate::serve_metrics`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Variables that are set but that this build does not read
    /// ([`LICENSE_TRUSTED_KEYS`]; [`trust::DEV_TRUST_ROOT`] in a pinned
    /// build). Start-up warns about each.
    pub ignored_variables: Vec<&'static str>,
    /// The build's trust: only [`Config::from_lookup`] sets it, from what
    /// the build embedded.
    trust: Trust,
}

/// What offline licensing needs, all checked at start-up. Nothing here is
/// about trust: the root is the build's ([`Config::trust`]).
#[derive(Debug, Clone)]
pub struct OfflineConfig {
    /// The id the ReN3 team sent ([`CLIENT_DEVICE_ID`]), checked and in
    /// canonical form. Every payload must be issued for it.
    pub client_device_id: DeviceId,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("offline", &self.offline)
            .field("license_db_path", &self.license_db_path)
            .field("listen_addr", &self.listen_addr)
            .field("clock_tolerance_seconds", &self.clock_tolerance_seconds)
            .field("warning_days", &self.warning_days)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("body_timeout", &self.body_timeout)
            .field("connection_limits", &self.connection_limits)
            .field("page", &self.page)
            .field("portal_url", &self.portal_url)
            .field("metrics_addr", &self.metrics_addr)
            .field("ignored_variables", &self.ignored_variables)
            .field("trust", &self.trust)
            .finish()
    }
}

/// Why the configuration was refused. The message names the variable and
/// what it expects, and is shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable's value is malformed, out of range, or missing while
    /// required.
    #[error("{variable}: {problem}")]
    Invalid {
        /// The variable's name, as the operator sets it.
        variable: &'static str,
        /// What is wrong and what the variable expects.
        problem: String,
    },
    /// `./.env` exists but cannot be read or parsed.
    #[error("{DOTENV_FILE}: {0}; fix the file or remove it")]
    DotEnv(String),
    /// What build.rs embedded does not verify: the binary was altered.
    #[error("{0}; rebuild the client")]
    Build(String),
}

impl ConfigError {
    /// The variable at fault, if the problem is with one variable.
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { variable, .. } => Some(variable),
            ConfigError::DotEnv(_) | ConfigError::Build(_) => None,
        }
    }

    fn invalid(variable: &'static str, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            variable,
            problem: problem.into(),
        }
    }
}

impl Config {
    /// Reads the process environment and `./.env`; a variable set in the
    /// environment wins over the same variable in the file. The file is
    /// only read: the process environment is left unchanged.
    ///
    /// # Errors
    ///
    /// [`ConfigError::DotEnv`] if `./.env` exists but cannot be read or
    /// parsed, and otherwise as [`Config::from_lookup`]. The message is
    /// meant for the operator as is.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = read_dotenv(Path::new(DOTENV_FILE))?;
        Self::from_lookup(|name| {
            std::env::var_os(name)
                .map(|value| value.to_string_lossy().into_owned())
                .or_else(|| file.get(name).cloned())
        })
    }

    /// Builds the configuration from `lookup`, which returns a variable's
    /// value. An empty value counts as unset. The trust root is the one
    /// this build embeds; only a development build reads it from `lookup`
    /// ([`trust::DEV_TRUST_ROOT`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for the first variable that is malformed,
    /// or missing while required; [`ConfigError::Build`] if the trust this
    /// build embedded does not verify.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// use ren3_client::config::{CLIENT_DEVICE_ID, ENABLE_OFFLINE_LICENSE};
    /// use ren3_client::Config;
    ///
    /// let vars = HashMap::from([
    ///     (ENABLE_OFFLINE_LICENSE, "true"),
    ///     (CLIENT_DEVICE_ID, "REN3D1-00000-00000-00000-00000"),
    /// ]);
    /// let config = Config::from_lookup(|name| vars.get(name).map(|v| v.to_string()))?;
    /// assert!(config.offline.is_some());
    /// assert_eq!(config.listen_addr.to_string(), "127.0.0.1:5000");
    ///
    /// // Turned on without a device id: refused, naming the variable.
    /// let err = Config::from_lookup(|name| {
    ///     (name == ENABLE_OFFLINE_LICENSE).then(|| "true".to_owned())
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.variable(), Some(CLIENT_DEVICE_ID));
    /// # Ok::<(), ren3_client::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let enabled = match get(ENABLE_OFFLINE_LICENSE) {
            None => false,
            Some(value) => parse_bool(&value).ok_or_else(|| {
                ConfigError::invalid(
                    ENABLE_OFFLINE_LICENSE,
                    format!(
                        "expected true or false (or 1/0, yes/no), found `{}`",
                        shown(&value)
                    ),
                )
            })?,
        };

        let license_db_path =
            PathBuf::from(get(LICENSE_DB_PATH).unwrap_or_else(|| DEFAULT_LICENSE_DB_PATH.into()));

        let listen_addr = get(LISTEN_ADDR).unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into());
        let listen_addr = listen_addr.parse().map_err(|_| {
            ConfigError::invalid(
                LISTEN_ADDR,
                format!(
                    "expected an IP address and port such as {DEFAULT_LISTEN_ADDR} \
                     or 0.0.0.0:5000, found `{}`",
                    shown(&listen_addr)
                ),
            )
        })?;

        let clock_tolerance_seconds = match get(LICENSE_CLOCK_TOLERANCE) {
            None => DEFAULT_CLOCK_TOLERANCE_SECONDS,
            Some(value) => parse_duration(&value)
                .filter(|s| *s <= MAX_CLOCK_TOLERANCE_SECONDS)
                .ok_or_else(|| {
                    ConfigError::invalid(
                        LICENSE_CLOCK_TOLERANCE,
                        format!(
                            "expected a duration of at most 366d: a number with an optional \
                             unit s, m, h or d (seconds without one), such as 24h or 90m, \
                             found `{}`",
                            shown(&value)
                        ),
                    )
                })?,
        };

        let warning_days = match get(LICENSE_WARNING_DAYS) {
            None => DEFAULT_WARNING_DAYS,
            Some(value) => value
                .parse::<i64>()
                .ok()
                .filter(|d| (0..=MAX_WARNING_DAYS).contains(d))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        LICENSE_WARNING_DAYS,
                        format!(
                            "expected a whole number of days from 0 to {MAX_WARNING_DAYS}, \
                             found `{}`",
                            shown(&value)
                        ),
                    )
                })?,
        };

        let allowed_hosts = match get(LICENSE_ALLOWED_HOSTS) {
            None => Vec::new(),
            Some(value) => parse_allowed_hosts(&value)?,
        };

        let body_timeout = timeout_setting(&get, LICENSE_BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)?;
        let connection_limits = ren3_server::Limits {
            header_timeout: timeout_setting(
                &get,
                LICENSE_HEADER_TIMEOUT,
                ren3_server::Limits::DEFAULT.header_timeout,
            )?,
            max_connections: match get(LICENSE_MAX_CONNECTIONS) {
                None => ren3_server::Limits::DEFAULT.max_connections,
                Some(value) => value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=ren3_server::MAX_CONNECTIONS).contains(n))
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            LICENSE_MAX_CONNECTIONS,
                            format!(
                                "expected a whole number of connections from 1 to {}, \
                                 found `{}`",
                                ren3_server::MAX_CONNECTIONS,
                                shown(&value)
                            ),
                        )
                    })?,
            },
        };

        let page = match get(LICENSE_PAGE) {
            None => true,
            Some(value) => parse_bool(&value).ok_or_else(|| {
                ConfigError::invalid(
                    LICENSE_PAGE,
                    format!(
                        "expected true or false (or 1/0, yes/no), found `{}`",
                        shown(&value)
                    ),
                )
            })?,
        };
        let portal_url = get(LICENSE_PORTAL_URL)
            .map(|value| {
                check_portal_url(&value)
                    .map(|()| value.clone())
                    .map_err(|problem| {
                        ConfigError::invalid(
                            LICENSE_PORTAL_URL,
                            format!(
                                "{problem}; expected the portal's https:// address without \
                                 query or fragment, such as \
                                 https://licensing.example/ren3/register, found `{}`",
                                shown(&value)
                            ),
                        )
                    })
            })
            .transpose()?;

        let metrics_addr = get(LICENSE_METRICS_ADDR)
            .map(|value| metrics_addr(&value, listen_addr))
            .transpose()?;

        let offline = if enabled {
            Some(offline_config(&get)?)
        } else {
            None
        };

        let trust = Trust::of_this_build(&get)?;
        let mut ignored_variables = Vec::new();
        if get(LICENSE_TRUSTED_KEYS).is_some() {
            ignored_variables.push(LICENSE_TRUSTED_KEYS);
        }
        if trust.is_pinned() && get(trust::DEV_TRUST_ROOT).is_some() {
            ignored_variables.push(trust::DEV_TRUST_ROOT);
        }

        Ok(Self {
            offline,
            license_db_path,
            listen_addr,
            clock_tolerance_seconds,
            warning_days,
            allowed_hosts,
            body_timeout,
            connection_limits,
            page,
            portal_url,
            metrics_addr,
            ignored_variables,
            trust,
        })
    }

    /// The trust of this build: read-only.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }
}

fn offline_config(get: &impl Fn(&str) -> Option<String>) -> Result<OfflineConfig, ConfigError> {
    let client_device_id = get(CLIENT_DEVICE_ID).ok_or_else(|| {
        ConfigError::invalid(
            CLIENT_DEVICE_ID,
            format!(
                "required when {ENABLE_OFFLINE_LICENSE} is true; \
                 set it to the id the ReN3 team sent you"
            ),
        )
    })?;
    let client_device_id = DeviceId::parse(&client_device_id).map_err(|e| {
        ConfigError::invalid(
            CLIENT_DEVICE_ID,
            format!("{e}; set it to the id the ReN3 team sent you"),
        )
    })?;

    Ok(OfflineConfig { client_device_id })
}

/// The variables in `path`, without touching the process environment; a
/// missing file is no file.
fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(HashMap::new());
        }
        Err(e) => return Err(ConfigError::DotEnv(e.to_string())),
    };
    let mut vars = HashMap::new();
    for item in iter {
        let (name, value) = item.map_err(|e| ConfigError::DotEnv(e.to_string()))?;
        // The first declaration wins, as when dotenvy loads a file.
        vars.entry(name).or_insert(value);
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE_ID: &str = "REN3D1-00000-00000-00000-00000";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_leave_offline_licensing_off() {
        let config = config(&[]).unwrap();
        assert!(config.offline.is_none());
        assert_eq!(config.license_db_path, PathBuf::from("./ren3-license.db"));
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:5000");
    }

    #[test]
    fn enabled_offline_licensing_needs_only_the_two_documented_variables() {
        for spelling in ["true", "TRUE", "1", "yes", "Yes"] {
            let config = config(&[
                (ENABLE_OFFLINE_LICENSE, spelling),
                (CLIENT_DEVICE_ID, "ren3d1 00000 00000 00000 00000"),
                (LICENSE_DB_PATH, "/var/lib/ren3/license.db"),
                (LISTEN_ADDR, "0.0.0.0:8080"),
            ])
            .unwrap();
            assert!(config.ignored_variables.is_empty(), "{spelling}");
            let offline = config.offline.expect(spelling);
            assert_eq!(offline.client_device_id.as_str(), DEVICE_ID);
            assert_eq!(
                config.license_db_path,
                PathBuf::from("/var/lib/ren3/license.db")
            );
            assert_eq!(config.listen_addr.to_string(), "0.0.0.0:8080");
        }
        for spelling in ["false", "0", "no", "NO", ""] {
            let config = config(&[(ENABLE_OFFLINE_LICENSE, spelling)]).unwrap();
            assert!(config.offline.is_none(), "{spelling}");
        }
    }

    #[test]
    fn config_errors_name_the_variable_and_what_it_expects() {
        let on = (ENABLE_OFFLINE_LICENSE, "true");

        type Vars<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Vars<'_>, &str, &str)] = &[
            (
                &[(ENABLE_OFFLINE_LICENSE, "maybe")],
                ENABLE_OFFLINE_LICENSE,
                "expected true or false",
            ),
            (
                &[(LISTEN_ADDR, "localhost")],
                LISTEN_ADDR,
                "expected an IP address and port",
            ),
            (
                &[on],
                CLIENT_DEVICE_ID,
                "required when enable_offline_license is true",
            ),
            (
                &[on, (CLIENT_DEVICE_ID, "REN3D1-00000-00000-00000-00001")],
                CLIENT_DEVICE_ID,
                "the client device id contains a typo",
            ),
            (
                &[on, (CLIENT_DEVICE_ID, "REN3K1-00000")],
                CLIENT_DEVICE_ID,
                "starts with `REN3D1-`",
            ),
            (
                &[(LICENSE_ALLOWED_HOSTS, "a.example,*.example")],
                LICENSE_ALLOWED_HOSTS,
                "`*.example` is a wildcard",
            ),
            (
                &[(LICENSE_ALLOWED_HOSTS, "a.example:8080")],
                LICENSE_ALLOWED_HOSTS,
                "`a.example:8080` has a port",
            ),
            (
                &[(LICENSE_ALLOWED_HOSTS, "a.example b.example")],
                LICENSE_ALLOWED_HOSTS,
                "separated by commas",
            ),
        ];
        for (n, (vars, variable, needle)) in cases.iter().enumerate() {
            let err = config(vars).expect_err(&format!("{n}. must be refused"));
            assert_eq!(err.variable(), Some(*variable), "{n}. {err}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{variable}: ")),
                "{n}. {message}"
            );
            assert!(message.contains(needle), "{n}. {message}");
        }
    }

    #[test]
    fn allowed_hosts_are_optional_and_normalised() {
        assert!(config(&[]).unwrap().allowed_hosts.is_empty());
        let config = config(&[(
            LICENSE_ALLOWED_HOSTS,
            " Ingestor.Example. , 10.0.0.5,,fe80::1, [FE80::1], ingestor.example",
        )])
        .unwrap();
        let shown: Vec<String> = config
            .allowed_hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["ingestor.example", "10.0.0.5", "[fe80::1]"]);
    }

    #[test]
    fn device_id_typo_message_tells_what_to_do() {
        let err = config(&[
            (ENABLE_OFFLINE_LICENSE, "true"),
            (CLIENT_DEVICE_ID, "REN3D1-00000-00000-00000-00001"),
        ])
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("client_device_id: the client device id contains a typo: "));
        assert!(message.ends_with("; set it to the id the ReN3 team sent you"));
    }

    #[test]
    fn dotenv_file_is_optional_and_read_without_touching_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_dotenv(&dir.path().join(".env")).unwrap().is_empty());

        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "enable_offline_license=true\nclient_device_id=\"REN3D1-00000-00000-00000-00000\"\n",
        )
        .unwrap();
        let vars = read_dotenv(&path).unwrap();
        assert_eq!(
            vars.get(ENABLE_OFFLINE_LICENSE).map(String::as_str),
            Some("true")
        );
        assert_eq!(
            vars.get(CLIENT_DEVICE_ID).map(String::as_str),
            Some(DEVICE_ID)
        );

        std::fs::write(&path, "this line is not an assignment\n").unwrap();
        let err = read_dotenv(&path).unwrap_err();
        assert!(err.to_string().starts_with(".env: "), "{err}");
    }

    #[test]
    fn clock_tolerance_and_warning_days_have_defaults_and_a_simple_syntax() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.clock_tolerance_seconds, 86_400);
        assert_eq!(defaults.warning_days, 30);

        let cases = [
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("30m", 1_800),
            ("24h", 86_400),
            ("24H", 86_400),
            ("2d", 172_800),
            ("366d", 366 * 86_400),
        ];
        for (n, (value, seconds)) in cases.into_iter().enumerate() {
            let config = config(&[(LICENSE_CLOCK_TOLERANCE, value)]).expect(value);
            assert_eq!(config.clock_tolerance_seconds, seconds, "{n}. {value}");
        }
        for (n, value) in [
            "h",
            "-1h",
            "1.5h",
            "24 h",
            "1w",
            "367d",
            "99999999999999999999",
        ]
        .into_iter()
        .enumerate()
        {
            let err = config(&[(LICENSE_CLOCK_TOLERANCE, value)]).expect_err(value);
            assert_eq!(
                err.variable(),
                Some(LICENSE_CLOCK_TOLERANCE),
                "{n}. {value}"
            );
        }

        assert_eq!(
            config(&[(LICENSE_WARNING_DAYS, "0")]).unwrap().warning_days,
            0
        );
        assert_eq!(
            config(&[(LICENSE_WARNING_DAYS, "90")])
                .unwrap()
                .warning_days,
            90
        );
        for (n, value) in ["-1", "3651", "30d", "soon"].into_iter().enumerate() {
            let err = config(&[(LICENSE_WARNING_DAYS, value)]).expect_err(value);
            assert_eq!(err.variable(), Some(LICENSE_WARNING_DAYS), "{n}. {value}");
        }
    }

    /// The syntax is `ren3_server::parse_timeout`'s, tested there; here,
    /// that the setting reaches it and names itself when refused.
    #[test]
    fn body_timeout_has_a_default_and_the_shared_syntax() {
        assert_eq!(config(&[]).unwrap().body_timeout, Duration::from_secs(10));
        let set = config(&[(LICENSE_BODY_TIMEOUT, "250ms")]).unwrap();
        assert_eq!(set.body_timeout, Duration::from_millis(250));
        for value in ["0", "11m", "soon"] {
            let err = config(&[(LICENSE_BODY_TIMEOUT, value)]).expect_err(value);
            assert_eq!(err.variable(), Some(LICENSE_BODY_TIMEOUT), "{value}");
            assert!(
                err.to_string()
                    .starts_with("license_body_timeout: expected a duration from 1ms to 10m"),
                "{err}"
            );
        }
    }

    #[test]
    fn connection_limits_have_defaults_and_refuse_what_is_out_of_range() {
        assert_eq!(
            config(&[]).unwrap().connection_limits,
            ren3_server::Limits::DEFAULT
        );
        let set = config(&[
            (LICENSE_HEADER_TIMEOUT, "750ms"),
            (LICENSE_MAX_CONNECTIONS, "64"),
        ])
        .unwrap();
        assert_eq!(
            set.connection_limits,
            ren3_server::Limits {
                header_timeout: Duration::from_millis(750),
                max_connections: 64,
            }
        );
        for (name, value, says) in [
            (
                LICENSE_HEADER_TIMEOUT,
                "0",
                "expected a duration from 1ms to 10m",
            ),
            (
                LICENSE_HEADER_TIMEOUT,
                "1h",
                "expected a duration from 1ms to 10m",
            ),
            (LICENSE_MAX_CONNECTIONS, "0", "from 1 to 1048576, found `0`"),
            (
                LICENSE_MAX_CONNECTIONS,
                "-5",
                "from 1 to 1048576, found `-5`",
            ),
            (LICENSE_MAX_CONNECTIONS, "1048577", "from 1 to 1048576"),
            (LICENSE_MAX_CONNECTIONS, "many", "found `many`"),
        ] {
            let err = config(&[(name, value)]).expect_err(value);
            assert_eq!(err.variable(), Some(name), "{value}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn trust_variables_are_never_read_and_are_reported_as_ignored() {
        let dir = tempfile::tempdir().unwrap();
        // A file a customer wrote, trusting a key of their own: whatever it
        // holds, it is never opened.
        let forged = dir.path().join("trusted-keys.json");
        std::fs::write(&forged, "not even a trusted-keys file").unwrap();
        let forged = forged.to_str().unwrap();
        let missing = dir.path().join("missing.json");
        let missing = missing.to_str().unwrap();
        let on = (ENABLE_OFFLINE_LICENSE, "true");
        let id = (CLIENT_DEVICE_ID, DEVICE_ID);
        let baseline = config(&[on, id]).unwrap();
        for (n, path) in [forged, missing].into_iter().enumerate() {
            let config = config(&[on, id, (LICENSE_TRUSTED_KEYS, path)])
                .unwrap_or_else(|e| panic!("{n}. start-up must not fail: {e}"));
            assert_eq!(config.ignored_variables, vec![LICENSE_TRUSTED_KEYS], "{n}.");
            assert_eq!(
                config.trust().fingerprint(),
                baseline.trust().fingerprint(),
                "{n}. the root is the build's"
            );
        }
        if !trust::IS_DEVELOPMENT_BUILD {
            let config = config(&[on, id, (trust::DEV_TRUST_ROOT, forged)]).unwrap();
            assert_eq!(config.ignored_variables, vec![trust::DEV_TRUST_ROOT]);
            assert!(config.trust().is_pinned());
            assert_eq!(config.trust().fingerprint(), baseline.trust().fingerprint());
        }
    }

    #[test]
    fn the_page_is_on_by_default_and_can_be_turned_off() {
        assert!(config(&[]).unwrap().page);
        assert!(!config(&[(LICENSE_PAGE, "false")]).unwrap().page);
        assert!(config(&[(LICENSE_PAGE, "yes")]).unwrap().page);
        let err = config(&[(LICENSE_PAGE, "maybe")]).unwrap_err();
        assert_eq!(err.variable(), Some(LICENSE_PAGE));
        assert!(err.to_string().contains("expected true or false"), "{err}");
    }

    #[test]
    fn a_portal_url_is_https_without_query_or_fragment() {
        assert_eq!(config(&[]).unwrap().portal_url, None);
        for good in [
            "https://licensing.example",
            "https://licensing.example/",
            "https://licensing.example:8443/ren3/register",
            "https://10.0.0.5/a-b_c.d~e/%2F",
        ] {
            let config =
                config(&[(LICENSE_PORTAL_URL, good)]).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(config.portal_url.as_deref(), Some(good));
        }
        for (bad, problem) in [
            ("http://licensing.example/", "does not start with https://"),
            ("licensing.example", "does not start with https://"),
            ("https://", "not a host name"),
            ("https://-bad.example/", "not a host name"),
            ("https://a..b/", "not a host name"),
            ("https://user@licensing.example/", "not a host name"),
            ("https://licensing.example:0/", "port"),
            ("https://licensing.example:99999/", "port"),
            ("https://licensing.example/?a=b", "query or fragment"),
            ("https://licensing.example/#x", "query or fragment"),
            ("https://licensing.example/a b", "must be escaped"),
            ("https://licensing.example/%zz", "does not start an escape"),
            ("https://licensing.example/%2", "does not start an escape"),
        ] {
            let err = config(&[(LICENSE_PORTAL_URL, bad)]).unwrap_err();
            assert_eq!(err.variable(), Some(LICENSE_PORTAL_URL), "{bad}");
            assert!(err.to_string().contains(problem), "{bad}: {err}");
        }
        let long = format!("https://licensing.example/{}", "a".repeat(200));
        let err = config(&[(LICENSE_PORTAL_URL, &long)]).unwrap_err();
        assert!(err.to_string().contains("longer than 200"), "{err}");
    }

    #[test]
    fn the_metrics_listener_is_off_unless_an_address_of_its_own_is_given() {
        assert_eq!(config(&[]).unwrap().metrics_addr, None);
        assert_eq!(
            config(&[(LICENSE_METRICS_ADDR, "  ")])
                .unwrap()
                .metrics_addr,
            None
        );
        for (i, good) in ["0.0.0.0:9464", "127.0.0.1:0", "[::]:9464", "127.0.0.1:5001"]
            .into_iter()
            .enumerate()
        {
            let config = config(&[(LICENSE_METRICS_ADDR, good)])
                .unwrap_or_else(|e| panic!("{i}: {good}: {e}"));
            assert_eq!(config.metrics_addr, Some(good.parse().unwrap()), "{i}");
        }
        // Port 0 for both: each gets a port of its own from the system.
        let both_zero = config(&[
            (LISTEN_ADDR, "127.0.0.1:0"),
            (LICENSE_METRICS_ADDR, "127.0.0.1:0"),
        ])
        .unwrap();
        assert_eq!(both_zero.metrics_addr, Some("127.0.0.1:0".parse().unwrap()));
        for (i, (bad, problem)) in [
            ("9464", "expected an IP address and port"),
            ("metrics.example:9464", "expected an IP address and port"),
            ("0.0.0.0", "expected an IP address and port"),
            ("127.0.0.1:5000", "is the listen address"),
        ]
        .into_iter()
        .enumerate()
        {
            let err = config(&[(LICENSE_METRICS_ADDR, bad)]).unwrap_err();
            assert_eq!(err.variable(), Some(LICENSE_METRICS_ADDR), "{i}: {bad}");
            assert!(err.to_string().contains(problem), "{i}: {bad}: {err}");
        }
    }
}
