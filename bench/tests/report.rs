//! `bench/report.py` judges the benchmarks' targets: these tests give it
//! results written by hand and hold it to its verdicts, above all that a
//! missed target exits 1 and that a reference row never does.
//!
//! It runs with the machine's `python3`, as `docs/PERFORMANCE.md` runs it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// Criterion's mean for each benchmark the report reads, in nanoseconds:
/// every target met.
const CRITERION: &[(&str, &str, f64)] = &[
    ("payload_verification", "ren3_open_and_check", 170_000.0),
    (
        "payload_verification",
        "floor_decoding_key_verify_strict_x3",
        160_000.0,
    ),
    ("payload_verification", "floor_verify_strict_x3", 155_000.0),
    ("payload_verification", "jsonwebtoken_decode", 58_000.0),
    ("issue_one", "ren3_verify_sign_encode", 96_000.0),
    (
        "issue_one",
        "floor_decoding_key_verify_strict_and_sign",
        90_000.0,
    ),
    ("issue_one", "floor_verify_strict_and_sign", 83_000.0),
    ("issue_one", "jsonwebtoken_encode", 53_000.0),
    ("issue_one", "ren3_sign_encode", 35_000.0),
    (
        "issue_one",
        "jsonwebtoken_decode_request_and_encode",
        108_000.0,
    ),
    ("hot_path", "license_check", 40.0),
    ("hot_path", "empty_call", 1.0),
    ("batch_issue", "ren3_issue_batch_10k", 1.0e9),
    ("batch_issue", "floor_verify_strict_and_sign_10k", 0.8e9),
];

/// The paired bench's ratios, `measured/baseline`: every target met.
fn paired() -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
    vec![
        (
            "payload_verification",
            vec![
                (
                    "ren3_open_and_check/floor_decoding_key_verify_strict_x3",
                    1.06,
                ),
                ("ren3_open_and_check/floor_verify_strict_x3", 1.10),
                // Per signature: 3 against 1, so 0.967x.
                ("ren3_open_and_check/jsonwebtoken_decode", 2.9),
            ],
        ),
        (
            "issue_one",
            vec![
                (
                    "ren3_verify_sign_encode/floor_decoding_key_verify_strict_and_sign",
                    1.09,
                ),
                ("ren3_verify_sign_encode/floor_verify_strict_and_sign", 1.17),
                ("ren3_verify_sign_encode/jsonwebtoken_encode", 1.8),
                ("ren3_sign_encode/jsonwebtoken_encode", 0.65),
                (
                    "ren3_verify_sign_encode/jsonwebtoken_decode_request_and_encode",
                    0.9,
                ),
            ],
        ),
        (
            "batch_issue",
            vec![("ren3_issue_batch_10k/floor_verify_strict_and_sign_10k", 1.2)],
        ),
    ]
}

/// Writes results in the layout the benches leave under `target/`.
fn write_results(dir: &Path, criterion: &[(&str, &str, f64)], paired: &[(&str, Vec<(&str, f64)>)]) {
    for (group, bench, mean) in criterion {
        let path = dir.join("criterion").join(group).join(bench).join("new");
        std::fs::create_dir_all(&path).unwrap();
        let estimates = json!({"mean": {"point_estimate": mean}});
        std::fs::write(path.join("estimates.json"), estimates.to_string()).unwrap();
    }
    std::fs::create_dir_all(dir.join("paired")).unwrap();
    for (comparison, ratios) in paired {
        let ratios: serde_json::Map<_, _> = ratios
            .iter()
            .map(|(pair, ratio)| ((*pair).to_owned(), json!(ratio)))
            .collect();
        let result =
            json!({"comparison": comparison, "rounds": 101, "burst": 100, "ratios": ratios});
        std::fs::write(
            dir.join("paired").join(format!("{comparison}.json")),
            result.to_string(),
        )
        .unwrap();
    }
}

/// Runs the report on `dir`'s results: its exit code and its tables.
fn report(dir: &Path) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("report.py");
    let output = Command::new("python3")
        .arg(&script)
        .env("REN3_BENCH_RESULTS", dir)
        .output()
        .expect("python3 runs bench/report.py: install Python 3 to run the benchmarks' report");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.stderr.is_empty(),
        "the report wrote to stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().expect("an exit code"), stdout)
}

/// The paired table's row whose description starts with `what`.
fn paired_row<'a>(tables: &'a str, what: &str) -> &'a str {
    let paired = &tables[tables.find("Paired").expect("a paired table")..];
    paired
        .lines()
        .find(|line| line.starts_with(&format!("| {what}")))
        .unwrap_or_else(|| panic!("no paired row for {what:?} in:\n{tables}"))
}

/// [`CRITERION`] with `bench`'s mean set to `mean`.
fn criterion_with(bench: &str, mean: f64) -> Vec<(&'static str, &'static str, f64)> {
    CRITERION
        .iter()
        .map(|&(group, name, old)| (group, name, if name == bench { mean } else { old }))
        .collect()
}

fn with_paired_ratio(pair: &str, ratio: f64) -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
    let mut results = paired();
    let found = results
        .iter_mut()
        .flat_map(|(_, ratios)| ratios.iter_mut())
        .find(|(name, _)| *name == pair)
        .expect("a pair the report reads");
    found.1 = ratio;
    results
}

const VERIFICATION: &str = "payload verification vs the 3 raw verify_strict calls";
const ISSUING: &str = "issuing one payload vs raw verify_strict + sign";

#[test]
fn every_target_met_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    write_results(dir.path(), CRITERION, &paired());
    let (code, tables) = report(dir.path());
    assert_eq!(code, 0, "{tables}");
    assert!(!tables.contains("| NO"), "{tables}");
    assert!(paired_row(&tables, VERIFICATION).contains("1.060x"));
    assert!(paired_row(&tables, VERIFICATION).ends_with("| ≤ 1.10x | yes |"));
    assert!(paired_row(&tables, ISSUING).ends_with("| ≤ 1.20x | yes |"));
}

#[test]
fn verification_is_judged_against_the_floor_that_decodes_the_issuer_key() {
    let dir = tempfile::tempdir().unwrap();
    let pair = "ren3_open_and_check/floor_decoding_key_verify_strict_x3";
    write_results(dir.path(), CRITERION, &with_paired_ratio(pair, 1.11));
    let (code, tables) = report(dir.path());
    assert_eq!(code, 1, "a missed target exits 1:\n{tables}");
    assert!(paired_row(&tables, VERIFICATION).ends_with("| 1.110x | ≤ 1.10x | NO |"));
}

#[test]
fn issuing_is_judged_against_the_floor_that_decodes_the_device_key() {
    let dir = tempfile::tempdir().unwrap();
    let pair = "ren3_verify_sign_encode/floor_decoding_key_verify_strict_and_sign";
    write_results(dir.path(), CRITERION, &with_paired_ratio(pair, 1.21));
    let (code, tables) = report(dir.path());
    assert_eq!(code, 1, "{tables}");
    assert!(paired_row(&tables, ISSUING).ends_with("| 1.210x | ≤ 1.20x | NO |"));
}

#[test]
fn the_floors_handed_a_decoded_key_are_shown_but_judge_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = with_paired_ratio("ren3_open_and_check/floor_verify_strict_x3", 1.5);
    for (_, ratios) in &mut results {
        for (pair, ratio) in ratios.iter_mut() {
            if *pair == "ren3_verify_sign_encode/floor_verify_strict_and_sign" {
                *ratio = 1.5;
            }
        }
    }
    write_results(dir.path(), CRITERION, &results);
    let (code, tables) = report(dir.path());
    assert_eq!(code, 0, "{tables}");
    let row = paired_row(
        &tables,
        "payload verification vs the same 3 calls handed the issuer key already decoded",
    );
    assert!(row.ends_with("| 1.500x | none | reference |"), "{row}");
}

#[test]
fn a_judged_pair_missing_from_the_paired_results_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = paired();
    results[0]
        .1
        .retain(|(pair, _)| *pair != "ren3_open_and_check/floor_decoding_key_verify_strict_x3");
    write_results(dir.path(), CRITERION, &results);
    let (code, tables) = report(dir.path());
    assert_eq!(code, 1, "{tables}");
    assert!(paired_row(&tables, VERIFICATION).contains("run the paired bench again"));
}

#[test]
fn a_sequential_miss_is_marked_when_the_paired_ratio_meets_the_target() {
    let dir = tempfile::tempdir().unwrap();
    // Criterion's drift: 1.15x of the floor, where pairing says 1.06x.
    let criterion = criterion_with("ren3_open_and_check", 184_000.0);
    write_results(dir.path(), &criterion, &paired());
    let (code, tables) = report(dir.path());
    assert_eq!(code, 0, "{tables}");
    assert!(
        tables.contains("| 1.150x | ≤ 1.10x | NO (sequential only: the paired row below judges) |")
    );
}

#[test]
fn the_hot_path_is_judged_by_criterion() {
    let dir = tempfile::tempdir().unwrap();
    let criterion = criterion_with("license_check", 120.0);
    write_results(dir.path(), &criterion, &paired());
    let (code, tables) = report(dir.path());
    assert_eq!(code, 1, "{tables}");
    assert!(tables.contains("| 120.0 ns | < 100 ns | NO |"), "{tables}");
}
