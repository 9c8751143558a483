#!/usr/bin/env bash
# Builds and installs `tributary` (into ~/.cargo/bin, on the PATH rustup sets up) and starts a
# single-node server: data in ./data, gRPC on 127.0.0.1:7070. Extra arguments go to
# `tributary serve` (e.g. --data-dir, --listen, --config). The first run compiles the Rust
# crates in the `perf` profile (RocksDB is prebuilt and shared; see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
# The `perf` profile (no debug assertions or overflow checks): the build docs/PERFORMANCE.md
# measures, not the `release` one the tests share with their checks (check-deploy.py checks).
cargo install --locked --quiet --profile perf --path crates/cli
exec "${CARGO_HOME:-$HOME/.cargo}/bin/tributary" serve "$@"
