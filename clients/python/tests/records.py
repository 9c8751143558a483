"""Null and empty keys, values and header values through the Python client, against
records the Rust client produced.

usage: records.py URL TOKEN STREAM

STREAM holds the topics `from-rust` (nine records the Rust client produced to partition
0: every pairing of a null, an empty and a non-empty key with such a value, each with the
header values null, empty and `x` under one repeated key) and four partitions. This script
reads them and checks each is exactly as produced, produces the same nine to `from-python`
partition 0, then produces with an empty key and with a null one, without choosing a
partition. Prints a line per step (the partitions these went to last); any mismatch exits
non-zero with the reason. tests/tests/records.rs runs it and checks the rest.
"""

import sys

from tributary import Client, Record

KEYS = [None, b"", b"k"]
VALUES = [None, b"", b"v"]
HEADERS = [("h", None), ("h", b""), ("h", b"x")]


def say(*words):
    print(*words, flush=True)


def check(ok, what):
    if not ok:
        raise SystemExit(f"FAILED: {what}")


def combos():
    return [Record(key=k, value=v, headers=HEADERS) for k in KEYS for v in VALUES]


def main(url, token, stream):
    client = Client(url, token)
    got = client.fetch(f"{stream}:from-rust", partition=0, offset=0).records
    want = combos()
    check(len(got) == len(want), f"{len(got)} records from Rust, expected {len(want)}")
    for g, w in zip(got, want):
        seen = (g.key, g.value, g.headers)
        check(seen == (w.key, w.value, list(w.headers)), f"offset {g.offset}: {seen}, produced {w}")
    say("FROM_RUST", len(got))

    offsets = client.produce(f"{stream}:from-python", want, partition=0)
    check([o.offset for o in offsets] == list(range(len(want))), f"offsets {offsets}")
    say("PRODUCED", len(offsets))

    # Each call is one request: the server picks where an unkeyed batch goes per request.
    hashed = [client.produce(f"{stream}:hashed", [b"e"], key=b"")[0].partition for _ in range(8)]
    say("EMPTY_KEY", *hashed)
    spread = [client.produce(f"{stream}:spread", [b"n"], key=None)[0].partition for _ in range(8)]
    say("NULL_KEY", *spread)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
