"""The Python client against a running Tributary server, end to end.

usage: e2e.py URL ADMIN_TOKEN [--restart]

As the cluster admin it makes a user and a volume for it; as that user it creates a
four-partition stream, produces 10,000 records (keyed, and to chosen partitions), and reads
them in a consumer group whose second member joins halfway, so partitions move between
members by a cooperative rebalance (commit, then confirm). Every record must arrive exactly
once, at the partition and offset its produce returned. The group commits and leaves; 1,000
more records are produced, and a new member of the same group must get exactly those. A
member of another user must end with UNAUTHENTICATED once that user is deleted. Plain
fetches, offsets and errors are checked along the way. With `--restart`, a last member
prints `RESTART ME` halfway through 500 more records and waits for a `RESTARTED` line on
stdin, meanwhile the server is killed and restarted at the same address: it must rejoin by
itself and miss nothing.

Prints a line per step; any mismatch exits non-zero with the reason (tests/tests/python.rs
runs it).
"""

import collections
import sys
import time

import grpc

from tributary import Client, Record, TributaryError

VOLUME = "/py"
STREAM = "/py/app"
TOPIC = "events"
PATH = f"{STREAM}:{TOPIC}"
PARTITIONS = 4
FIRST = 10_000
MORE = 1_000
GROUP = "py-group"
DEADLINE = 120  # seconds for each consuming phase: a hang fails, never passes


def say(*words):
    print(*words, flush=True)


def check(ok, what):
    if not ok:
        raise SystemExit(f"FAILED: {what}")


def refused(code, call, *args, **kwargs):
    """Runs `call`, which must raise TributaryError with `code`; returns the error."""
    try:
        call(*args, **kwargs)
    except TributaryError as e:
        check(e.code == code, f"{call.__name__}: expected {code.name}, got {e}")
        check(e.message and code.name in str(e), f"{call.__name__}: a useless error: {e!r}")
        return e
    raise SystemExit(f"FAILED: {call.__name__}{args} succeeded; expected {code.name}")


def value(i):
    return f"v{i:05d}".encode()


def produce(client, start, count, per_call):
    """Produces values start..start+count; returns {value: (partition, offset)}."""
    where = {}
    for first in range(start, start + count, per_call):
        ids = range(first, min(first + per_call, start + count))
        if first < FIRST // 2:
            # Keyed records: the server partitions them (murmur2, as Kafka does).
            records = [Record(value=value(i), key=f"user-{i % 50}".encode()) for i in ids]
            offsets = client.produce(PATH, records)
        else:
            # Plain values, sent to one chosen partition.
            offsets = client.produce(PATH, [value(i).decode() for i in ids], partition=(first // per_call) % PARTITIONS)
            check({o.partition for o in offsets} == {(first // per_call) % PARTITIONS}, "partition= was not honoured")
        check(len(offsets) == len(ids), f"{len(offsets)} offsets for {len(ids)} records")
        where.update((value(i), tuple(o)) for i, o in zip(ids, offsets))
    return where


def consume(members, want, until=None):
    """Polls `members` in turn until `want` distinct records came; returns
    {value: (partition, offset, member index)}. `until(seen)` may act once per round."""
    seen = {}
    deadline = time.monotonic() + DEADLINE
    while len(seen) < want:
        check(time.monotonic() < deadline, f"only {len(seen)} of {want} records in {DEADLINE}s")
        for n, m in enumerate(members):
            for r in m.poll(timeout=0.05):
                check(r.topic == TOPIC, f"record of topic {r.topic!r}")
                check(r.value not in seen, f"{r.value!r} delivered twice: {seen.get(r.value)} and {(r.partition, r.offset, n)}")
                seen[r.value] = (r.partition, r.offset, n)
        if until:
            until(seen)
    return seen


def wait_for(what, probe):
    deadline = time.monotonic() + DEADLINE
    while not probe():
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(0.05)  # poll interval


def survive_a_restart(app, config):
    """A member reads 500 new records, committing after the first 100 and reading on; the
    server is killed and restarted under it. It must join again by itself and read on from
    its commit: records after the commit come again, none before it, none is missing."""
    more = produce(app, FIRST + MORE, 500, 100)
    with app.group_consumer(STREAM, GROUP, [TOPIC], client_id="d", **config) as d:
        got = collections.Counter()
        deadline = time.monotonic() + DEADLINE
        while len(got) < 100:
            check(time.monotonic() < deadline, f"only {len(got)} records before the restart")
            got.update((r.partition, r.offset) for r in d.poll(timeout=0.05))
        d.commit()
        committed = d.positions()
        while sum(got.values()) < 150:  # read on, without committing
            check(time.monotonic() < deadline, f"only {len(got)} records before the restart")
            got.update((r.partition, r.offset) for r in d.poll(timeout=0.05))
        member = d.member_id
        say("RESTART ME")
        check(sys.stdin.readline().strip() == "RESTARTED", "no word from the test harness")
        deadline = time.monotonic() + DEADLINE
        # Records read ahead before the restart may still come first; then the member
        # finds its session gone and joins again.
        while set(got) != set(more.values()) or d.member_id in (member, None):
            missing = len(set(more.values()) - set(got))
            check(time.monotonic() < deadline, f"{missing} records missing after the restart, member {d.member_id}")
            got.update((r.partition, r.offset) for r in d.poll(timeout=0.05))
        again = sorted(po for po, n in got.items() if n > 1)
        check(all(o >= committed[(TOPIC, p)] for p, o in again), f"committed records came again: {again}")
        d.commit()
    say(f"RESTARTED ({len(again)} records after the commit delivered again)")


def main(url, admin_token, restart=False):
    admin = Client(url, admin_token)
    check(admin.whoami().cluster_admin, "the admin token is not a cluster admin's")
    user, token = admin.create_user("py-app")
    check(user.name == "py-app" and token.startswith("trb_"), f"odd user or token: {user}")
    admin.create_volume(VOLUME, owner="py-app")
    admin.create_volume("/private")
    say("ADMIN OK")

    app = Client(url, token)
    check(app.whoami().name == "py-app", "the app token is not py-app's")
    stream = app.create_stream(STREAM, default_partitions=PARTITIONS, ttl_ms=0, durability="buffered")
    check(stream.attributes.default_partitions == PARTITIONS, f"attributes not applied: {stream}")
    check(app.create_topic(PATH).partitions == PARTITIONS, "topic partitions")
    check([s.path for s in app.list_streams(VOLUME)] == [STREAM], "list_streams")
    check([t.path for t in app.list_topics(STREAM)] == [PATH], "list_topics")
    check(app.partitions(PATH) == PARTITIONS, "partitions")
    say("STREAM OK")

    # Errors carry the status code and the server's message.
    refused(grpc.StatusCode.ALREADY_EXISTS, app.create_stream, STREAM)
    refused(grpc.StatusCode.NOT_FOUND, app.describe_stream, f"{VOLUME}/nothing")
    e = refused(grpc.StatusCode.PERMISSION_DENIED, app.create_stream, "/private/s")
    check("/private" in e.message, f"the refusal names no path: {e}")
    refused(grpc.StatusCode.INVALID_ARGUMENT, app.create_stream, "/py/bad name")
    refused(grpc.StatusCode.UNAUTHENTICATED, Client(url, "trb_nobody.secret").whoami)
    say("ERRORS OK")

    where = produce(app, 0, FIRST, 100)
    ends = app.list_offsets(PATH)
    check(sum(ends.values()) == FIRST, f"high-water marks {ends}")
    check(app.list_offsets(PATH, latest=False) == {p: 0 for p in range(PARTITIONS)}, "earliest offsets")
    by_partition = {}
    for v, (p, o) in where.items():
        by_partition.setdefault(p, []).append(o)
    for p, offsets in by_partition.items():
        check(sorted(offsets) == list(range(ends[p])), f"offsets of partition {p} are not 0..{ends[p]}")
    check(len(by_partition) == PARTITIONS, f"keyed records used partitions {sorted(by_partition)}")
    fetched = app.fetch(PATH, 0, 0, max_bytes=1 << 20)
    check(fetched.records, "a fetch from offset 0 returned nothing")
    for r in fetched.records:
        check(where[r.value] == (0, r.offset), f"fetched {r.value!r} at {r.offset}, produced at {where[r.value]}")
    check(fetched.next_offset == fetched.records[-1].offset + 1, "next_offset")
    refused(grpc.StatusCode.OUT_OF_RANGE, app.fetch, PATH, 0, ends[0] + 5)
    say(f"PRODUCED {FIRST}")

    # A small read-ahead (4 KiB), so the server serves the partitions in turn and the
    # second member joins while the first has read part of every partition: the partitions
    # that move must be handed over exactly where the first member stopped.
    config = dict(auto_commit_interval=None, credit_bytes=4096, session_timeout_ms=10_000)
    a = app.group_consumer(STREAM, GROUP, [TOPIC], client_id="a", **config)
    members = [a]
    read_by_a = {}

    def second_member_at_2000(seen):
        if len(members) == 1 and len(seen) >= 2_000:
            read_by_a.update(a.positions())
            members.append(app.group_consumer(STREAM, GROUP, [TOPIC], client_id="b", **config))

    seen = consume(members, FIRST, second_member_at_2000)
    check(len(members) == 2, "the second member never joined")
    check(set(seen) == set(where), "the group read other records than were produced")
    for v, (p, o, _) in seen.items():
        check(where[v] == (p, o), f"{v!r} read at {(p, o)}, produced at {where[v]}")
    b = members[1]
    split = (a.assignment(), b.assignment())
    check(
        sorted(split[0] + split[1]) == [(TOPIC, p) for p in range(PARTITIONS)] and split[0] and split[1],
        f"partitions not split between the members: {split}",
    )
    moved = {tp: read_by_a[tp] for tp in split[1]}
    check(all(0 < o < ends[p] for (_, p), o in moved.items()), f"no partly read partition moved: {moved}")
    from_b = sum(1 for (_, _, n) in seen.values() if n == 1)
    check(0 < from_b < FIRST, f"the second member read {from_b} records")
    a.commit()
    b.commit()
    a.close()
    b.close()
    say(f"GROUP READ {FIRST} ({FIRST - from_b} + {from_b}; moved at {moved})")

    def idle():
        return app.describe_group(STREAM, GROUP).members == []

    wait_for("the members to leave", idle)
    group = app.describe_group(STREAM, GROUP)
    check(len(group.partitions) == PARTITIONS, f"cursors: {group.partitions}")
    for gp in group.partitions:
        check(gp.committed == gp.high_watermark == ends[gp.partition] and gp.lag == 0, f"not committed to the end: {gp}")
    check([g.group for g in app.list_groups(STREAM)] == [GROUP], "list_groups")
    say("COMMITTED")

    more = produce(app, FIRST, MORE, 100)
    with app.group_consumer(STREAM, GROUP, [TOPIC], client_id="c", **config) as c:
        resumed = consume([c], MORE)
        check(set(resumed) == set(more), f"resumed with {len(set(resumed) - set(more))} old records")
        for v, (p, o, _) in resumed.items():
            check(more[v] == (p, o), f"{v!r} read at {(p, o)}, produced at {more[v]}")
        extra = c.poll(timeout=0.5)
        check(extra == [], f"{len(extra)} records past the end, e.g. {extra[:1]}")
        c.commit()
    wait_for("the member to leave", idle)
    lag = sum(gp.lag for gp in app.describe_group(STREAM, GROUP).partitions)
    check(lag == 0, f"lag {lag} after the resumed member committed")
    say(f"RESUMED {MORE}")

    # Revoked access ends a member's session for good: `poll` raises UNAUTHENTICATED once
    # its user is deleted, rather than joining again with dead credentials.
    _, reader_token = admin.create_user("py-reader")
    app.edit_stream(STREAM, consume_perm="u:py-reader")
    reader = Client(url, reader_token)
    r = reader.group_consumer(STREAM, "py-revoked", [TOPIC], client_id="r", **config)
    check(r.poll(timeout=DEADLINE), "the reader's member received nothing")
    admin.delete_user("py-reader")
    ended, deadline = None, time.monotonic() + DEADLINE
    while ended is None and time.monotonic() < deadline:
        try:
            r.poll(timeout=1.0)
        except TributaryError as e:
            ended = e
    check(ended is not None, "the member of a deleted user went on")
    check(ended.code == grpc.StatusCode.UNAUTHENTICATED, f"the member ended with {ended}")
    r.close()
    reader.close()
    say("REVOKED")

    if restart:
        survive_a_restart(app, config)

    app.delete_stream(STREAM)
    refused(grpc.StatusCode.NOT_FOUND, app.describe_stream, STREAM)
    app.close()
    admin.close()
    say("PYTHON CLIENT OK")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--restart"]):
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], restart=sys.argv[3:] == ["--restart"])
