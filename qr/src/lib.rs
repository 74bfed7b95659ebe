//! QR codes of the tokens a customer carries across the air gap: the
//! license request out to the ReN3 team, and the release receipt. A phone's
//! camera app reads them off the screen, so the token reaches the vendor
//! without a USB stick or a copy and paste.
//!
//! [`carried_text`] says what a code carries (the token, or the vendor's
//! portal URL with the request attached); [`Code`] encodes it and draws it
//! as SVG (for the local license page and for files) or as Unicode half
//! blocks (for the terminal).
//!
//! Every code is at error-correction level M ([`LEVEL_NAME`]): it restores
//! up to 15% of damaged modules. The codes are read off screens and
//! terminals, which are clean and flat, so the higher levels' margin
//! against dirt and creases on paper buys nothing here, and it costs size:
//! the 531-character request of `fixtures/request.token` is version 18 at
//! level M (89 modules, 97 terminal columns with the quiet zone), but
//! version 22 at level Q (105 modules, 113 columns), wider than many
//! terminals. Level L would save two versions, but leaves little margin for
//! the gaps some terminals leave between lines, for glare and for moiré on
//! a phone's picture of a screen.

use std::fmt::Write as _;

use qrcode::{EcLevel, QrCode, Version};

mod svg;
mod terminal;

pub use terminal::TooNarrow;

/// The error-correction level of every code, as QR names it: M, which
/// restores up to 15% of the modules (see the crate's documentation for
/// why).
pub const LEVEL_NAME: &str = "M";

/// The level [`LEVEL_NAME`] names.
const LEVEL: EcLevel = EcLevel::M;

/// The light border around the symbol, in modules, that the QR standard
/// asks for so that a reader finds the code's edges.
pub const QUIET_ZONE: usize = 4;

/// The most bytes a code at [`LEVEL_NAME`] holds (version 40, byte mode).
pub const MAX_BYTES: usize = 2331;

/// The text a code of `token` carries: the token alone, or, with the
/// vendor's portal configured, `{portal_url}?request={token}`, so that one
/// scan opens the portal with its form filled in.
///
/// `portal_url` is the client's checked `license_portal_url`: an
/// `https://` address without query or fragment. Tokens are made of
/// `[A-Za-z0-9._-]`, which a URL carries as they are; any other byte would
/// be percent-encoded, so the URL stays one URL.
///
/// A GET of that URL must never issue anything: it only fills in a form.
/// The license key and a POST are still needed to get a payload, and the
/// URL, request included, lands in the portal's access logs and the
/// phone's history.
pub fn carried_text(token: &str, portal_url: Option<&str>) -> String {
    match portal_url.filter(|url| !url.is_empty()) {
        None => token.to_owned(),
        Some(url) => {
            let mut text = format!("{url}?request=");
            for byte in token.bytes() {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
                    text.push(char::from(byte));
                } else {
                    let _ = write!(text, "%{byte:02X}");
                }
            }
            text
        }
    }
}

/// Why a text cannot become a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// More than a code can hold.
    #[error(
        "the text is {bytes} bytes, too long for a QR code (at most {MAX_BYTES} at \
         error-correction level {LEVEL_NAME}); send it as a file instead"
    )]
    TooLong {
        /// The text's length in bytes.
        bytes: usize,
    },
    /// Refused by the encoder for another reason (none is expected for
    /// text).
    #[error("the text cannot be encoded as a QR code ({0}); send it as a file instead")]
    Unencodable(String),
}

/// One QR code at level [`LEVEL_NAME`], in the smallest version that holds
/// its text.
#[derive(Clone)]
pub struct Code {
    code: QrCode,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Code")
            .field("version", &self.version())
            .field("width", &self.width())
            .finish_non_exhaustive()
    }
}

impl Code {
    /// The code of `text` (usually [`carried_text`]).
    pub fn new(text: &str) -> Result<Code, QrError> {
        match QrCode::with_error_correction_level(text, LEVEL) {
            Ok(code) => Ok(Code { code }),
            Err(qrcode::types::QrError::DataTooLong) => Err(QrError::TooLong { bytes: text.len() }),
            Err(e) => Err(QrError::Unencodable(e.to_string())),
        }
    }

    /// The QR version, 1 to 40: the width is `4 × version + 17` modules.
    pub fn version(&self) -> i16 {
        match self.code.version() {
            Version::Normal(v) | Version::Micro(v) => v,
        }
    }

    /// The symbol's width (and height) in modules, without the quiet zone.
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// Whether the module in column `x`, row `y` of the symbol is dark.
    /// Outside the symbol it is light, as the quiet zone is.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width() && y < self.width() && self.code[(x, y)] == qrcode::Color::Dark
    }

    /// Whether the module at (`x`, `y`) of the symbol with its quiet zone
    /// around it is dark.
    fn is_dark_with_quiet_zone(&self, x: usize, y: usize) -> bool {
        x >= QUIET_ZONE && y >= QUIET_ZONE && self.is_dark(x - QUIET_ZONE, y - QUIET_ZONE)
    }

    /// The width of the symbol with its quiet zone on both sides, in
    /// modules.
    fn outer_width(&self) -> usize {
        self.width() + 2 * QUIET_ZONE
    }
}

#[cfg(test)]
mod tests;
