#!/bin/bash
# The scenarios of `cargo xtask bench e2e` on one daemon, for BINARY (so two builds can be
# alternated in one session): batches of 100 flat out, single events, then ack=commit at 10,000
# events/s. Prints each scenario's load report.
#
#   bash docs/scripts/e2e-sequence.sh target/release/zen-watcher 18082
set -euo pipefail
BIN=$1 PORT=$2
TARGET=${CARGO_TARGET_DIR:-target}
URL=http://127.0.0.1:$PORT
D=$(mktemp -d)
"$BIN" --listen "127.0.0.1:$PORT" --data-dir "$D/data" > "$D/log" 2>&1 &
DP=$!
sleep 0.8
settle() {
  until [ "$(curl -s "$URL/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pipeline"]["in_flight"])')" = 0 ]; do
    sleep 0.02
  done
}
load() { "$TARGET/release/xtask" loadgen --url "$URL" "$@"; settle; }
echo "$(basename "$BIN") batches:  $(load --count 300000 --batch 100 --connections 4)"
echo "$(basename "$BIN") singles:  $(load --count 40000 --batch 1 --connections 8)"
echo "$(basename "$BIN") ack:      $(load --count 100000 --batch 100 --connections 4 --rate 10000 --ack commit)"
kill "$DP"
wait "$DP" 2>/dev/null || true
rm -rf "$D"
