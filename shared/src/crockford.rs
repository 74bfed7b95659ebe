//! Grouped codes for humans to type: license keys and device ids.
//!
//! A code is a fixed prefix, then data characters and one check character in
//! Crockford's base32 alphabet (no I, L, O or U), in groups of five joined by
//! hyphens. The check character is Luhn mod 32, which catches every single
//! mistyped character and almost every swap of two neighbours, so a typo is
//! reported before anything is sent to the vendor.

/// Crockford's base32 alphabet: the digit-like letters I, L and O and the
/// letter U are left out.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const GROUP: usize = 5;

/// Why a typed code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Nothing but hyphens and white space was typed.
    #[error("the {what} is empty; paste the {what} the ReN3 team sent you")]
    Empty {
        /// What the code is: `license key` or `client device id`.
        what: &'static str,
    },
    /// The code does not start with the prefix of its kind.
    #[error("this is not a {what}: a {what} starts with `{prefix}-`")]
    WrongPrefix {
        /// What the code is: `license key` or `client device id`.
        what: &'static str,
        /// The prefix a code of this kind starts with, e.g. `REN3K1`.
        prefix: &'static str,
    },
    /// The prefix is followed by too few or too many characters.
    #[error(
        "the {what} has {got} characters after `{prefix}-` where {expected} are expected; \
         check that it was copied in full"
    )]
    WrongLength {
        /// What the code is: `license key` or `client device id`.
        what: &'static str,
        /// The prefix a code of this kind starts with, e.g. `REN3K1`.
        prefix: &'static str,
        /// The characters a code of this kind has after its prefix, check
        /// character included.
        expected: usize,
        /// The characters typed after the prefix, hyphens and white space
        /// not counted.
        got: usize,
    },
    /// A character that is neither in the alphabet, nor a look-alike of
    /// one, nor a separator. Every character is checked before the length.
    #[error(
        "the {what} contains `{}`, which is not a character a {what} uses \
         (digits and letters except I, L, O and U)",
        ch.escape_debug()
    )]
    BadCharacter {
        /// What the code is: `license key` or `client device id`.
        what: &'static str,
        /// The first such character, whole even when it is not ASCII.
        ch: char,
    },
    /// The check character does not match the data characters: a typo.
    #[error(
        "the {what} contains a typo: its check character does not match; \
         compare it character by character with the one the ReN3 team sent"
    )]
    CheckFailed {
        /// What the code is: `license key` or `client device id`.
        what: &'static str,
    },
}

/// The shape of one kind of code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodeShape {
    pub what: &'static str,
    pub prefix: &'static str,
    /// Data characters, not counting the check character.
    pub data_len: usize,
}

/// Marks a byte that is no character of a code in [`VALUES`].
const NOT_A_CHARACTER: u8 = u8::MAX;

/// The value of each byte as a typed character: either case, and the
/// look-alikes O, I and L read as 0, 1 and 1.
const VALUES: [u8; 256] = {
    let mut table = [NOT_A_CHARACTER; 256];
    let mut value = 0;
    while value < ALPHABET.len() {
        let ch = ALPHABET[value];
        table[ch as usize] = value as u8;
        table[ch.to_ascii_lowercase() as usize] = value as u8;
        value += 1;
    }
    let mut look_alike = 0;
    let look_alikes = [(b'O', 0), (b'I', 1), (b'L', 1)];
    while look_alike < look_alikes.len() {
        let (ch, value) = look_alikes[look_alike];
        table[ch as usize] = value;
        table[ch.to_ascii_lowercase() as usize] = value;
        look_alike += 1;
    }
    table
};

fn value_of(ch: u8) -> Option<u8> {
    Some(VALUES[usize::from(ch)]).filter(|&v| v != NOT_A_CHARACTER)
}

/// The most characters, check character included, a code's data may have.
const MAX_CHARS: usize = 32;

/// Luhn mod 32 over `values` as if a check character were to follow them.
fn check_value(values: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, &v) in values.iter().rev().enumerate() {
        let mut addend = u32::from(v) * if i % 2 == 0 { 2 } else { 1 };
        addend = addend / 32 + addend % 32;
        sum += addend;
    }
    ((32 - sum % 32) % 32) as u8
}

impl CodeShape {
    /// Canonical text from data values (each below 32).
    pub fn format(&self, data: &[u8]) -> String {
        debug_assert_eq!(data.len(), self.data_len);
        let chars = data.len() + 1;
        let mut out = String::with_capacity(self.prefix.len() + chars + chars.div_ceil(GROUP));
        out.push_str(self.prefix);
        let with_check = data.iter().copied().chain([check_value(data)]);
        for (i, value) in with_check.enumerate() {
            if i % GROUP == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(value)]));
        }
        out
    }

    /// A new random code. Each random byte gives one character (256 is a
    /// multiple of 32, so every character is uniform).
    #[cfg(feature = "signing")]
    pub fn generate<const N: usize>(&self) -> Result<String, crate::RandomSourceError> {
        debug_assert_eq!(N, self.data_len);
        let data = crate::binary::os_random::<N>()?.map(|b| b & 31);
        Ok(self.format(&data))
    }

    /// Parses a typed code: case, hyphens and spaces are free, and the
    /// look-alikes O, I and L read as 0, 1 and 1. Returns the canonical form.
    pub fn parse(&self, input: &str) -> Result<String, CodeError> {
        let what = self.what;
        let mut typed = input
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t' | b'\r' | b'\n'));
        for (i, expected) in self.prefix.bytes().enumerate() {
            match typed.next() {
                None if i == 0 => return Err(CodeError::Empty { what }),
                Some(b) if b.eq_ignore_ascii_case(&expected) => {}
                _ => {
                    return Err(CodeError::WrongPrefix {
                        what,
                        prefix: self.prefix,
                    });
                }
            }
        }
        // Every character is checked before the length, so that a stray
        // character is named even in a code of the wrong length.
        let mut values = [0u8; MAX_CHARS];
        let mut got = 0;
        for b in typed {
            let Some(value) = value_of(b) else {
                let ch = offending_char(input, b);
                return Err(CodeError::BadCharacter { what, ch });
            };
            if let Some(slot) = values.get_mut(got) {
                *slot = value;
            }
            got += 1;
        }
        let expected = self.data_len + 1;
        let (Some(values), true) = (values.get(..expected), got == expected) else {
            return Err(CodeError::WrongLength {
                what,
                prefix: self.prefix,
                expected,
                got,
            });
        };
        let (data, check) = values.split_at(self.data_len);
        if check_value(data) != check[0] {
            return Err(CodeError::CheckFailed { what });
        }
        Ok(self.format(data))
    }
}

/// The character a refused byte `b` of `input` belongs to, whole. The
/// parser reads bytes and skips only ASCII separators, so the first
/// non-ASCII byte it meets starts the first non-ASCII character of the
/// input: naming that one never shows half a UTF-8 character.
fn offending_char(input: &str, b: u8) -> char {
    if b.is_ascii() {
        char::from(b)
    } else {
        input
            .chars()
            .find(|c| !c.is_ascii())
            .unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: CodeShape = CodeShape {
        what: "test code",
        prefix: "TST1",
        data_len: 9,
    };

    #[test]
    fn format_groups_by_five_with_check_last() {
        let code = SHAPE.format(&[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(code.len(), "TST1-01234-5678C".len());
        assert_eq!(SHAPE.parse(&code).unwrap(), code);
    }

    #[test]
    fn parse_is_lenient_about_case_spacing_and_look_alikes() {
        let code = SHAPE.format(&[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let body = &code["TST1".len()..];
        let sloppy = format!(
            "tst1{}",
            body.to_lowercase()
                .replace('-', " ")
                .replace('0', "o")
                .replace('1', "l")
        );
        assert_eq!(SHAPE.parse(&sloppy).unwrap(), code);
    }

    #[test]
    fn every_single_substitution_is_caught() {
        let data = [3, 14, 15, 9, 26, 5, 31, 8, 27];
        let code = SHAPE.format(&data);
        let compact: Vec<u8> = code.bytes().filter(|&b| b != b'-').collect();
        for pos in 4..compact.len() {
            for &replacement in ALPHABET {
                if replacement == compact[pos] {
                    continue;
                }
                let mut typo = compact.clone();
                typo[pos] = replacement;
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(
                    SHAPE.parse(&typo),
                    Err(CodeError::CheckFailed { what: "test code" }),
                    "{typo}"
                );
            }
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(
            SHAPE.parse("  "),
            Err(CodeError::Empty { what: "test code" })
        );
        assert!(matches!(
            SHAPE.parse("XYZ-123"),
            Err(CodeError::WrongPrefix { .. })
        ));
        assert!(matches!(
            SHAPE.parse("TST1-0123"),
            Err(CodeError::WrongLength { got: 4, .. })
        ));
        assert!(matches!(
            SHAPE.parse("TST1-0123U-56789"),
            Err(CodeError::BadCharacter { ch: 'U', .. })
        ));
        // A character of several bytes is named whole, a control one escaped.
        for (input, ch, shown) in [
            ("TST1-0123é-56789", 'é', "`é`"),
            ("TST1-0123\u{3000}-5678", '\u{3000}', "`\\u{3000}`"),
            ("TST1-01😀23", '😀', "`😀`"),
            ("TST1-0123\u{7}", '\u{7}', "`\\u{7}`"),
        ] {
            let err = SHAPE.parse(input).unwrap_err();
            assert_eq!(
                err,
                CodeError::BadCharacter {
                    what: "test code",
                    ch
                },
                "{input:?}"
            );
            assert!(err.to_string().contains(shown), "{input:?}: {err}");
        }
    }

    /// The first implementation, by the letter of the rules: the table
    /// and the single pass must give the same answer for every input.
    fn reference_parse(shape: &CodeShape, input: &str) -> Result<String, CodeError> {
        let what = shape.what;
        let reference_value = |ch: u8| {
            let ch = match ch.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                other => other,
            };
            ALPHABET.iter().position(|&a| a == ch).map(|p| p as u8)
        };
        let compact: Vec<u8> = input
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' ' | b'\t' | b'\r' | b'\n'))
            .collect();
        if compact.is_empty() {
            return Err(CodeError::Empty { what });
        }
        let prefix = shape.prefix.as_bytes();
        if compact.len() < prefix.len() || !compact[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return Err(CodeError::WrongPrefix {
                what,
                prefix: shape.prefix,
            });
        }
        let mut values = Vec::new();
        for &b in &compact[prefix.len()..] {
            let Some(v) = reference_value(b) else {
                let ch = offending_char(input, b);
                return Err(CodeError::BadCharacter { what, ch });
            };
            values.push(v);
        }
        if values.len() != shape.data_len + 1 {
            return Err(CodeError::WrongLength {
                what,
                prefix: shape.prefix,
                expected: shape.data_len + 1,
                got: values.len(),
            });
        }
        let (data, check) = values.split_at(shape.data_len);
        if check_value(data) != check[0] {
            return Err(CodeError::CheckFailed { what });
        }
        let mut out = String::from(shape.prefix);
        let mut chars = data.to_vec();
        chars.push(check[0]);
        for group in chars.chunks(GROUP) {
            out.push('-');
            out.extend(group.iter().map(|&v| char::from(ALPHABET[usize::from(v)])));
        }
        Ok(out)
    }

    #[test]
    fn parsing_agrees_with_the_reference_for_every_kind_of_input() {
        let long = CodeShape {
            what: "long code",
            prefix: "LNG9",
            data_len: 24,
        };
        for shape in [SHAPE, long] {
            let data: Vec<u8> = (0..shape.data_len as u8).map(|i| i * 7 % 32).collect();
            let code = shape.format(&data);
            let mut inputs = vec![
                String::new(),
                " - ".into(),
                code.clone(),
                code.to_lowercase(),
                code.replace('-', ""),
                code[..2].into(),
                shape.prefix.into(),
                format!("{code}{}", "0".repeat(40)),
                format!("{code}!"),
                format!("{}U{}", &code[..7], &code[8..]),
            ];
            for cut in 0..code.len() {
                inputs.push(code[..cut].into());
            }
            for pos in 0..code.len() {
                for b in 0..=u8::MAX {
                    let mut typo = code.clone().into_bytes();
                    typo[pos] = b;
                    if let Ok(typo) = String::from_utf8(typo) {
                        inputs.push(typo);
                    }
                }
            }
            for input in &inputs {
                assert_eq!(
                    shape.parse(input),
                    reference_parse(&shape, input),
                    "{input:?}"
                );
            }
        }
    }
}
