//! The public signature check (`PublicKey::from_bytes`, then
//! `PublicKey::verify_strict`) against external Ed25519 test vectors:
//! Wycheproof, CCTV, ed25519-speccheck, RFC 8032 and djb's `sign.input`.
//!
//! The vectors live outside the repository, in the `shared/vectors/`
//! directory that the repository is cloned beside (see its `README.md` for
//! what each file and field means); they are never copied in here. Without
//! that directory the tests are skipped, except under CI (`CI` set), where
//! they fail.
//!
//! For every case the public check must agree with ed25519-dalek's own
//! `verify_strict`, and the expected verdicts and case counts from the
//! README must hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use ren3_shared::PublicKey;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where the vectors are expected: `shared/vectors/` beside the clone.
const VECTORS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

const WYCHEPROOF: &str = "wycheproof_ed25519_test.json";
const CCTV: &str = "cctv_ed25519vectors.json";
const SPECCHECK: &str = "speccheck_cases.json";
const RFC8032: &str = "rfc8032_ed25519.json";
const SIGN_INPUT: &str = "dalek_TESTVECTORS_sign_input.txt";

// ---------------------------------------------------------------------------
// Shared loader and checks
// ---------------------------------------------------------------------------

/// The text of one vector file, or `None` when the whole vectors directory
/// is missing and this is not CI (the caller then skips). A directory that
/// exists but lacks the file is always a failure.
fn load(file: &str) -> Option<String> {
    let dir = Path::new(VECTORS_DIR);
    if !dir.is_dir() {
        let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if in_ci {
            panic!(
                "the external Ed25519 vectors are missing: expected the directory {VECTORS_DIR} \
                 (`shared/vectors/` next to the repository clone). Clone the repository beside \
                 `shared/` so that `../shared/vectors` exists."
            );
        }
        eprintln!(
            "note: skipping the Ed25519 vector test for {file}: {VECTORS_DIR} not found \
             (clone the repository beside `shared/` to run it)"
        );
        return None;
    }
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(text)
}

/// [`load`], then parse the file as JSON.
fn load_json<T: DeserializeOwned>(file: &str) -> Option<T> {
    let text = load(file)?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not valid JSON: {e}")))
}

/// Decodes lower- or upper-case hex; panics (naming `what`) on bad input.
fn hex(text: &str, what: &str) -> Vec<u8> {
    fn nibble(c: u8, what: &str) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("{what}: not a hex digit: {:?}", char::from(c)),
        }
    }
    let bytes = text.as_bytes();
    assert!(bytes.len().is_multiple_of(2), "{what}: odd-length hex");
    bytes
        .chunks_exact(2)
        .map(|pair| (nibble(pair[0], what) << 4) | nibble(pair[1], what))
        .collect()
}

/// A 32-byte public key from hex; every vector's key has that length.
fn key_bytes(text: &str, what: &str) -> [u8; 32] {
    hex(text, what)
        .try_into()
        .unwrap_or_else(|v: Vec<u8>| panic!("{what}: key is {} bytes, not 32", v.len()))
}

/// The crate's public check: parse the key (refusal means reject), require a
/// 64-byte signature, then `verify_strict`.
fn public_check(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = PublicKey::from_bytes(key) else {
        return false;
    };
    let Ok(sig) = <&[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(msg, sig)
}

/// The reference: ed25519-dalek's `VerifyingKey::from_bytes` and
/// `verify_strict`, with the same key and length rules.
fn reference_check(key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let Ok(sig) = <&[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(sig)).is_ok()
}

/// Runs one case through both checks, asserts they agree, and returns the
/// verdict (`true` = accepted).
fn check(case: &str, key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let public = public_check(key, msg, sig);
    let reference = reference_check(key, msg, sig);
    assert_eq!(
        public,
        reference,
        "{case}: the public check says {}, ed25519-dalek's verify_strict says {}",
        verdict(public),
        verdict(reference)
    );
    public
}

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accept" } else { "reject" }
}

// ---------------------------------------------------------------------------
// Wycheproof: 151 tests in 78 groups; exactly the `valid` ones are accepted.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofFile {
    number_of_tests: usize,
    test_groups: Vec<WycheproofGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofGroup {
    public_key: WycheproofKey,
    tests: Vec<WycheproofTest>,
}

#[derive(Deserialize)]
struct WycheproofKey {
    pk: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WycheproofTest {
    tc_id: u32,
    msg: String,
    sig: String,
    result: String,
}

#[test]
fn wycheproof() {
    let Some(file) = load_json::<WycheproofFile>(WYCHEPROOF) else {
        return;
    };
    let (mut seen, mut accepted) = (0, 0);
    for group in &file.test_groups {
        for test in &group.tests {
            let case = format!("{WYCHEPROOF} tcId {}", test.tc_id);
            let key = key_bytes(&group.public_key.pk, &case);
            let ok = check(&case, &key, &hex(&test.msg, &case), &hex(&test.sig, &case));
            let expected = match test.result.as_str() {
                "valid" => true,
                "invalid" => false,
                other => panic!("{case}: unexpected result {other:?}"),
            };
            assert_eq!(ok, expected, "{case}: result is {:?}", test.result);
            seen += 1;
            accepted += usize::from(ok);
        }
    }
    assert_eq!(seen, 151, "{WYCHEPROOF}: test count");
    assert_eq!(file.number_of_tests, seen, "{WYCHEPROOF}: numberOfTests");
    assert_eq!(accepted, 88, "{WYCHEPROOF}: valid (accepted) count");
}

// ---------------------------------------------------------------------------
// CCTV: 914 vectors; accepted iff the flags are a subset of
// {low_order_component_A, low_order_component_R} (null flags = none).
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct CctvVector {
    number: u32,
    key: String,
    sig: String,
    /// A plain UTF-8 string, not hex.
    msg: String,
    flags: Option<Vec<String>>,
}

#[test]
fn cctv() {
    let Some(vectors) = load_json::<Vec<CctvVector>>(CCTV) else {
        return;
    };
    const ALLOWED: [&str; 2] = ["low_order_component_A", "low_order_component_R"];
    let mut accepted = 0;
    for v in &vectors {
        let case = format!("{CCTV} number {}", v.number);
        let flags = v.flags.as_deref().unwrap_or_default();
        let expected = flags.iter().all(|f| ALLOWED.contains(&f.as_str()));
        let key = key_bytes(&v.key, &case);
        let ok = check(&case, &key, v.msg.as_bytes(), &hex(&v.sig, &case));
        assert_eq!(
            ok,
            expected,
            "{case}: flags {flags:?} should be {}",
            verdict(expected)
        );
        accepted += usize::from(ok);
    }
    assert_eq!(vectors.len(), 914, "{CCTV}: vector count");
    assert_eq!(accepted, 43, "{CCTV}: accepted count");
}

// ---------------------------------------------------------------------------
// speccheck: 12 cases; verify_strict accepts only case 3.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct SpeccheckCase {
    message: String,
    pub_key: String,
    signature: String,
}

#[test]
fn speccheck() {
    let Some(cases) = load_json::<Vec<SpeccheckCase>>(SPECCHECK) else {
        return;
    };
    for (index, c) in cases.iter().enumerate() {
        let case = format!("{SPECCHECK} case {index}");
        let key = key_bytes(&c.pub_key, &case);
        let ok = check(
            &case,
            &key,
            &hex(&c.message, &case),
            &hex(&c.signature, &case),
        );
        let expected = index == 3;
        assert_eq!(ok, expected, "{case}: should be {}", verdict(expected));
    }
    assert_eq!(cases.len(), 12, "{SPECCHECK}: case count");
}

// ---------------------------------------------------------------------------
// RFC 8032 §7.1: 5 vectors, all accepted.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Rfc8032File {
    tests: Vec<Rfc8032Test>,
}

#[derive(Deserialize)]
struct Rfc8032Test {
    name: String,
    public_key: String,
    message: String,
    signature: String,
}

#[test]
fn rfc8032() {
    let Some(file) = load_json::<Rfc8032File>(RFC8032) else {
        return;
    };
    for t in &file.tests {
        let case = format!("{RFC8032} {}", t.name);
        let key = key_bytes(&t.public_key, &case);
        let ok = check(
            &case,
            &key,
            &hex(&t.message, &case),
            &hex(&t.signature, &case),
        );
        assert!(ok, "{case}: a valid RFC 8032 signature was rejected");
    }
    assert_eq!(file.tests.len(), 5, "{RFC8032}: vector count");
}

// ---------------------------------------------------------------------------
// djb's sign.input (dalek's TESTVECTORS): 128 lines, all accepted. Each line
// is `sk||pk : pk : msg : sig||msg :` in hex.
// ---------------------------------------------------------------------------

#[test]
fn sign_input() {
    let Some(text) = load(SIGN_INPUT) else {
        return;
    };
    let mut seen = 0;
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let case = format!("{SIGN_INPUT} line {}", index + 1);
        let fields: Vec<&str> = line.split(':').collect();
        assert!(
            fields.len() == 5 && fields[4].is_empty(),
            "{case}: expected `sk||pk:pk:msg:sig||msg:`"
        );
        let secret_and_key = hex(fields[0], &case);
        let key = key_bytes(fields[1], &case);
        let msg = hex(fields[2], &case);
        let sig_and_msg = hex(fields[3], &case);
        // Sanity checks on the line's own redundancy, to catch a damaged file.
        assert_eq!(secret_and_key.len(), 64, "{case}: sk||pk length");
        assert_eq!(secret_and_key[32..], key, "{case}: pk fields differ");
        assert!(sig_and_msg.len() >= 64, "{case}: sig||msg too short");
        let (sig, signed_msg) = sig_and_msg.split_at(64);
        assert_eq!(
            signed_msg, msg,
            "{case}: the message after the signature differs"
        );

        let ok = check(&case, &key, &msg, sig);
        assert!(ok, "{case}: a valid sign.input signature was rejected");
        seen += 1;
    }
    assert_eq!(seen, 128, "{SIGN_INPUT}: line count");
}
