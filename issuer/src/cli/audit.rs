//! `audit`: the audit log read from the CLI, its hash chain verified, the
//! log exported, and its head printed for the vendor to keep elsewhere.

use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;
use ren3_issuer_core::audit::chain::{self, Head, Verdict};
use ren3_issuer_core::audit::{self, Action, Filter};
use ren3_shared::terminal::{Form, escape};

/// What `audit export --out` writes: the log is as private as the store.
const EXPORT_FILE_MODE: u32 = 0o600;

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// The newest rows first, as the console shows them.
    List {
        /// Only rows at or after this time: RFC 3339, or YYYY-MM-DD (from
        /// 00:00 UTC).
        #[arg(long, value_name = "TIME", value_parser = since)]
        since: Option<i64>,
        /// Only rows whose actor contains TEXT, ignoring case (`alice`,
        /// `cli:`).
        #[arg(long, value_name = "TEXT")]
        who: Option<String>,
        /// Only rows of this action (`issue`, `login`, `license.create`...).
        #[arg(long, value_name = "ACTION")]
        what: Option<String>,
        /// At most N rows.
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// Check that every row is chained to the one before it (exit 0), or
    /// name the first row that breaks the chain (exit 1).
    Verify {
        /// A head printed earlier by `audit head` (ID:HASH, or the hash):
        /// its row must still be in the log with that hash, which also
        /// catches deleted newest rows and a log rewritten from the start.
        #[arg(long, value_name = "ID:HASH")]
        head: Option<String>,
    },
    /// Every row with its hashes, oldest first, one JSON object a line.
    Export {
        /// Write to FILE (created 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// The newest row's id and hash, as ID:HASH: keep it away from the
    /// store, and give it to `audit verify --head` later.
    Head,
}

/// A `--since`: RFC 3339, or a date meaning its first second (UTC).
fn since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(date) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(date.midnight().assume_utc().unix_timestamp());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            format!("`{text}` is not a time; give RFC 3339 (2026-03-01T09:00:00Z) or a date (2026-03-01)")
        })
}

pub(super) fn audit(paths: &StorePaths, json: bool, command: AuditCommand) -> Result<Outcome> {
    match command {
        AuditCommand::List {
            since,
            who,
            what,
            limit,
        } => list(paths, json, since, who, what, limit),
        AuditCommand::Verify { head } => verify(paths, json, head.as_deref()),
        AuditCommand::Export { out, force } => export(paths, json, out.as_deref(), force),
        AuditCommand::Head => head(paths, json),
    }
}

fn list(
    paths: &StorePaths,
    json: bool,
    since: Option<i64>,
    who: Option<String>,
    what: Option<String>,
    limit: u32,
) -> Result<Outcome> {
    if let Some(what) = &what
        && !Action::ALL.iter().any(|a| a.as_str() == what)
    {
        let known: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        bail!(
            "`{what}` is not an action of the audit log; use one of: {}",
            known.join(", ")
        );
    }
    let store = setup::open_store(paths)?;
    let filter = Filter {
        actor: who,
        action: what,
        since,
        ..Filter::default()
    };
    let page = audit::page(&store, &filter, limit)?;
    let mut table = Table::new(["ID", "WHEN", "WHO", "WHAT", "SUBJECT", "RESULT", "DETAIL"]);
    for e in &page.entries {
        table.row([
            e.id.to_string(),
            timestamp::format(e.at),
            e.actor.clone(),
            e.action.clone(),
            e.subject.clone(),
            e.result.clone(),
            e.detail.clone(),
        ]);
    }
    let value = json!({ "entries": page.entries, "more": page.next_before.is_some() });
    let outcome = Outcome::new(result(json, &table.render(), &value)?);
    Ok(if page.entries.is_empty() {
        outcome.note("no audit rows match")
    } else if page.next_before.is_some() {
        outcome.note(format!(
            "showing the newest {limit} matching rows; older ones with a larger --limit or a \
             later --since"
        ))
    } else {
        outcome
    })
}

fn verify(paths: &StorePaths, json: bool, head: Option<&str>) -> Result<Outcome> {
    let saved = head
        .map(|text| {
            Head::parse(text).with_context(|| {
                format!(
                    "`{text}` is not an audit head; give it as `audit head` printed it: \
                     ID:HASH, or the 64 hex digits of the hash"
                )
            })
        })
        .transpose()?;
    let store = setup::open_store(paths)?;
    match chain::verify(&store, saved.as_ref())? {
        Verdict::Verified { rows, head } => {
            let text = if rows == 0 {
                format!("verified: the audit log is empty; head {head}")
            } else {
                format!(
                    "verified: {rows} rows chain, up to row {}; head {head}",
                    head.id
                )
            };
            let value = json!({
                "verified": true,
                "rows": rows,
                "head": head.to_string(),
                "headChecked": saved.is_some(),
            });
            let outcome = Outcome::new(result(json, &text, &value)?);
            Ok(if saved.is_some() {
                outcome
            } else {
                outcome.note(
                    "a log rewritten from its first row, or with its newest rows deleted, \
                     verifies too: keep `ren3-issuer audit head` elsewhere and give it as \
                     --head",
                )
            })
        }
        Verdict::Broken(broken) => Err(chain::ChainBroken(broken).into()),
    }
}

fn export(paths: &StorePaths, json: bool, out: Option<&Path>, force: bool) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let mut lines = String::new();
    let mut rows = 0u64;
    let mut failed = None;
    audit::oldest_first(&store, |entry| match serde_json::to_string(&entry) {
        Ok(line) => {
            lines.push_str(&line);
            lines.push('\n');
            rows += 1;
        }
        Err(e) => failed = Some(e),
    })?;
    if let Some(e) = failed {
        return Err(e).context("cannot render an audit row as JSON");
    }
    let Some(out) = out else {
        // A stored text may hold characters a terminal obeys: they are
        // shown as JSON escapes, the same string to a JSON reader, and then
        // left as they are by `print_result`'s escaping.
        return Ok(Outcome::new(escape(&lines, Form::Json).into_owned()));
    };
    let existing = if force {
        Existing::Replace
    } else {
        Existing::Keep
    };
    atomic_file::write(out, lines.as_bytes(), EXPORT_FILE_MODE, existing).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists; choose another --out, or add --force to replace it",
                out.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot write {}", out.display()))
        }
    })?;
    let value = json!({ "rows": rows, "out": out });
    Ok(Outcome::new(result(json, "", &value)?).note(format!(
        "wrote {rows} audit rows, oldest first, to {}",
        out.display()
    )))
}

fn head(paths: &StorePaths, json: bool) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let head = chain::head(&store)?;
    let value = json!({ "id": head.id, "hash": head.hash.to_string(), "head": head.to_string() });
    Ok(Outcome::new(result(json, &head.to_string(), &value)?).note(
        "keep this head away from the store; `ren3-issuer audit verify --head HEAD` then \
         also catches deleted newest rows and a log rewritten from the start",
    ))
}
