//! Showing text a customer wrote to a person at a terminal.
//!
//! A customer writes the JSON inside their requests and receipts (they
//! hold the device key that signs it), and that text reaches the lines
//! both command lines print. A terminal obeys what it is sent: ESC and C1
//! sequences erase lines, set the title or write the clipboard (OSC 52), a
//! carriage return or a backspace overwrites what was shown, and a bidi
//! control reorders what the reader sees. [`escape`] shows each such
//! character instead:
//!
//! - for people, as Rust's `char::escape_unicode` writes it: `\u{1b}`,
//!   `\u{7}`, `\u{202e}`. A backslash is not escaped: the form is for
//!   reading, and JSON is the exact one;
//! - in serialised JSON, as JSON's `\u001b`, so the output is the same
//!   JSON value.

use std::borrow::Cow;
use std::fmt::Write as _;

/// How [`escape`] shows a character a terminal would obey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Lines for people: `\u{1b}`; line breaks stay.
    Lines,
    /// One line for people: `\u{1b}`, and a line break is `\u{a}`.
    Line,
    /// Serialised JSON: `\u001b`; line breaks (only ever the white space
    /// between tokens of pretty-printed JSON) stay.
    Json,
}

/// Whether a terminal could act on `c` rather than show it: C0 (tab and
/// line feed included), DEL, C1, and the bidi controls (the Arabic letter
/// mark, the left-to-right and right-to-left marks, the embeddings and
/// overrides U+202A–U+202E, the isolates U+2066–U+2069).
pub fn is_terminal_control(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every character a terminal would obey shown in `form`;
/// unchanged, and not copied, if it has none. Escaping twice changes
/// nothing more.
pub fn escape(text: &str, form: Form) -> Cow<'_, str> {
    let escaped = |c: char| is_terminal_control(c) && !(c == '\n' && form != Form::Line);
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !escaped(c) {
            out.push(c);
        } else if form == Form::Json {
            // Every such character is in the Basic Multilingual Plane, so
            // four hex digits are the whole escape. In serialised JSON they
            // can only stand inside a string (outside one, JSON allows
            // nothing but its punctuation, literals and space, tab, CR and
            // LF, and serde_json writes no tab or CR there), where `\uXXXX`
            // is the same character: the value does not change.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.extend(c.escape_unicode());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// One character of every class, with how people see it.
    const CLASSES: &[(&str, char, &str)] = &[
        ("1. NUL", '\u{0}', "\\u{0}"),
        ("2. bell", '\u{7}', "\\u{7}"),
        ("3. backspace", '\u{8}', "\\u{8}"),
        ("4. tab", '\t', "\\u{9}"),
        ("5. carriage return", '\r', "\\u{d}"),
        ("6. escape", '\u{1b}', "\\u{1b}"),
        ("7. unit separator (last of C0)", '\u{1f}', "\\u{1f}"),
        ("8. delete", '\u{7f}', "\\u{7f}"),
        ("9. first of C1", '\u{80}', "\\u{80}"),
        ("10. next line (C1)", '\u{85}', "\\u{85}"),
        ("11. C1 CSI", '\u{9b}', "\\u{9b}"),
        ("12. last of C1", '\u{9f}', "\\u{9f}"),
        ("13. Arabic letter mark", '\u{61c}', "\\u{61c}"),
        ("14. left-to-right mark", '\u{200e}', "\\u{200e}"),
        ("15. right-to-left mark", '\u{200f}', "\\u{200f}"),
        ("16. left-to-right embedding", '\u{202a}', "\\u{202a}"),
        ("17. right-to-left override", '\u{202e}', "\\u{202e}"),
        ("18. left-to-right isolate", '\u{2066}', "\\u{2066}"),
        ("19. pop directional isolate", '\u{2069}', "\\u{2069}"),
    ];

    #[test]
    fn every_class_of_control_is_shown_not_sent() {
        for &(name, c, shown) in CLASSES {
            let text = format!("a{c}b");
            for form in [Form::Lines, Form::Line] {
                assert_eq!(escape(&text, form), format!("a{shown}b"), "{name} {form:?}");
            }
            let json = escape(&text, Form::Json);
            assert_eq!(json, format!("a\\u{:04x}b", u32::from(c)), "{name}");
            assert!(!json.chars().any(is_terminal_control), "{name}");
        }
    }

    #[test]
    fn only_the_line_breaks_of_lines_and_json_stay() {
        assert_eq!(escape("a\nb\n", Form::Lines), "a\nb\n");
        assert_eq!(escape("a\nb\n", Form::Json), "a\nb\n");
        assert_eq!(
            escape("x\nsignature: verifies", Form::Line),
            "x\\u{a}signature: verifies"
        );
    }

    #[test]
    fn printable_text_passes_unchanged_and_uncopied() {
        // Neighbours of the classes, and text that merely looks escaped.
        for text in [
            "plain ASCII ~ !",
            "\u{a0}no-break space, \u{ff}, \u{60b}\u{61d}, \u{200d}\u{2010}",
            "\u{2029}\u{202f}\u{2065}\u{206a} é 😀 日本",
            "C:\\path \\u{1b} \\x1b",
        ] {
            for form in [Form::Lines, Form::Line, Form::Json] {
                assert!(
                    matches!(escape(text, form), Cow::Borrowed(t) if t == text),
                    "{text:?} {form:?}"
                );
            }
        }
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let hostile = "\u{1b}]0;pwned\u{7}\r\u{1b}[2K\u{9b}31m\u{202e}txt\n\t";
        for form in [Form::Lines, Form::Line, Form::Json] {
            let once = escape(hostile, form).into_owned();
            assert_eq!(escape(&once, form), once, "{form:?}");
        }
    }

    #[test]
    fn json_output_is_the_same_value() {
        let every: String = CLASSES.iter().map(|&(_, c, _)| c).collect();
        let value = json!({
            every.clone(): [every, "\u{1b}]52;c;cHduZWQ=\u{7}", "\u{9b}2K\u{202e}"],
            "nested": { "name\u{2066}": "\u{85}x\u{61c}" },
            "plain": "text",
        });
        for pretty in [true, false] {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let escaped = escape(&text, Form::Json);
            assert!(
                !escaped.chars().any(|c| is_terminal_control(c) && c != '\n'),
                "{escaped}"
            );
            let back: Value = serde_json::from_str(&escaped).unwrap();
            assert_eq!(back, value, "pretty: {pretty}");
        }
    }
}
