#!/bin/sh
# One-shot setup of deploy/docker-compose.yml: the same stream on both clusters, each
# pulling the other's records (multi-master). Runs as the image's user, which can read
# each server's admin token from its data volume.
#
# The `upstream` verbs come with geo-replication (DESIGN.md §6); until then this script
# stops at them with the CLI's error.
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

# west pulls /demo/events from east, and east from west: two links, one per direction.
on west upstream add /demo/events --from http://east:7070/demo/events \
    --from-token-file /east/admin.token
on east upstream add /demo/events --from http://west:7070/demo/events \
    --from-token-file /west/admin.token
echo "replication: east <-> west linked on /demo/events"
