#!/usr/bin/env python3
"""The table of bench/http.sh, from the facts it collected in one run.

    python3 bench/http/report.py FACTS_FILE > table.md

FACTS_FILE holds `key value...` lines: `wrk NAME WRK_RESULT ...` and
`hist NAME us:count,...` (the lines bench/http/common.lua prints; a NAME
has one of each per slice, and they are merged), `writes NAME N` (durable
writes the store gained during a slice), `rss NAME start|idle|peak KIB`,
`cpu NAME TICKS CLK_TCK` (the server's user + system CPU time during a
slice) and `meta KEY TEXT`.
Prints Markdown; exits 1 if a target is missed or a measurement is invalid.
"""
import sys
from collections import Counter

# (endpoint, measured run, baseline run, what the baseline is, min ratio)
COMPARISONS = [
    ("`GET /license`", "client_get", "echo_get", "bare axum JSON echo, GET", 0.6),
    ("`POST /license/register`", "client_register", "floor_c",
     "one durable SQLite commit per request", 0.5),
    ("`POST /license/import`", "client_import", "floor_1",
     "one durable SQLite commit per request", 0.5),
]

# Every run, in the order shown, with what it is.
RUNS = [
    ("echo_get", "echo `GET /license` (fixed JSON, the client's own answer)"),
    ("client_get", "client `GET /license`, a license active"),
    ("echo_post", "echo `POST /echo` (the register body; for reference)"),
    ("floor_c", "commit floor `POST /commit` (the register body)"),
    ("client_register", "client `POST /license/register`"),
    ("floor_1", "commit floor `POST /commit` (an import body)"),
    ("client_import", "client `POST /license/import`, each a new serial"),
]

RSS_IDLE_MIB = 30
RSS_PEAK_MIB = 60


def percentile(hist, p):
    """The smallest latency with at least p% of the requests at or below it."""
    total = sum(hist.values())
    if total == 0:
        return 0
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= total * p / 100:
            return value
    return max(hist)


def parse(path):
    """The facts of one run, every slice of a run name merged into one."""
    slices, hists, writes, rss, cpu, meta = {}, {}, {}, {}, {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 3:
                continue
            kind, name, rest = parts
            if kind == "wrk":
                fields = dict(kv.split("=", 1) for kv in rest.split()[1:])
                slices.setdefault(name, []).append({k: float(v) for k, v in fields.items()})
            elif kind == "hist":
                hist = hists.setdefault(name, Counter())
                for pair in filter(None, rest.split(",")):
                    value, count = pair.split(":")
                    hist[int(value)] += int(count)
            elif kind == "writes":
                writes[name] = writes.get(name, 0) + int(rest)
            elif kind == "rss":
                which, kib = rest.split()
                rss.setdefault(name, {})[which] = int(kib)
            elif kind == "cpu":
                ticks, per_second = rest.split()
                cpu[name] = cpu.get(name, 0) + int(ticks) / int(per_second)
            elif kind == "meta":
                meta[name] = rest
    wrk = {}
    for name, runs in slices.items():
        total = {k: sum(r[k] for r in runs) for k in runs[0]}
        total["slices"] = len(runs)
        total["rps"] = total["requests"] / (total["duration_us"] / 1e6)
        total["max_us"] = max(r["max_us"] for r in runs)
        total["exhausted"] = max(r["exhausted"] for r in runs)
        hist = hists.get(name, Counter())
        for p in (50, 90, 99):
            total[f"p{p}_us"] = percentile(hist, p)
        wrk[name] = total
    return wrk, writes, rss, cpu, meta


def ms(us):
    return f"{us / 1000:.2f} ms"


def problems(name, r, writes, connections):
    """Why a run is not a valid measurement, if it is not."""
    found = []
    if r is None:
        return ["not run"]
    if r["non2xx"] > 0:
        found.append(f"{int(r['non2xx'])} non-2xx")
    errors = sum(r[k] for k in ("connect", "read", "write", "timeout"))
    if errors > 0:
        found.append(f"{int(errors)} socket errors")
    if r.get("exhausted", 0) > 0:
        found.append("ran out of import bodies")
    if name in writes:
        ok = int(r["requests"] - r["non2xx"])
        # A request in flight when wrk stops may still commit: at most one
        # per connection and slice.
        extra = writes[name] - ok
        if not 0 <= extra <= connections.get(name, 0) * r["slices"]:
            found.append(f"{writes[name]} durable writes for {ok} answers 2xx")
    return found


def main():
    wrk, writes, rss, cpu, meta = parse(sys.argv[1])
    connections = {k[len("connections_"):]: int(v) for k, v in meta.items()
                   if k.startswith("connections_")}
    ok = True
    out = []
    out.append("| endpoint | connections | req/s | baseline | baseline req/s | ratio | target "
               "| met | p50 | p99 | baseline p50 | baseline p99 |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for endpoint, name, base, what, target in COMPARISONS:
        r, b = wrk.get(name), wrk.get(base)
        bad = problems(name, r, writes, connections) + [
            f"baseline: {p}" for p in problems(base, b, writes, connections)]
        if r is None or b is None:
            out.append(f"| {endpoint} | | not run | {what} | | | ≥ {target}x | no | | | | |")
            ok = False
            continue
        ratio = r["rps"] / b["rps"]
        met = ratio >= target and not bad
        ok &= met
        verdict = "yes" if met else ("INVALID: " + "; ".join(bad) if bad else "**no**")
        out.append(
            f"| {endpoint} | {connections.get(name, '?')} | {r['rps']:.0f} | {what} "
            f"| {b['rps']:.0f} | {ratio:.2f}x | ≥ {target}x | {verdict} "
            f"| {ms(r['p50_us'])} | {ms(r['p99_us'])} | {ms(b['p50_us'])} | {ms(b['p99_us'])} |")

    out.append("")
    out.append("| run | connections | requests | req/s | p50 | p90 | p99 | max | non-2xx "
               "| durable writes | server CPU per request | valid |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, what in RUNS:
        r = wrk.get(name)
        if r is None:
            out.append(f"| {what} | | not run | | | | | | | | | |")
            continue
        bad = problems(name, r, writes, connections)
        per_request = (f"{cpu[name] * 1e6 / r['requests']:.0f} µs"
                       if name in cpu and r["requests"] else "")
        out.append(
            f"| {what} | {connections.get(name, '?')} | {int(r['requests'])} | {r['rps']:.0f} "
            f"| {ms(r['p50_us'])} | {ms(r['p90_us'])} | {ms(r['p99_us'])} | {ms(r['max_us'])} "
            f"| {int(r['non2xx'])} | {writes.get(name, '')} | {per_request} "
            f"| {'yes' if not bad else 'no: ' + '; '.join(bad)} |")

    out.append("")
    out.append("| client process | RSS after start-up | idle (after warm-up) | target | met "
               "| peak (VmHWM) after load | target | met |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name, what in [("client_a", "client A (GET, register)"),
                       ("client_b", "client B (import)")]:
        m = rss.get(name)
        if not m:
            continue
        idle, peak = m.get("idle", 0) / 1024, m.get("peak", 0) / 1024
        idle_met, peak_met = idle < RSS_IDLE_MIB, peak < RSS_PEAK_MIB
        ok &= idle_met and peak_met
        out.append(
            f"| {what} | {m.get('start', 0) / 1024:.1f} MiB | {idle:.1f} MiB "
            f"| < {RSS_IDLE_MIB} MB | {'yes' if idle_met else '**no**'} | {peak:.1f} MiB "
            f"| < {RSS_PEAK_MIB} MB | {'yes' if peak_met else '**no**'} |")
    for name in ("echo", "floor_c", "floor_1"):
        m = rss.get(name)
        if m:
            out.append(f"| {name} (baseline, no target) | {m.get('start', 0) / 1024:.1f} MiB "
                       f"| | | | {m.get('peak', 0) / 1024:.1f} MiB | | |")
    print("\n".join(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
