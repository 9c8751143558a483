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
# the workspace manifest. On x86-64 it is compiled with SSE4.2 and PCLMUL, so that its
# CRC32C checksums (write-ahead log and blob records) run in hardware: in software they
# were a quarter of the server's CPU (docs/PERFORMANCE.md). Every x86-64 CPU since 2011
# has both (the x86-64-v2 level). It compiles in a target directory of its own, so its
# flags never touch the shared one.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rocksdb_version=$(awk '/^name = "librocksdb-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' "$repo/Cargo.lock")
rocksdb_flavour=lz4 rocksdb_rustflags=""
if [ "$(uname -m)" = x86_64 ]; then
    rocksdb_flavour=lz4-sse42 rocksdb_rustflags="-C target-feature=+sse4.2,+pclmulqdq"
fi
rocksdb_lib="$cache/rocksdb-lib/$rocksdb_version-$rocksdb_flavour"
if [ ! -f "$rocksdb_lib/librocksdb.a" ]; then
    echo "bootstrap: compiling RocksDB $rocksdb_version ($rocksdb_flavour) once (about 13 minutes on 2 cores)" >&2
    rocksdb_target="$cache/rocksdb-build"
    (unset ROCKSDB_LIB_DIR ROCKSDB_STATIC; cd "$repo" \
        && CARGO_TARGET_DIR="$rocksdb_target" RUSTFLAGS="$rocksdb_rustflags" \
            cargo build --release --locked -p tributary-storage)
    built=$(ls -t "$rocksdb_target"/release/build/librocksdb-sys-*/out/librocksdb.a | head -n 1)
    rm -rf "$rocksdb_lib.tmp" && mkdir -p "$rocksdb_lib.tmp"
    cp "$built" "$rocksdb_lib.tmp/librocksdb.a"
    strip --strip-debug "$rocksdb_lib.tmp/librocksdb.a"
    rm -rf "$rocksdb_lib" "$rocksdb_target" && mv "$rocksdb_lib.tmp" "$rocksdb_lib"
fi
export ROCKSDB_LIB_DIR="$rocksdb_lib" ROCKSDB_STATIC=1
