#!/usr/bin/env bash
# Builds and installs `tributary` (into ~/.cargo/bin, on the PATH rustup sets up) and starts a
# single-node server: data in ./data, gRPC on 127.0.0.1:7070. Extra arguments go to
# `tributary serve` (e.g. --data-dir, --listen, --config).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
cargo install --locked --quiet --path crates/cli
exec "${CARGO_HOME:-$HOME/.cargo}/bin/tributary" serve "$@"
