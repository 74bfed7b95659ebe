//! The status answer (`GET /license`, and an accepted import) as lines for
//! people: the state, why, and what to do, then the license it is about.
//! `--json` prints the answer itself, for scripts. `status` also says in
//! its exit code whether the ingestor is licensed ([`exit_code`]).

use std::fmt::Write as _;

use anyhow::{Result, anyhow};
use serde_json::Value;

/// Licensed, and nothing to do now (`reasonCode` `valid`).
pub(super) const LICENSED: u8 = 0;
/// Still licensed, but act soon: the expiry warning window, the grace
/// period, a revoked key in its grace, a suspect clock under an advisory
/// clock policy. Not 1 or 2, which are errors.
pub(super) const ACT_SOON: u8 = 3;
/// Not licensed: licensed work is refused (no license, a request pending,
/// expired, not yet valid, revoked, a clock the license refuses).
pub(super) const NOT_LICENSED: u8 = 4;

/// The exit code of `status` for the answer: what a monitoring check or a
/// start-up script acts on. It follows `licensed`, what the ingestor's
/// guard decides, and among licensed states `reasonCode` `valid`, the one
/// whose next action is nothing now.
pub(super) fn exit_code(status: &Value) -> Result<u8> {
    let licensed = status["licensed"].as_bool().ok_or_else(|| {
        anyhow!(
            "the service's status has no `licensed`; check that --url or listen_addr points at \
             the ReN3 licensing service"
        )
    })?;
    Ok(match (licensed, status["reasonCode"].as_str()) {
        (false, _) => NOT_LICENSED,
        (true, Some("valid")) => LICENSED,
        (true, _) => ACT_SOON,
    })
}

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
    fn the_exit_code_says_licensed_act_soon_or_not_licensed() {
        for (n, (state, reason_code, licensed, code)) in [
            ("active", "valid", true, LICENSED),
            ("active", "expiry_warning", true, ACT_SOON),
            ("grace", "in_grace", true, ACT_SOON),
            ("active", "key_revoked_in_grace", true, ACT_SOON),
            ("grace", "key_revoked_in_grace", true, ACT_SOON),
            (
                "clock_suspect",
                "clock_behind_high_water_mark",
                true,
                ACT_SOON,
            ),
            (
                "clock_suspect",
                "clock_behind_high_water_mark",
                false,
                NOT_LICENSED,
            ),
            ("unlicensed", "no_license", false, NOT_LICENSED),
            ("unlicensed", "offline_disabled", false, NOT_LICENSED),
            ("pending", "pending", false, NOT_LICENSED),
            ("expired", "expired", false, NOT_LICENSED),
            ("not_yet_valid", "not_yet_valid", false, NOT_LICENSED),
            ("key_revoked", "key_revoked", false, NOT_LICENSED),
        ]
        .into_iter()
        .enumerate()
        {
            let status = json!({ "state": state, "reasonCode": reason_code, "licensed": licensed });
            assert_eq!(
                exit_code(&status).unwrap(),
                code,
                "{n}: {state} {reason_code}"
            );
        }
        let error = exit_code(&json!({ "state": "active" })).unwrap_err();
        assert!(error.to_string().contains("licensed"), "{error}");
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
