#!/bin/bash
# One side-by-side sample, as quoted in docs/benchmarks.md ("End to end"): starts BINARY on
# 127.0.0.1:PORT with a fresh data directory, runs `xtask loadgen` with the given arguments, waits
# until nothing is in flight, and prints accepted and settled rates, the daemon's CPU seconds, the
# sink thread's CPU seconds, the seconds its writes and duplicate-count transactions took in all
# (from /metrics), and peak RSS. Alternate two builds, several runs each, in one session.
#
#   cargo build --release -p zen-watcher -p xtask
#   bash docs/scripts/compare.sh target/release/zen-watcher 18081 --count 300000 --batch 100 --connections 4
. "$(dirname "$0")/daemon.sh" "$1" "$2"
shift 2
S=$(date +%s.%N)
load "$@" > "$D/load.json"
E=$(date +%s.%N)
st=$(curl -s "$URL/api/v1/stats")
CPU=$(awk '{print ($14+$15)/100}' "/proc/$DP/stat")
SINK=0
for t in /proc/$DP/task/*; do
  [ "$(cat "$t/comm")" = zen-sink ] && SINK=$(awk '{print ($14+$15)/100}' "$t/stat")
done
RSS=$(awk '/VmHWM/ {print $2/1024}' "/proc/$DP/status")
OPS=$(curl -s "$URL/metrics" | awk -F'[" ]' '/^zen_watcher_store_operation_duration_seconds_sum\{operation="(create|update)"/ {printf " %s %.3f", $2, $4}')
echo "$st" | python3 -c "
import json, sys
p = json.load(sys.stdin)['pipeline']
load = json.load(open('$D/load.json'))
settled = p['written'] + p['deduplicated'] + p['filtered']
print(f\"$(basename "$BIN"): accepted {p['received']} refused {p['rejected_full']} settled/s {settled / ($E - $S):.0f} \"
      f\"accepted/s {load['events_per_second']:.0f} p99 {load['latency_ms']['p99']} cpu {$CPU} sink {$SINK}$OPS peak {$RSS:.1f}MB\")"
