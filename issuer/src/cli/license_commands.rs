//! `license` and `device add`: creating, listing, showing and editing
//! licenses, and registering devices.

use super::*;

pub(super) fn license_create(
    paths: &StorePaths,
    json: bool,
    args: CreateArgs,
    now: i64,
) -> Result<Outcome> {
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

pub(super) fn license_list(
    paths: &StorePaths,
    json: bool,
    search: Option<&str>,
) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let summaries = licenses::list(&store, search)?;
    let mut table = Table::new(["CUSTOMER", "KEY", "STATUS", "EXPIRES", "DEVICES"]);
    for s in &summaries {
        table.row([
            s.license.customer.clone(),
            s.license.key_hint.clone(),
            s.license.status.to_string(),
            present::expiry(s.license.expires_at),
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

pub(super) fn seats_text(s: &LicenseSummary) -> String {
    let mut text = format!("{}/{} bound", s.bound_devices, s.license.max_devices);
    let unbound = s.devices.saturating_sub(s.bound_devices);
    if unbound > 0 {
        let _ = write!(text, ", {unbound} unbound");
    }
    text
}

pub(super) fn license_show(paths: &StorePaths, json: bool, key: &str) -> Result<Outcome> {
    let key = LicenseKey::parse(key)?;
    let store = setup::open_store(paths)?;
    let details = licenses::show(&store, &key)?;
    Ok(Outcome::new(result(json, &show_text(&details), &details)?))
}

pub(super) fn show_text(details: &LicenseDetails) -> String {
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
    fields.add("expires", &present::expiry(license.expires_at));
    fields.add("grace period", &present::grace(license.grace_seconds));
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
    seats::releases_text(&mut text, &details.releases);
    text
}

pub(super) fn device_add(
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

pub(super) fn license_update(
    paths: &StorePaths,
    json: bool,
    args: &UpdateArgs,
    now: i64,
) -> Result<Outcome> {
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

pub(super) fn license_set_status(
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
