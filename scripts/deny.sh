#!/usr/bin/env bash
# Checks every dependency against deny.toml with cargo-deny: licenses, banned or duplicated
# crates, and where crates come from; and known security advisories (RustSec) whenever
# their database can be fetched. cargo-deny is installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny

checks=(bans licenses sources)
# The advisory database is a git repository that cargo-deny clones; machines without a
# route to it (this project's CI has none) skip that one check and say so.
if timeout 120 cargo deny fetch db >/dev/null 2>&1; then
    checks+=(advisories)
else
    echo "deny.sh: the RustSec advisory database cannot be fetched from here; advisories are not checked" >&2
fi
for manifest in Cargo.toml fuzz/Cargo.toml; do
    cargo deny --manifest-path "$manifest" --locked check --hide-inclusion-graph "${checks[@]}"
done
