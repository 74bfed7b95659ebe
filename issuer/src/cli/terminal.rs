//! What the CLI writes to a terminal: every byte of stdout and stderr goes
//! through [`ren3_shared::terminal::escape`] (why, and how each character
//! is shown, is there), in [`print_result`], [`print_note`] and
//! [`print_error`]. Only the line breaks the CLI writes between its own
//! lines stay; `--json` stays the same JSON value.
//!
//! Lines the CLI joins from data ([`super::LabelledLines`],
//! [`super::Table`], a batch's refusals) escape each value with
//! [`one_line`] before joining, so that a line break inside a value cannot
//! start a line of its own (a fake `signature: verifies`), and columns are
//! padded to the width that is shown.

use std::borrow::Cow;
use std::io::{self, Write as _};

use ren3_shared::terminal::{Form, escape};

/// A value for a cell of a line the CLI joins: on one line, shown safely.
pub(super) fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, Form::Line)
}

/// Writes a command's result to stdout: JSON with `--json`, else lines.
pub(super) fn print_result(text: &str, json: bool) -> io::Result<()> {
    let form = if json { Form::Json } else { Form::Lines };
    let mut stdout = io::stdout().lock();
    stdout.write_all(escape(text, form).as_bytes())?;
    stdout.flush()
}

/// Writes a message for the person at the terminal to stderr.
pub(super) fn print_note(note: &str) {
    eprintln!("{}", escape(note, Form::Lines));
}

/// Writes the error line to stderr: one line, whatever the error carries.
pub(super) fn print_error(message: &str) {
    eprintln!("error: {}", escape(message, Form::Line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_stays_on_its_line() {
        assert_eq!(
            one_line("x\nsignature: verifies\u{1b}[2K"),
            "x\\u{a}signature: verifies\\u{1b}[2K"
        );
    }
}
