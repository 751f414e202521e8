#!/bin/bash
# One side-by-side sample, as quoted in docs/benchmarks.md ("End to end"): starts BINARY on
# 127.0.0.1:PORT with a fresh data directory, runs `xtask loadgen` with the given arguments, waits
# until nothing is in flight, and prints accepted and settled rates, the daemon's CPU seconds, the
# sink thread's CPU seconds and peak RSS. Alternate two builds, several runs each, in one session.
#
#   cargo build --release -p zen-watcher -p xtask
#   bash docs/scripts/compare.sh target/release/zen-watcher 18081 --count 300000 --batch 100 --connections 4
set -euo pipefail
BIN=$1 PORT=$2
shift 2
TARGET=${CARGO_TARGET_DIR:-target}
D=$(mktemp -d)
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$D/data" > "$D/log" 2>&1 &
DP=$!
sleep 0.8
S=$(date +%s.%N)
"$TARGET/release/xtask" loadgen --url "http://127.0.0.1:$PORT" "$@" > "$D/load.json"
while :; do
  st=$(curl -s "127.0.0.1:$PORT/api/v1/stats")
  [ "$(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["in_flight"])')" = 0 ] && break
  sleep 0.02
done
E=$(date +%s.%N)
CPU=$(awk '{print ($14+$15)/100}' "/proc/$DP/stat")
SINK=0
for t in /proc/$DP/task/*; do
  [ "$(cat "$t/comm")" = zen-sink ] && SINK=$(awk '{print ($14+$15)/100}' "$t/stat")
done
RSS=$(awk '/VmHWM/ {print $2/1024}' "/proc/$DP/status")
echo "$st" | python3 -c "
import json, sys
p = json.load(sys.stdin)['pipeline']
load = json.load(open('$D/load.json'))
settled = p['written'] + p['deduplicated'] + p['filtered']
print(f\"$(basename "$BIN"): accepted {p['received']} refused {p['rejected_full']} settled/s {settled / ($E - $S):.0f} \"
      f\"accepted/s {load['events_per_second']:.0f} p99 {load['latency_ms']['p99']} cpu {$CPU} sink {$SINK} peak {$RSS:.1f}MB\")"
kill "$DP"
wait "$DP" 2>/dev/null || true
rm -rf "$D"
