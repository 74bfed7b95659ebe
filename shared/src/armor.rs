//! The optional armoured block around a token, for e-mail:
//!
//! ```text
//! -----BEGIN REN3 LICENSE PAYLOAD-----
//! ren3-payload-v3.cmVuMy9saWNlbnNlLXBheWxvYWQvdjMK...
//! -----END REN3 LICENSE PAYLOAD-----
//! ```
//!
//! Text before and after the block (a greeting, a signature) is ignored.

const DASHES: &str = "-----";
const WIDTH: usize = 64;

/// Why an armoured block could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArmorError {
    /// A BEGIN line without its END line: the block was cut off.
    Unterminated { label: String },
}

/// An armoured block's label and the text between its BEGIN and END lines.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Armored<'a> {
    pub label: &'a str,
    pub content: String,
}

/// Wraps `token` in an armoured block with `label`, at 64 characters a line.
pub fn armor(label: &str, token: &str) -> String {
    let mut out = format!("{DASHES}BEGIN {label}{DASHES}\n");
    let bytes = token.as_bytes();
    for line in bytes.chunks(WIDTH) {
        // Tokens are ASCII, so every chunk is whole characters.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("{DASHES}END {label}{DASHES}\n"));
    out
}

fn marker<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    line.trim_matches(crate::token::is_token_space)
        .strip_prefix(DASHES)?
        .strip_prefix(word)?
        .strip_prefix(' ')?
        .strip_suffix(DASHES)
}

/// Finds the first armoured block in `input`, if there is one.
pub(crate) fn unarmor(input: &str) -> Result<Option<Armored<'_>>, ArmorError> {
    let mut lines = input.lines();
    let label = loop {
        match lines.next() {
            None => return Ok(None),
            Some(line) => {
                if let Some(label) = marker(line, "BEGIN") {
                    break label;
                }
            }
        }
    };
    let mut content = String::new();
    for line in lines {
        if marker(line, "END") == Some(label) {
            return Ok(Some(Armored { label, content }));
        }
        content.push_str(line);
        content.push('\n');
    }
    Err(ArmorError::Unterminated {
        label: label.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armor_round_trips_with_surrounding_prose() {
        let token = "x".repeat(150);
        let block = armor("REN3 LICENSE PAYLOAD", &token);
        assert!(
            block
                .lines()
                .all(|l| l.len() <= 64 || l.starts_with(DASHES))
        );
        let mail = format!("Hello,\n\nhere it is:\n\n{block}\nRegards,\nReN3\n");
        let found = unarmor(&mail).unwrap().unwrap();
        assert_eq!(found.label, "REN3 LICENSE PAYLOAD");
        assert_eq!(found.content.replace('\n', ""), token);
    }

    #[test]
    fn missing_end_line_is_reported() {
        let block = armor("REN3 LICENSE REQUEST", "abc");
        let cut = block.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(
            unarmor(&cut),
            Err(ArmorError::Unterminated {
                label: "REN3 LICENSE REQUEST".into()
            })
        );
    }

    #[test]
    fn plain_text_has_no_block() {
        assert_eq!(unarmor("ren3-payload-v1.abc"), Ok(None));
    }
}
