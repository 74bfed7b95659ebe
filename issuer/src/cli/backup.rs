//! `backup` and `restore`: a verified copy of the store while it serves,
//! to a file or into a directory of dated backups with the oldest
//! removed, and the store replaced by one (`ren3_issuer_core::backup`).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{ArgGroup, Args};
use ren3_shared::timestamp;

use super::{Outcome, result};
use ren3_issuer_core::atomic_file::Existing;
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::backup::{self, Replaced, Verified, rotation};
use ren3_issuer_core::setup::StorePaths;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["out", "out_dir"])))]
pub(super) struct BackupArgs {
    /// The backup file to write (created 0600).
    #[arg(long, value_name = "FILE")]
    pub(super) out: Option<PathBuf>,
    /// Replace FILE if it exists.
    // Not `requires`: clap lets an argument go without what it requires
    // when that conflicts with a given one, as the group's do.
    #[arg(long, conflicts_with = "out_dir")]
    pub(super) force: bool,
    /// Write the backup into DIR (made 0700 if missing) as
    /// ren3-issuer-YYYYMMDDTHHMMSSZ.db, the time in UTC; refuses if that
    /// file exists.
    #[arg(long, value_name = "DIR")]
    pub(super) out_dir: Option<PathBuf>,
    /// Once the new backup is written and checked, remove the oldest
    /// backups in DIR beyond the newest N (only files named as above).
    /// Without it, every backup is kept.
    #[arg(long, value_name = "N", conflicts_with = "out",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) keep: Option<u32>,
}

#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// A backup file `ren3-issuer backup` wrote.
    #[arg(value_name = "FILE")]
    pub(super) file: PathBuf,
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

/// `backup FILE: 12345 bytes, integrity ok, ...`
fn written_text(made: &Verified) -> String {
    format!(
        "backup {}: {} bytes, {}",
        made.file.display(),
        made.bytes,
        checks_text(made)
    )
}

fn keys_note(paths: &StorePaths) -> String {
    format!(
        "the store holds no private key: keep this file with a copy of the key directory {} \
         (README, \"Backups\")",
        paths.keys_dir.display()
    )
}

pub(super) fn backup(paths: &StorePaths, json: bool, args: &BackupArgs) -> Result<Outcome> {
    if let Some(dir) = &args.out_dir {
        return backup_into(paths, json, dir, args.keep);
    }
    let Some(out) = &args.out else {
        bail!("give --out FILE or --out-dir DIR");
    };
    let made = backup::create(&paths.db, out, existing(args.force))?;
    Ok(Outcome::new(result(json, &written_text(&made), &made)?).note(keys_note(paths)))
}

/// `--out-dir`: the backup, then one `pruned FILE` line for each older
/// backup removed.
fn backup_into(paths: &StorePaths, json: bool, dir: &Path, keep: Option<u32>) -> Result<Outcome> {
    let keep = keep
        .map(|n| {
            usize::try_from(n)
                .ok()
                .and_then(NonZeroUsize::new)
                .context("--keep is a number from 1")
        })
        .transpose()?;
    let made = rotation::create_in(&paths.db, dir, keep, timestamp::now())?;
    let mut text = written_text(&made.backup);
    for pruned in &made.pruned {
        text.push_str(&format!("\npruned {}", pruned.display()));
    }
    let kept = format!(
        "{} now holds {} backup{}",
        dir.display(),
        made.kept,
        if made.kept == 1 { "" } else { "s" }
    );
    Ok(Outcome::new(result(json, &text, &made)?).note(format!("{kept}; {}", keys_note(paths))))
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
