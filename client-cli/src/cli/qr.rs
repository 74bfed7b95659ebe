//! `--qr` and `--qr-svg FILE`: the request or the release receipt as a QR
//! code, for a phone's camera to carry across the air gap.
//!
//! The code is drawn on stderr, never stdout: stdout keeps the token alone
//! for scripts (`REQ=$(ren3-client request --qr ...)` still works, and the
//! operator sees the code). A terminal too narrow for it is a warning, not
//! an error: the service has acted and the token is printed or written as
//! usual, so the command exits 0 and says how to get the code otherwise.

use std::io::{self, Write as _};

use anyhow::{Context as _, Result};
use ren3_client::Config;
use ren3_qr::Code;

use super::files::OutFile;
use super::note;
use super::service::Service;

use ren3_client::page::PAGE_PATH;

/// The width assumed when neither the terminal nor `COLUMNS` tells it.
const DEFAULT_COLUMNS: usize = 80;

/// What the operator asked for with `--qr` and `--qr-svg`, and what the
/// code needs from the service's configuration.
pub(super) struct QrPlan {
    /// `--qr`: draw the code on stderr.
    terminal: bool,
    /// `--qr-svg FILE`, claimed before the service was asked.
    svg: Option<OutFile>,
    /// The vendor's portal (`license_portal_url`), which a request's code
    /// points to.
    pub(super) portal_url: Option<String>,
    /// The local license page's address, when the service serves it.
    page: Option<String>,
}

impl QrPlan {
    /// The plan for `--qr` (`terminal`) and a claimed `--qr-svg` file, with
    /// the configuration the service reads (environment and `./.env`);
    /// `None` when neither was asked for.
    pub(super) fn new(
        terminal: bool,
        svg: Option<OutFile>,
        service: &Service,
    ) -> Result<Option<Self>> {
        if !terminal && svg.is_none() {
            return Ok(None);
        }
        let config = Config::from_env().map_err(|e| {
            super::UsageError(format!(
                "{e} (the configuration the service reads, from the environment and ./.env, \
                 which says where a QR code points)"
            ))
        })?;
        Ok(Some(Self {
            terminal,
            svg,
            portal_url: config.portal_url,
            page: config
                .page
                .then(|| format!("{}{PAGE_PATH}", service.base())),
        }))
    }

    /// Writes the code of `text` to the `--qr-svg` file and draws it on
    /// stderr for `--qr`. `what` names the token ("license request"),
    /// `kept` says where the token itself went, for an error to point to.
    pub(super) fn show(self, text: &str, what: &str, kept: &str) -> Result<()> {
        let code = Code::new(text).with_context(|| format!("the {what} itself is {kept}"))?;
        let mut svg_path = None;
        if let Some(file) = self.svg {
            let path = file.path().display().to_string();
            file.write(&code.svg(&format!("ReN3 {what}")))
                .with_context(|| {
                    format!(
                        "the QR code could not be written to {path}; the {what} itself is {kept}"
                    )
                })?;
            note(&format!("wrote the QR code of the {what} to {path}"));
            svg_path = Some(path);
        }
        if !self.terminal {
            return Ok(());
        }
        let available = terminal_columns();
        match code.terminal(Some(available)) {
            Ok(drawing) => {
                // Written as it is: its colour sequences are the point
                // (ren3_qr's `terminal`), and nothing in it comes from
                // outside.
                let mut stderr = io::stderr().lock();
                stderr
                    .write_all(drawing.as_bytes())
                    .and_then(|()| stderr.flush())
                    .context("cannot draw the QR code on stderr")?;
                note(&format!(
                    "scan the code above with a phone to carry the {what} (version {}, level {})",
                    code.version(),
                    ren3_qr::LEVEL_NAME
                ));
            }
            Err(narrow) => {
                let mut instead = vec!["widen the terminal".to_owned()];
                instead.push(match &svg_path {
                    Some(path) => format!("open the image in {path}"),
                    None => "write the code to an image with --qr-svg FILE".to_owned(),
                });
                if let Some(page) = &self.page {
                    instead.push(format!("open {page} in a browser on this machine"));
                }
                let last = instead.pop().unwrap_or_default();
                note(&format!(
                    "warning: the QR code needs a terminal {} columns wide, and this one has {}: \
                     {}, or {last}",
                    narrow.needed,
                    narrow.available,
                    instead.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// The width of the terminal stderr shows in (where the code is drawn),
/// else `COLUMNS`, else [`DEFAULT_COLUMNS`].
fn terminal_columns() -> usize {
    if let Ok(size) = rustix::termios::tcgetwinsize(io::stderr())
        && size.ws_col > 0
    {
        return size.ws_col.into();
    }
    columns_variable(std::env::var("COLUMNS").ok().as_deref())
}

fn columns_variable(value: Option<&str>) -> usize {
    value
        .and_then(|columns| columns.trim().parse().ok())
        .filter(|columns| *columns > 0)
        .unwrap_or(DEFAULT_COLUMNS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_come_from_the_variable_else_eighty() {
        for (n, (value, columns)) in [
            (None, 80),
            (Some("120"), 120),
            (Some(" 40 "), 40),
            (Some("0"), 80),
            (Some("wide"), 80),
            (Some(""), 80),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(columns_variable(value), columns, "{n}: {value:?}");
        }
    }
}
