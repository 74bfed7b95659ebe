#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, seeded from fixtures/.
#   fuzz/run.sh [SECONDS_PER_TARGET]      (default 60)
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash is saved under fuzz/artifacts/<target>/; turn it into a
# regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=(token_decode request_verify payload_verify receipt_verify import_body)
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
    echo "== $target: ${seconds}s"
    # Built first, on its own, so that a build failure fails this script
    # instead of vanishing in the filter below.
    cargo +nightly fuzz build "$target"
    cargo +nightly fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 \
        | grep -E '^(#[0-9]+ +DONE|Done|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    if [ -d "artifacts/$target" ] && [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target found a crash: see fuzz/artifacts/$target" >&2
        exit 1
    fi
done
