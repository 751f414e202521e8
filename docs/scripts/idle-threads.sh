#!/bin/bash
# What an idle daemon's threads cost, as quoted in docs/benchmarks.md ("End to end"): starts
# BINARY on 127.0.0.1:PORT with a fresh data directory, waits 3 s, then prints each thread's run
# time (from /proc/<pid>/task/*/schedstat, so kernel time on its behalf included) over the next
# SECONDS (default 60), and the total. Run two builds at once, on two ports, to compare them.
#
#   bash docs/scripts/idle-threads.sh target/release/zen-watcher 18091
. "$(dirname "$0")/daemon.sh" "$1" "$2"
SECONDS_IDLE=${3:-60}
sleep 2.2
snap() {
  for t in /proc/$DP/task/*; do echo "$(tr ' ' _ < "$t/comm") $(awk '{print $1}' "$t/schedstat")"; done |
    awk '{ns[$1] += $2} END {for (k in ns) print k, ns[k]}' | sort
}
snap > "$D/before"
sleep "$SECONDS_IDLE"
snap > "$D/after"
echo "== $(basename "$BIN")"
join "$D/before" "$D/after" | awk -v s="$SECONDS_IDLE" '
  {d = ($3 - $2) / 1000; t += d; if (d >= 100) printf "  %-22s %8.0f µs\n", $1, d}
  END {printf "  %-22s %8.0f µs in %d s (%.3f %% of a core)\n", "total", t, s, t / s / 1e4}'
