# Sourced by the bench scripts that start one fresh server per run: `free_port`,
# `wait_port PORT LOG` and `stop_server`, around the caller's `$server_pid` (empty when
# no server runs). The caller defines `say`.

server_pid=""

stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

# A loopback port nothing listens on.
free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 100); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    say "no free port found"
    return 1
}

# Waits until something accepts connections on `port` (30 s at most), while the server
# lives; its log's end is printed when it does not come up.
wait_port() {
    local port=$1 log=$2 deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$server_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            say "the server did not come up; its log:"
            tail -n 20 "$log" >&2
            return 1
        fi
        sleep 0.1
    done
}
