#!/usr/bin/env bash
# Measures replication between two clusters on this machine: produce-to-replica latency at
# a steady rate, and catch-up throughput after a paused link (examples/src/bin/replication-lag.rs).
#
#   bench/replication.sh [--rate N] [--duration SECS] [--record-size BYTES] [--backlog N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
cargo build --release --locked --bin tributary --bin replication-lag >&2
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
start() { # NAME -> prints the URL once the server listens
    local dir="$work/$1"
    mkdir -p "$dir"
    "$bin/tributary" serve --data-dir "$dir/data" --listen 127.0.0.1:0 --metrics-listen off \
        > "$dir/out" 2> "$dir/log" &
    pids+=($!)
    until grep -q "tributary listening on" "$dir/out" 2>/dev/null; do sleep 0.05; done
    echo "http://$(sed -n 's/^tributary listening on //p' "$dir/out")"
}
src=$(start source)
dst=$(start dest)
"$bin/replication-lag" --source "$src" --source-token "$(cat "$work/source/data/admin.token")" \
    --dest "$dst" --dest-token "$(cat "$work/dest/data/admin.token")" "$@"
