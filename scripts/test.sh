#!/usr/bin/env bash
# Runs the whole test suite: unit, property and end-to-end tests.
#
# Everything (server binary, tests) builds in the release profile, so RocksDB's C++ compiles
# once; the build cache lives outside the clone (see scripts/bootstrap.sh). End-to-end tests
# start the freshly built `tributary` binary, so it is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
# Redis and NATS for the bench's peer drivers (crates/bench/tests/peers.rs).
source bench/peers.sh
cargo build --release --locked --bins
cargo nextest run --release --locked --workspace --no-fail-fast "$@"
