//! The `Host` check both servers make (the client on its licensing
//! endpoints, the console on every page).
//!
//! A web page the operator opens can make their browser send requests to a
//! name the page's owner controls, and then point that name at
//! `127.0.0.1` (DNS rebinding): the browser then treats the server as the
//! page's own origin, so the page can read its answers and post to it.
//! The browser still sends the page's name in `Host`, so a server answers
//! only requests addressed to a name that cannot be rebound: `localhost`,
//! a loopback address, the address it listens on, or a name its operator
//! listed. The port is not compared, so SSH tunnels, port mappings,
//! containers and TLS proxies keep working.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::{HeaderMap, Uri, header, uri::Authority};

/// The longest host name (RFC 1035), and the most of a refused `Host`
/// echoed back.
const MAX_NAME: usize = 253;

/// Why a request's destination was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRefusal {
    /// No `Host`, more than one, or one that is not a host and port.
    Invalid,
    /// A host this server does not answer to, as the request named it.
    NotAllowed(String),
}

/// A name or address requests may be addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    /// An IPv4 or IPv6 address; shown with brackets when IPv6.
    Address(IpAddr),
    /// Lower case, without a trailing dot.
    Name(String),
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedHost::Address(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            AllowedHost::Address(ip) => write!(f, "{ip}"),
            AllowedHost::Name(name) => f.write_str(name),
        }
    }
}

impl AllowedHost {
    /// A configured entry (`license_allowed_hosts`, `--allowed-host`): a
    /// name, an IPv4 address, or an
    /// IPv6 address with or without brackets. The error says what is wrong.
    pub fn parse_configured(entry: &str) -> Result<Self, &'static str> {
        if entry.contains('*') {
            return Err("is a wildcard, which is not accepted: list every name");
        }
        if let Ok(ip) = entry.parse::<Ipv6Addr>() {
            return Ok(AllowedHost::Address(IpAddr::V6(ip)));
        }
        match Self::parse_host(entry) {
            Some(host) => Ok(host),
            None if entry.contains(':') => Err("has a port or is not an address; give no port"),
            None => Err("is not a host name or an IP address"),
        }
    }

    /// The host part of a request's authority (no port, no user info), as
    /// a browser would have resolved it: IPv6 in brackets, IPv4 in any of
    /// the spellings the WHATWG URL standard reads (`127.1`, `0x7f.0.0.1`),
    /// or a name. `None` when it is none of these.
    fn parse_host(host: &str) -> Option<Self> {
        if let Some(inner) = host.strip_prefix('[') {
            let ip = inner.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?;
            return Some(AllowedHost::Address(IpAddr::V6(ip)));
        }
        let host = host.to_ascii_lowercase();
        let name = host.strip_suffix('.').unwrap_or(&host);
        if name.is_empty() || name.len() > MAX_NAME {
            return None;
        }
        // A browser reads a host whose last label is a number as an IPv4
        // address and never asks DNS about it, so neither does this.
        if name.rsplit('.').next().is_some_and(is_number) {
            return whatwg_ipv4(name).map(|ip| AllowedHost::Address(IpAddr::V4(ip)));
        }
        let labels_ok = name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        labels_ok.then(|| AllowedHost::Name(name.to_owned()))
    }
}

/// Whether `label` is a number in one of the WHATWG IPv4 spellings.
fn is_number(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// The WHATWG URL standard's IPv4 parser: one to four parts, each decimal,
/// octal (a leading 0) or hexadecimal (`0x`); the last fills the bytes the
/// others left.
fn whatwg_ipv4(name: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (*part, 10)
        };
        let number = if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        numbers.push(number);
    }
    let (last, leading) = numbers.split_last()?;
    if leading.iter().any(|n| *n > 255) {
        return None;
    }
    let last_bits = 8 * (5 - numbers.len());
    if *last >= 1u64 << last_bits {
        return None;
    }
    let mut address = *last;
    for (i, n) in leading.iter().enumerate() {
        address += n << (8 * (3 - i));
    }
    u32::try_from(address).ok().map(Ipv4Addr::from)
}

/// The names and addresses a server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// The listen address, unless it is a wildcard: `0.0.0.0` means every
    /// interface, not every name.
    listen: Option<IpAddr>,
    configured: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// The hosts allowed for a server listening on `listen`, with the
    /// configured names and addresses. `localhost` and the loopback
    /// addresses are always allowed.
    pub fn new(listen: SocketAddr, configured: &[AllowedHost]) -> Self {
        let ip = listen.ip();
        Self {
            listen: (!ip.is_unspecified()).then_some(ip),
            configured: configured.to_vec(),
        }
    }

    /// Whether a request addressed to `host` (a `Host` value's host part)
    /// is answered.
    pub fn allows(&self, host: &str) -> bool {
        match AllowedHost::parse_host(host) {
            None => false,
            Some(AllowedHost::Name(name)) => {
                name == "localhost" || self.configured.contains(&AllowedHost::Name(name))
            }
            Some(AllowedHost::Address(ip)) => {
                is_loopback(ip)
                    || self.listen == Some(ip)
                    || self.configured.contains(&AllowedHost::Address(ip))
            }
        }
    }

    /// Judges where a request was addressed: the authority of an
    /// absolute-form target, which wins over `Host` (RFC 9112 §3.2.2), or
    /// the one `Host` header.
    ///
    /// # Errors
    /// [`HostRefusal`]: no authority, several `Host` headers, or a host
    /// not allowed.
    pub fn judge(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), HostRefusal> {
        let authority = match uri.authority() {
            Some(authority) => authority.clone(),
            None => {
                let mut hosts = headers.get_all(header::HOST).iter();
                let (Some(value), None) = (hosts.next(), hosts.next()) else {
                    return Err(HostRefusal::Invalid);
                };
                value
                    .to_str()
                    .ok()
                    .and_then(|text| text.parse::<Authority>().ok())
                    .filter(|a| !a.as_str().contains('@'))
                    .ok_or(HostRefusal::Invalid)?
            }
        };
        let host = authority.host();
        if self.allows(host) {
            Ok(())
        } else {
            Err(HostRefusal::NotAllowed(host.to_owned()))
        }
    }
}

/// 127.0.0.0/8 and ::1, also as an IPv4-mapped IPv6 address, which a
/// dual-stack socket delivers to 127.0.0.1.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> AllowedHosts {
        AllowedHosts::new(
            "192.168.7.2:5000".parse().unwrap(),
            &[
                AllowedHost::parse_configured("Ingestor.Example.").unwrap(),
                AllowedHost::parse_configured("fd00::7").unwrap(),
            ],
        )
    }

    #[test]
    fn loopback_localhost_the_listen_address_and_configured_names_are_allowed() {
        let cases = [
            ("localhost", true),
            ("LOCALHOST.", true),
            ("127.0.0.1", true),
            ("127.9.8.7", true),
            ("127.1", true),
            ("0x7f.0.0.1", true),
            ("0177.0.0.1", true),
            ("2130706433", true),
            ("[::1]", true),
            ("[0:0:0:0:0:0:0:1]", true),
            ("[::ffff:127.0.0.1]", true),
            ("192.168.7.2", true),
            ("ingestor.example", true),
            ("INGESTOR.example.", true),
            ("[fd00::7]", true),
            ("[fd00:0::7]", true),
            // Refused: other names, other addresses, broken spellings.
            ("evil.example", false),
            ("localhost.evil.example", false),
            ("ingestor.example.evil", false),
            ("192.168.7.3", false),
            ("0.0.0.0", false),
            ("[::]", false),
            ("[::2]", false),
            ("128.0.0.1", false),
            ("127.0.0.256", false),
            ("1.2.3.4.5", false),
            ("127.0.0.1x", false),
            ("::1", false),
            ("[::1", false),
            ("", false),
            ("a..b", false),
        ];
        let hosts = hosts();
        for (n, (host, allowed)) in cases.into_iter().enumerate() {
            assert_eq!(hosts.allows(host), allowed, "{n}. {host}");
        }
    }

    #[test]
    fn a_wildcard_listen_address_allows_no_more_names() {
        for listen in ["0.0.0.0:5000", "[::]:5000"] {
            let hosts = AllowedHosts::new(listen.parse().unwrap(), &[]);
            assert!(hosts.allows("127.0.0.1"), "{listen}");
            assert!(!hosts.allows("0.0.0.0"), "{listen}");
            assert!(!hosts.allows("[::]"), "{listen}");
            assert!(!hosts.allows("10.1.2.3"), "{listen}");
            assert!(!hosts.allows("evil.example"), "{listen}");
        }
    }

    #[test]
    fn configured_entries_are_names_or_addresses_without_ports() {
        let accepted = [
            ("a.example", "a.example"),
            ("A.Example.", "a.example"),
            ("my_service", "my_service"),
            ("10.0.0.5", "10.0.0.5"),
            ("fe80::1", "[fe80::1]"),
            ("[FE80::1]", "[fe80::1]"),
        ];
        for (n, (entry, shown)) in accepted.into_iter().enumerate() {
            let host = AllowedHost::parse_configured(entry).unwrap();
            assert_eq!(host.to_string(), shown, "{n}. {entry}");
        }
        for (n, entry) in [
            "*.example",
            "*",
            "a.example:8080",
            "a b",
            "a/b",
            "1.2.3.4.5",
        ]
        .into_iter()
        .enumerate()
        {
            assert!(
                AllowedHost::parse_configured(entry).is_err(),
                "{n}. {entry}"
            );
        }
    }
}
