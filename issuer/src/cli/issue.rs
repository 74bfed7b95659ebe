//! `issue` and `inspect`: turning a request into a payload, and reading
//! any token for a person.

use super::*;

pub(super) fn issue(paths: &StorePaths, json: bool, args: &IssueArgs, now: i64) -> Result<Outcome> {
    let request = match batch::read(&args.request, args.out_dir.is_some())? {
        batch::Requests::One(request) => request,
        batch::Requests::Many(inputs) => {
            if args.out.is_some() {
                bail!("--out takes one payload; give --out-dir DIR for several requests");
            }
            return batch::issue(
                paths,
                json,
                &inputs,
                args.out_dir.as_deref(),
                args.batch_size as usize,
                now,
            );
        }
    };
    let mut store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?.with_passphrase(passphrase_source());
    let issued = issuance::issue(&mut store, &keys, &Actor::cli(), &request, now)?;
    let token = issued.payload.token();
    let license = &issued.payload.license;
    if let Some(out) = &args.out {
        write_public_file(out, format!("{token}\n").as_bytes())?;
    }
    let value = json!({
        "payload": token,
        "repeated": issued.repeated,
        "serial": license.serial,
        "customer": license.customer,
        "licenseKeyHint": issued.license.key_hint,
        "clientDeviceId": license.client_device_id,
        "keyId": issued.payload.key_id,
        "issuedAt": timestamp::format(license.issued_at),
        "expiresAt": license.expires_at.map(timestamp::format),
        "out": args.out,
    });
    let stdout = match (&args.out, json) {
        (_, true) => to_json(&value)?,
        (Some(_), false) => String::new(),
        (None, false) => format!("{token}\n"),
    };
    let to = args
        .out
        .as_ref()
        .map(|p| format!(" (written to {})", p.display()))
        .unwrap_or_default();
    let note = if issued.repeated {
        format!(
            "this request was answered before: here is the same payload again{to} \
             (serial {}); no seat or serial was used",
            license.serial
        )
    } else {
        format!(
            "issued payload serial {} for device {} of {} (license {}), {}{to}; \
             send it to the customer",
            license.serial,
            license.client_device_id,
            license.customer,
            issued.license.key_hint,
            match license.expires_at {
                Some(at) => format!("valid until {}", timestamp::format(at)),
                None => "valid without expiry".to_owned(),
            }
        )
    };
    Ok(Outcome::new(stdout).note(note))
}

pub(super) fn inspect(
    paths: &StorePaths,
    json: bool,
    args: &InspectArgs,
    now: i64,
) -> Result<Outcome> {
    let input = read_input(&args.input, "token")?;
    let trust = trust_source(paths, args.root.as_deref())?;
    let mut inspection = inspect::inspect(&input, &trust, now)?;
    seats::check_receipt(paths, &input, &mut inspection)?;
    let stdout = result(json, &inspection_text(&inspection), &inspection)?;
    let mut outcome = Outcome::new(stdout);
    if !inspection.verified {
        outcome.exit = ExitCode::FAILURE;
    }
    Ok(outcome)
}

/// `--root FILE` if given, else the store's root if there is a store.
pub(super) fn trust_source(paths: &StorePaths, root: Option<&Path>) -> Result<TrustSource> {
    if let Some(file) = root {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the root public key file {}", file.display()))?;
        let root =
            TrustRoot::parse_public_file(&text).with_context(|| file.display().to_string())?;
        return Ok(TrustSource::Root {
            root,
            source: format!("the root public key file {}", file.display()),
        });
    }
    if !paths.db.exists() {
        return Ok(TrustSource::Unavailable {
            why: format!(
                "there is no issuer store at {} and no --root FILE was given",
                paths.db.display()
            ),
        });
    }
    let store = setup::open_store(paths)?;
    Ok(match chain::stored_root(&store)? {
        Some(root) => TrustSource::Root {
            root,
            source: format!("the issuer store {}", paths.db.display()),
        },
        None => TrustSource::Unavailable {
            why: format!(
                "the issuer store {} has no root; give --root FILE",
                paths.db.display()
            ),
        },
    })
}

pub(super) fn inspection_text(inspection: &Inspection) -> String {
    let mut f = LabelledLines::default();
    f.add(
        "kind",
        match inspection.kind {
            "request" => "license request",
            "receipt" => "release receipt",
            "certificate" => "issuer certificate",
            "revocations" => "revocation list",
            "certification-request" => "certification request",
            _ => "license payload",
        },
    );
    let signature = match (&inspection.problem, &inspection.checked_against) {
        (None, Some(by)) => format!("verifies against {by}"),
        (None, None) => "verifies".to_owned(),
        (Some(problem), _) => format!("does NOT verify: {}", problem.message),
    };
    f.add("signature", &signature);
    match &inspection.fields {
        None => f.add("fields", "cannot be read (see above)"),
        Some(Fields::Request(r)) => {
            f.add("request id", &r.request_id);
            f.add("created at", &timestamp::format(r.created_at));
            f.add("client device id", &r.client_device_id);
            f.add(
                "license key fingerprint",
                &r.license_key_fingerprint.to_string(),
            );
            f.add(
                "product",
                &format!("{} {}", r.product.name, r.product.version),
            );
            f.add("counter", &r.counter.to_string());
            f.add("device public key", &r.device_public_key);
            if let Some(hash) = &r.request_hash {
                f.add("request hash", &hash.to_string());
            }
        }
        Some(Fields::Payload(p)) => {
            f.add("signed by key", &p.key_id.to_string());
            f.add("customer", &p.customer);
            f.add("features", &p.features.join(", "));
            let limits: Vec<String> = p.limits.iter().map(|(n, v)| format!("{n}={v}")).collect();
            f.add("limits", &limits.join(", "));
            f.add("issued at", &timestamp::format(p.issued_at));
            f.add("not before", &timestamp::format(p.not_before));
            f.add("expires at", &present::expiry(p.expires_at));
            f.add("grace period", &present::grace(p.grace_seconds));
            f.add("clock policy", p.clock_policy.as_str());
            f.add("valid now", p.window_now);
            f.add("serial", &p.serial.to_string());
            f.add(
                "license key fingerprint",
                &p.license_key_fingerprint.to_string(),
            );
            f.add("client device id", &p.client_device_id);
            f.add("device public key", &p.device_public_key);
            f.add("request hash", &p.request_hash.to_string());
            match &p.certificate {
                Some(c) => {
                    f.add(
                        "certificate",
                        &format!("key {} by root {}", c.key_id, c.root_key_id),
                    );
                    f.add("certified", &trust::window_text(c.not_before, c.not_after));
                }
                None => f.add("certificate", "cannot be read"),
            }
            match &p.revocations {
                Some(r) => f.add("revocation list", &trust::revocations_text(r)),
                None => f.add("revocation list", "cannot be read"),
            }
        }
        Some(Fields::Receipt(r)) => seats::receipt_lines(&mut f, r),
        Some(Fields::Certificate(c)) => {
            f.add("key id", &c.key_id.to_string());
            f.add("public key", &c.public_key);
            f.add("purpose", &format!("{} for {}", c.purpose, c.product));
            f.add("valid", &trust::window_text(c.not_before, c.not_after));
            f.add("issued at", &timestamp::format(c.issued_at));
            f.add("root", &c.root_key_id);
        }
        Some(Fields::Revocations(r)) => {
            f.add("version", &r.version.to_string());
            f.add("issued at", &timestamp::format(r.issued_at));
            f.add("root", &r.root_key_id);
            f.add("revoked", &trust::revoked_keys_text(r));
        }
        Some(Fields::CertificationRequest(c)) => {
            f.add("key id", &c.key_id.to_string());
            f.add("public key", &c.public_key);
            f.add("purpose", &format!("{} for {}", c.purpose, c.product));
            f.add("asks for", &trust::window_text(c.not_before, c.not_after));
            f.add("created at", &timestamp::format(c.created_at));
        }
    }
    f.render()
}
