#!/usr/bin/env bash
# Installs what the build needs beyond the Rust toolchain, and nothing else.
#
# The only system dependency is libclang, which RocksDB's bindgen step loads. protoc is
# vendored (protoc-bin-vendored). RocksDB's C++ is compiled from source once per RocksDB
# version, stripped, and kept in ~/.cache/tributary/rocksdb-lib; every build links that
# archive (ROCKSDB_LIB_DIR), so changes elsewhere in the dependency graph never recompile it.
# Sourced by scripts/serve.sh, scripts/test.sh and .ci/run; also sets CARGO_TARGET_DIR to a
# cache outside the clone so repeated runs (and clean CI clones) reuse compiled crates.
set -euo pipefail

have_libclang() {
    # bindgen wants libclang.so / libclang-NN.so (libclang-cpp is a different library)
    ldconfig -p 2>/dev/null | grep -qE '\blibclang(-[0-9.]+)?\.so' \
        || compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null
}

if ! have_libclang; then
    echo "bootstrap: libclang not found; installing libclang-dev (needed by RocksDB's bindgen)" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "bootstrap: run as root or install libclang-dev" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev >/dev/null
fi

# Image builds (deploy/Dockerfile) set TRIBUTARY_BUILD_ONLY: they run no tests.
[ -n "${TRIBUTARY_BUILD_ONLY:-}" ] || command -v cargo-nextest >/dev/null \
    || cargo install --locked cargo-nextest

cache="${XDG_CACHE_HOME:-$HOME/.cache}/tributary"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
mkdir -p "$CARGO_TARGET_DIR"

# RocksDB, compiled once: the version comes from Cargo.lock, the features (LZ4 only) from
# the workspace manifest.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rocksdb_version=$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' "$repo/Cargo.lock")
rocksdb_lib="$cache/rocksdb-lib/$rocksdb_version-lz4"
if [ ! -f "$rocksdb_lib/librocksdb.a" ]; then
    echo "bootstrap: compiling RocksDB $rocksdb_version once (about 13 minutes on 2 cores)" >&2
    (unset ROCKSDB_LIB_DIR ROCKSDB_STATIC; cd "$repo" && cargo build --release --locked -p tributary-storage)
    built=$(ls -t "$CARGO_TARGET_DIR"/release/build/librocksdb-sys-*/out/librocksdb.a | head -n 1)
    rm -rf "$rocksdb_lib.tmp" && mkdir -p "$rocksdb_lib.tmp"
    cp "$built" "$rocksdb_lib.tmp/librocksdb.a"
    strip --strip-debug "$rocksdb_lib.tmp/librocksdb.a"
    rm -rf "$rocksdb_lib" && mv "$rocksdb_lib.tmp" "$rocksdb_lib"
fi
export ROCKSDB_LIB_DIR="$rocksdb_lib" ROCKSDB_STATIC=1
