#!/usr/bin/env bash
# Settles this machine's memory the way a server's is after it has run for a while: the
# free memory goes into the page cache (clean pages of a sparse file, no disk space), so
# the next run gets its pages by reclaiming cached ones instead of from the free list.
#
#   bench/settle-memory.sh [--keep MiB]     # leave MiB free (default 1024)
#
# Why: on a virtual machine whose host takes free memory back (virtio-balloon free page
# reporting), the first touch of a free page is a fault in the host, and filling fresh
# pages is several times slower than reclaiming cached ones (docs/PERFORMANCE.md, "The
# machine", has the figures). So on a freshly booted or emptied machine every page-cache
# write and disk read pays the hypervisor, not the system under test. The file stays, so
# its pages stay cached between runs; each call extends it by what is free now and reads
# only the new range. It is started afresh when it reaches four times the machine's memory.
set -euo pipefail

keep_mib=1024
while [ $# -gt 0 ]; do
    case $1 in
        --keep) keep_mib=$2; shift 2 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "settle-memory.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

file=${TMPDIR:-/tmp}/tributary-settle-memory
free_kib=$(awk '/^MemFree:/ { print $2 }' /proc/meminfo)
total_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
grow=$(((free_kib - keep_mib * 1024) * 1024))
[ "$grow" -gt 0 ] || exit 0

size=$(stat -c %s "$file" 2>/dev/null || echo 0)
if [ "$((size + grow))" -gt "$((4 * total_kib * 1024))" ]; then
    rm -f "$file"
    size=0
fi
truncate -s "$((size + grow))" "$file"
tail -c "+$((size + 1))" "$file" >/dev/null
