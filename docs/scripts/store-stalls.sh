#!/bin/bash
# Batches of 100 flat out on a fresh daemon, then how long the store's writes ("create") and
# duplicate counts ("update") took: cumulative counts of the 10 ms to 200 ms buckets of
# `zen_watcher_store_operation_duration_seconds` (docs/benchmarks.md, "End to end").
#
#   bash docs/scripts/store-stalls.sh target/release/zen-watcher 18092
. "$(dirname "$0")/daemon.sh" "$1" "$2"
load --count 300000 --batch 100 --connections 4 | python3 -c 'import json,sys; r=json.load(sys.stdin); print("accepted", r["events_accepted"], "refused", r["requests_rejected"])'
curl -s $URL/metrics | grep -E 'store_operation_duration_seconds_bucket\{operation="(create|update)"' | awk '{print $1, $2}' | sed 's/zen_watcher_store_operation_duration_seconds_bucket//' | tr '\n' ' ' | sed 's/{operation=/\n/g' | grep -E 'le="0.01"|le="0.025"|le="0.05"|le="0.1"|le="0.2"|le="\+Inf"' | tr '\n' ' '
echo
