#!/usr/bin/env bash
# The physical limit: this machine's sequential write bandwidth and fsync rate, measured
# with fio where the benches keep their data (the temp dir, or the directory given), so
# every throughput figure can be quoted as a fraction of it. Installs fio (Debian) when
# it is missing.
#
#   bench/disk.sh [DIR] [--json] [--memory settled|as-is]
#
# Four measurements, each on a fresh file that is removed afterwards:
#   - sequential writes, O_DIRECT, 1 MiB blocks, 8 in flight: what the device takes;
#   - sequential writes through the page cache, 1 MiB blocks, one fsync at the end: what
#     a buffered writer gets once the cache is flushed;
#   - 4 KiB writes each followed by fdatasync, one writer: the fsync rate a single
#     committer sees (a `sync` append costs at least one);
#   - the same with 4 writers at once: what the device does with concurrent flushes.
#
# Memory is settled first (bench/settle-memory.sh, as bench/compare.sh does before each
# run) unless `--memory as-is`: on a VM whose host takes free pages back, the page cache
# fills fresh pages several times slower than reclaimed ones (docs/PERFORMANCE.md).
set -euo pipefail

dir=${TMPDIR:-/tmp}
json=false
memory=settled
while [ $# -gt 0 ]; do
    case $1 in
        --json) json=true ;;
        --memory) memory=$2; shift ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) dir=$1 ;;
    esac
    shift
done
case $memory in
    settled) "$(dirname "$0")/settle-memory.sh" ;;
    as-is) ;;
    *) echo "disk.sh: --memory is settled or as-is, not $memory" >&2; exit 2 ;;
esac

if ! command -v fio >/dev/null; then
    echo "disk.sh: installing fio" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "disk.sh: run as root or install fio" >&2; exit 1; }
        sudo=sudo
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq fio >/dev/null
fi

work=$(mktemp -d "$dir/tributary-disk.XXXXXX")
trap 'rm -rf "$work"' EXIT

# fio's terse format (v3): field 48 is the write bandwidth in KiB/s, 49 the write IOPS.
run() {
    fio --name=disk --directory="$work" --minimal --group_reporting "$@" | awk -F';' '{ print $48, $49 }'
    rm -f "$work"/disk*
}

read -r direct_kib _ < <(run --rw=write --bs=1M --size=2G --direct=1 --ioengine=libaio --iodepth=8)
read -r cached_kib _ < <(run --rw=write --bs=1M --size=2G --end_fsync=1)
read -r _ fsync1 < <(run --rw=write --bs=4k --size=256M --fdatasync=1 --runtime=10 --time_based)
read -r _ fsync4 < <(run --rw=write --bs=4k --size=64M --fdatasync=1 --runtime=10 --time_based --numjobs=4)

mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k * 1024 / 1e6 }'; }
fs=$(df -T "$work" | awk 'NR == 2 { print $1 " (" $2 ")" }')
if $json; then
    printf '{"dir":"%s","filesystem":"%s","memory":"%s","seq_write_direct_mb_per_sec":%s,"seq_write_buffered_mb_per_sec":%s,"fdatasync_per_sec_1":%s,"fdatasync_per_sec_4":%s}\n' \
        "$dir" "$fs" "$memory" "$(mb "$direct_kib")" "$(mb "$cached_kib")" "$fsync1" "$fsync4"
else
    echo "disk under $dir: $fs, $(nproc) cores, memory $memory"
    echo "sequential write, O_DIRECT, 1 MiB x 8 in flight:     $(mb "$direct_kib") MB/s"
    echo "sequential write, page cache + final fsync, 1 MiB:   $(mb "$cached_kib") MB/s"
    echo "4 KiB write + fdatasync, 1 writer:                   $fsync1 /s"
    echo "4 KiB write + fdatasync, 4 writers:                  $fsync4 /s"
fi
