#!/bin/bash
# Batches of 100 flat out on a fresh daemon, then how long the store's writes ("create") and
# duplicate counts ("update") took: cumulative counts of the 10 ms to 200 ms buckets of
# `zen_watcher_store_operation_duration_seconds` (docs/benchmarks.md, "End to end").
#
#   bash docs/scripts/store-stalls.sh target/release/zen-watcher 18092
set -euo pipefail
BIN=$1 PORT=$2
TARGET=${CARGO_TARGET_DIR:-target}
URL=http://127.0.0.1:$PORT
D=$(mktemp -d)
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$D/data" > "$D/log" 2>&1 &
DP=$!
sleep 0.8
"$TARGET/release/xtask" loadgen --url "$URL" --count 300000 --batch 100 --connections 4 | python3 -c 'import json,sys; r=json.load(sys.stdin); print("accepted", r["events_accepted"], "refused", r["requests_rejected"])'
sleep 1
curl -s $URL/metrics | grep -E 'store_operation_duration_seconds_bucket\{operation="(create|update)"' | awk '{print $1, $2}' | sed 's/zen_watcher_store_operation_duration_seconds_bucket//' | tr '\n' ' ' | sed 's/{operation=/\n/g' | grep -E 'le="0.01"|le="0.025"|le="0.05"|le="0.1"|le="0.2"|le="\+Inf"' | tr '\n' ' '
echo
kill "$DP"; wait "$DP" 2>/dev/null || true; rm -rf "$D"
