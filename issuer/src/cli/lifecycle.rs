//! The license-lifecycle commands: releasing seats (with a receipt or by
//! force) and the signing keys' rotation, retirement and encryption.

use std::path::Path;

use anyhow::{Context as _, Result};
use ren3_shared::{DeviceId, KeyId, timestamp};
use serde_json::json;

use super::{LabelledLines, Outcome, Table, indent, read_input, result};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::inspect::{self, Fields, Inspection, ReceiptFields, ReleaseVerdict};
use ren3_issuer_core::keystore::{AtRest, KeyStoreError};
use ren3_issuer_core::passphrase::PassphraseSource;
use ren3_issuer_core::releases::{self, Released};
use ren3_issuer_core::root::RootDir;
use ren3_issuer_core::setup::{self, StorePaths};
use ren3_issuer_core::signing_keys::{self, SigningKeyEntry};
use ren3_issuer_core::store::ReleaseRecord;

/// Passphrases come from `REN3_ISSUER_PASSPHRASE`, or a prompt at a terminal.
pub(super) fn passphrase_source() -> PassphraseSource {
    PassphraseSource::environment_or_prompt()
}

fn parse_key_id(text: &str) -> Result<KeyId> {
    text.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "`{}` is not a key id ({e}); `ren3-issuer keys list` shows them",
            text.escape_debug()
        )
    })
}

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

pub(super) fn keys_rotate(
    paths: &StorePaths,
    json: bool,
    encrypt: bool,
    root_dir: Option<&Path>,
    valid_days: u32,
    now: i64,
) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?.with_passphrase(passphrase_source());
    let at_rest = if encrypt {
        AtRest::Encrypted
    } else {
        AtRest::Plain
    };
    let key = match root_dir {
        None => signing_keys::rotate(&mut store, &keys, &Actor::cli(), at_rest, now),
        Some(dir) => {
            let root = RootDir::open(dir)
                .and_then(|d| d.with_passphrase(passphrase_source()).load_key())
                .context("no key was made")?;
            signing_keys::rotate_certified(
                &mut store,
                &keys,
                &Actor::cli(),
                at_rest,
                &root,
                valid_days,
                now,
            )
        }
    }?;
    let key_id = key.key_id.to_string();
    let stdout = result(json, &key_id, &key)?;
    Ok(Outcome::new(stdout).note(if root_dir.is_some() {
        format!(
            "created signing key {key_id}, certified by the root: it signs every payload from \
             now on. Clients need nothing new: each payload carries its key's certificate"
        )
    } else {
        format!(
            "created signing key {key_id}; it signs nothing until the root certifies it: \
             `ren3-issuer keys certification-request {key_id} --out req.token`, then \
             `ren3-issuer root certify --root-dir DIR --request req.token --out cert.token` \
             on the root's machine, then `ren3-issuer keys install-certificate cert.token`. \
             Until then the current key keeps signing"
        )
    }))
}

pub(super) fn keys_retire(
    paths: &StorePaths,
    json: bool,
    key_id: &str,
    now: i64,
) -> Result<Outcome> {
    let key_id = parse_key_id(key_id)?;
    let mut store = setup::open_store(paths)?;
    let key = signing_keys::retire(&mut store, &Actor::cli(), &key_id, now)?;
    let retired_at = key.retired_at.map(timestamp::format).unwrap_or_default();
    let stdout = result(json, "", &key)?;
    Ok(Outcome::new(stdout).note(format!(
        "retired signing key {key_id} at {retired_at}: it signs nothing more, and the payloads \
         it signed before stay valid (each carries its certificate); to stop clients from \
         trusting it, revoke it with `ren3-issuer root revoke`"
    )))
}

pub(super) fn keys_encrypt(
    paths: &StorePaths,
    json: bool,
    key_id: &str,
    now: i64,
) -> Result<Outcome> {
    let key_id = parse_key_id(key_id)?;
    let mut store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?.with_passphrase(passphrase_source());
    let key = signing_keys::encrypt(&mut store, &keys, &Actor::cli(), &key_id, now)?;
    let stdout = result(
        json,
        "",
        &json!({ "keyId": key.key_id, "atRest": AtRest::Encrypted }),
    )?;
    Ok(Outcome::new(stdout).note(format!(
        "the private key of signing key {key_id} is now encrypted; signing with it needs the \
         passphrase (REN3_ISSUER_PASSPHRASE, or a prompt at the terminal)"
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
    fields.release = Some(inspect::release_verdict(releases::check(&store, input)?));
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

/// A grace period as people read it.
pub(super) fn grace_text(seconds: u64) -> String {
    match seconds {
        0 => "none".to_owned(),
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s => format!("{s} seconds"),
    }
}

/// How each key's private half is kept: `plain`, `encrypted`, or why it
/// cannot be told (`missing`, `unreadable`); never decrypted to find out.
pub(super) fn private_keys_at_rest(
    paths: &StorePaths,
    keys: &[SigningKeyEntry],
) -> Vec<&'static str> {
    let store = setup::open_keys(paths).ok();
    keys.iter()
        .map(
            |entry| match store.as_ref().map(|s| s.at_rest(&entry.key.key_id)) {
                Some(Ok(AtRest::Plain)) => "plain",
                Some(Ok(AtRest::Encrypted)) => "encrypted",
                Some(Err(KeyStoreError::KeyFileMissing { .. })) => "missing",
                _ => "unreadable",
            },
        )
        .collect()
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
