#!/usr/bin/env bash
# Installs what the build needs beyond the Rust toolchain, and nothing else.
#
# The only system dependency is libclang, which RocksDB's bindgen step loads. protoc is
# vendored (protoc-bin-vendored), RocksDB itself is compiled from source by the rocksdb crate.
# Sourced by scripts/serve.sh, scripts/test.sh and .ci/run; also sets CARGO_TARGET_DIR to a
# cache outside the clone so repeated runs (and clean CI clones) reuse the compiled RocksDB.
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

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tributary/target}"
mkdir -p "$CARGO_TARGET_DIR"
