#!/usr/bin/env bash
# A million topics on one node (examples/src/bin/many-topics.rs): how fast they are created,
# what the server's memory is with them, and whether a hot topic's latency holds.
#
#   bench/many-topics.sh [--topics 1000000] [--streams 1000] [--concurrency 32]
#                        [--rate 200000] [--duration 10s] [--rounds 3]
#                        [--profile perf|release]
#
# 1. A fresh server: --topics topics of one partition each over --streams streams, then
#    its RSS (VmRSS, VmHWM), heap gauges and data directory size.
# 2. A second fresh server beside it, holding no topics (the baseline).
# 3. --rounds rounds of `tributary bench e2e` at a fixed --rate on a hot topic of its own,
#    on each server in turn (the order alternates each round), so both see the same mix
#    of quiet and busy minutes on a shared machine.
# Prints each round's produce-ack and produce-to-delivery p99 on both servers, their
# ratios, and the median ratio. Durability `buffered`; metrics on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

topics=1000000 streams=1000 concurrency=32 rate=200000 duration=10s rounds=3 profile=perf
while [ $# -gt 0 ]; do
    case $1 in
        --topics) topics=$2; shift 2 ;;
        --streams) streams=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "many-topics.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

source scripts/bootstrap.sh
cargo build --profile "$profile" --locked --bin tributary --bin many-topics >&2
bin="$CARGO_TARGET_DIR/$profile"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start() { # NAME: starts a server on $work/NAME, keeping its pid, URL and metrics address there
    local dir="$work/$1" p
    mkdir -p "$dir"
    "$bin/tributary" serve --data-dir "$dir/data" --listen 127.0.0.1:0 \
        --metrics-listen 127.0.0.1:0 > "$dir/out" 2> "$dir/log" &
    p=$!
    pids+=("$p")
    until grep -q "tributary listening on" "$dir/out" 2>/dev/null; do
        kill -0 "$p" 2>/dev/null || { cat "$dir/log" >&2; exit 1; }
        sleep 0.05
    done
    echo "$p" > "$dir/pid"
    echo "http://$(sed -n 's/^tributary listening on //p' "$dir/out")" > "$dir/url"
    sed -n 's/^tributary metrics on //p' "$dir/out" > "$dir/metrics"
}
url_of() { cat "$work/$1/url"; }
token_of() { cat "$work/$1/data/admin.token"; }
status_mib() { # SERVER FIELD
    awk -v f="$2:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$(cat "$work/$1/pid")/status"
}
gauge_mib() { # SERVER NAME [LABELS]
    python3 -c '
import sys, urllib.request
name = sys.argv[2] + sys.argv[3]
for line in urllib.request.urlopen("http://" + sys.argv[1] + "/metrics").read().decode().splitlines():
    if line.startswith(name + " "):
        print("%.0f" % (float(line.split()[-1]) / 2**20))
' "$(cat "$work/$1/metrics")" "$2" "${3:-}"
}
e2e() { # SERVER: appends one JSON report to $work/SERVER.jsonl
    "$bin/tributary" bench e2e --server "$(url_of "$1")" --token "$(token_of "$1")" \
        --rate "$rate" --duration "$duration" --json >> "$work/$1.jsonl"
}

echo "many-topics.sh: $topics topics over $streams streams" >&2
start many
"$bin/many-topics" --server "$(url_of many)" --token "$(token_of many)" --topics "$topics" \
    --streams "$streams" --concurrency "$concurrency"
echo "server with $topics topics: RSS $(status_mib many VmRSS) MiB" \
    "(peak $(status_mib many VmHWM) MiB);" \
    "heap: server $(gauge_mib many tributary_memory_heap_bytes '{heap="server"}') MiB," \
    "engine $(gauge_mib many tributary_memory_heap_bytes '{heap="engine"}') MiB;" \
    "data directory $(du -sm "$work/many/data" | cut -f1) MiB"

echo "many-topics.sh: a baseline server with no topics; $rounds rounds of e2e on each" >&2
start one
for round in $(seq 1 "$rounds"); do
    order="one many"
    [ $((round % 2)) = 1 ] || order="many one"
    for server in $order; do
        echo "many-topics.sh: round $round/$rounds, the server with" \
            "$([ "$server" = one ] && echo "no topics" || echo "$topics topics")" >&2
        e2e "$server"
    done
done
echo "after the benches: RSS $(status_mib many VmRSS) MiB (peak $(status_mib many VmHWM) MiB)"

python3 - "$work/one.jsonl" "$work/many.jsonl" "$topics" <<'EOF'
import json, statistics, sys
one = [json.loads(line) for line in open(sys.argv[1])]
many = [json.loads(line) for line in open(sys.argv[2])]
topics = int(sys.argv[3])
rows = (("produce", "ack_latency_ms", "produce-ack p99"),
        ("e2e", "latency_ms", "produce-to-delivery p99"))
print(f"e2e at {one[0]['params']['rate']:,} records/s on a hot topic, "
      f"a server with no other topics vs one with {topics:,}:")
for part, hist, what in rows:
    ratios = []
    for i, (a, b) in enumerate(zip(one, many), 1):
        a, b = a[part][hist]["p99"], b[part][hist]["p99"]
        ratios.append(b / a)
        print(f"  round {i}, {what}: {a:.2f} ms vs {b:.2f} ms ({b / a:.2f}x)")
    print(f"  {what}, median ratio: {statistics.median(ratios):.2f}x")
EOF
