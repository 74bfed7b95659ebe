//! The code as SVG: for the local license page (inline in its HTML) and
//! for `ren3-client request --qr-svg FILE`.

use std::fmt::Write as _;

use crate::Code;

/// How many CSS pixels a module takes at the SVG's own size: a version 18
/// code is then about 390 pixels wide, which a phone reads from a screen
/// at arm's length. A page's stylesheet may size it otherwise: it scales.
const PIXELS_PER_MODULE: usize = 4;

impl Code {
    /// The code as one standalone `<svg>` element, usable inline in HTML
    /// and as a `.svg` file: a white background with the quiet zone, black
    /// modules, drawn with crisp edges, and `title` as its accessible name
    /// (`role="img"` and a `<title>`; escaped here).
    pub fn svg(&self, title: &str) -> String {
        let size = self.outer_width();
        let pixels = size * PIXELS_PER_MODULE;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" \
             viewBox=\"0 0 {size} {size}\" width=\"{pixels}\" height=\"{pixels}\" \
             role=\"img\" shape-rendering=\"crispEdges\">\
             <title>{}</title>\
             <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
             <path fill=\"#000\" d=\"",
            escape_xml(title)
        );
        // One rectangle per run of dark modules in a row: a third of the
        // size of one per module.
        for y in 0..size {
            let mut x = 0;
            while x < size {
                if !self.is_dark_with_quiet_zone(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < size && self.is_dark_with_quiet_zone(x, y) {
                    x += 1;
                }
                let run = x - start;
                let _ = write!(svg, "M{start} {y}h{run}v1h-{run}z");
            }
        }
        svg.push_str("\"/></svg>");
        svg
    }
}

/// `text` as XML character data and attribute values: the five markup
/// characters as entities, and the characters XML 1.0 forbids (most C0
/// controls, U+FFFE, U+FFFF) replaced by U+FFFD.
fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => escaped.push('\u{fffd}'),
            c => escaped.push(c),
        }
    }
    escaped
}
