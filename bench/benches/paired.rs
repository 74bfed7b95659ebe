//! Ratios measured in alternating rounds. Criterion times one function
//! after another, and on a shared virtual machine the speed of the cores
//! drifts by a fifth within a minute, which moves a ratio of two
//! sequential measurements as much. Here every round times a burst of the
//! baseline and a burst of each contender back to back, in an order that
//! changes every round, and the ratio reported is the median of the
//! rounds' ratios: drift between rounds cancels out.
//!
//! ```text
//! REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo bench -p ren3-bench --bench paired
//! python3 bench/report.py
//! ```
//!
//! (`cargo bench` builds without debug assertions, where `ren3-client`, a
//! dependency of this crate, refuses the workspace's TEST-ONLY root; these
//! comparisons do not use the client, so any other root builds them, but
//! `cargo bench -p ren3-bench` also runs `hot_path`, which needs the
//! BENCH-ONLY root.)
//!
//! A ratio also moves from one process to the next, by up to a fifth for
//! the same binary on the same machine (0.969x and 1.186x in two runs of
//! one build): where the heap and the stack land changes how the curve
//! arithmetic's tables share the cache. So each comparison runs in
//! [`PROCESSES`] processes of its own, and the ratio judged is the median
//! of the processes' ratios; every process's ratio is kept beside it.
//!
//! Writes `target/paired/<comparison>.json` for `bench/report.py`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "common/batch.rs"]
mod batch;
#[path = "common/contenders.rs"]
mod contenders;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use contenders::Contenders;

/// Rounds per comparison in each process, and calls of each function per
/// round.
const ROUNDS: usize = 101;
const BURST: usize = 100;

/// Processes per comparison, each with its own placement in memory.
const PROCESSES: usize = 7;

/// Set in a child process: the file its comparison's result goes to.
const CHILD_OUT: &str = "REN3_PAIRED_OUT";

fn out_dir() -> PathBuf {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/paired");
    std::fs::create_dir_all(&out).unwrap();
    out
}

/// Nanoseconds per call of `f` over one burst.
fn burst<T>(f: &dyn Fn() -> T) -> f64 {
    let started = Instant::now();
    for _ in 0..BURST {
        black_box(f());
    }
    started.elapsed().as_nanos() as f64 / BURST as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn quartiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[values.len() / 4], values[values.len() * 3 / 4])
}

struct Contender<'a> {
    name: &'static str,
    run: Box<dyn Fn() + 'a>,
}

fn compare(name: &str, baseline: Contender<'_>, others: Vec<Contender<'_>>) {
    let mut all = vec![baseline];
    all.extend(others);
    // Warm up every function, so no round pays for a cold cache.
    for contender in &all {
        for _ in 0..3 {
            burst(&*contender.run);
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); all.len()];
    for round in 0..ROUNDS {
        for k in 0..all.len() {
            let i = (k + round) % all.len();
            times[i].push(burst(&*all[i].run));
        }
    }
    let mut rows = Vec::new();
    println!("{name} ({ROUNDS} rounds of {BURST} calls each, alternating):");
    for (i, contender) in all.iter().enumerate() {
        let mut ratios: Vec<f64> = times[i]
            .iter()
            .zip(&times[0])
            .map(|(t, base)| t / base)
            .collect();
        let ratio = median(&mut ratios);
        let (q1, q3) = quartiles(&mut ratios);
        let ns = median(&mut times[i].clone());
        println!(
            "  {:<40} {:>10.1} ns  {:.3}x (quartiles {:.3}x to {:.3}x)",
            contender.name, ns, ratio, q1, q3
        );
        rows.push(format!(
            r#"{{"name":"{}","median_ns":{ns:.1},"ratio":{ratio:.4},"q1":{q1:.4},"q3":{q3:.4}}}"#,
            contender.name
        ));
    }
    // Every pair's median ratio, round by round, for bench/report.py.
    let mut pairs = Vec::new();
    for (i, a) in all.iter().enumerate() {
        for (j, b) in all.iter().enumerate() {
            if i != j {
                let mut ratios: Vec<f64> =
                    times[i].iter().zip(&times[j]).map(|(x, y)| x / y).collect();
                pairs.push(format!(
                    r#""{}/{}":{:.4}"#,
                    a.name,
                    b.name,
                    median(&mut ratios)
                ));
            }
        }
    }
    let json = format!(
        r#"{{"comparison":"{name}","baseline":"{}","rounds":{ROUNDS},"burst":{BURST},"contenders":[{}],"ratios":{{{}}}}}"#,
        all[0].name,
        rows.join(","),
        pairs.join(",")
    );
    let out = std::env::var_os(CHILD_OUT)
        .map_or_else(|| out_dir().join(format!("{name}.json")), PathBuf::from);
    std::fs::write(out, json).unwrap();
}

/// Runs comparison `name` in [`PROCESSES`] child processes of this bench,
/// one after the other, and writes `target/paired/<name>.json`: each
/// pair's ratio is the median of the processes' ratios, `processes` lists
/// them all.
fn compare_in_processes(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let mut results = Vec::new();
    for process in 0..PROCESSES {
        let out = out_dir().join(format!("{name}.process-{process}.json"));
        println!("process {} of {PROCESSES}:", process + 1);
        let status = std::process::Command::new(&exe)
            .args(["--bench", name])
            .env(CHILD_OUT, &out)
            .status()
            .unwrap();
        assert!(status.success(), "the paired bench's process failed");
        let text = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        results.push(serde_json::from_str::<serde_json::Value>(&text).unwrap());
    }
    let mut merged = results[0].clone();
    let pairs: Vec<String> = results[0]["ratios"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut ratios = serde_json::Map::new();
    let mut each = serde_json::Map::new();
    for pair in pairs {
        let mut values: Vec<f64> = results
            .iter()
            .map(|r| r["ratios"][&pair].as_f64().unwrap())
            .collect();
        each.insert(pair.clone(), serde_json::json!(values.clone()));
        ratios.insert(pair, serde_json::json!(median(&mut values)));
    }
    merged["ratios"] = serde_json::Value::Object(ratios);
    merged["processes"] = serde_json::json!(PROCESSES);
    merged["process_ratios"] = serde_json::Value::Object(each);
    println!("{name}: median over {PROCESSES} processes:");
    let baseline = merged["baseline"].as_str().unwrap().to_owned();
    for (pair, values) in merged["process_ratios"].as_object().unwrap() {
        if let Some(contender) = pair.strip_suffix(&format!("/{baseline}")) {
            let shown: Vec<String> = values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| format!("{:.3}", v.as_f64().unwrap()))
                .collect();
            println!(
                "  {contender:<40} {:.3}x (processes: {})",
                merged["ratios"][pair].as_f64().unwrap(),
                shown.join(", ")
            );
        }
    }
    std::fs::write(
        out_dir().join(format!("{name}.json")),
        serde_json::to_string(&merged).unwrap(),
    )
    .unwrap();
}

/// Rounds of the batch comparison: each times one batch of 10,000 and the
/// floor for the same 10,000, in an order that changes every round.
const BATCH_ROUNDS: usize = 15;

/// Batch issuance against its floor. A round's batch issues into a fresh
/// copy of the store, made before its clock starts.
fn compare_batch() {
    let batch = batch::Batch::new();
    // Warm up both, so no round pays for a cold cache.
    batch.floor();
    drop(batch.issue(&mut batch.fresh()));
    let (mut floor, mut issued) = (Vec::new(), Vec::new());
    for round in 0..BATCH_ROUNDS {
        let mut fresh = batch.fresh();
        let time_floor = || {
            let started = Instant::now();
            batch.floor();
            started.elapsed().as_nanos() as f64
        };
        if round % 2 == 0 {
            floor.push(time_floor());
        }
        let started = Instant::now();
        let results = batch.issue(&mut fresh);
        issued.push(started.elapsed().as_nanos() as f64);
        drop(results);
        if round % 2 == 1 {
            floor.push(time_floor());
        }
    }
    let mut ratios: Vec<f64> = issued.iter().zip(&floor).map(|(i, f)| i / f).collect();
    let ratio = median(&mut ratios);
    let (q1, q3) = quartiles(&mut ratios);
    let (floor_ns, issued_ns) = (median(&mut floor), median(&mut issued));
    let requests = batch::REQUESTS;
    println!("batch_issue ({BATCH_ROUNDS} rounds of one batch of {requests}, alternating):");
    println!(
        "  floor {:.0} ms, batch {:.0} ms: throughput {:.3}x the floor's (quartiles {:.3}x to {:.3}x)",
        floor_ns / 1e6,
        issued_ns / 1e6,
        1.0 / ratio,
        1.0 / q3,
        1.0 / q1
    );
    let json = format!(
        r#"{{"comparison":"batch_issue","baseline":"floor_verify_strict_and_sign_10k","rounds":{BATCH_ROUNDS},"burst":1,"contenders":[{{"name":"floor_verify_strict_and_sign_10k","median_ns":{floor_ns:.0}}},{{"name":"ren3_issue_batch_10k","median_ns":{issued_ns:.0},"ratio":{ratio:.4},"q1":{q1:.4},"q3":{q3:.4}}}],"ratios":{{"ren3_issue_batch_10k/floor_verify_strict_and_sign_10k":{ratio:.4}}}}}"#
    );
    std::fs::write(out_dir().join("batch_issue.json"), json).unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word selects comparisons.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f));
    if std::env::var_os(CHILD_OUT).is_none() {
        for name in ["payload_verification", "issue_one"] {
            if wanted(name) {
                compare_in_processes(name);
            }
        }
        if wanted("batch_issue") {
            compare_batch();
        }
        return;
    }
    let c = Contenders::new();
    if wanted("payload_verification") {
        compare(
            "payload_verification",
            Contender {
                name: "floor_decoding_key_verify_strict_x3",
                run: Box::new(|| c.floor_verify_decoding_key()),
            },
            vec![
                Contender {
                    name: "ren3_open_and_check",
                    run: Box::new(|| {
                        c.ren3_verify();
                    }),
                },
                Contender {
                    name: "floor_verify_strict_x3",
                    run: Box::new(|| c.floor_verify()),
                },
                Contender {
                    name: "jsonwebtoken_decode",
                    run: Box::new(|| {
                        c.jwt_verify();
                    }),
                },
            ],
        );
    }
    if wanted("issue_one") {
        compare(
            "issue_one",
            Contender {
                name: "floor_decoding_key_verify_strict_and_sign",
                run: Box::new(|| {
                    c.floor_issue_decoding_key();
                }),
            },
            vec![
                Contender {
                    name: "ren3_verify_sign_encode",
                    run: Box::new(|| {
                        c.ren3_issue();
                    }),
                },
                Contender {
                    name: "floor_verify_strict_and_sign",
                    run: Box::new(|| {
                        c.floor_issue();
                    }),
                },
                Contender {
                    name: "ren3_sign_encode",
                    run: Box::new(|| {
                        c.ren3_sign_only();
                    }),
                },
                Contender {
                    name: "jsonwebtoken_encode",
                    run: Box::new(|| {
                        c.jwt_sign_only();
                    }),
                },
                Contender {
                    name: "jsonwebtoken_decode_request_and_encode",
                    run: Box::new(|| {
                        c.jwt_issue();
                    }),
                },
            ],
        );
    }
}
