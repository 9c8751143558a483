#!/usr/bin/env bash
# Installs the stock Kafka clients the end-to-end tests drive (tests/tests/kafka_clients.rs)
# and prints where they are, one `name=path` a line:
#   kcat=…          kcat from Debian (librdkafka 2.0.2: the old feature probes);
#   python=…        a venv with tests/kafka/requirements.txt (confluent-kafka, kafka-python,
#                   aiokafka and their codecs), one per version of that file, under the cache
#                   directory;
#   node_modules=…  kafkajs and kafkajs-snappy from npm (tests/kafka/package.json), one per
#                   version of that file.
# Each is installed once and reused; safe to run concurrently (flock).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tributary"
mkdir -p "$cache"
exec 9>"$cache/kafka-clients.lock"
flock 9
say() { echo "kafka-clients: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        say "need root or sudo to run: $*"
        exit 1
    fi
}

if ! command -v kcat >/dev/null; then
    say "installing kcat (Debian)"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
fi

req="$repo/tests/kafka/requirements.txt"
stamp=$(sha256sum "$req" | cut -d' ' -f1)
venv="$cache/kafka-venv-${stamp:0:16}"
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
    say "installing $req into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$stamp" > "$venv/.requirements"
fi

pkg="$repo/tests/kafka/package.json"
stamp=$(sha256sum "$pkg" | cut -d' ' -f1)
node="$cache/kafka-node-${stamp:0:16}"
if [ "$(cat "$node/.package" 2>/dev/null)" != "$stamp" ]; then
    say "installing kafkajs (npm) into $node"
    rm -rf "$node"
    mkdir -p "$node"
    cp "$pkg" "$node/package.json"
    (cd "$node" && npm install --silent --no-audit --no-fund >&2)
    echo "$stamp" > "$node/.package"
fi

echo "kcat=$(command -v kcat)"
echo "python=$venv/bin/python"
echo "node_modules=$node/node_modules"
