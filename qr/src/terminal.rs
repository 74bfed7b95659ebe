//! The code in a terminal, in Unicode half blocks: each character cell
//! shows two modules, one above the other, so the code is about square.
//!
//! A terminal's background may be dark or light, and a code drawn in plain
//! characters is inverted on one of them, which many readers refuse. So
//! every line sets its colours: the light modules and the quiet zone are
//! drawn as the characters' ink in bright white (SGR 97), the dark modules
//! are the cell's background in black (SGR 40). The code reads dark on
//! light on either kind of terminal. Where the colours are not applied
//! (the text saved to a file and shown without them), the ink alone still
//! draws the light modules, which is right on the common dark background.

use crate::Code;

/// Sets the colours: bright white ink (the light modules), on black (the
/// dark modules).
const COLOURS: &str = "\x1b[97;40m";
/// Back to the terminal's own colours, before each line break, so that no
/// black spills to the end of the line when the terminal scrolls.
const RESET: &str = "\x1b[0m";

/// The terminal is narrower than the code with its quiet zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the QR code needs a terminal {needed} columns wide, and this one has {available}: \
     widen the terminal, write the code to an image with --qr-svg FILE, or show it on \
     the local license page"
)]
pub struct TooNarrow {
    /// The columns the code takes, quiet zone included.
    pub needed: usize,
    /// The columns the terminal has.
    pub available: usize,
}

impl Code {
    /// The columns [`Code::terminal`] needs: one per module, quiet zone
    /// included.
    pub fn terminal_columns(&self) -> usize {
        self.outer_width()
    }

    /// The code as lines of text for a terminal, quiet zone included, each
    /// ending in a line break; refused when it needs more than `columns`
    /// (`None`: any width). Each character holds two modules, one above
    /// the other: `█` both light, `▀` the upper light, `▄` the lower
    /// light, a space both dark; the colours are set on every line (see
    /// the module's documentation for why).
    pub fn terminal(&self, columns: Option<usize>) -> Result<String, TooNarrow> {
        let size = self.outer_width();
        if let Some(available) = columns.filter(|available| *available < size) {
            return Err(TooNarrow {
                needed: size,
                available,
            });
        }
        // The odd last row pairs with one below the quiet zone, drawn light
        // like it.
        let light = |x: usize, y: usize| y >= size || !self.is_dark_with_quiet_zone(x, y);
        let mut text = String::new();
        for y in (0..size).step_by(2) {
            text.push_str(COLOURS);
            for x in 0..size {
                text.push(match (light(x, y), light(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            text.push_str(RESET);
            text.push('\n');
        }
        Ok(text)
    }
}
