//! `release` and `device release`: freeing a seat with the customer's
//! receipt or by force; and the receipt, grace and release texts the other
//! commands show.

use anyhow::{Context as _, Result};
use ren3_shared::{DeviceId, timestamp};

use super::{LabelledLines, Outcome, Table, indent, read_input, result};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::inspect::{self, Fields, Inspection, ReceiptFields, ReleaseVerdict};
use ren3_issuer_core::releases::{self, Released};
use ren3_issuer_core::setup::{self, StorePaths};
use ren3_issuer_core::store::ReleaseRecord;

pub(super) fn release(paths: &StorePaths, json: bool, source: &str, now: i64) -> Result<Outcome> {
    let receipt = read_input(source, "release receipt")?;
    let mut store = setup::open_store(paths)?;
    let released = releases::release(&mut store, &Actor::cli(), &receipt, now)
        .context("the seat was not released; nothing changed")?;
    released_outcome(json, &released, "released with the customer's receipt")
}

pub(super) fn device_release(
    paths: &StorePaths,
    json: bool,
    device: &str,
    reason: &str,
    now: i64,
) -> Result<Outcome> {
    let device = DeviceId::parse(device)?;
    let mut store = setup::open_store(paths)?;
    let released = releases::force_release(&mut store, &Actor::cli(), &device, reason, now)
        .context("the seat was not released; nothing changed")?;
    released_outcome(
        json,
        &released,
        "FORCED free without a receipt (recorded as forced in the audit log)",
    )
}

fn released_outcome(json: bool, released: &Released, how: &str) -> Result<Outcome> {
    let id = released.device.client_device_id.to_string();
    let stdout = result(json, &id, released)?;
    Ok(Outcome::new(stdout).note(format!(
        "the seat of device {id} of license {} of {} was {how}; the license can now be \
         activated on another installation",
        released.license.key_hint, released.license.customer
    )))
}

/// For a receipt, and when there is a store: whether releasing it now
/// would free its seat (the device key against the bound one, replay, ...).
pub(super) fn check_receipt(
    paths: &StorePaths,
    input: &str,
    inspection: &mut Inspection,
) -> Result<()> {
    let Some(Fields::Receipt(fields)) = &mut inspection.fields else {
        return Ok(());
    };
    if !inspection.verified || !paths.db.exists() {
        return Ok(());
    }
    let store = setup::open_store(paths)?;
    fields.release = Some(inspect::release_verdict(releases::check(&store, input))?);
    Ok(())
}

pub(super) fn receipt_lines(f: &mut LabelledLines, r: &ReceiptFields) {
    f.add("released at", &timestamp::format(r.released_at));
    f.add("client device id", &r.client_device_id);
    f.add(
        "license key fingerprint",
        &r.license_key_fingerprint.to_string(),
    );
    f.add("serial", &r.serial.to_string());
    f.add("counter", &r.counter.to_string());
    f.add("device public key", &r.device_public_key);
    match &r.release {
        None => {}
        Some(ReleaseVerdict {
            would_release: true,
            ..
        }) => f.add(
            "release",
            "would free the seat: signed by the installation the device is bound to, after \
             every request of it that was answered",
        ),
        Some(ReleaseVerdict {
            problem: Some(problem),
            ..
        }) => f.add(
            "release",
            &format!("would be refused ({}): {}", problem.code, problem.message),
        ),
        Some(_) => {}
    }
}

/// The release history under a license's details.
pub(super) fn releases_text(text: &mut String, releases: &[ReleaseRecord]) {
    text.push_str("\nreleases:");
    if releases.is_empty() {
        text.push_str(" (none)");
        return;
    }
    let mut table = Table::new(["RELEASED", "CLIENT DEVICE ID", "HOW", "BY", "INSTALLATION"]);
    for release in releases {
        let how = if release.forced {
            format!("FORCED: {}", release.reason.as_deref().unwrap_or_default())
        } else {
            format!(
                "receipt (serial {}, counter {})",
                release.serial.unwrap_or_default(),
                release.counter.unwrap_or_default()
            )
        };
        table.row([
            timestamp::format(release.released_at),
            release.client_device_id.to_string(),
            how,
            release.actor.clone(),
            release.public_key.to_string(),
        ]);
    }
    text.push('\n');
    text.push_str(&indent(&table.render()));
}
