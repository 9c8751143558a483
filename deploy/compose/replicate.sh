#!/bin/sh
# One-shot setup of deploy/docker-compose.yml: the same stream on both clusters, each
# pulling the other's records (multi-master: two links, one per direction; see
# docs/replication.md). Runs as the image's user with both data volumes mounted (/east,
# /west): it reads each server's admin token there, and leaves each puller its token for
# the other side in the puller's own data directory. Safe to run again.
set -eu

# Runs a CLI verb on a side as its cluster admin; ALREADY_EXISTS is fine (a re-run).
on() {
    side=$1
    shift
    if ! out=$(TRIBUTARY_TOKEN=$(cat "/$side/admin.token") \
        tributary --server "http://$side:7070" "$@" 2>&1); then
        case "$out" in
        *ALREADY_EXISTS*) ;;
        *) echo "$side: $out" >&2; exit 1 ;;
        esac
    fi
}

for side in east west; do
    on "$side" volume create /demo
    on "$side" stream create /demo/events --partitions 3
done

# Each puller is a user of the other side with only `copy` on the stream. Its token (a
# fresh one at every run) goes to a file in the puller's data directory, which the puller's
# server reads at every connection: rotating the token needs no change to the link.
grant() {
    upstream=$1 puller=$2
    on "$upstream" user create "$puller"
    on "$upstream" stream edit /demo/events --copy-perm "u:$puller"
    (
        umask 077
        TRIBUTARY_TOKEN=$(cat "/$upstream/admin.token") tributary \
            --server "http://$upstream:7070" user token rotate "$puller" \
            >"/$puller/from-$upstream.token"
    )
}
grant east west
grant west east

# /var/lib/tributary is each server's data directory, as the server sees it.
on west upstream add /demo/events --from http://east:7070/demo/events \
    --from-token-file /var/lib/tributary/from-east.token
on east upstream add /demo/events --from http://west:7070/demo/events \
    --from-token-file /var/lib/tributary/from-west.token
echo "replication: east <-> west linked on /demo/events"
