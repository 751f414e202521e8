#!/bin/bash
# The e2e sequence on one daemon (batches of 100 flat out, single events, then ack=commit at
# 10,000 events/s), printing the ack=commit load's latency and how the store's writes
# ("create") and duplicate counts ("update") and the ingest requests were spread over
# `zen_watcher_*_duration_seconds` buckets during that load alone (docs/benchmarks.md, "End to
# end"). Alternate two builds to compare them.
#
#   bash docs/scripts/ack-tail.sh target/release/zen-watcher 18091
. "$(dirname "$0")/daemon.sh" "$1" "$2"
load --count 300000 --batch 100 --connections 4 > /dev/null
load --count 40000 --batch 1 --connections 8 > /dev/null
curl -s $URL/metrics > $D/m1
"$TARGET/release/xtask" loadgen --url "$URL" --count 100000 --batch 100 --connections 4 --rate 10000 --ack commit | python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"])'
curl -s $URL/metrics > $D/m2
python3 - $D/m1 $D/m2 <<'PY'
import sys,re
def load(f):
    d={}
    for l in open(f):
        if l.startswith('#'): continue
        m=re.match(r'(\S+?)(\{.*\})? (\S+)$',l.strip())
        if m: d[(m.group(1),m.group(2) or '')]=float(m.group(3))
    return d
a,b=load(sys.argv[1]),load(sys.argv[2])
for k in b:
    if ('store_operation_duration_seconds_bucket' in k[0] and ('create' in k[1] or 'update' in k[1])) or 'http_request_duration_seconds_bucket' in k[0] and 'ingest' in k[1]:
        dv=b[k]-a.get(k,0)
        print(k[0].replace('zen_watcher_',''),k[1],int(dv))
PY
