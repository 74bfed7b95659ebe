//! `ren3-issuer issue` over many requests: a directory of request files, or
//! a stream of requests on stdin, issued in batches of one transaction each.
//!
//! A stream is split into requests this way: if it holds armoured request
//! blocks, each block is one request and the text around them is ignored;
//! otherwise each line starting with the request prefix (`ren3-request-v2.`)
//! begins a request, and a line that does not continues the one before (a
//! token wrapped over lines). Blank lines are ignored.
//!
//! A refused request does not stop the others: it is reported on stderr with
//! its code (and in `--json`), the rest are issued, and the command exits 1.
//! Running the same command again is safe: an answered request gets its
//! stored payload back.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use ren3_shared::{Kind, timestamp};
use serde_json::{Value, json};

use super::{Outcome, one_line, passphrase_source, read_limited, to_json, write_public_file};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::setup::{self, StorePaths};
use ren3_issuer_core::{Coded as _, issuance};

/// The most a stream of requests on stdin may hold.
const MAX_STREAM_LEN: u64 = 256 * 1024 * 1024;

/// One request to issue, and where it came from.
pub(super) struct Input {
    /// How messages name it: the file, or its place in the stream.
    name: String,
    /// For a file of a directory, its name: the payload file is named after it.
    file_name: Option<OsString>,
    text: String,
}

/// What `--request` gave.
pub(super) enum Requests {
    /// One request, issued as always: the text exactly as read.
    One(String),
    Many(Vec<Input>),
}

/// Reads `--request`: a file, `-` (stdin), or a directory. `as_batch`
/// (`--out-dir`) makes even a single request a batch.
pub(super) fn read(source: &str, as_batch: bool) -> Result<Requests> {
    let path = Path::new(source);
    if source != "-" && path.is_dir() {
        return read_dir(path).map(Requests::Many);
    }
    if source != "-" {
        let text = super::read_input(source, "license request")?;
        return Ok(if as_batch {
            Requests::Many(vec![Input {
                name: source.to_owned(),
                file_name: path.file_name().map(OsString::from),
                text,
            }])
        } else {
            Requests::One(text)
        });
    }
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_STREAM_LEN + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the license requests from standard input")?;
    if bytes.len() as u64 > MAX_STREAM_LEN {
        bail!(
            "standard input holds more than {} MiB of requests; split them, or give a directory",
            MAX_STREAM_LEN / (1024 * 1024)
        );
    }
    let text = String::from_utf8(bytes).context("standard input is not UTF-8 text")?;
    let pieces = split_stream(&text);
    if pieces.len() <= 1 && !as_batch {
        // One request: the same limit as ever, before any parsing.
        return read_limited(text.as_bytes(), "standard input", "license request")
            .map(Requests::One);
    }
    Ok(Requests::Many(
        pieces
            .into_iter()
            .enumerate()
            .map(|(n, text)| Input {
                name: format!("request {} of standard input", n + 1),
                file_name: None,
                text,
            })
            .collect(),
    ))
}

/// Every regular file of `dir`, sorted by name.
fn read_dir(dir: &Path) -> Result<Vec<Input>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!(
            "{} holds no files, so there is no license request to issue; give the directory \
             of the request files, or a request file",
            dir.display()
        );
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.display().to_string();
            let file = fs::File::open(&path)
                .with_context(|| format!("cannot read the license request from {name}"))?;
            Ok(Input {
                text: read_limited(file, &name, "license request")?,
                file_name: path.file_name().map(OsString::from),
                name,
            })
        })
        .collect()
}

/// Splits a stream into requests, as the module documentation says.
fn split_stream(text: &str) -> Vec<String> {
    let label = Kind::Request.armor_label();
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut pieces = Vec::new();
    if text.lines().any(|line| line.trim() == begin) {
        let mut block: Option<String> = None;
        for line in text.lines() {
            match &mut block {
                None if line.trim() == begin => block = Some(format!("{line}\n")),
                None => {}
                Some(open) => {
                    open.push_str(line);
                    open.push('\n');
                    if line.trim() == end {
                        pieces.extend(block.take());
                    }
                }
            }
        }
        // A block cut off: the issuance reports it as damaged.
        pieces.extend(block);
        return pieces;
    }
    let prefix = Kind::Request.prefix();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match pieces.last_mut() {
            Some(current) if !line.starts_with(prefix) => current.push_str(line),
            _ => pieces.push(line.to_owned()),
        }
    }
    pieces
}

/// Issues `inputs` in batches of `batch_size`, one transaction each.
pub(super) fn issue(
    paths: &StorePaths,
    json: bool,
    inputs: &[Input],
    out_dir: Option<&Path>,
    batch_size: usize,
    now: i64,
) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    let keys = setup::open_keys(paths)?.with_passphrase(passphrase_source());
    if let Some(dir) = out_dir {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut stdout = String::new();
    let mut refusals = String::new();
    let mut results: Vec<Value> = Vec::with_capacity(inputs.len());
    let (mut issued, mut repeated, mut refused, mut batches) = (0usize, 0usize, 0usize, 0usize);
    for (n, batch) in inputs.chunks(batch_size.max(1)).enumerate() {
        let texts: Vec<&str> = batch.iter().map(|input| input.text.as_str()).collect();
        let first = n * batch_size + 1;
        let answers = issuance::issue_batch(&mut store, &keys, &Actor::cli(), &texts, now)
            .with_context(|| {
                format!(
                    "the batch of requests {first} to {} was rolled back; the {} requests \
                     before it were issued, and running the command again returns their \
                     payloads unchanged",
                    first + batch.len() - 1,
                    first - 1
                )
            })?;
        batches += 1;
        for (input, answer) in batch.iter().zip(answers) {
            match answer {
                Ok(answer) => {
                    let token = answer.payload.token();
                    let out = match out_dir {
                        Some(dir) => {
                            let mut name = input
                                .file_name
                                .clone()
                                .unwrap_or_else(|| OsString::from(answer.request_id.to_string()));
                            name.push(".payload");
                            let path = dir.join(name);
                            write_public_file(&path, format!("{token}\n").as_bytes())?;
                            Some(path)
                        }
                        None => {
                            if !json {
                                stdout.push_str(&token);
                                stdout.push('\n');
                            }
                            None
                        }
                    };
                    issued += 1;
                    repeated += usize::from(answer.repeated);
                    let license = &answer.payload.license;
                    results.push(json!({
                        "input": input.name,
                        "requestId": answer.request_id,
                        "payload": token,
                        "repeated": answer.repeated,
                        "serial": license.serial,
                        "customer": license.customer,
                        "licenseKeyHint": answer.license.key_hint,
                        "clientDeviceId": license.client_device_id,
                        "issuedAt": timestamp::format(license.issued_at),
                        "out": out,
                    }));
                }
                Err(e) => {
                    refused += 1;
                    // One line each: a file's name or a request's error
                    // can hold a line break of its own.
                    refusals.push_str(&format!(
                        "refused: {}: {} [{}]\n",
                        one_line(&input.name),
                        one_line(&e.to_string()),
                        e.code()
                    ));
                    results.push(json!({
                        "input": input.name,
                        "refused": { "code": e.code(), "message": e.to_string() },
                    }));
                }
            }
        }
    }
    if json {
        stdout = to_json(&json!({
            "requests": inputs.len(),
            "issued": issued,
            "repeated": repeated,
            "refused": refused,
            "batches": batches,
            "results": results,
        }))?;
    }
    let to = out_dir
        .map(|dir| format!(" (written to {})", dir.display()))
        .unwrap_or_default();
    let mut note = format!(
        "{refusals}issued {issued} payloads{to} for {} requests in {batches} transaction(s); \
         {repeated} had been answered before and got the same payload again",
        inputs.len()
    );
    let mut outcome = Outcome::new(stdout);
    if refused > 0 {
        note.push_str(&format!(
            "\nerror: {refused} of {} requests were refused (above); the others were issued",
            inputs.len()
        ));
        outcome.exit = ExitCode::FAILURE;
    }
    Ok(outcome.note(note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_splits_into_armoured_blocks_or_into_lines() {
        let prefix = Kind::Request.prefix();
        let cases = [
            (
                "1. one token a line",
                format!("{prefix}a\n\n{prefix}b\n"),
                vec![format!("{prefix}a"), format!("{prefix}b")],
            ),
            (
                "2. a wrapped token continues",
                format!("{prefix}a\nbc\n{prefix}d\n"),
                vec![format!("{prefix}abc"), format!("{prefix}d")],
            ),
            (
                "3. text before the first token is a request of its own",
                format!("hello\n{prefix}a\n"),
                vec!["hello".to_owned(), format!("{prefix}a")],
            ),
            (
                "4. armoured blocks, prose around them ignored",
                format!(
                    "Hi\n{}between\n{}bye\n",
                    Kind::Request.armor("A"),
                    Kind::Request.armor("B")
                ),
                vec![Kind::Request.armor("A"), Kind::Request.armor("B")],
            ),
        ];
        for (name, stream, expected) in cases {
            assert_eq!(split_stream(&stream), expected, "{name}");
        }
    }
}
