#!/bin/bash
# How long the daemon takes to settle everything after the load generator stops, as quoted in
# docs/benchmarks.md ("End to end"): starts BINARY on 127.0.0.1:PORT with a fresh data
# directory, runs `xtask loadgen` with the given arguments, then polls `/api/v1/stats` every
# 2 ms until nothing is in flight, and prints the load's and the tail's durations.
#
#   bash docs/scripts/settle-tail.sh target/release/zen-watcher 18081 --count 300000 --batch 100
. "$(dirname "$0")/daemon.sh" "$1" "$2"
shift 2
S=$(date +%s.%N)
"$TARGET/release/xtask" loadgen --url "$URL" "$@" > /dev/null
L=$(date +%s.%N)
until curl -s "$URL/api/v1/stats" | grep -q '"in_flight":0[,}]'; do sleep 0.002; done
E=$(date +%s.%N)
python3 -c "print(f'load {($L - $S) * 1000:.0f} ms, tail {($E - $L) * 1000:.0f} ms')"
