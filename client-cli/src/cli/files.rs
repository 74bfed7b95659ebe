//! What the commands read and write: the license key (a file or a prompt,
//! never an argument), the payload, and the files tokens are written to.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use ren3_shared::token::MAX_INPUT_LEN;

/// A license key is about 30 characters; a file much longer is the wrong
/// file.
const MAX_KEY_FILE_LEN: usize = 4 * 1024;

/// Token files are for others to read: the ReN3 team, a mail client.
#[cfg(unix)]
const PUBLIC_FILE_MODE: u32 = 0o644;

/// The license key from `file` (`-`: stdin) or, without one, from a prompt
/// that does not echo. With neither a file nor a terminal, it says to use
/// `--license-key-file`.
pub(super) fn license_key(file: Option<&str>) -> Result<String> {
    let (text, source) = match file {
        Some(source) => (
            read_limited(source, "license key", MAX_KEY_FILE_LEN)?,
            source,
        ),
        None => {
            if !io::stdin().is_terminal() {
                bail!(
                    "no license key: there is no terminal to ask for it; save the key the \
                     ReN3 team sent in a file only you can read and give \
                     --license-key-file FILE (it is never taken as an argument)"
                );
            }
            let typed = rpassword::prompt_password("license key: ")
                .context("cannot read the license key from the terminal")?;
            (typed, "the terminal")
        }
    };
    let key = text.trim();
    if key.is_empty() {
        bail!(
            "{} holds no license key; give the key the ReN3 team sent",
            shown_source(source)
        );
    }
    Ok(key.to_owned())
}

/// The payload from `source` (`-`: stdin), trimmed. Line breaks inside it
/// and an armoured block stay: the service accepts them.
pub(super) fn read_payload(source: &str) -> Result<String> {
    let text = read_limited(source, "license payload", MAX_INPUT_LEN)?;
    let payload = text.trim();
    if payload.is_empty() {
        bail!(
            "{} is empty; give the license payload the ReN3 team sent",
            shown_source(source)
        );
    }
    Ok(payload.to_owned())
}

fn shown_source(source: &str) -> &str {
    if source == "-" {
        "standard input"
    } else {
        source
    }
}

/// Reads at most `limit` bytes of UTF-8 text from the file `source`, or
/// stdin for `-`, refusing more.
fn read_limited(source: &str, what: &str, limit: usize) -> Result<String> {
    let name = shown_source(source);
    let reader: Box<dyn io::Read> = if source == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(source).with_context(|| {
            format!("cannot read the {what} from {source}; check the file's name")
        })?)
    };
    let mut bytes = Vec::new();
    // One byte past the limit tells "at the limit" from "over it" without
    // reading an arbitrarily large file.
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} from {name}"))?;
    if bytes.len() > limit {
        bail!(
            "{name} holds more than {} KiB, and a {what} is never that long; give only the {what}",
            limit / 1024
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{name} is not UTF-8 text"))
}

/// The `--out` file, claimed before the service is asked: an existing file
/// is refused (without `--force`) while nothing has changed yet. Dropped
/// unwritten, a file it created is removed again.
pub(super) struct OutFile {
    path: PathBuf,
    file: Option<File>,
    created: bool,
}

impl OutFile {
    pub(super) fn claim(path: &Path, force: bool) -> Result<Self> {
        let existed = force && path.exists();
        let mut options = OpenOptions::new();
        options.write(true);
        if force {
            // Not truncated yet: a refused request leaves the old file.
            options.create(true);
        } else {
            options.create_new(true);
        }
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, PUBLIC_FILE_MODE);
        let file = options.open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} already exists; choose another --out, or add --force to replace it",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot create {}: {e}", path.display())
            }
        })?;
        Ok(Self {
            path: path.to_owned(),
            file: Some(file),
            created: !existed,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `token` and a line break, and
    /// syncs it.
    pub(super) fn write(mut self, token: &str) -> Result<()> {
        let mut file = self.file.take().context("the file was already written")?;
        file.set_len(0)?;
        file.write_all(format!("{token}\n").as_bytes())?;
        file.sync_all()?;
        Ok(())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        // Still held: never written, so a file made for it goes again. A
        // failed write leaves what it wrote, for the operator to look at.
        if self.file.is_some() && self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
