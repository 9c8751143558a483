#!/usr/bin/env bash
# Prints the path of a Python interpreter with the packages of tests/py/requirements.txt
# (grpcio, its health and reflection clients, PyYAML): independent clients and checkers for
# the end-to-end tests. The venv lives in the cache directory, outside the clone, and is
# rebuilt only when the requirements change. Safe to run concurrently (flock).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tributary"
venv="$cache/venv"
req="$repo/tests/py/requirements.txt"
mkdir -p "$cache"
exec 9>"$cache/venv.lock"
flock 9
stamp=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
    echo "python-env: installing $req into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$stamp" > "$venv/.requirements"
fi
echo "$venv/bin/python"
