//! The token envelope shared by every signed artefact (docs/FORMAT.md, "Tokens").
//!
//! ```text
//! <prefix><message>.<signature>.<check>
//! ```
//!
//! `message` and `signature` are base64url; `check` is a checksum over
//! everything before it. The checksum tells damage in transit (a truncated
//! or mistyped token) from forgery (a well-formed token whose signature
//! fails), which get different errors.
//!
//! The signed message is `<domain>\n<signer>\n<body>`: a domain-separation
//! line that differs for each artefact, the signer's identity, then JSON.
//! Signatures cover these exact bytes; nothing is re-serialised to verify.
//!
//! One module, over the usual size: the six kinds' names, the errors every
//! reader reports and the one reading of pasted text (FORMAT.md §3.2) are
//! the envelope's contract, and each is read against the others.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::armor::{self, ArmorError};
use crate::binary;

/// Any input longer than this is refused before it is parsed.
pub const MAX_INPUT_LEN: usize = 64 * 1024;
/// Bytes of the checksum segment (48 bits, 8 base64url characters).
const CHECK_LEN: usize = 6;
/// Characters of the checksum segment.
const CHECK_CHARS: usize = 8;
/// The longest signer field: a base64url Ed25519 public key is 43.
const MAX_SIGNER_LEN: usize = 64;

/// The kinds of signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// From the customer's ingestor to the vendor, signed by the device key.
    Request,
    /// From the vendor to the ingestor, signed by an issuer key.
    Payload,
    /// From the ingestor to the vendor after deactivation, signed by the
    /// device key: proof that the installation gave its seat back.
    Receipt,
    /// From the vendor's root key: "this issuer key may sign payloads for
    /// this product, in this window". Every payload carries its key's.
    Certificate,
    /// From the vendor's root key: the issuer keys it revoked. Every
    /// payload carries the newest its issuer had.
    RevocationList,
    /// From a new issuer key to the vendor's offline root: "certify me".
    /// Signed by the key it asks for, which proves its holder has it.
    CertificationRequest,
}

/// Everything that names one kind of token. `prefix` and `domain` are
/// written out whole, since every token read or written uses them; a test
/// checks them against `family` and `version`.
struct KindInfo {
    /// The typed prefix without its version number.
    family: &'static str,
    version: u32,
    /// The typed prefix: `family`, `version`, then a dot.
    prefix: &'static str,
    /// The first line of the signed message, ending in `/v<version>`.
    domain: &'static str,
    armor_label: &'static str,
    noun: &'static str,
    with_article: &'static str,
}

impl Kind {
    /// Every kind, each once.
    pub const ALL: [Kind; 6] = [
        Kind::Request,
        Kind::Payload,
        Kind::Receipt,
        Kind::Certificate,
        Kind::RevocationList,
        Kind::CertificationRequest,
    ];

    fn info(self) -> &'static KindInfo {
        match self {
            Kind::Request => &KindInfo {
                family: "ren3-request-v",
                version: 2,
                prefix: "ren3-request-v2.",
                domain: "ren3/license-request/v2",
                armor_label: "REN3 LICENSE REQUEST",
                noun: "license request",
                with_article: "a license request",
            },
            Kind::Payload => &KindInfo {
                family: "ren3-payload-v",
                version: 3,
                prefix: "ren3-payload-v3.",
                domain: "ren3/license-payload/v3",
                armor_label: "REN3 LICENSE PAYLOAD",
                noun: "license payload",
                with_article: "a license payload",
            },
            Kind::Receipt => &KindInfo {
                family: "ren3-receipt-v",
                version: 2,
                prefix: "ren3-receipt-v2.",
                domain: "ren3/release-receipt/v2",
                armor_label: "REN3 RELEASE RECEIPT",
                noun: "release receipt",
                with_article: "a release receipt",
            },
            Kind::Certificate => &KindInfo {
                family: "ren3-certificate-v",
                version: 1,
                prefix: "ren3-certificate-v1.",
                domain: "ren3/issuer-certificate/v1",
                armor_label: "REN3 ISSUER CERTIFICATE",
                noun: "issuer certificate",
                with_article: "an issuer certificate",
            },
            Kind::RevocationList => &KindInfo {
                family: "ren3-revocations-v",
                version: 1,
                prefix: "ren3-revocations-v1.",
                domain: "ren3/revocation-list/v1",
                armor_label: "REN3 REVOCATION LIST",
                noun: "revocation list",
                with_article: "a revocation list",
            },
            Kind::CertificationRequest => &KindInfo {
                family: "ren3-certification-request-v",
                version: 1,
                prefix: "ren3-certification-request-v1.",
                domain: "ren3/certification-request/v1",
                armor_label: "REN3 CERTIFICATION REQUEST",
                noun: "certification request",
                with_article: "a certification request",
            },
        }
    }

    /// The format version this build writes and reads.
    pub fn version(self) -> u32 {
        self.info().version
    }

    /// The typed prefix: what the token is, and its format version, e.g.
    /// `ren3-payload-v3.`.
    pub fn prefix(self) -> &'static str {
        self.info().prefix
    }

    /// The prefix without its version, to recognise other versions.
    fn family(self) -> &'static str {
        self.info().family
    }

    /// The first line of the signed message (domain separation), e.g.
    /// `ren3/license-payload/v3`.
    pub fn domain(self) -> &'static str {
        self.info().domain
    }

    /// The label of the optional armoured block.
    pub fn armor_label(self) -> &'static str {
        self.info().armor_label
    }

    fn with_article(self) -> &'static str {
        self.info().with_article
    }

    /// Wraps a token of this kind in an armoured block for e-mail.
    pub fn armor(self, token: &str) -> String {
        armor::armor(self.armor_label(), token)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info().noun)
    }
}

/// Why a token was refused. Each variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The input holds no token: it is empty, or only white space.
    /// Code `token_empty`.
    #[error("no {expected} was given: the input is empty")]
    Empty {
        /// The kind of token the caller asked for.
        expected: Kind,
    },
    /// The input is over [`MAX_INPUT_LEN`] bytes, and was not parsed.
    /// Code `token_too_large`.
    #[error(
        "the input is {len} bytes, and a {expected} is never more than {max}: \
         paste only the token"
    )]
    TooLarge {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The input's length in bytes.
        len: usize,
        /// The most an input may hold: [`MAX_INPUT_LEN`].
        max: usize,
    },
    /// The input is something else: a token of another kind, a license
    /// key, a device id or JSON text. Code `token_wrong_kind`.
    #[error("this is {found}, not a {expected}")]
    WrongKind {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// What the input is, with its article, e.g. `a license request`.
        found: &'static str,
    },
    /// The input does not start with the expected prefix, and looks like
    /// nothing ReN3 writes. Code `token_unrecognised`.
    #[error("this is not a {expected}: a {expected} starts with `{}`", expected.prefix())]
    NotAToken {
        /// The kind of token the caller asked for.
        expected: Kind,
    },
    /// The input holds an armoured block whose label no token uses; the
    /// block was not read. Code `token_unrecognised`.
    #[error(
        "this is not a {expected}: its armoured block is labelled `{label}`, which no ReN3 \
         token uses; a {expected} is in a `{}` block",
        expected.armor_label()
    )]
    UnknownArmor {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The block's label, cut to 64 characters and escaped.
        label: String,
    },
    /// A token of the expected kind in a format version this build does not
    /// read. Code `token_unsupported_version`.
    #[error(
        "this {expected} is in format version {version}, which this build cannot read \
         (it reads version {}); ask for a version {} token, or upgrade",
        expected.version(),
        expected.version()
    )]
    UnsupportedVersion {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The version the token's prefix names, cut to 8 characters.
        version: String,
    },
    /// The token was damaged in transit: its checksum does not match, its
    /// structure or base64url is broken, it contains a character no token
    /// contains, or its armoured block has no END line. Code
    /// `token_damaged`.
    #[error(
        "the {expected} is damaged: {reason}; it was probably truncated or altered in \
         transit, so copy it again in full"
    )]
    Damaged {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// What is damaged, for people.
        reason: String,
    },
    /// The token is intact, but its signature does not verify under the
    /// key that must have signed it: it was altered after signing, or
    /// forged. Code `signature_invalid`.
    #[error(
        "the {expected}'s signature does not verify against {signer}: it was altered \
         after signing or forged; do not use it"
    )]
    BadSignature {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The key it was checked against, in words, e.g. `the device key
        /// it carries`.
        signer: String,
    },
    /// The token, or a certificate or revocation list a payload carries, is
    /// signed by a root other than the pinned one. Code `untrusted_root`.
    #[error(
        "the {expected} is certified by root `{found}`, not by the root this build trusts \
         (`{pinned}`): it was not made for this build; ask the ReN3 team for one signed \
         under this build's root, or use the build they ship"
    )]
    UntrustedRoot {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The key id on the root-signed token's signer line.
        found: String,
        /// The key id of the pinned root.
        pinned: String,
    },
    /// The certificate or revocation list a payload carries is refused, or
    /// the certificate is for another key than the one that signed the
    /// payload. Code `certificate_invalid`.
    #[error(
        "the {expected}'s {part} is not valid: {reason}; ask the ReN3 team for a new {expected}"
    )]
    BadChain {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// Which part: `certificate` or `revocation list`.
        part: &'static str,
        /// Why it is refused, for people.
        reason: String,
    },
    /// A payload's `issuedAt` lies outside its signing key's certificate
    /// window. Code `outside_certificate`.
    #[error(
        "the {expected} was issued at {issued_at}, outside the validity of its signing key \
         `{key_id}` ({not_before} to {not_after}); ask the ReN3 team for a {expected} \
         signed with a current key"
    )]
    OutsideCertificate {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The signing key's id.
        key_id: String,
        /// The payload's `issuedAt`, as RFC 3339.
        issued_at: String,
        /// The start of the certificate's window, as RFC 3339.
        not_before: String,
        /// The end of the certificate's window, excluded, as RFC 3339.
        not_after: String,
    },
    /// A payload's signing key is revoked in the newest list the caller
    /// knows. Opening a payload never returns it: the caller makes it with
    /// [`VerifiedPayload::revoked_error`](crate::VerifiedPayload::revoked_error).
    /// Code `key_revoked`.
    #[error(
        "the {expected} is signed by key `{key_id}`, which the ReN3 team revoked at \
         {revoked_at}; register again and import the {expected} they send back, which is \
         signed with a current key"
    )]
    KeyRevoked {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The revoked key's id.
        key_id: String,
        /// When the root revoked it, as RFC 3339.
        revoked_at: String,
    },
    /// The token is intact, but what it says breaks a rule of the format:
    /// a signed message without its domain or signer line, a signer line
    /// that is not a usable key or key id, or a body that does not parse
    /// or fails its checks. Code `token_invalid`.
    #[error("the {expected} is correctly signed but its content is invalid: {reason}")]
    Invalid {
        /// The kind of token the caller asked for.
        expected: Kind,
        /// The broken rule, for people.
        reason: String,
    },
}

impl TokenError {
    /// A stable machine-readable code (listed in the README).
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Empty { .. } => "token_empty",
            TokenError::TooLarge { .. } => "token_too_large",
            TokenError::WrongKind { .. } => "token_wrong_kind",
            TokenError::NotAToken { .. } | TokenError::UnknownArmor { .. } => "token_unrecognised",
            TokenError::UnsupportedVersion { .. } => "token_unsupported_version",
            TokenError::Damaged { .. } => "token_damaged",
            TokenError::BadSignature { .. } => "signature_invalid",
            TokenError::UntrustedRoot { .. } => "untrusted_root",
            TokenError::BadChain { .. } => "certificate_invalid",
            TokenError::OutsideCertificate { .. } => "outside_certificate",
            TokenError::KeyRevoked { .. } => "key_revoked",
            TokenError::Invalid { .. } => "token_invalid",
        }
    }

    pub(crate) fn damaged(expected: Kind, reason: impl Into<String>) -> Self {
        TokenError::Damaged {
            expected,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(expected: Kind, reason: impl Into<String>) -> Self {
        TokenError::Invalid {
            expected,
            reason: reason.into(),
        }
    }
}

/// A decoded token whose structure and checksum are sound. Its signature
/// is *not* yet checked: that is the artefact module's job, since only it
/// knows which key must have signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    kind: Kind,
    message: Vec<u8>,
    signature: [u8; 64],
    signer_end: usize,
}

/// The checksum of everything before it: the first 48 bits of its SHA-256.
fn checksum(signed_part: &str) -> [u8; CHECK_LEN] {
    let mut check = [0; CHECK_LEN];
    check.copy_from_slice(&Sha256::digest(signed_part.as_bytes())[..CHECK_LEN]);
    check
}

/// Whether `check` is the checksum of `signed_part`: compared as bytes, so
/// that reading a token allocates nothing for it.
fn checksum_matches(signed_part: &str, check: &str) -> bool {
    binary::decode_array(check).is_ok_and(|c| c == checksum(signed_part))
}

/// What a piece of text looks like, when it is not the token we wanted.
fn looks_like(compact: &str) -> Option<&'static str> {
    let upper = compact.to_ascii_uppercase();
    if let Some(kind) = Kind::ALL.iter().find(|k| compact.starts_with(k.family())) {
        return Some(kind.with_article());
    }
    if upper.starts_with("REN3K1") {
        Some("a license key")
    } else if upper.starts_with("REN3D1") {
        Some("a client device id")
    } else if compact.starts_with('{') {
        Some("JSON text")
    } else {
        None
    }
}

impl Envelope {
    /// Builds and signs a message: `sign` receives the exact bytes to sign.
    pub(crate) fn seal(
        kind: Kind,
        signer: &str,
        body: &[u8],
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> Self {
        let domain = kind.domain();
        let mut message = Vec::with_capacity(domain.len() + signer.len() + body.len() + 2);
        message.extend_from_slice(domain.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(signer.as_bytes());
        let signer_end = message.len();
        message.push(b'\n');
        message.extend_from_slice(body);
        let signature = sign(&message);
        Self {
            kind,
            message,
            signature,
            signer_end,
        }
    }

    /// Reads a token of kind `expected` from pasted text: surrounding
    /// whitespace, line breaks anywhere and an armoured block are accepted.
    pub fn open(input: &str, expected: Kind) -> Result<Self, TokenError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(TokenError::TooLarge {
                expected,
                len: input.len(),
                max: MAX_INPUT_LEN,
            });
        }
        let compact = compact_token_text(input, expected)?;
        let Some(rest) = compact.strip_prefix(expected.prefix()) else {
            return Err(classify_foreign(&compact, expected));
        };
        let mut parts = rest.split('.');
        let (Some(message_b64), Some(signature_b64), Some(check), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::damaged(
                expected,
                format!(
                    "it has {} dot-separated parts after the prefix where 3 are expected",
                    rest.split('.').count()
                ),
            ));
        };
        let signed_part_len = compact.len() - check.len() - 1;
        if !checksum_matches(&compact[..signed_part_len], check) {
            return Err(TokenError::damaged(expected, "its checksum does not match"));
        }
        let message = binary::decode(message_b64)
            .map_err(|_| TokenError::damaged(expected, "its message is not valid base64url"))?;
        let signature = binary::decode_array::<64>(signature_b64).map_err(|_| {
            TokenError::damaged(expected, "its signature is not 64 bytes of base64url")
        })?;
        Self::from_parts(expected, message, signature)
    }

    fn from_parts(kind: Kind, message: Vec<u8>, signature: [u8; 64]) -> Result<Self, TokenError> {
        let domain = kind.domain().as_bytes();
        let after_domain = message
            .strip_prefix(domain)
            .and_then(|m| m.strip_prefix(b"\n"))
            .ok_or_else(|| {
                TokenError::invalid(
                    kind,
                    format!("the signed message does not start with `{}`", kind.domain()),
                )
            })?;
        let signer_len = after_domain
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| TokenError::invalid(kind, "the signed message has no signer line"))?;
        let signer = &after_domain[..signer_len];
        if signer.is_empty()
            || signer.len() > MAX_SIGNER_LEN
            || !signer
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(TokenError::invalid(
                kind,
                "the signer line is not a base64url value",
            ));
        }
        let signer_end = domain.len() + 1 + signer_len;
        Ok(Self {
            kind,
            message,
            signature,
            signer_end,
        })
    }

    /// The canonical single-line token.
    pub fn token(&self) -> String {
        let prefix = self.kind.prefix();
        let mut out = String::with_capacity(
            prefix.len() + (self.message.len() + 64).div_ceil(3) * 4 + 2 + CHECK_CHARS,
        );
        out.push_str(prefix);
        binary::encode_to(&self.message, &mut out);
        out.push('.');
        binary::encode_to(&self.signature, &mut out);
        let check = checksum(&out);
        out.push('.');
        binary::encode_to(&check, &mut out);
        out
    }

    /// The kind of token it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The exact bytes the signature covers.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The Ed25519 signature over [`Envelope::message`], not yet checked.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// The signer line: a key id or a public key, in base64url.
    pub fn signer(&self) -> &str {
        let start = self.kind.domain().len() + 1;
        // from_parts and seal only accept ASCII signer lines.
        std::str::from_utf8(&self.message[start..self.signer_end]).unwrap_or_default()
    }

    /// The JSON body after the signer line.
    pub fn body(&self) -> &[u8] {
        &self.message[self.signer_end + 1..]
    }

    /// Parses the JSON body. It is checked as UTF-8 once, whole, rather
    /// than string by string as the parser would.
    pub(crate) fn parse_body<T: DeserializeOwned>(&self) -> Result<T, TokenError> {
        parse_json(self.kind, self.body())
    }
}

/// Parses signed JSON of a token of `kind`, checked as UTF-8 once, whole.
pub(crate) fn parse_json<T: DeserializeOwned>(kind: Kind, json: &[u8]) -> Result<T, TokenError> {
    let text = std::str::from_utf8(json)
        .map_err(|e| TokenError::invalid(kind, format!("the body is not UTF-8 text: {e}")))?;
    serde_json::from_str(text).map_err(|e| TokenError::invalid(kind, e.to_string()))
}

impl Envelope {
    /// The message's lines after the signer line and before the JSON: a
    /// payload carries its certificate and revocation list there.
    pub(crate) fn split_body<const N: usize>(&self) -> Option<([&[u8]; N], &[u8])> {
        let mut rest = self.body();
        let mut lines = [&[][..]; N];
        for line in &mut lines {
            let end = rest.iter().position(|&b| b == b'\n')?;
            *line = &rest[..end];
            rest = &rest[end + 1..];
        }
        Some((lines, rest))
    }
}

/// The white space a reader removes anywhere in pasted text, as
/// docs/FORMAT.md §3.2 names it: CR, LF, space and tab. Other white space
/// (a no-break space, U+2028, an ideographic space) is no part of what a
/// mail client inserts into a token, and is reported where it stands.
pub(crate) fn is_token_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A byte-order mark at the very start of a pasted file, which editors on
/// some systems write: not part of the text.
fn without_bom(input: &str) -> &str {
    input.strip_prefix('\u{FEFF}').unwrap_or(input)
}

/// Strips a leading byte-order mark, an armoured block and all white space
/// (§3.2), and checks the alphabet.
fn compact_token_text(input: &str, expected: Kind) -> Result<Cow<'_, str>, TokenError> {
    let input = without_bom(input);
    let inner: Cow<'_, str> = match armor::unarmor(input) {
        Ok(Some(block)) => {
            let Some(kind) = Kind::ALL.iter().find(|k| k.armor_label() == block.label) else {
                return Err(TokenError::UnknownArmor {
                    expected,
                    label: block
                        .label
                        .chars()
                        .take(64)
                        .collect::<String>()
                        .escape_debug()
                        .to_string(),
                });
            };
            if *kind != expected {
                return Err(TokenError::WrongKind {
                    expected,
                    found: kind.with_article(),
                });
            }
            block.content.into()
        }
        Ok(None) => input.into(),
        Err(ArmorError::Unterminated { label }) => {
            return Err(TokenError::damaged(
                expected,
                format!("the armoured block has no `-----END {label}-----` line"),
            ));
        }
    };
    // A token pasted whole is already compact: borrow it rather than copy
    // it character by character (the copy was a tenth of a payload check).
    if let Cow::Borrowed(text) = inner {
        let text = text.trim_matches(is_token_space);
        if !text.is_empty() && all_token_bytes(text.as_bytes()) {
            return Ok(Cow::Borrowed(text));
        }
    }
    let compact: String = inner.chars().filter(|&c| !is_token_space(c)).collect();
    if compact.is_empty() {
        return Err(TokenError::Empty { expected });
    }
    if let Some((pos, ch)) = compact
        .char_indices()
        .find(|(_, c)| !u8::try_from(*c).is_ok_and(is_token_byte))
    {
        if let Some(found) = looks_like(&compact)
            && !compact.starts_with(expected.prefix())
        {
            return Err(TokenError::WrongKind { expected, found });
        }
        let shown = if ch.is_ascii_graphic() {
            format!("`{ch}`")
        } else {
            format!("U+{:04X}", u32::from(ch))
        };
        return Err(TokenError::damaged(
            expected,
            format!("it contains {shown} at position {pos}, which no token contains"),
        ));
    }
    Ok(compact.into())
}

/// The characters a compact token is made of: its prefix, base64url and dots.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Whether every byte is a token byte. The same test as [`is_token_byte`],
/// written without early exits within a block of bytes so that the
/// compiler can check a block at once: a payload check reads a kilobyte.
fn all_token_bytes(bytes: &[u8]) -> bool {
    bytes.chunks(32).all(|block| {
        block.iter().fold(true, |all, &b| {
            let lower = b | 0x20;
            let letter = lower.wrapping_sub(b'a') < 26;
            let digit = b.wrapping_sub(b'0') < 10;
            all & (letter | digit | (b == b'-') | (b == b'_') | (b == b'.'))
        })
    })
}

/// The error for text that does not start with the expected prefix.
fn classify_foreign(compact: &str, expected: Kind) -> TokenError {
    if let Some(version) = compact
        .strip_prefix(expected.family())
        .and_then(|rest| rest.split('.').next())
    {
        return TokenError::UnsupportedVersion {
            expected,
            version: version.chars().take(8).collect(),
        };
    }
    match looks_like(compact) {
        Some(found) => TokenError::WrongKind { expected, found },
        None if expected.prefix().starts_with(compact) => {
            TokenError::damaged(expected, "it ends right after its prefix")
        }
        None => TokenError::NotAToken { expected },
    }
}

/// Which kind of token `input` holds, for tools that accept any (`inspect`).
pub fn detect(input: &str) -> Option<Kind> {
    let input = without_bom(input);
    if let Ok(Some(block)) = armor::unarmor(input)
        && let Some(kind) = Kind::ALL.iter().find(|k| k.armor_label() == block.label)
    {
        return Some(*kind);
    }
    let start: String = input
        .chars()
        .filter(|&c| !is_token_space(c))
        .take(32)
        .collect();
    Kind::ALL
        .into_iter()
        .find(|k| start.starts_with(k.family()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> Envelope {
        Envelope::seal(kind, "c2lnbmVy", b"{\"a\":1}", |_| [5u8; 64])
    }

    #[test]
    fn token_round_trips() {
        let env = sample(Kind::Payload);
        let token = env.token();
        assert!(token.starts_with("ren3-payload-v3."));
        let back = Envelope::open(&token, Kind::Payload).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.signer(), "c2lnbmVy");
        assert_eq!(back.body(), b"{\"a\":1}");
    }

    #[test]
    fn whitespace_wrapping_and_armor_are_accepted() {
        let env = sample(Kind::Request);
        let token = env.token();
        let wrapped: String = token
            .as_bytes()
            .chunks(7)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n ");
        assert_eq!(
            Envelope::open(&format!("\n\t {wrapped}  \n"), Kind::Request).unwrap(),
            env
        );
        let armored = Kind::Request.armor(&token);
        assert_eq!(Envelope::open(&armored, Kind::Request).unwrap(), env);
    }

    #[test]
    fn damage_is_told_apart_from_other_failures() {
        let token = sample(Kind::Payload).token();
        // 1. truncated anywhere
        for cut in [token.len() - 1, token.len() - 10, token.len() / 2, 20] {
            let err = Envelope::open(&token[..cut], Kind::Payload).unwrap_err();
            assert_eq!(err.code(), "token_damaged", "1. cut at {cut}: {err}");
        }
        // 2. one character changed in the signed part
        let mut altered = token.clone().into_bytes();
        let pos = "ren3-payload-v3.".len() + 3;
        altered[pos] = if altered[pos] == b'A' { b'B' } else { b'A' };
        let err =
            Envelope::open(std::str::from_utf8(&altered).unwrap(), Kind::Payload).unwrap_err();
        assert_eq!(err.code(), "token_damaged", "2. {err}");
        // 3. a stray character
        let err = Envelope::open(&format!("{token}\""), Kind::Payload).unwrap_err();
        assert_eq!(err.code(), "token_damaged", "3. {err}");
        // 4. an unterminated armoured block
        let armored = Kind::Payload.armor(&token);
        let cut = armored.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(
            Envelope::open(&cut, Kind::Payload).unwrap_err().code(),
            "token_damaged",
            "4."
        );
    }

    #[test]
    fn wrong_kind_names_both_kinds() {
        let request = sample(Kind::Request).token();
        let err = Envelope::open(&request, Kind::Payload).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is a license request, not a license payload"
        );
        let err = Envelope::open(&Kind::Request.armor(&request), Kind::Payload).unwrap_err();
        assert_eq!(err.code(), "token_wrong_kind");
        let err = Envelope::open("REN3K1-00000-00000", Kind::Request).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this is a license key, not a license request"
        );
    }

    #[test]
    fn other_versions_empty_and_oversized_inputs_are_named() {
        let err = Envelope::open("ren3-payload-v2.abc.def.ghi", Kind::Payload).unwrap_err();
        assert_eq!(err.code(), "token_unsupported_version");
        assert_eq!(
            Envelope::open(" \n ", Kind::Payload).unwrap_err().code(),
            "token_empty"
        );
        let huge = "a".repeat(MAX_INPUT_LEN + 1);
        assert_eq!(
            Envelope::open(&huge, Kind::Payload).unwrap_err().code(),
            "token_too_large"
        );
        assert_eq!(
            Envelope::open("hello", Kind::Payload).unwrap_err().code(),
            "token_unrecognised"
        );
    }

    #[test]
    fn prefixes_and_domains_carry_the_version() {
        for kind in Kind::ALL {
            let info = kind.info();
            assert_eq!(info.prefix, format!("{}{}.", info.family, info.version));
            assert!(info.domain.ends_with(&format!("/v{}", info.version)));
        }
    }

    #[test]
    fn the_block_test_of_token_bytes_agrees_with_the_byte_test() {
        let valid = sample(Kind::Payload).token().into_bytes();
        assert!(all_token_bytes(&valid));
        for b in 0..=u8::MAX {
            // Alone, and at each place in a block and across blocks.
            assert_eq!(all_token_bytes(&[b]), is_token_byte(b), "byte {b:#04x}");
            for at in [0, 1, 31, 32, 33, valid.len() - 1] {
                let mut text = valid.clone();
                text[at] = b;
                assert_eq!(all_token_bytes(&text), is_token_byte(b), "{b:#04x} at {at}");
            }
        }
    }

    #[test]
    fn a_checksum_matches_only_its_own_text() {
        let token = sample(Kind::Receipt).token();
        let (signed, check) = token.rsplit_once('.').unwrap();
        assert_eq!(check, binary::encode(&checksum(signed)));
        assert!(checksum_matches(signed, check));
        for other in [
            "",
            "AAAAAAAA",
            &check[..7],
            &format!("{check}A"),
            "!!!!!!!!",
        ] {
            assert!(!checksum_matches(signed, other), "{other}");
        }
    }

    /// FORMAT.md §3.2, to the letter: CR, LF, space and tab are removed
    /// anywhere; a leading byte-order mark is dropped; any other white
    /// space is damage, named; an armoured block with a label no token
    /// uses is refused, not read.
    #[test]
    fn only_the_white_space_the_format_names_is_removed() {
        let env = sample(Kind::Payload);
        let token = env.token();
        let (head, tail) = token.split_at(30);
        for ok in [
            format!(" \t\r\n{head}\r\n {tail}\t "),
            format!("\u{FEFF}{token}"),
            format!("\u{FEFF}{}", Kind::Payload.armor(&token)),
        ] {
            assert_eq!(Envelope::open(&ok, Kind::Payload).unwrap(), env, "{ok:?}");
        }
        for (space, shown) in [
            ('\u{A0}', "U+00A0"),
            ('\u{2028}', "U+2028"),
            ('\u{3000}', "U+3000"),
            ('\u{FEFF}', "U+FEFF"),
            ('\u{C}', "U+000C"),
        ] {
            for text in [
                format!("{space}{token}"),
                format!("{head}{space}{tail}"),
                format!("{token}{space}"),
            ] {
                if space == '\u{FEFF}' && text.starts_with(space) {
                    continue;
                }
                let err = Envelope::open(&text, Kind::Payload).unwrap_err();
                assert_eq!(err.code(), "token_damaged", "{text:?}: {err}");
                assert!(err.to_string().contains(shown), "{text:?}: {err}");
            }
        }
        let foreign = format!("-----BEGIN FOO-----\n{token}\n-----END FOO-----\n");
        let err = Envelope::open(&foreign, Kind::Payload).unwrap_err();
        assert_eq!(err.code(), "token_unrecognised", "{err}");
        assert!(err.to_string().contains("`FOO`"), "{err}");
        assert!(err.to_string().contains("REN3 LICENSE PAYLOAD"), "{err}");
        assert_eq!(detect(&format!("\u{FEFF}{token}")), Some(Kind::Payload));
    }

    #[test]
    fn detect_tells_the_kind() {
        assert_eq!(detect(&sample(Kind::Request).token()), Some(Kind::Request));
        assert_eq!(detect(&Kind::Payload.armor("x")), Some(Kind::Payload));
        assert_eq!(detect("nothing"), None);
    }
}
