#!/usr/bin/env bash
# Tributary's two doors side by side: the same workloads through gRPC (tributary-client) and
# through the Kafka protocol (librdkafka, a stock Kafka client), on this machine, in one go.
#
#   bench/kafka.sh [--runs N] [--duration 10s] [--warmup 2s] [--profile perf|release]
#                  [--memory settled|as-is]
#
# Builds `tributary`, then runs each workload N rounds on both doors, alternating which goes
# first. Each run gets a fresh server on loopback (gRPC and Kafka listeners on free ports)
# with a fresh data directory under the temp dir. Both doors get the same flags: 2
# producers, 1,000-record batches, 4 requests in flight, 2 partitions, buffered durability.
#
# The workloads: produce 100 B and 1 KiB records as fast as acknowledgements come back;
# consume 100 B (fill, then read from offset 0); and produce 100 B at half the gRPC door's
# median peak (measured first in this run), and through the Kafka door at half its own,
# where the figure is the produce-ack p99.
#
# Prints one table: the median of the N runs per door and workload and the Kafka door's
# ratio to gRPC's; then the CPU time each side spent per record (the server's from /proc,
# the bench client's from the shell's `times`), since client and server share the machine:
# a client library that costs more per record leaves the server less. Every run's JSON
# report is kept in the results file it names.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
duration=10s
warmup=2s
profile=perf
memory=settled
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --memory) memory=$2; shift 2 ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "kafka.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "kafka.sh: $*" >&2; }
case $memory in
    settled | as-is) ;;
    *) say "--memory is settled or as-is, not $memory"; exit 2 ;;
esac

source scripts/bootstrap.sh
say "building tributary (profile $profile)"
cargo build --profile "$profile" --locked -p tributary-cli --bins
tributary=$CARGO_TARGET_DIR/$profile/tributary

work=$(mktemp -d "${TMPDIR:-/tmp}/tributary-kafka-bench.XXXXXX")
results="$cache/kafka-bench-$(date +%Y%m%d-%H%M%S).jsonl"
: >"$results"
source bench/servers.sh
trap 'stop_server; rm -rf "$work"' EXIT

# Sets `children` to the CPU seconds (user + system) that the waited-for children of this
# shell have used (`times` here, not in a subshell, whose children would be its own).
children_cpu() {
    times >"$work/times"
    children=$(sed -n 2p "$work/times" | awk '{
        n = 0
        for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] }
        printf "%.2f", n
    }')
}

# CPU seconds (user + system) a live process has used.
process_cpu() {
    awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / tck }' "/proc/$1/stat"
}

# run_one ROUND DOOR NAME FLAGS: a fresh server, one bench run, its report appended.
run_one() {
    local round=$1 door=$2 name=$3 flags=$4 dir grpc kafka report status=ok
    local before children server_cpu client_cpu
    dir="$work/$door-$name-$round"
    mkdir -p "$dir"
    [ "$memory" = settled ] && bench/settle-memory.sh
    grpc=$(free_port)
    kafka=$(free_port)
    "$tributary" serve --data-dir "$dir" --listen "127.0.0.1:$grpc" \
        --kafka-listen "127.0.0.1:$kafka" --metrics-listen off --log warn >"$dir.log" 2>&1 &
    server_pid=$!
    wait_port "$grpc" "$dir.log"
    wait_port "$kafka" "$dir.log"
    local door_flags=()
    [ "$door" = kafka ] && door_flags=(--protocol kafka --kafka-bootstrap "127.0.0.1:$kafka")
    children_cpu
    before=$children
    # shellcheck disable=SC2086 # flags are words
    report=$("$tributary" bench $flags "${door_flags[@]}" --server "http://127.0.0.1:$grpc" \
        --token "$(cat "$dir/admin.token")" --json --duration "$duration" --warmup "$warmup" \
        2>"$dir.err") || status=failed
    children_cpu
    client_cpu=$(awk -v a="$children" -v b="$before" 'BEGIN { printf "%.2f", a - b }')
    server_cpu=$(process_cpu "$server_pid")
    stop_server
    if [ $status = failed ]; then
        say "$door $name (round $round) failed: $(tail -n 3 "$dir.err")"
        report=null
    fi
    printf '{"round":%s,"workload":"%s","door":"%s","server_cpu_s":%s,"client_cpu_s":%s,"report":%s}\n' \
        "$round" "$name" "$door" "$server_cpu" "$client_cpu" "$report" >>"$results"
    rm -rf "$dir" "$dir.log" "$dir.err"
}

rounds() {
    local name=$1 flags=$2 round i doors=(grpc kafka)
    for ((round = 1; round <= runs; round++)); do
        for i in 0 1; do
            door=${doors[$(((i + round - 1) % 2))]}
            say "round $round/$runs: $name through $door"
            run_one "$round" "$door" "$name" "$flags"
        done
    done
}

common="--producers 2 --partitions 2 --batch-records 1000 --in-flight 4"
rounds produce-100B "produce --record-size 100 $common"
rounds produce-1KiB "produce --record-size 1024 $common"
rounds consume-100B "consume --record-size 100 $common"
# half_peak DOOR: half of DOOR's median produce-100B rate in this run (0 without one).
half_peak() {
    python3 - "$results" "$1" <<'PY'
import json, statistics, sys
xs = [r["report"]["produce"]["records_per_sec"] for r in map(json.loads, open(sys.argv[1]))
      if r["workload"] == "produce-100B" and r["door"] == sys.argv[2] and r["report"]]
print(int(statistics.median(xs) / 2) if xs else 0)
PY
}
half=$(half_peak grpc)
if [ "$half" -gt 0 ]; then
    rounds half-peak-100B "produce --record-size 100 $common --rate $half"
else
    say "no gRPC peak measured: the half-peak latency rows are skipped"
fi
# The Kafka door at half its own peak: the gRPC door's is the row above.
kafka_half=$(half_peak kafka)
if [ "$kafka_half" -gt 0 ]; then
    for ((round = 1; round <= runs; round++)); do
        say "round $round/$runs: own-half-peak-100B through kafka"
        run_one "$round" kafka own-half-peak-100B "produce --record-size 100 $common --rate $kafka_half"
    done
fi

python3 - "$results" "$runs" "$duration" "$half" "$memory" "$kafka_half" <<'PY'
import json, statistics, sys

path, runs, duration, half, memory, kafka_half = sys.argv[1:]
rows = [json.loads(line) for line in open(path)]

def figure(r):
    rep = r["report"]
    if rep is None:
        return None
    if r["workload"].startswith("consume"):
        return rep["consume"]["records_per_sec"]
    if "half-peak" in r["workload"]:
        return rep["produce"]["ack_latency_ms"]["p99"]
    return rep["produce"]["records_per_sec"]

def median(workload, door):
    xs = [figure(r) for r in rows if r["workload"] == workload and r["door"] == door]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

labels = {
    "produce-100B": "produce 100 B, records/s",
    "produce-1KiB": "produce 1 KiB, records/s",
    "consume-100B": "consume 100 B (fill, then read from offset 0), records/s",
    "half-peak-100B": f"produce 100 B at {int(half):,}/s (half the gRPC peak), ack p99",
}
print()
print(f"Median of {runs} alternating runs of {duration} each; memory {memory} before each run.")
print()
print("| workload | gRPC | Kafka (librdkafka) | Kafka/gRPC |")
print("|---|---|---|---|")
for w, label in labels.items():
    g, k = median(w, "grpc"), median(w, "kafka")
    lat = w.startswith("half-peak")
    fmt = (lambda x: "n/a" if x is None else f"{x:.2f} ms") if lat else \
          (lambda x: "n/a" if x is None else f"{x:,.0f}")
    ratio = "n/a" if g in (None, 0) or k is None else f"{k / g:.2f}x"
    print(f"| {label} | {fmt(g)} | {fmt(k)} | {ratio} |")
g, k = median("half-peak-100B", "grpc"), median("own-half-peak-100B", "kafka")
if int(kafka_half) > 0:
    f = lambda x: "n/a" if x is None else f"{x:.2f} ms"
    ratio = "n/a" if g in (None, 0) or k is None else f"{k / g:.2f}x"
    print(f"| produce 100 B at half each door's own peak ({int(half):,}/s and "
          f"{int(kafka_half):,}/s), ack p99 | {f(g)} | {f(k)} | {ratio} |")

def per_record(r, side):
    rep = r["report"]
    n = rep and rep.get("produced", 0) + rep.get("consumed", 0)
    return r[f"{side}_cpu_s"] / n * 1e6 if n else None

def cpu(workload, door, side):
    xs = [per_record(r, side) for r in rows if r["workload"] == workload and r["door"] == door]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

print()
print("CPU per record handled (produced, plus consumed), medians, µs:")
print()
print("| workload | server, gRPC | server, Kafka | Kafka/gRPC | client, gRPC | client, Kafka (librdkafka) |")
print("|---|---|---|---|---|---|")
for w in ["produce-100B", "produce-1KiB", "consume-100B"]:
    sg, sk = cpu(w, "grpc", "server"), cpu(w, "kafka", "server")
    cg, ck = cpu(w, "grpc", "client"), cpu(w, "kafka", "client")
    f = lambda x: "n/a" if x is None else f"{x:.2f}"
    ratio = "n/a" if not sg or sk is None else f"{sk / sg:.2f}x"
    print(f"| {w} | {f(sg)} | {f(sk)} | {ratio} | {f(cg)} | {f(ck)} |")
print(f"\nEvery run's report: {path}")
PY
