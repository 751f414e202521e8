# Sourced by the scripts beside it, with BINARY and PORT: starts BINARY on 127.0.0.1:PORT with a
# fresh data directory (stopped, and the directory removed, when the script exits), and defines
# `settle` (waits until nothing is in flight) and `load` (runs the load generator with the given
# arguments, prints its report, then settles).
set -euo pipefail
BIN=$1 PORT=$2
TARGET=${CARGO_TARGET_DIR:-target}
URL=http://127.0.0.1:$PORT
D=$(mktemp -d)
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$D/data" > "$D/log" 2>&1 &
DP=$!
trap 'kill "$DP" 2>/dev/null; wait "$DP" 2>/dev/null; rm -rf "$D"' EXIT
sleep 0.8
in_flight() {
  curl -s "$URL/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["in_flight"])'
}
settle() { until [ "$(in_flight)" = 0 ]; do sleep 0.02; done; }
load() { "$TARGET/release/xtask" loadgen --url "$URL" "$@"; settle; }
