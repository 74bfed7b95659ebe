//! The trust-chain commands: the offline root (`root init`, `show`,
//! `certify`, `revoke`), and on the issuer the certification request, the
//! installation of certificates and revocation lists, and the root export.
//!
//! `root …` commands open only the directory given with `--root-dir` and
//! never the issuer store, so they run on a machine that has none.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;
use ren3_shared::{KeyId, timestamp};
use serde_json::json;

use super::{
    LabelledLines, Outcome, passphrase_source, read_input, result, to_json, write_public_file,
};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::chain;
use ren3_issuer_core::inspect::RevocationFields;
use ren3_issuer_core::keystore::AtRest;
use ren3_issuer_core::root::{self, RootDir};
use ren3_issuer_core::setup::{self, StorePaths};
use ren3_issuer_core::signing_keys;

#[derive(Debug, Subcommand)]
pub(super) enum RootCommand {
    /// Create a root alone (on the offline machine): root.key, root.pub and
    /// an empty revocation list; print its fingerprint.
    Init {
        /// The root's own directory, created with mode 0700.
        #[arg(long, value_name = "DIR")]
        root_dir: PathBuf,
        /// Keep the root key in plain text instead of sealing it with a
        /// passphrase (REN3_ROOT_PASSPHRASE, or asked for): tests and demos.
        #[arg(long)]
        plain_root: bool,
    },
    /// Show a root's fingerprint, key id, public key file and revocation
    /// list version; needs no passphrase.
    Show {
        #[arg(long, value_name = "DIR")]
        root_dir: PathBuf,
    },
    /// Certify the key a certification request names; print the certificate.
    Certify {
        #[arg(long, value_name = "DIR")]
        root_dir: PathBuf,
        /// The request `keys certification-request` wrote; `-` reads stdin.
        #[arg(long, value_name = "FILE|-")]
        request: String,
        /// Write the certificate here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Revoke an issuer key: sign the next revocation list (it replaces
    /// DIR/revocations.token) and print it, for `revocations install`.
    Revoke {
        #[arg(long, value_name = "DIR")]
        root_dir: PathBuf,
        /// The key id to revoke.
        #[arg(long = "key", value_name = "KEY_ID", allow_hyphen_values = true)]
        key_id: String,
        /// Days installed licenses of the key keep working (0 to 90).
        #[arg(long, value_name = "N", default_value_t = 0)]
        grace_days: u64,
        /// Write the list here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum RevocationsCommand {
    /// Install a revocation list the root signed, newer than the installed
    /// one; every payload carries it from then on. Prints its version.
    Install {
        /// The list `root revoke` wrote; `-` reads stdin.
        #[arg(value_name = "FILE|-")]
        list: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum TrustCommand {
    /// Write the store's root public key file, for building clients.
    ExportRoot {
        /// Write the file here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn open_root(dir: &Path) -> Result<RootDir> {
    Ok(RootDir::open(dir)?.with_passphrase(passphrase_source()))
}

fn parse_key_id(text: &str) -> Result<KeyId> {
    text.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "`{}` is not a key id ({e}); `ren3-issuer keys list` shows them",
            text.escape_debug()
        )
    })
}

/// The token on stdout, or written to `out` (and then only in `--json`).
fn token_outcome(
    json: bool,
    token: &str,
    out: Option<&Path>,
    mut value: serde_json::Value,
) -> Result<Outcome> {
    if let Some(out) = out {
        write_public_file(out, format!("{token}\n").as_bytes())?;
    }
    value["out"] = json!(out);
    let stdout = match (out, json) {
        (_, true) => to_json(&value)?,
        (Some(_), false) => String::new(),
        (None, false) => format!("{token}\n"),
    };
    Ok(Outcome::new(stdout))
}

fn written_to(out: Option<&Path>) -> String {
    out.map(|p| format!(" (written to {})", p.display()))
        .unwrap_or_default()
}

pub(super) fn window_text(not_before: i64, not_after: i64) -> String {
    format!(
        "{} to {}",
        timestamp::format(not_before),
        timestamp::format(not_after)
    )
}

pub(super) fn revoked_keys_text(list: &RevocationFields) -> String {
    if list.revoked.is_empty() {
        return "(none)".to_owned();
    }
    list.revoked
        .iter()
        .map(|r| {
            if r.grace_until > r.revoked_at {
                format!(
                    "{} at {} (grace until {})",
                    r.key_id,
                    timestamp::format(r.revoked_at),
                    timestamp::format(r.grace_until)
                )
            } else {
                format!("{} at {}", r.key_id, timestamp::format(r.revoked_at))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn revocations_text(list: &RevocationFields) -> String {
    format!(
        "version {} by root {}, revoking {}",
        list.version,
        list.root_key_id,
        revoked_keys_text(list)
    )
}

pub(super) fn root(json: bool, command: RootCommand, now: i64) -> Result<Outcome> {
    match command {
        RootCommand::Init {
            root_dir,
            plain_root,
        } => root_init(json, &root_dir, plain_root, now),
        RootCommand::Show { root_dir } => root_show(json, &root_dir),
        RootCommand::Certify {
            root_dir,
            request,
            out,
        } => root_certify(json, &root_dir, &request, out.as_deref(), now),
        RootCommand::Revoke {
            root_dir,
            key_id,
            grace_days,
            out,
        } => root_revoke(json, &root_dir, &key_id, grace_days, out.as_deref(), now),
    }
}

fn root_init(json: bool, dir: &Path, plain: bool, now: i64) -> Result<Outcome> {
    let (root_dir, created) = RootDir::open_or_create(dir)?;
    let root_dir = root_dir.with_passphrase(passphrase_source());
    let at_rest = if plain {
        AtRest::Plain
    } else {
        AtRest::Encrypted
    };
    let made = match root::create(&root_dir, at_rest, now) {
        Ok(made) => made,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(anyhow::Error::new(e).context("no root was made"));
        }
    };
    let trust_root = made.key.trust_root();
    let fingerprint = trust_root.fingerprint().to_string();
    let stdout = result(
        json,
        &fingerprint,
        &json!({
            "fingerprint": fingerprint,
            "keyId": trust_root.key_id(),
            "rootDir": dir,
            "publicFile": root_dir.public_path(),
            "sealed": !plain,
            "revocationsVersion": made.revocations.version(),
        }),
    )?;
    Ok(Outcome::new(stdout).note(format!(
        "created root {} ({}) in {}; keep that directory offline and backed up. Its public \
         key file {} is what clients are built pinned to; start an issuer with \
         `ren3-issuer init --root-dir` on a copy of this directory, or certify issuer keys \
         with `ren3-issuer root certify`",
        trust_root.key_id(),
        if plain {
            "NOT sealed: --plain-root"
        } else {
            "sealed with a passphrase"
        },
        dir.display(),
        root_dir.public_path().display()
    )))
}

fn root_show(json: bool, dir: &Path) -> Result<Outcome> {
    let summary = root::show(&open_root(dir)?)?;
    let mut f = LabelledLines::default();
    f.add("fingerprint", &summary.fingerprint);
    f.add("key id", &summary.key_id.to_string());
    f.add(
        "public key file",
        &summary.public_file.display().to_string(),
    );
    f.add(
        "revocation list",
        &match summary.revocations_version {
            Some(version) => format!("version {version}"),
            None => "(none)".to_owned(),
        },
    );
    f.add(
        "revoked keys",
        &if summary.revoked_keys.is_empty() {
            "(none)".to_owned()
        } else {
            summary
                .revoked_keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    Ok(Outcome::new(result(json, &f.render(), &summary)?))
}

fn root_certify(
    json: bool,
    dir: &Path,
    request: &str,
    out: Option<&Path>,
    now: i64,
) -> Result<Outcome> {
    let text = read_input(request, "certification request")?;
    let root_dir = open_root(dir)?;
    let certificate = root::certify(&root_dir, &text, now).context("nothing was certified")?;
    let body = &certificate.body;
    let token = certificate.token();
    let outcome = token_outcome(
        json,
        &token,
        out,
        json!({
            "certificate": token,
            "keyId": body.key_id,
            "notBefore": timestamp::format(body.not_before),
            "notAfter": timestamp::format(body.not_after),
        }),
    )?;
    Ok(outcome.note(format!(
        "certified key {} from {}{}; install it on the issuer with \
         `ren3-issuer keys install-certificate FILE`",
        body.key_id,
        window_text(body.not_before, body.not_after),
        written_to(out)
    )))
}

fn root_revoke(
    json: bool,
    dir: &Path,
    key_id: &str,
    grace_days: u64,
    out: Option<&Path>,
    now: i64,
) -> Result<Outcome> {
    let key_id = parse_key_id(key_id)?;
    let root_dir = open_root(dir)?;
    let list = root::revoke(&root_dir, &key_id, grace_days, now).context("nothing was revoked")?;
    let token = list.token();
    let grace_until = list.find(&key_id).map(|r| r.grace_until).unwrap_or(now);
    let outcome = token_outcome(
        json,
        &token,
        out,
        json!({
            "revocations": token,
            "version": list.version(),
            "keyId": key_id,
            "graceUntil": timestamp::format(grace_until),
        }),
    )?;
    Ok(outcome.note(format!(
        "revoked key {key_id} in revocation list version {} (grace until {}){}; it replaced \
         {}. Install it on the issuer with `ren3-issuer revocations install FILE`: every \
         payload carries it from then on",
        list.version(),
        timestamp::format(grace_until),
        written_to(out),
        root_dir.revocations_path().display()
    )))
}

pub(super) fn certification_request(
    paths: &StorePaths,
    json: bool,
    key_id: &str,
    valid_days: u32,
    out: Option<&Path>,
    now: i64,
) -> Result<Outcome> {
    let key_id = parse_key_id(key_id)?;
    let store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?.with_passphrase(passphrase_source());
    let request = signing_keys::certification_request(&store, &keys, &key_id, valid_days, now)?;
    let token = request.token();
    let outcome = token_outcome(
        json,
        &token,
        out,
        json!({
            "request": token,
            "keyId": key_id,
            "notBefore": timestamp::format(request.body.not_before),
            "notAfter": timestamp::format(request.body.not_after),
        }),
    )?;
    Ok(outcome.note(format!(
        "wrote the certification request of key {key_id}{}; on the root's machine run \
         `ren3-issuer root certify --root-dir DIR --request FILE --out cert.token`, then here \
         `ren3-issuer keys install-certificate cert.token`",
        written_to(out)
    )))
}

pub(super) fn install_certificate(
    paths: &StorePaths,
    json: bool,
    source: &str,
    now: i64,
) -> Result<Outcome> {
    let text = read_input(source, "certificate")?;
    let mut store = setup::open_store(paths)?;
    let certificate = chain::install_certificate(&mut store, &Actor::cli(), &text, now)
        .context("no certificate was installed; nothing changed")?;
    let key_id = certificate.key_id();
    let signs = signing_keys::list(&store)?
        .iter()
        .any(|k| k.key.key_id == key_id && k.signs_new_payloads);
    let body = &certificate.body;
    let stdout = result(
        json,
        &key_id.to_string(),
        &json!({
            "keyId": key_id,
            "notBefore": timestamp::format(body.not_before),
            "notAfter": timestamp::format(body.not_after),
            "signsNewPayloads": signs,
        }),
    )?;
    Ok(Outcome::new(stdout).note(format!(
        "installed the certificate of key {key_id}, valid from {}{}",
        window_text(body.not_before, body.not_after),
        if signs {
            "; it signs every payload from now on"
        } else {
            ""
        }
    )))
}

pub(super) fn revocations(
    paths: &StorePaths,
    json: bool,
    command: RevocationsCommand,
    now: i64,
) -> Result<Outcome> {
    let RevocationsCommand::Install { list } = command;
    let text = read_input(&list, "revocation list")?;
    let mut store = setup::open_store(paths)?;
    let list = chain::install_revocations(&mut store, &Actor::cli(), &text, now)
        .context("no revocation list was installed; nothing changed")?;
    let revoked = chain::revoked_key_ids(&list);
    let stdout = result(
        json,
        &list.version().to_string(),
        &json!({ "version": list.version(), "revoked": revoked }),
    )?;
    let signer_revoked = signing_keys::list(&store).is_ok_and(|keys| {
        keys.iter()
            .any(|k| k.key.retired_at.is_none() && k.revoked.is_some())
    });
    let mut note = format!(
        "installed revocation list version {}; every payload issued from now on carries it",
        list.version()
    );
    if signer_revoked {
        note.push_str(
            ". A key that is not retired is revoked: it signs nothing more; rotate to a new \
             certified key (`ren3-issuer keys rotate`) and retire the revoked one",
        );
    }
    Ok(Outcome::new(stdout).note(note))
}

pub(super) fn trust(paths: &StorePaths, json: bool, command: TrustCommand) -> Result<Outcome> {
    let TrustCommand::ExportRoot { out } = command;
    let store = setup::open_store(paths)?;
    let root = chain::stored_root(&store)?.context(
        "the issuer store has no trust root: it was made before payloads were certified; make \
         a new store with `ren3-issuer init --root-dir DIR`",
    )?;
    let file = root.to_public_file();
    let value = json!({
        "keyId": root.key_id(),
        "fingerprint": root.fingerprint(),
        "publicKey": root.public_key(),
        "out": out,
    });
    let Some(out) = out else {
        return Ok(Outcome::new(if json { to_json(&value)? } else { file }));
    };
    write_public_file(&out, file.as_bytes())?;
    let stdout = if json {
        to_json(&value)?
    } else {
        String::new()
    };
    Ok(Outcome::new(stdout).note(format!(
        "wrote the root public key file (fingerprint {}) to {}; build the client pinned to it",
        root.fingerprint(),
        out.display()
    )))
}
