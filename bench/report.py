#!/usr/bin/env python3
"""Ratios of each benchmark to its same-run baseline, from criterion's
estimates (target/criterion/<group>/<bench>/new/estimates.json).

    cargo bench -p ren3-bench && python3 bench/report.py

The criterion rows time each function in turn; the paired rows (from
benches/paired.rs) alternate them round by round, which a shared machine's
drifting speed cannot skew.

Prints Markdown tables and exits 1 if a target is missed. A comparison the
paired bench ran is judged by its paired ratio; criterion's sequential ratio
of it is still shown, marked when it alone misses, since the machine's drift
moves it by a fifth (docs/PERFORMANCE.md, "Why two tables"). The hot path,
which has no paired run, is judged by criterion.

A payload's floor is the sum of the verify_strict calls its chain needs
(certificate, payload, revocation list: three), with the one key that
arrives in the bytes (the issuer's, in the certificate) decoded from them,
as RFC 8032 verification does and as no verifier can skip; the root's key
is compiled in and decoded once. Issuing's floor likewise decodes the
request's device key. The floors handed every key already decoded are
shown beside them, as reference rows: the difference is one point
decompression, 4% of a payload's floor and 8% of issuing's. Rows against jsonwebtoken
are per signature: each side's time is divided by the signatures it checks
or makes (SIGNATURES), since a JWT carries one where a payload's chain
carries three.
"""
import json
import os
import sys

# Where the benches wrote their results: target/ unless REN3_BENCH_RESULTS
# names another directory with the same criterion/ and paired/ inside (the
# report's own tests, bench/tests/report.rs, write theirs to a scratch one).
RESULTS = os.environ.get("REN3_BENCH_RESULTS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target")
ROOT = os.path.join(RESULTS, "criterion")

# (group, measured, baseline, target kind, target value, what the row shows)
ROWS = [
    ("payload_verification", "ren3_open_and_check", "floor_decoding_key_verify_strict_x3", "max_ratio", 1.10,
     "payload verification vs the 3 raw verify_strict calls of its chain (certificate, payload, revocation list), the issuer key decoded from the certificate's 32 bytes as any verifier must"),
    ("payload_verification", "ren3_open_and_check", "floor_verify_strict_x3", "reference", None,
     "payload verification vs the same 3 calls handed the issuer key already decoded (no verifier can: shows the key's decoding)"),
    # Per signature, jsonwebtoken's check is cheaper than any of ours: it uses
    # ed25519-dalek's plain `verify`, not `verify_strict`. The target is the
    # main row's 1.10x, judged per signature.
    ("payload_verification", "ren3_open_and_check", "jsonwebtoken_decode", "max_ratio", 1.10,
     "payload verification vs jsonwebtoken EdDSA decode, per signature (3 vs 1; jsonwebtoken uses the non-strict verify)"),
    ("issue_one", "ren3_verify_sign_encode", "floor_decoding_key_verify_strict_and_sign", "max_ratio", 1.2,
     "issuing one payload vs raw verify_strict + sign, the device key decoded from the request's 32 bytes as any issuer must"),
    ("issue_one", "ren3_verify_sign_encode", "floor_verify_strict_and_sign", "reference", None,
     "issuing one payload vs the same calls handed the device key already decoded (no issuer can: shows the key's decoding)"),
    ("issue_one", "ren3_verify_sign_encode", "jsonwebtoken_encode", "reference", None,
     "issuing one payload vs jsonwebtoken EdDSA encode, per signature (2 vs 1; payload only: not like for like)"),
    ("issue_one", "ren3_sign_encode", "jsonwebtoken_encode", "max_ratio", 1.0,
     "signing and encoding the payload alone vs jsonwebtoken EdDSA encode, per signature (1 vs 1, like for like)"),
    ("issue_one", "ren3_verify_sign_encode", "jsonwebtoken_decode_request_and_encode", "max_ratio", 1.0,
     "issuing one payload vs jsonwebtoken decoding a request JWT, then encoding the payload, per signature (2 vs 2)"),
    ("hot_path", "license_check", "empty_call", "max_ns", 100.0,
     "hot-path license check (ns, vs an empty call)"),
    ("batch_issue", "ren3_issue_batch_10k", "floor_verify_strict_and_sign_10k", "min_throughput", 0.7,
     "batch issuance of 10,000 requests vs raw verify_strict + sign (throughput)"),
]


# Signatures each contender checks or makes, for the rows judged per
# signature: every row whose baseline is a jsonwebtoken contender.
SIGNATURES = {
    "ren3_open_and_check": 3,
    "jsonwebtoken_decode": 1,
    "ren3_verify_sign_encode": 2,
    "ren3_sign_encode": 1,
    "jsonwebtoken_encode": 1,
    "jsonwebtoken_decode_request_and_encode": 2,
}


def per_signature(measured, baseline):
    """The factor that turns a row's time ratio into its judged ratio: the
    ratio per signature for a row against jsonwebtoken, 1 otherwise."""
    if not baseline.startswith("jsonwebtoken"):
        return 1.0
    return SIGNATURES[baseline] / SIGNATURES[measured]


def mean_ns(group, bench):
    path = os.path.join(ROOT, group, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["mean"]["point_estimate"]
    except FileNotFoundError:
        return None


PAIRED = os.path.join(RESULTS, "paired")

# The paired bench (`cargo bench --bench paired`) times the same comparisons,
# all but the hot path, which it has no baseline burst for.
PAIRED_ROWS = [row for row in ROWS if row[3] != "max_ns"]


def judge(kind, target, ratio, measured_ns):
    """(shown, goal, met) of a row; met is None for a reference row."""
    if kind == "reference":
        # Shown for scale only: not a comparison a target can rest on.
        return f"{ratio:.3f}x", "none", None
    if kind == "max_ratio":
        return f"{ratio:.3f}x", f"≤ {target:.2f}x", ratio <= target
    if kind == "min_throughput":
        # Throughput relative to the baseline's: the inverse of the time ratio.
        return f"{1 / ratio:.3f}x throughput", f"≥ {target:.2f}x throughput", 1 / ratio >= target
    return f"{measured_ns:.1f} ns", f"< {target:.0f} ns", measured_ns <= target


def verdict(met):
    return "reference" if met is None else ("yes" if met else "NO")


def paired_result(comparison):
    """The paired bench's result for `comparison`, or None if it did not run."""
    try:
        with open(os.path.join(PAIRED, comparison + ".json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def paired():
    """The paired ratios' table; returns whether a target was missed."""
    missed = False
    printed_header = False
    for comparison, measured, baseline, kind, target, what in PAIRED_ROWS:
        result = paired_result(comparison)
        if result is None:
            continue
        if not printed_header:
            print()
            print("Paired (alternating rounds; median of the rounds' ratios, then of the")
            print("processes' medians, whose lowest and highest are in brackets):")
            print()
            print("| what | rounds | ratio | target | met |")
            print("|---|---|---|---|---|")
            printed_header = True
        ratio = result["ratios"].get(f"{measured}/{baseline}")
        if ratio is None:
            # A result of an older bench, whose contenders had other names:
            # a judged row it lacks is not met.
            judged = kind != "reference"
            missed |= judged
            print(f"| {what} | not in target/paired/{comparison}.json: run the paired bench again | | | {'NO' if judged else 'reference'} |")
            continue
        ratio *= per_signature(measured, baseline)
        rounds = f"{result['rounds']} of {result['burst']}"
        spread = ""
        each = result.get("process_ratios", {}).get(f"{measured}/{baseline}")
        if each:
            # The judged ratio is the median of the processes' ratios.
            rounds = f"{len(each)} processes × {rounds}"
            factor = per_signature(measured, baseline)
            spread = f" ({min(each) * factor:.3f}x to {max(each) * factor:.3f}x)"
        shown, goal, met = judge(kind, target, ratio, None)
        missed |= met is False
        print(f"| {what} | {rounds} | {shown}{spread} | {goal} | {verdict(met)} |")
    return missed


def main():
    missed = False
    print("| what | measured | baseline | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for group, measured, baseline, kind, target, what in ROWS:
        m, b = mean_ns(group, measured), mean_ns(group, baseline)
        if m is None or b is None:
            print(f"| {what} | not run | | | | |")
            continue
        shown, goal, met = judge(kind, target, m / b * per_signature(measured, baseline), m)
        judged_by_pairs = kind != "max_ns" and paired_result(group) is not None
        note = ""
        if judged_by_pairs and met is False:
            note = " (sequential only: the paired row below judges)"
        elif not judged_by_pairs:
            missed |= met is False
        print(f"| {what} | {m / 1000:.2f} µs | {b / 1000:.2f} µs | {shown} | {goal} | {verdict(met)}{note} |")
    missed |= paired()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
