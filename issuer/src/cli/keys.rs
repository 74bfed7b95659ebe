//! `keys`: the signing keys, how each is kept, and their rotation,
//! retirement and encryption.

use ren3_issuer_core::keystore::KeyStoreError;
use ren3_issuer_core::root::RootDir;
use ren3_issuer_core::signing_keys::SigningKeyEntry;
use ren3_shared::KeyId;

use super::*;

pub(super) fn keys_list(paths: &StorePaths, json: bool, now: i64) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let keys = signing_keys::list(&store)?;
    let at_rest = private_keys_at_rest(paths, &keys);
    let mut table = Table::new([
        "KEY ID",
        "CREATED",
        "STATUS",
        "CERTIFIED",
        "PRIVATE KEY",
        "PUBLIC KEY",
    ]);
    for (entry, at_rest) in keys.iter().zip(&at_rest) {
        let key = &entry.key;
        let status = match (&entry.revoked, key.retired_at) {
            (Some(revoked), _) => format!("REVOKED (list v{})", revoked.version),
            (None, Some(at)) => format!("retired {}", timestamp::format(at)),
            (None, None) if entry.signs_new_payloads => "signing".to_owned(),
            (None, None) if entry.certificate.is_none() => "awaiting certificate".to_owned(),
            (None, None) => "active".to_owned(),
        };
        let certified = match &entry.certificate {
            None => "no".to_owned(),
            Some(w) => {
                let mut text = format!(
                    "{} to {}",
                    timestamp::format(w.not_before),
                    timestamp::format(w.not_after)
                );
                if now >= w.not_after {
                    text.push_str(" (ended)");
                }
                text
            }
        };
        table.row([
            key.key_id.to_string(),
            timestamp::format(key.created_at),
            status,
            certified,
            (*at_rest).to_owned(),
            key.public_key.to_string(),
        ]);
    }
    let keys: Vec<_> = keys
        .iter()
        .zip(&at_rest)
        .map(|(entry, at_rest)| {
            let mut value = json!(entry);
            value["privateKey"] = json!(at_rest);
            value
        })
        .collect();
    let value = json!({ "keys": keys });
    Ok(Outcome::new(result(json, &table.render(), &value)?))
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

pub(super) fn parse_key_id(text: &str) -> Result<KeyId> {
    text.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "`{}` is not a key id ({e}); `ren3-issuer keys list` shows them",
            text.escape_debug()
        )
    })
}
