//! How results are read and written: input files or stdin within a size
//! limit, public files, labelled lines and tables for people. A value in a
//! line or a cell is escaped for the terminal on its way in (`one_line`):
//! it stays on its line, and the columns are as wide as what is shown.

use super::*;

/// Reads a token from a file or, for `-`, stdin; `what` names it in errors.
pub(super) fn read_input(source: &str, what: &str) -> Result<String> {
    let (reader, name): (Box<dyn io::Read>, String) = if source == "-" {
        (Box::new(io::stdin().lock()), "standard input".to_owned())
    } else {
        let file = std::fs::File::open(source)
            .with_context(|| format!("cannot read the {what} from {source}"))?;
        (Box::new(file), source.to_owned())
    };
    read_limited(reader, &name, what)
}

/// Reads one token's worth of text from `reader`, refusing more.
pub(super) fn read_limited(mut reader: impl io::Read, name: &str, what: &str) -> Result<String> {
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "at the limit" from "over it",
    // without reading an arbitrarily large file.
    reader
        .by_ref()
        .take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} from {name}"))?;
    if bytes.len() > MAX_INPUT_LEN {
        bail!(
            "{name} holds more than {} KiB, and a {what} is never that long; give only the token",
            MAX_INPUT_LEN / 1024
        );
    }
    String::from_utf8(bytes).with_context(|| format!("{name} is not UTF-8 text"))
}

pub(super) fn write_public_file(path: &Path, contents: &[u8]) -> Result<()> {
    atomic_file::write(path, contents, PUBLIC_FILE_MODE, Existing::Replace)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `label: value` lines with the values aligned, each value on its line.
#[derive(Default)]
pub(super) struct LabelledLines {
    rows: Vec<(&'static str, String)>,
}

impl LabelledLines {
    pub(super) fn add(&mut self, label: &'static str, value: &str) {
        self.rows.push((label, one_line(value).into_owned()));
    }

    pub(super) fn render(&self) -> String {
        let width = self.rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 1;
        let mut out = String::new();
        for (label, value) in &self.rows {
            let _ = writeln!(out, "{:<width$} {value}", format!("{label}:"));
        }
        out.pop();
        out
    }
}

/// A plain text table with a header, columns padded to their widest cell,
/// each cell on its line.
pub(super) struct Table<const N: usize> {
    rows: Vec<[String; N]>,
}

impl<const N: usize> Table<N> {
    pub(super) fn new(header: [&str; N]) -> Self {
        Self {
            rows: vec![header.map(str::to_owned)],
        }
    }

    pub(super) fn row(&mut self, cells: [String; N]) {
        self.rows
            .push(cells.map(|cell| one_line(&cell).into_owned()));
    }

    /// Empty when the table has no row but its header.
    pub(super) fn render(&self) -> String {
        if self.rows.len() < 2 {
            return String::new();
        }
        let mut widths = [0usize; N];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
                if i + 1 == N {
                    line.push_str(cell);
                } else {
                    let pad = width - cell.chars().count();
                    let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.pop();
        out
    }
}

pub(super) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
