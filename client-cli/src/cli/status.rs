//! The status answer (`GET /license`, and an accepted import) as lines for
//! people: the state, why, and what to do, then the license it is about.
//! `--json` prints the answer itself, for scripts.

use std::fmt::Write as _;

use serde_json::Value;

/// Labelled lines, one value per line: a value's own line breaks are
/// shown escaped, so it cannot pass for another line.
pub(super) fn explain(status: &Value) -> String {
    let text = |name: &str| status[name].as_str().map(str::to_owned);
    let mut lines: Vec<(&str, String)> = Vec::new();
    let state = text("state").unwrap_or_else(|| "unknown".into());
    let state = match text("reasonCode") {
        Some(code) if code != state => format!("{state} ({code})"),
        _ => state,
    };
    lines.push(("state", state));
    if let Some(reason) = text("reason") {
        lines.push(("why", reason));
    }
    if let Some(next) = text("nextAction") {
        lines.push(("what to do", next));
    }
    let license = &status["license"];
    if let Some(customer) = license["customer"].as_str() {
        lines.push(("customer", customer.to_owned()));
    }
    if let Some(serial) = license["serial"].as_u64() {
        lines.push(("serial", serial.to_string()));
    }
    if license.is_object() {
        let expires = match (
            license["expiresAt"].as_str(),
            status["daysRemaining"].as_i64(),
        ) {
            (Some(at), Some(days)) => format!("{at} ({days} days left)"),
            (Some(at), None) => at.to_owned(),
            (None, _) => "never".to_owned(),
        };
        lines.push(("expires", expires));
        if let Some(features) = license["features"].as_array() {
            let features: Vec<&str> = features.iter().filter_map(Value::as_str).collect();
            lines.push(("features", features.join(", ")));
        }
    }
    if let Some(id) = text("clientDeviceId") {
        lines.push(("client device id", id));
    }
    if let Some(pending) = status["pendingRequests"].as_u64().filter(|n| *n > 0) {
        lines.push(("pending requests", pending.to_string()));
    }

    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        + 1;
    let mut out = String::new();
    for (label, value) in lines {
        let value = value.replace('\n', "\\u{a}");
        let _ = writeln!(out, "{:width$} {value}", format!("{label}:"));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_active_license_shows_its_state_reason_action_and_terms() {
        let status = json!({
            "state": "active",
            "reasonCode": "active",
            "reason": "the license is valid",
            "nextAction": "nothing to do",
            "clientDeviceId": "REN3D1-X",
            "pendingRequests": 0,
            "daysRemaining": 12,
            "license": {
                "customer": "ACME\nstate: forged",
                "serial": 3,
                "expiresAt": "2027-01-01T00:00:00Z",
                "features": ["ingest", "export"],
            },
        });
        assert_eq!(
            explain(&status),
            "state:            active\n\
             why:              the license is valid\n\
             what to do:       nothing to do\n\
             customer:         ACME\\u{a}state: forged\n\
             serial:           3\n\
             expires:          2027-01-01T00:00:00Z (12 days left)\n\
             features:         ingest, export\n\
             client device id: REN3D1-X\n"
        );
    }

    #[test]
    fn without_a_license_only_the_explanation_is_shown() {
        let status = json!({
            "state": "unlicensed",
            "reasonCode": "offline_disabled",
            "reason": "offline licensing is disabled",
            "nextAction": "set enable_offline_license=true",
            "clientDeviceId": null,
            "pendingRequests": 0,
            "license": null,
        });
        assert_eq!(
            explain(&status),
            "state:      unlicensed (offline_disabled)\n\
             why:        offline licensing is disabled\n\
             what to do: set enable_offline_license=true\n"
        );
    }
}
