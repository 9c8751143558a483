#!/usr/bin/env bash
# Prints the path of a Python interpreter with the packages of tests/py/requirements.txt
# (grpcio and grpcio-tools, the health and reflection clients, PyYAML): independent clients
# and checkers for the end-to-end tests, and the generator of the Python client's code. The
# venv lives in the cache directory, outside the clone, one per version of the requirements
# (so clones with different requirements never rebuild each other's). Safe to run
# concurrently (flock).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tributary"
req="$repo/tests/py/requirements.txt"
stamp=$(sha256sum "$req" | cut -d' ' -f1)
venv="$cache/venv-${stamp:0:16}"
mkdir -p "$cache"
exec 9>"$cache/venv.lock"
flock 9
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
    echo "python-env: installing $req into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$stamp" > "$venv/.requirements"
fi
echo "$venv/bin/python"
