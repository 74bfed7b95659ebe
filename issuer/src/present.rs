//! How a license's terms and times read for people, the same in the CLI's
//! output and on the console's pages (through `web::view::filters`).

use std::collections::BTreeMap;

use ren3_shared::timestamp;

/// A time: RFC 3339, UTC.
pub(crate) fn time(unix_seconds: i64) -> String {
    timestamp::format(unix_seconds)
}

/// An expiry, or "never".
pub(crate) fn expiry(expires_at: Option<i64>) -> String {
    expires_at.map_or_else(|| "never".to_owned(), time)
}

/// A grace period: "none", whole days, or seconds.
pub(crate) fn grace(seconds: u64) -> String {
    match seconds {
        0 => "none".to_owned(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s => format!("{s} seconds"),
    }
}

/// Limits as `name=value`, joined by `separator`; "none" for none.
pub(crate) fn limits(limits: &BTreeMap<String, u64>, separator: &str) -> String {
    if limits.is_empty() {
        return "none".to_owned();
    }
    limits
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_read_the_same_everywhere() {
        assert_eq!(expiry(None), "never");
        assert_eq!(expiry(Some(1_800_000_000)), "2027-01-15T08:00:00Z");
        assert_eq!(grace(0), "none");
        assert_eq!(grace(14 * 86_400), "14 days");
        assert_eq!(grace(90), "90 seconds");
        let mut terms = BTreeMap::new();
        assert_eq!(limits(&terms, ", "), "none");
        terms.insert("max-sources".to_owned(), 25);
        terms.insert("max-users".to_owned(), 3);
        assert_eq!(limits(&terms, ", "), "max-sources=25, max-users=3");
    }
}
