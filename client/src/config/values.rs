//! The values of the variables, one parser each: what a value may be, and
//! the message that names the variable and what it expects when it is not.
//! [`super::Config::from_lookup`] reads the variables and calls these.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;

/// [`LICENSE_METRICS_ADDR`]: an IP address and port, other than the
/// listen address (port 0, for a port of the system's choosing, is fine).
pub(super) fn metrics_addr(
    value: &str,
    listen_addr: SocketAddr,
) -> Result<SocketAddr, ConfigError> {
    let addr: SocketAddr = value.parse().map_err(|_| {
        ConfigError::invalid(
            LICENSE_METRICS_ADDR,
            format!(
                "expected an IP address and port such as 0.0.0.0:9464 or 127.0.0.1:9464, \
                 found `{}`",
                shown(value)
            ),
        )
    })?;
    if addr == listen_addr && addr.port() != 0 {
        return Err(ConfigError::invalid(
            LICENSE_METRICS_ADDR,
            format!(
                "`{addr}` is the listen address ({LISTEN_ADDR}); give the metrics listener \
                 a port of its own, such as 9464"
            ),
        ));
    }
    Ok(addr)
}

/// `a.example, 10.0.0.5,[fe80::1]`: names and addresses, without ports or
/// wildcards. Every entry must be valid, so that a typo is found at start-up
/// rather than as a refused request.
pub(super) fn parse_allowed_hosts(value: &str) -> Result<Vec<AllowedHost>, ConfigError> {
    let mut hosts = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let host = AllowedHost::parse_configured(entry).map_err(|problem| {
            ConfigError::invalid(
                LICENSE_ALLOWED_HOSTS,
                format!(
                    "`{}` {problem}; list host names or IP addresses separated by commas, \
                     without ports or wildcards, such as ingestor.example,10.0.0.5",
                    shown(entry)
                ),
            )
        })?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

/// A portal address as [`LICENSE_PORTAL_URL`] takes it: `https://`, a host
/// name or IPv4 address with an optional port, and an optional path of
/// unreserved characters and percent escapes. Narrower than a URL on
/// purpose: the request is appended as `?request=<token>`, and every
/// character must survive a phone's camera app unchanged.
pub(super) fn check_portal_url(value: &str) -> Result<(), &'static str> {
    if value.len() > MAX_PORTAL_URL_LENGTH {
        return Err("the address is longer than 200 characters");
    }
    let Some(rest) = value.strip_prefix("https://") else {
        return Err("the address does not start with https://");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !host_ok {
        return Err("the host is not a host name or IPv4 address");
    }
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return Err("the port is not a number from 1 to 65535");
    }
    if path.contains(['?', '#']) {
        return Err("the address has a query or fragment, to which the request cannot be added");
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escape = bytes.get(i + 1..i + 3);
                if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                    return Err("the path has a % that does not start an escape such as %20");
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) => i += 1,
            _ => return Err("the path has a character that must be escaped"),
        }
    }
    Ok(())
}

/// `90`, `90s`, `30m`, `24h` or `1d`, in seconds.
pub(super) fn parse_duration(value: &str) -> Option<i64> {
    let (digits, unit) = match value.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&value[..i], c.to_ascii_lowercase()),
        _ => (value, 's'),
    };
    let multiplier = match unit {
        's' => 1,
        'm' => 60,
        'h' => 60 * 60,
        'd' => 24 * 60 * 60,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(multiplier)
}

/// A timeout setting `name`: `default` when unset, else in the syntax of
/// [`ren3_server::parse_timeout`].
pub(super) fn timeout_setting(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(value) = get(name) else {
        return Ok(default);
    };
    ren3_server::parse_timeout(&value).ok_or_else(|| {
        ConfigError::invalid(
            name,
            format!("{}, found `{}`", ren3_server::TIMEOUT_SYNTAX, shown(&value)),
        )
    })
}

pub(super) fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// A configured value as it may be echoed back: bounded and printable.
pub(super) fn shown(value: &str) -> String {
    value
        .chars()
        .take(64)
        .flat_map(char::escape_debug)
        .collect()
}
