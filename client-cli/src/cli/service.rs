//! The running service, as the commands reach it: its address from the
//! same configuration it starts with, and its answers read as JSON or as
//! problem+json refusals.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, anyhow};
use ren3_client::Config;
use serde_json::Value;

use super::{URL_VARIABLE, UsageError};

/// Long enough for a busy store; short enough that a wedged service is
/// reported rather than waited on for ever.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The service's refusal, from its problem+json: shown as
/// `<detail> [<code>]`, the code being what a script matches on.
#[derive(Debug, thiserror::Error)]
#[error("{detail} [{code}]")]
pub(super) struct Refused {
    pub(super) code: String,
    pub(super) detail: String,
}

/// A successful answer: its text as sent, and parsed.
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) value: Value,
}

/// Where the service is and how requests reach it.
pub(super) struct Service {
    /// `http://ADDR`, without a trailing slash.
    base: String,
    /// The `Host` to send, when the address came from `listen_addr`.
    host: Option<String>,
    agent: ureq::Agent,
}

impl Service {
    /// The service at `url` if given (`--url` or [`URL_VARIABLE`]);
    /// otherwise at `listen_addr` from the environment and `./.env`, as
    /// the service reads it.
    pub(super) fn locate(url: Option<&str>) -> Result<Self> {
        let (base, host) = match url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(UsageError(format!(
                        "--url (or {URL_VARIABLE}) must be an http:// URL such as \
                         http://127.0.0.1:5000, not `{url}`"
                    ))
                    .into());
                }
                (url.trim_end_matches('/').to_owned(), None)
            }
            None => {
                let config = Config::from_env().map_err(|e| {
                    UsageError(format!(
                        "{e} (the configuration the service reads, from the environment \
                         and ./.env; or give the service's address with --url)"
                    ))
                })?;
                let addr = connect_addr(config.listen_addr);
                if addr.port() == 0 {
                    return Err(UsageError(format!(
                        "listen_addr is {}: the service chose its own port, which is not in \
                         the configuration; give the address it printed (`listening on ...`) \
                         with --url or {URL_VARIABLE}",
                        config.listen_addr
                    ))
                    .into());
                }
                // `localhost` passes the service's Host check whatever
                // listen_addr and license_allowed_hosts say.
                (
                    format!("http://{addr}"),
                    Some(format!("localhost:{}", addr.port())),
                )
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            // The service is local: an operator's HTTP_PROXY is for the
            // outside world and must not see the license key.
            .proxy(None)
            .build()
            .into();
        Ok(Self { base, host, agent })
    }

    /// The service's base URL, `http://ADDR`, without a trailing slash.
    pub(super) fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`.
    pub(super) fn get(&self, path: &str) -> Result<Answer> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(host) = &self.host {
            request = request.header("host", host);
        }
        self.answer(request.call())
    }

    /// `POST path` with a JSON body.
    pub(super) fn post(&self, path: &str, body: &Value) -> Result<Answer> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(host) = &self.host {
            request = request.header("host", host);
        }
        self.answer(request.send(body.to_string()))
    }

    fn answer(
        &self,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer> {
        let mut response = sent.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response.body_mut().read_to_string().map_err(|e| {
            anyhow!(
                "cannot read the answer of the service at {}: {e}",
                self.base
            )
        })?;
        let value: Option<Value> = serde_json::from_str(&text).ok();
        match value {
            Some(value) if status.is_success() => Ok(Answer { text, value }),
            Some(problem) if problem["code"].is_string() => {
                let code = problem["code"].as_str().unwrap_or_default().to_owned();
                let detail = problem["detail"]
                    .as_str()
                    .or(problem["title"].as_str())
                    .unwrap_or("the service refused the request")
                    .to_owned();
                Err(Refused { code, detail }.into())
            }
            _ => Err(anyhow!(
                "the service at {} answered HTTP {} with no JSON it describes; check that \
                 --url or listen_addr points at the ReN3 licensing service",
                self.base,
                status.as_u16()
            )),
        }
    }

    /// A request that got no answer, said as what the operator does next.
    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        let base = &self.base;
        let not_running = |why: &str| {
            anyhow!(
                "the licensing service is not running at {base} ({why}); start it with \
                 `ren3-client` (or `ren3-client serve`) in the ingestor's directory, or give \
                 its address with --url"
            )
        };
        match e {
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                not_running("connection refused")
            }
            ureq::Error::ConnectionFailed => not_running("the connection failed"),
            ureq::Error::Timeout(_) => anyhow!(
                "the service at {base} did not answer within {} s; check its log",
                TIMEOUT.as_secs()
            ),
            e => anyhow!("cannot reach the licensing service at {base}: {e}"),
        }
    }
}

/// Where to connect for `listen_addr`: a wildcard address listens on
/// loopback too, so the commands connect there, with the same port.
fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_connect_through_loopback_on_the_same_port() {
        for (listen, connect) in [
            ("0.0.0.0:5000", "127.0.0.1:5000"),
            ("[::]:5001", "[::1]:5001"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("10.0.0.5:80", "10.0.0.5:80"),
            ("[fe80::1]:5000", "[fe80::1]:5000"),
        ] {
            let listen: SocketAddr = listen.parse().unwrap();
            assert_eq!(connect_addr(listen).to_string(), connect, "{listen}");
        }
    }
}
