//! `init`: the store, its first certified key and (or with) the root.

use super::*;

pub(super) fn init(paths: &StorePaths, json: bool, args: &InitArgs, now: i64) -> Result<Outcome> {
    let at_rest = |encrypted: bool| {
        if encrypted {
            AtRest::Encrypted
        } else {
            AtRest::Plain
        }
    };
    let mut options = InitOptions::new(args.root_dir.clone());
    options.root_at_rest = at_rest(!args.plain_root);
    options.root_passphrase = passphrase_source();
    options.at_rest = at_rest(args.encrypt);
    options.passphrase = passphrase_source();
    options.key_valid_days = args.key_valid_days;
    let made =
        setup::init(paths, &options, &Actor::cli(), now).context("nothing was initialised")?;
    let key_id = made.key.key_id.to_string();
    let window = &made.certificate.body;
    let stdout = result(
        json,
        &key_id,
        &json!({
            "keyId": key_id,
            "publicKey": made.key.public_key,
            "db": paths.db,
            "keysDir": paths.keys_dir,
            "keyFile": made.key_file,
            "rootDir": made.root_dir,
            "rootCreated": made.root_created,
            "rootKeyId": made.root.key_id(),
            "rootFingerprint": made.root.fingerprint(),
            "rootPublicFile": made.root_public_file,
            "certificate": {
                "notBefore": timestamp::format(window.not_before),
                "notAfter": timestamp::format(window.not_after),
            },
            "revocationsVersion": made.revocations_version,
        }),
    )?;
    let root_how = if made.root_created {
        if args.plain_root {
            "created a new root (NOT sealed: --plain-root)"
        } else {
            "created a new root, sealed with a passphrase,"
        }
    } else {
        "adopted the root"
    };
    Ok(Outcome::new(stdout).note(format!(
        "created the issuer store {db} and signing key {key_id}, certified until {until}.\n\
         - the signing keys are in {keys}: back up that directory (encrypted), a lost key \
         cannot be recovered;\n\
         - {root_how} in {root}: root {root_id}, fingerprint {fingerprint}. That directory \
         belongs OFFLINE: move it to a machine that never runs `serve`, and keep a backup; \
         only `ren3-issuer root ...` and `init` ever open it;\n\
         - build clients pinned to {public}: REN3_TRUST_ROOT={public} cargo build --release \
         -p ren3-client-cli",
        db = paths.db.display(),
        until = timestamp::format(window.not_after),
        keys = paths.keys_dir.display(),
        root = made.root_dir.display(),
        root_id = made.root.key_id(),
        fingerprint = made.root.fingerprint(),
        public = made.root_public_file.display(),
    )))
}
