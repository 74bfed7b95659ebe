#!/usr/bin/env bash
# HTTP under load (docs/PERFORMANCE.md): drives the release ren3-client with
# wrk on loopback and compares each endpoint with a baseline measured in the
# same run, on the same machine, with the same wrk settings:
#
#   GET  /license           vs  http-echo GET /license (bare axum, fixed JSON)   >= 0.6x req/s
#   POST /license/register  vs  commit-floor (one durable SQLite commit/request) >= 0.5x req/s
#   POST /license/import    vs  commit-floor, at one connection (see below)       >= 0.5x req/s
#
# and records p50/p99 latency and the client's RSS: idle (VmRSS after
# start-up and a warm-up, target < 30 MB) and peak (VmHWM after the load,
# target < 60 MB). Prints a Markdown report and writes it to
# bench/results/http-<UTC time>.md. Exits 1 if a target is missed or a run
# is invalid (any non-2xx answer, socket error, or a count of durable writes
# in the store that does not match the 2xx answers).
#
# Each endpoint and its baseline run in alternating slices (baseline, then
# endpoint, ROUNDS times), so that a burst of load from elsewhere on a
# shared machine hits both alike; the figures are over all slices, the
# percentiles from the merged latency histograms.
#
# Every request is a real durable write:
# - register: each one inserts a pending request in its own transaction; the
#   client keeps the newest 16 by deleting the oldest in the same
#   transaction, so a full list never refuses and never skips the write.
# - import: re-importing the active payload is answered 200 without a write,
#   so each import is a new payload (serial 2, 3, ...) for its own pending
#   request, prepared beforehand by http-prepare (BENCH-ONLY root). An
#   import forgets every older pending request, so the payloads must arrive
#   in order: import runs at ONE connection (wrk -t1 -c1, bench/http/walk.lua)
#   and its commit floor is measured at one connection too. At 16 connections
#   most imports would be refused as answering a forgotten request.
#
# Settings (environment):
#   HTTP_BENCH_DURATION     seconds per slice                       (default 5)
#   HTTP_BENCH_ROUNDS       slices per endpoint and per baseline    (default 3)
#   HTTP_BENCH_THREADS      wrk threads                             (default 2)
#   HTTP_BENCH_CONNECTIONS  wrk connections                         (default 16)
#   HTTP_BENCH_CLIENT_RUST_LOG  RUST_LOG of ren3-client   (default unset: `info`, as shipped)
#   HTTP_BENCH_IMPORTS      import bodies per slice       (default: from the floor's rate, at most 15000)
#   HTTP_BENCH_DIR          scratch directory, on a real disk (default: mktemp -d in $TMPDIR)
#   HTTP_BENCH_KEEP=1       keep the scratch directory
#   HTTP_BENCH_NO_BUILD=1   use the release binaries as they are (they must have
#                           been built with REN3_TRUST_ROOT=bench/bench-root.pub)
#
# The payloads are signed under the BENCH-ONLY root of bench/bench-root.pub
# (its seed is public), and a client trusts only the root compiled into it,
# so this script builds the client and the helpers with
# REN3_TRUST_ROOT=bench/bench-root.pub, whatever the environment says. The
# workspace's default, the TEST-ONLY root, is refused by release builds.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/bench"
DURATION="${HTTP_BENCH_DURATION:-5}"
ROUNDS="${HTTP_BENCH_ROUNDS:-3}"
THREADS="${HTTP_BENCH_THREADS:-2}"
CONNECTIONS="${HTTP_BENCH_CONNECTIONS:-16}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
BENCH_ROOT="$BENCH/bench-root.pub"
# The fingerprint the client's status must name: the BENCH-ONLY root's.
BENCH_ROOT_FINGERPRINT="$(sed -n 's/^# Fingerprint: //p' "$BENCH_ROOT" | tail -n 1)"
LICENSE_KEY="$(tr -d '[:space:]' <"$ROOT/fixtures/license-key.txt")"
DEVICE_ID="$(tr -d '[:space:]' <"$ROOT/fixtures/device-id.txt")"

die() {
    echo "http.sh: $*" >&2
    exit 2
}

for setting in DURATION ROUNDS THREADS CONNECTIONS; do
    case "${!setting}" in
        '' | *[!0-9]* | 0) die "HTTP_BENCH_$setting is a whole number above 0, found '${!setting}'" ;;
    esac
done

# --- wrk -----------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "http.sh: installing wrk from Debian" >&2
        apt-get install -y wrk >&2
    else
        die "wrk is not installed; install it (Debian: sudo apt-get install wrk) and run again"
    fi
fi

# --- build ---------------------------------------------------------------
# Two invocations on purpose: ren3-bench enables ren3-shared's `signing`
# feature (http-prepare signs BENCH-ONLY payloads), and one invocation would
# unify features and build the measured ren3-client with it. Built alone,
# the client is the binary that ships, pinned to the BENCH-ONLY root.
if [ "${HTTP_BENCH_NO_BUILD:-0}" != 1 ]; then
    [ -n "$BENCH_ROOT_FINGERPRINT" ] || die "$BENCH_ROOT has no '# Fingerprint:' line"
    (cd "$ROOT" && REN3_TRUST_ROOT="$BENCH_ROOT" cargo build --release --quiet -p ren3-client-cli)
    (cd "$ROOT" && REN3_TRUST_ROOT="$BENCH_ROOT" cargo build --release --quiet -p ren3-bench --bins)
fi
for bin in ren3-client http-echo commit-floor http-prepare; do
    [ -x "$BIN/$bin" ] || die "$BIN/$bin is missing; build it or unset HTTP_BENCH_NO_BUILD"
done

# --- scratch directory, on a disk where fsync is real ----------------------
if [ -n "${HTTP_BENCH_DIR:-}" ]; then
    WORK="$HTTP_BENCH_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/ren3-http.XXXXXX")"
fi
FS="$(stat -f -c %T "$WORK")"
case "$FS" in
    tmpfs | ramfs) die "$WORK is on $FS, where fsync costs nothing; set HTTP_BENCH_DIR to a directory on a disk" ;;
esac

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${HTTP_BENCH_KEEP:-0}" = 1 ]; then
        echo "http.sh: scratch files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

FACTS="$WORK/facts.txt"
RAW="$WORK/raw.txt"
: >"$FACTS"
: >"$RAW"
fact() { echo "$*" >>"$FACTS"; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# start NAME DIR COMMAND... : starts a server in DIR, waits for its
# `listening on http://ADDR` line; sets SERVER_PID and SERVER_URL.
start() {
    local name="$1" dir="$2"
    shift 2
    (cd "$dir" && exec "$@") >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local tries=0
    until grep -q '^listening on ' "$WORK/$name.out" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$WORK/$name.err" >&2
            die "$name exited before listening"
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || die "$name did not start within 20 s"
        sleep 0.1
    done
    SERVER_URL="$(sed -n 's/^listening on //p' "$WORK/$name.out" | head -n 1)"
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# kib PID FIELD: VmRSS or VmHWM of a process, in KiB.
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# ticks PID: user + system CPU time of a process, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

# load NAME PID THREADS CONNECTIONS URL SCRIPT [SCRIPT ARGS...]: one wrk
# slice against the server PID, whose CPU time it records too.
load() {
    local name="$1" pid="$2" threads="$3" connections="$4" url="$5" script="$6"
    shift 6
    log "wrk $name: -t$threads -c$connections -d${DURATION}s $url"
    local out before
    before="$(ticks "$pid")"
    out="$(wrk -t"$threads" -c"$connections" -d"${DURATION}s" --latency \
        -s "$BENCH/http/$script" "$url" -- "$@")"
    fact "cpu $name $(($(ticks "$pid") - before)) $CLK_TCK"
    {
        echo "### $name: wrk -t$threads -c$connections -d${DURATION}s --latency -s bench/http/$script $url"
        echo
        echo '```'
        grep -v '^WRK_HIST ' <<<"$out"
        echo '```'
        echo
    } >>"$RAW"
    local result
    result="$(grep '^WRK_RESULT ' <<<"$out")" || die "wrk $name printed no result line"
    fact "wrk $name $result"
    fact "hist $name $(sed -n 's/^WRK_HIST //p' <<<"$out")"
    fact "meta connections_$name $connections"
}

# sql DB QUERY: one value, read with Python's sqlite3 (reads the WAL too).
sql() {
    python3 - "$1" "$2" <<'PY'
import sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(conn.execute(sys.argv[2]).fetchone()[0])
PY
}

# writes NAME DB QUERY COMMAND...: runs COMMAND and records how much the
# count QUERY in DB grew meanwhile: the durable writes of one slice.
writes() {
    local name="$1" db="$2" query="$3" before
    shift 3
    before="$(sql "$db" "$query")"
    "$@"
    fact "writes $name $(($(sql "$db" "$query") - before))"
}

client_env() {
    local dir="$1"
    local env=(
        env -i "PATH=$PATH"
        enable_offline_license=true
        "client_device_id=$DEVICE_ID"
        "license_db_path=$dir/license.db"
        listen_addr=127.0.0.1:0
    )
    if [ -n "${HTTP_BENCH_CLIENT_RUST_LOG:-}" ]; then
        env+=("RUST_LOG=$HTTP_BENCH_CLIENT_RUST_LOG")
    fi
    CLIENT_CMD=("${env[@]}" "$BIN/ren3-client")
}

# warm URL: a short, light load, then a pause, before idle RSS is read.
warm() {
    wrk -t1 -c2 -d1s "$1" >/dev/null
    sleep 2
}

STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact "meta uptime_before $(uptime)"
log "scratch: $WORK ($FS); $(uptime)"

printf '{"licenseKey":"%s","export":true}\n' "$LICENSE_KEY" >"$WORK/register-body.json"
# Counts that grow by one with each durable write.
WRITES_SQL='SELECT count(*) FROM writes'
REGISTER_SQL="SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'pending_requests'), 0)"
IMPORT_SQL='SELECT count(*) FROM licenses'

# --- GET /license: client A against the echo --------------------------------
mkdir -p "$WORK/a"
"$BIN/http-prepare" --dir "$WORK/a" --fixtures "$ROOT/fixtures" 2>>"$WORK/prepare.err" ||
    die "http-prepare failed: $(cat "$WORK/prepare.err")"
client_env "$WORK/a"
start client_a "$WORK/a" "${CLIENT_CMD[@]}"
CLIENT_A_PID="$SERVER_PID" CLIENT_A="$SERVER_URL"
fact "rss client_a start $(kib "$CLIENT_A_PID" VmRSS)"
curl -fsS "$CLIENT_A/license" >"$WORK/get-body.json"
# A client pinned to another root (HTTP_BENCH_NO_BUILD=1 with other
# binaries) refuses every BENCH-ONLY payload: say so, rather than "not active".
client_root="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("trust", {}).get("root", ""))' \
    "$WORK/get-body.json")"
[ "$client_root" = "$BENCH_ROOT_FINGERPRINT" ] ||
    die "$BIN/ren3-client is pinned to the root with fingerprint '$client_root', not to the BENCH-ONLY root ($BENCH_ROOT_FINGERPRINT) that signs the bench's payloads; rebuild it with REN3_TRUST_ROOT=$BENCH_ROOT cargo build --release -p ren3-client-cli (or unset HTTP_BENCH_NO_BUILD)"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["state"]; sys.exit(s != "active")' \
    "$WORK/get-body.json" || die "client A's license is not active: $(cat "$WORK/get-body.json")"
warm "$CLIENT_A/license"
fact "rss client_a idle $(kib "$CLIENT_A_PID" VmRSS)"

# The echo answers the client's own GET /license document.
start echo "$WORK" "$BIN/http-echo" --get-body "$WORK/get-body.json"
ECHO_PID="$SERVER_PID" ECHO="$SERVER_URL"
fact "rss echo start $(kib "$ECHO_PID" VmRSS)"
warm "$ECHO/license"
for _ in $(seq "$ROUNDS"); do
    load echo_get "$ECHO_PID" "$THREADS" "$CONNECTIONS" "$ECHO/license" get.lua
    load client_get "$CLIENT_A_PID" "$THREADS" "$CONNECTIONS" "$CLIENT_A/license" get.lua
    load echo_post "$ECHO_PID" "$THREADS" "$CONNECTIONS" "$ECHO/echo" post.lua \
        "$WORK/register-body.json"
done
fact "rss echo peak $(kib "$ECHO_PID" VmHWM)"
stop "$ECHO_PID"

# --- POST /license/register: client A against the floor, same concurrency ---
mkdir -p "$WORK/floor_c"
start floor_c "$WORK/floor_c" "$BIN/commit-floor" --db "$WORK/floor_c/floor.db"
FLOOR_PID="$SERVER_PID" FLOOR="$SERVER_URL"
fact "rss floor_c start $(kib "$FLOOR_PID" VmRSS)"
for _ in $(seq "$ROUNDS"); do
    writes floor_c "$WORK/floor_c/floor.db" "$WRITES_SQL" \
        load floor_c "$FLOOR_PID" "$THREADS" "$CONNECTIONS" "$FLOOR/commit" post.lua \
        "$WORK/register-body.json"
    writes client_register "$WORK/a/license.db" "$REGISTER_SQL" \
        load client_register "$CLIENT_A_PID" "$THREADS" "$CONNECTIONS" \
        "$CLIENT_A/license/register" post.lua "$WORK/register-body.json"
done
fact "rss floor_c peak $(kib "$FLOOR_PID" VmHWM)"
fact "rss client_a peak $(kib "$CLIENT_A_PID" VmHWM)"
stop "$FLOOR_PID"
stop "$CLIENT_A_PID"
# --- POST /license/import: client B against the floor, one connection -------
# Each slice gets a fresh store with just enough pending requests: the
# client counts them (`count(*)` in the status it answers) after every
# import. At the 16 it keeps itself that costs 5 µs, at 20,000 about 20 µs,
# but from about 30,000, when their index no longer fits SQLite's 2 MiB
# page cache, about 1 ms, which would be the bench's doing, not the client's.
# best_floor: the best req/s of any commit-floor slice so far.
best_floor() {
    sed -n 's/^wrk floor_[c1] .* rps=\([0-9]*\).*/\1/p' "$FACTS" | sort -n | tail -n 1
}
mkdir -p "$WORK/floor_1"
start floor_1 "$WORK/floor_1" "$BIN/commit-floor" --db "$WORK/floor_1/floor.db"
FLOOR_PID="$SERVER_PID" FLOOR="$SERVER_URL"
fact "rss floor_1 start $(kib "$FLOOR_PID" VmRSS)"
client_b_peak=0
for round in $(seq "$ROUNDS"); do
    # Enough bodies for 1.5 times the best floor so far, at most 15,000
    # (see above); running out shows as an invalid run.
    imports="${HTTP_BENCH_IMPORTS:-$(($(best_floor) * DURATION * 3 / 2 + 500))}"
    [ -n "${HTTP_BENCH_IMPORTS:-}" ] || [ "$imports" -le 15000 ] || imports=15000
    log "preparing a client store with $imports import bodies"
    "$BIN/http-prepare" --dir "$WORK/b$round" --pending "$imports" \
        --fixtures "$ROOT/fixtures" 2>>"$WORK/prepare.err" ||
        die "http-prepare failed: $(cat "$WORK/prepare.err")"
    fact "meta imports_$round $imports"
    client_env "$WORK/b$round"
    start "client_b$round" "$WORK/b$round" "${CLIENT_CMD[@]}"
    CLIENT_B_PID="$SERVER_PID" CLIENT_B="$SERVER_URL"
    [ "$round" != 1 ] || fact "rss client_b start $(kib "$CLIENT_B_PID" VmRSS)"
    warm "$CLIENT_B/license"
    [ "$round" != 1 ] || fact "rss client_b idle $(kib "$CLIENT_B_PID" VmRSS)"
    if [ "$round" = 1 ]; then
        # The floor's body is an import body, of the same size.
        head -n 1 "$WORK/b1/import-bodies.txt" >"$WORK/import-body.json"
    fi
    writes floor_1 "$WORK/floor_1/floor.db" "$WRITES_SQL" \
        load floor_1 "$FLOOR_PID" 1 1 "$FLOOR/commit" post.lua "$WORK/import-body.json"
    writes client_import "$WORK/b$round/license.db" "$IMPORT_SQL" \
        load client_import "$CLIENT_B_PID" 1 1 "$CLIENT_B/license/import" walk.lua \
        "$WORK/b$round/import-bodies.txt"
    peak="$(kib "$CLIENT_B_PID" VmHWM)"
    [ "$peak" -le "$client_b_peak" ] || client_b_peak="$peak"
    stop "$CLIENT_B_PID"
    rm -rf "$WORK/b$round"
done
fact "rss floor_1 peak $(kib "$FLOOR_PID" VmHWM)"
fact "rss client_b peak $client_b_peak"
stop "$FLOOR_PID"

fact "meta uptime_after $(uptime)"
log "done; $(uptime)"

# --- report --------------------------------------------------------------
status=0
table="$(python3 "$BENCH/http/report.py" "$FACTS")" || status=$?
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$BENCH/results"
report="$BENCH/results/http-$stamp.md"
{
    echo "# HTTP under load, $STARTED"
    echo
    echo "- machine: $(nproc) cores, $(uname -srm); $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (working tree modified)')"
    echo "- wrk: $ROUNDS slices of $DURATION s per endpoint and per baseline, alternating; $THREADS threads, $CONNECTIONS connections; import and its floor: 1 thread, 1 connection (each import answers its own pending request and forgets the older ones, so imports must arrive in order)"
    echo "- client RUST_LOG: ${HTTP_BENCH_CLIENT_RUST_LOG:-unset (info, as shipped)}; stores on $FS; import bodies prepared per slice: $(sed -n 's/^meta imports_[0-9]* //p' "$FACTS" | paste -sd, -)"
    echo "- before: $(sed -n 's/^meta uptime_before //p' "$FACTS")"
    echo "- after: $(sed -n 's/^meta uptime_after //p' "$FACTS")"
    echo
    echo "$table"
    echo
    echo "## Raw wrk output"
    echo
    cat "$RAW"
} >"$report"
sed '/^## Raw wrk output/,$d' "$report"
echo "written to ${report#"$ROOT"/}"
exit "$status"
