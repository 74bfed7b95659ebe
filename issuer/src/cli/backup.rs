//! `backup` and `restore`: a verified copy of the store while it serves,
//! and the store replaced by one (`ren3_issuer_core::backup`).

use anyhow::Result;
use clap::Args;
use ren3_shared::timestamp;

use super::{Outcome, result};
use ren3_issuer_core::atomic_file::Existing;
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::backup::{self, Replaced, Verified};
use ren3_issuer_core::setup::StorePaths;

#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    /// The backup file to write (created 0600).
    #[arg(long, value_name = "FILE")]
    pub(super) out: std::path::PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub(super) force: bool,
}

#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// A backup file `ren3-issuer backup` wrote.
    #[arg(value_name = "FILE")]
    pub(super) file: std::path::PathBuf,
    /// Replace the existing store, and everything written to it since the
    /// backup (stop the console first).
    #[arg(long)]
    pub(super) force: bool,
}

fn existing(force: bool) -> Existing {
    if force {
        Existing::Replace
    } else {
        Existing::Keep
    }
}

/// `integrity ok, schema version 9; licenses 3, devices 5, ...`
fn checks_text(verified: &Verified) -> String {
    format!(
        "integrity {}, schema version {}; {}",
        verified.integrity,
        verified.schema_version,
        verified.counts_text()
    )
}

pub(super) fn backup(paths: &StorePaths, json: bool, args: &BackupArgs) -> Result<Outcome> {
    let made = backup::create(&paths.db, &args.out, existing(args.force))?;
    let text = format!(
        "backup {}: {} bytes, {}",
        made.file.display(),
        made.bytes,
        checks_text(&made)
    );
    Ok(Outcome::new(result(json, &text, &made)?).note(format!(
        "the store holds no private key: keep this file with a copy of the key directory {} \
         (README, \"Backups\")",
        paths.keys_dir.display()
    )))
}

pub(super) fn restore(paths: &StorePaths, json: bool, args: &RestoreArgs) -> Result<Outcome> {
    let restored = backup::restore(
        &paths.db,
        &args.file,
        existing(args.force),
        &Actor::cli(),
        timestamp::now,
    )?;
    let text = format!(
        "restored {} from {}: {}",
        restored.store.display(),
        restored.backup.file.display(),
        checks_text(&restored.backup)
    );
    let replaced = match restored.replaced {
        Replaced::Nothing => "there was no store",
        Replaced::Store => "the store it replaced was open nowhere else",
        Replaced::UnreadableStore => {
            "the store it replaced could not be read, so it could not be checked for other users \
             (stop any console still running on it)"
        }
    };
    Ok(Outcome::new(result(json, &text, &restored)?).note(format!(
        "{replaced}; recorded as store.restore in the audit log. Everything written after the \
         backup is gone: install again the certificates and revocation lists made since \
         (`keys install-certificate`, `revocations install`), check that the key directory \
         holds the key files `keys list` names, then start the console"
    )))
}
