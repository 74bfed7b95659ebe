#!/usr/bin/env bash
# The console's memory under a burst of logins (docs/RELIABILITY.md): starts
# the release `ren3-issuer serve` on a fresh store, fires N logins at once,
# and prints the console's RSS when idle (VmRSS) and at its peak (VmHWM,
# from /proc/PID/status), with the answers' status codes. Target: a peak
# under 200 MiB for 40 logins. Each Argon2id check takes 19 MiB, so the
# peak shows how many ran at once.
#
# Two scenarios, each on a console of its own so that each peak is its own:
#   same      N wrong passwords for one name: only the throttle's limit is
#             checked, the rest are refused (429) without hashing;
#   distinct  N wrong passwords for N names (a spray): every one is checked,
#             at most a few at a time, after the address's growing delay.
#
# Settings (environment):
#   LOGIN_BENCH_LOGINS    logins per burst                        (default 40)
#   LOGIN_BENCH_NO_BUILD=1  use target/release/ren3-issuer as it is
#   LOGIN_BENCH_KEEP=1    keep the scratch directory
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOGINS="${LOGIN_BENCH_LOGINS:-40}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/ren3-issuer"

die() {
    echo "login-burst.sh: $*" >&2
    exit 2
}

case "$LOGINS" in
    '' | *[!0-9]* | 0) die "LOGIN_BENCH_LOGINS is a whole number above 0, found '$LOGINS'" ;;
esac
command -v curl >/dev/null || die "needs curl: apt-get install curl"

if [ "${LOGIN_BENCH_NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release --locked --quiet -p ren3-issuer)
fi
[ -x "$BIN" ] || die "no $BIN; build it with cargo build --release -p ren3-issuer"

WORK="$(mktemp -d)"
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "${LOGIN_BENCH_KEEP:-0}" = 1 ]; then
        echo "login-burst.sh: scratch files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# kib PID FIELD: VmRSS or VmHWM of a process, in KiB.
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# burst SCENARIO: a fresh store and console, N concurrent logins, a report line.
burst() {
    local scenario="$1" dir="$WORK/$1"
    mkdir -p "$dir"
    mkdir -m 700 "$dir/root"
    local db="$dir/issuer.db"
    "$BIN" --db "$db" init --root-dir "$dir/root" --plain-root >"$dir/init.out" 2>&1 || { cat "$dir/init.out" >&2; die "init failed"; }
    echo "the one right passphrase" | "$BIN" --db "$db" user add alice >"$dir/user.out" 2>&1 || { cat "$dir/user.out" >&2; die "user add failed"; }

    RUST_LOG=warn "$BIN" --db "$db" serve --listen 127.0.0.1:0 >"$dir/serve.out" 2>"$dir/serve.err" &
    SERVER_PID=$!
    local tries=0
    until grep -q '^listening on ' "$dir/serve.out" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/serve.err" >&2; die "the console exited before listening"; }
        tries=$((tries + 1))
        [ "$tries" -lt 200 ] || die "the console did not start within 20 s"
        sleep 0.1
    done
    local url
    url="$(sed -n 's/^listening on //p' "$dir/serve.out" | head -n 1)"

    # Every form first (its CSRF cookie and token), so that the posts
    # arrive together.
    local i
    for i in $(seq 1 "$LOGINS"); do
        curl -sf -c "$dir/jar$i" "$url/login" |
            sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1 >"$dir/token$i"
        [ -s "$dir/token$i" ] || die "no CSRF token on the login page"
    done
    local idle
    idle="$(kib "$SERVER_PID" VmRSS)"

    local start end name
    start="$(date +%s.%N)"
    for i in $(seq 1 "$LOGINS"); do
        if [ "$scenario" = same ]; then name=alice; else name="user$i"; fi
        curl -s -o /dev/null -w '%{http_code}\n' -b "$dir/jar$i" \
            --data-urlencode "csrf=$(cat "$dir/token$i")" \
            --data-urlencode "name=$name" \
            --data-urlencode "password=wrong guess $i" \
            "$url/login" >"$dir/status$i" &
    done
    wait $(jobs -p | grep -vx "$SERVER_PID")
    end="$(date +%s.%N)"

    local peak statuses
    peak="$(kib "$SERVER_PID" VmHWM)"
    statuses="$(cat "$dir"/status* | sort | uniq -c | awk '{ printf "%s%s x %s", sep, $1, $2; sep = ", " }')"
    printf '%-8s  %3d logins  idle %-10s  peak %-10s  %5.1f s  answers: %s\n' \
        "$scenario" "$LOGINS" "$(mib "$idle")" "$(mib "$peak")" \
        "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$statuses"

    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

echo "ren3-issuer serve, release build, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
burst same
burst distinct
