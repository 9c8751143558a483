#!/usr/bin/env bash
# A million topics on one node (examples/src/bin/many-topics.rs): how fast they are created,
# what the server's memory is with them, and whether a hot topic's latency holds.
#
#   bench/many-topics.sh [--topics 1000000] [--streams 1000] [--concurrency 32]
#                        [--rate 200000] [--duration 10s] [--profile perf|release]
#
# 1. A fresh server: `tributary bench e2e` at a fixed --rate on one topic (the baseline:
#    produce-ack and produce-to-delivery p99).
# 2. Another fresh server: --topics topics of one partition each over --streams streams,
#    then its RSS (VmRSS, VmHWM), heap gauges and data directory size, then the same bench.
# Prints both runs and the ratio of their p99s. Durability `buffered`; metrics on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

topics=1000000 streams=1000 concurrency=32 rate=200000 duration=10s profile=perf
while [ $# -gt 0 ]; do
    case $1 in
        --topics) topics=$2; shift 2 ;;
        --streams) streams=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "many-topics.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

source scripts/bootstrap.sh
cargo build --profile "$profile" --locked --bin tributary --bin many-topics >&2
bin="$CARGO_TARGET_DIR/$profile"
work=$(mktemp -d)
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # DIR: starts a server on DIR, sets pid, url, metrics, token
    mkdir -p "$1"
    "$bin/tributary" serve --data-dir "$1/data" --listen 127.0.0.1:0 \
        --metrics-listen 127.0.0.1:0 > "$1/out" 2> "$1/log" &
    pid=$!
    until grep -q "tributary listening on" "$1/out" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$1/log" >&2; exit 1; }
        sleep 0.05
    done
    url="http://$(sed -n 's/^tributary listening on //p' "$1/out")"
    metrics=$(sed -n 's/^tributary metrics on //p' "$1/out")
    token=$(cat "$1/data/admin.token")
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
status_mib() { awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$pid/status"; }
gauge_mib() { # NAME [LABELS]
    python3 -c '
import sys, urllib.request
name = sys.argv[2] + sys.argv[3]
for line in urllib.request.urlopen("http://" + sys.argv[1] + "/metrics").read().decode().splitlines():
    if line.startswith(name + " "):
        print("%.0f" % (float(line.split()[-1]) / 2**20))
' "$metrics" "$1" "${2:-}"
}
e2e() { # -> one JSON report
    "$bin/tributary" bench e2e --server "$url" --token "$token" --rate "$rate" \
        --duration "$duration" --json
}

echo "many-topics.sh: baseline, one topic on a fresh server" >&2
start "$work/one"
baseline=$(e2e)
stop

echo "many-topics.sh: $topics topics over $streams streams" >&2
start "$work/many"
"$bin/many-topics" --server "$url" --token "$token" --topics "$topics" \
    --streams "$streams" --concurrency "$concurrency"
echo "server with $topics topics: RSS $(status_mib VmRSS) MiB (peak $(status_mib VmHWM) MiB);" \
    "heap: server $(gauge_mib tributary_memory_heap_bytes '{heap="server"}') MiB," \
    "engine $(gauge_mib tributary_memory_heap_bytes '{heap="engine"}') MiB;" \
    "data directory $(du -sm "$work/many/data" | cut -f1) MiB"
many=$(e2e)
echo "after the bench: RSS $(status_mib VmRSS) MiB (peak $(status_mib VmHWM) MiB)"
stop

python3 - "$baseline" "$many" "$topics" <<'EOF'
import json, sys
one, many, topics = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
rows = (("produce", "ack_latency_ms", "produce-ack p99"), ("e2e", "latency_ms", "produce-to-delivery p99"))
print(f"e2e at {one['params']['rate']:,} records/s, 1 topic vs {int(topics):,} topics:")
for part, hist, what in rows:
    a, b = one[part][hist]["p99"], many[part][hist]["p99"]
    print(f"  {what}: {a:.2f} ms vs {b:.2f} ms ({b / a:.2f}x)")
EOF
