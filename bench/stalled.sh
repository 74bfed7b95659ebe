#!/usr/bin/env bash
# Both servers under a flood of stalled connections (docs/RELIABILITY.md):
# starts the release ren3-client and ren3-issuer console on loopback with
# their shipped limits, opens STALLED_BENCH_CONNECTIONS connections (default
# 1500) that each send half a request's headers and stop, then times
# legitimate requests while they are held open, and how long the server
# takes to close them all.
#
# Targets (issue "Both servers under attack"):
#   a legitimate request under the flood is answered within 1 s (the max);
#   every stalled connection is closed by the server within 30 s.
# Prints a Markdown table; exits 1 if a target is missed.
#
# Settings (environment):
#   STALLED_BENCH_CONNECTIONS   stalled connections per server  (default 1500)
#   STALLED_BENCH_REQUESTS      timed legitimate requests       (default 20)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# A release client refuses the TEST-ONLY root: pin it to the bench root,
# as bench/http.sh does (nothing here is imported).
(cd "$ROOT" && REN3_TRUST_ROOT="$ROOT/bench/bench-root.pub" \
    cargo build --release --quiet -p ren3-client-cli -p ren3-issuer)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ren3-stalled.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Reads the `listening on http://ADDR` line a server prints first.
address_of() {
    local log="$1"
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$log" 2>/dev/null; then
            sed -n 's|^listening on http://||p' "$log" | head -1
            return
        fi
        sleep 0.1
    done
    echo "no listening line in $log" >&2
    exit 1
}

(cd "$WORK" && enable_offline_license=true \
    client_device_id="$(cat "$ROOT/fixtures/device-id.txt")" \
    license_db_path="$WORK/client.db" listen_addr=127.0.0.1:0 RUST_LOG=warn \
    "$TARGET_DIR/release/ren3-client" >"$WORK/client.out" 2>"$WORK/client.err") &
pids+=($!)
CLIENT="$(address_of "$WORK/client.out")"

REN3_ROOT_PASSPHRASE=bench "$TARGET_DIR/release/ren3-issuer" --db "$WORK/issuer.db" \
    init --root-dir "$WORK/root" --plain-root >/dev/null 2>&1
(RUST_LOG=warn "$TARGET_DIR/release/ren3-issuer" --db "$WORK/issuer.db" \
    serve --listen 127.0.0.1:0 >"$WORK/console.out" 2>"$WORK/console.err") &
pids+=($!)
CONSOLE="$(address_of "$WORK/console.out")"

python3 - "$CLIENT" "$CONSOLE" <<'EOF'
import os, resource, socket, statistics, sys, time

connections = int(os.environ.get("STALLED_BENCH_CONNECTIONS", "1500"))
requests = int(os.environ.get("STALLED_BENCH_REQUESTS", "20"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def connect(address):
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=30)

def timed_request(address, path):
    start = time.monotonic()
    with connect(address) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    return time.monotonic() - start

def flood(name, address, path):
    stalled = []
    for _ in range(connections):
        s = connect(address)
        s.sendall(b"GET / HTTP/1.1\r\nHost: loc")
        stalled.append(s)
    opened = time.monotonic()
    latencies = [timed_request(address, path) for _ in range(requests)]
    closed_after = 0.0
    for s in stalled:
        s.settimeout(max(0.1, 60 - (time.monotonic() - opened)))
        try:
            while s.recv(1024):
                pass
        except (ConnectionResetError, socket.timeout):
            pass
        closed_after = max(closed_after, time.monotonic() - opened)
        s.close()
    return name, statistics.median(latencies), max(latencies), closed_after

rows = [flood("ren3-client", sys.argv[1], "/license"),
        flood("ren3-issuer serve", sys.argv[2], "/login")]
print(f"{connections} stalled connections held open, {requests} requests timed per server\n")
print("| server | median latency | max latency (target <= 1 s) | all stalled closed after (target <= 30 s) |")
print("|---|---|---|---|")
missed = False
for name, median, worst, closed in rows:
    print(f"| {name} | {median * 1000:.1f} ms | {worst * 1000:.1f} ms | {closed:.1f} s |")
    missed |= worst > 1.0 or closed > 30.0
sys.exit(1 if missed else 0)
EOF
