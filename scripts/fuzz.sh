#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a while each, seeded from fuzz/corpus/<target>.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 5 seconds, every target
#
# New inputs go to a working corpus in the cache (~/.cache/tributary/fuzz-corpus/<target>),
# never into fuzz/corpus, so each run, CI's short ones included, starts where the last one
# stopped. A failure stops the run, prints the end of libFuzzer's log and leaves the input
# in fuzz/artifacts/<target>/. The sanitizer build lives in the cache too, so runs after the
# first only rebuild what changed. cargo-fuzz is installed on first use. Each target ends
# with one line: executions, edges covered, features, corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

seconds=${1:-5}
shift || true

# The targets link the RocksDB archive bootstrap.sh built for the root Cargo.lock's
# librocksdb-sys; fuzz/Cargo.lock must pin the same version.
rocksdb_of() { awk '/^name = "librocksdb-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' "$1"; }
if [ "$(rocksdb_of Cargo.lock)" != "$(rocksdb_of fuzz/Cargo.lock)" ]; then
    echo "fuzz.sh: fuzz/Cargo.lock pins librocksdb-sys $(rocksdb_of fuzz/Cargo.lock), Cargo.lock $(rocksdb_of Cargo.lock);" \
        "copy Cargo.lock to fuzz/Cargo.lock and run \`cargo update --workspace --manifest-path fuzz/Cargo.toml\`" >&2
    exit 1
fi

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz passes nightly-only flags (-Zsanitizer); stable rustc accepts them with this.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/tributary/fuzz-target"
cargo fetch --locked --manifest-path fuzz/Cargo.toml --quiet

if [ $# -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
else
    targets=("$@")
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tributary"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tributary-fuzz.XXXXXX")
if ! cargo fuzz build --debug-assertions >"$scratch/build.log" 2>&1; then
    tail -n 60 "$scratch/build.log" >&2
    echo "fuzz.sh: building the fuzz targets failed" >&2
    exit 1
fi
for t in "${targets[@]}"; do
    corpus="$cache/fuzz-corpus/$t"
    mkdir -p "$corpus"
    dict=()
    [ -f "fuzz/$t.dict" ] && dict=("-dict=fuzz/$t.dict")
    cargo fuzz run --debug-assertions "$t" "$corpus" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${dict[@]}" 2>"$scratch/$t.log" \
        || { tail -n 40 "$scratch/$t.log" >&2; echo "fuzz.sh: $t failed; see fuzz/artifacts/$t" >&2; exit 1; }
    execs=$(awk '/^stat::number_of_executed_units/ { print $NF }' "$scratch/$t.log")
    cov=$(grep -oE 'DONE +cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$scratch/$t.log" | tail -n 1 | sed -E 's/DONE +//')
    echo "fuzz $t: ${execs:-?} executions in ${seconds}s; ${cov:-no coverage summary}"
done
rm -rf "$scratch"
