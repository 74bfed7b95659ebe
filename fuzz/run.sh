#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, seeded from fixtures/.
#   fuzz/run.sh [SECONDS_PER_TARGET]      (default 60)
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash is saved under fuzz/artifacts/<target>/; turn it into a
# regression test before fixing it.
#
# libFuzzer runs on one core, so the targets run side by side, one per
# core (REN3_FUZZ_JOBS overrides): each still gets SECONDS_PER_TARGET of
# a core to itself.
#
# REN3_FUZZ_SANITIZER picks cargo-fuzz's sanitizer: `address` (ASan, the
# default) or `none`. Our crates forbid unsafe code, so ASan watches the
# dependencies' unsafe code and the bundled SQLite's C, which the
# import_body target reaches; CI's short pass goes without it (a build a
# minute shorter, and more runs a second), and runs by hand keep it.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
jobs=${REN3_FUZZ_JOBS:-$(nproc)}
sanitizer=${REN3_FUZZ_SANITIZER:-address}
targets=(token_decode request_verify payload_verify receipt_verify import_body)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    if [ "$target" = import_body ]; then
        key=$(cat ../fixtures/license-key.txt)
        for token in ../fixtures/*.token; do
            printf '{"licenseKey": "%s", "licensePayload": "%s"}' "$key" "$(cat "$token")" \
                >"$corpus/$(basename "$token").json"
        done
    else
        cp ../fixtures/*.token ../fixtures/payload.armored "$corpus"/
    fi
done

# Built first, all together and on their own, so that a build failure
# fails this script instead of vanishing in a run's log.
cargo +nightly fuzz build --sanitizer "$sanitizer"

run() {
    local target=$1
    cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 >"$logs/$target" 2>&1 || true
}

echo "== ${#targets[@]} targets, ${seconds}s each, $jobs at a time, sanitizer $sanitizer"
running=0
for target in "${targets[@]}"; do
    run "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=0
for target in "${targets[@]}"; do
    echo "== $target"
    grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|thread .* panicked)' "$logs/$target" || true
    if [ -d "artifacts/$target" ] && [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target found a crash: see fuzz/artifacts/$target" >&2
        failed=1
    elif ! grep -q '^Done [0-9]* runs' "$logs/$target"; then
        echo "fuzz target $target did not run to its time limit:" >&2
        tail -20 "$logs/$target" >&2
        failed=1
    fi
done
exit "$failed"
