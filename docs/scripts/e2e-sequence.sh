#!/bin/bash
# The scenarios of `cargo xtask bench e2e` on one daemon, for BINARY (so two builds can be
# alternated in one session): batches of 100 flat out, single events, then ack=commit at 10,000
# events/s. Prints each scenario's load report.
#
#   bash docs/scripts/e2e-sequence.sh target/release/zen-watcher 18082
. "$(dirname "$0")/daemon.sh" "$1" "$2"
echo "$(basename "$BIN") batches:  $(load --count 300000 --batch 100 --connections 4)"
echo "$(basename "$BIN") singles:  $(load --count 40000 --batch 1 --connections 8)"
echo "$(basename "$BIN") ack:      $(load --count 100000 --batch 100 --connections 4 --rate 10000 --ack commit)"
