"""A consumer-group member over the bidirectional `Consumer.Subscribe` stream.

The server assigns partitions and pushes their records as the member grants credit (a
bounded read-ahead); `poll` hands them out in order per partition and remembers how far the
application got, and `commit` stores those positions as the group's cursors. When a
rebalance takes a partition away, the member commits its position first and then confirms
the revocation, so the next owner starts exactly where this one stopped. If the session is
lost (the server restarted, the member was removed), `poll` joins again and resumes from
the committed cursors: records delivered but not committed may come again, none is skipped.

This mirrors the Rust client's `GroupConsumer` (crates/client/src/group.rs). A
`GroupConsumer` is meant for one thread; a background thread only moves the server's
messages into a queue, and the request stream sends a heartbeat whenever it has been
quiet for a third of the session timeout.
"""

import collections
import queue
import threading
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import grpc

from tributary.errors import TributaryError
from tributary.records import ConsumedRecord, unpack
from tributary.v1 import consumer_pb2

TopicPartition = Tuple[str, int]

_STARTS = {"earliest": consumer_pb2.OFFSET_SPEC_EARLIEST, "latest": consumer_pb2.OFFSET_SPEC_LATEST}

# Session losses after which joining again is the cure (as in the Rust client).
_REJOINABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
}
_END = object()  # the server ended the response stream
_HEARTBEAT = consumer_pb2.SubscribeRequest(heartbeat=consumer_pb2.Heartbeat())


def _stale(e: TributaryError) -> bool:
    return e.code == grpc.StatusCode.FAILED_PRECONDITION and "is stale" in e.message


def _outgoing(requests: "queue.Queue", every: float):
    """The request stream: queued messages, a heartbeat when quiet, ended by `None`."""
    while True:
        try:
            msg = requests.get(timeout=every)
        except queue.Empty:
            msg = _HEARTBEAT
        if msg is None:
            return
        yield msg


class _Session:
    """One `Subscribe` call: its request queue, and the queue its reader thread fills."""

    def __init__(self, client, join: consumer_pb2.JoinGroup, credit: consumer_pb2.Credit, every: float):
        self.requests: "queue.Queue" = queue.Queue()
        self.inbox: "queue.Queue" = queue.Queue()
        self.member_id = ""
        self.generation = 0
        self.requests.put(consumer_pb2.SubscribeRequest(join=join))
        self.requests.put(consumer_pb2.SubscribeRequest(credit=credit))
        self.call = client.consumer_stub.Subscribe(
            _outgoing(self.requests, every), metadata=client._metadata
        )
        self.reader = threading.Thread(target=self._read, name="tributary-subscribe", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            for msg in self.call:
                self.inbox.put(msg)
            self.inbox.put(_END)
        except grpc.RpcError as e:
            self.inbox.put(TributaryError.from_rpc(e))

    def send(self, **kind) -> None:
        self.requests.put(consumer_pb2.SubscribeRequest(**kind))

    def end(self, wait: float) -> None:
        """Closes the request stream (leaving the group) and waits for the server's end."""
        self.requests.put(None)
        self.reader.join(wait)
        self.call.cancel()
        self.reader.join(wait)


class GroupConsumer:
    """One member of consumer group `group` reading `topics` (or the topics whose whole
    name matches the regular expression `pattern`) of `stream`.

    - `assignor`: `sticky` (the server's default), `range` or `roundrobin`;
    - `session_timeout_ms`: how long the server keeps a silent member;
    - `start`: `"earliest"` or `"latest"`, for partitions without a committed cursor;
    - `auto_commit_interval`: seconds between automatic commits of what `poll` returned
      (also done by `close`); `None` commits only on `commit()`;
    - `credit_bytes`, `credit_batches`: the read-ahead the server may push.

    Iterating over the consumer yields records one at a time, forever.
    """

    def __init__(
        self,
        client,
        stream: str,
        group: str,
        topics: Sequence[str] = (),
        *,
        pattern: Optional[str] = None,
        assignor: str = "",
        session_timeout_ms: int = 10_000,
        start: str = "earliest",
        client_id: str = "",
        auto_commit_interval: Optional[float] = 5.0,
        credit_bytes: int = 4 << 20,
        credit_batches: int = 256,
    ):
        if start not in _STARTS:
            raise ValueError(f"start: expected 'earliest' or 'latest', got {start!r}")
        self._client = client
        self.stream = stream
        self.group = group
        self._join = consumer_pb2.JoinGroup(
            stream=stream,
            group=group,
            topics=topics,
            topic_pattern=pattern or "",
            assignor=assignor,
            session_timeout_ms=session_timeout_ms,
            client_id=client_id,
            start=_STARTS[start],
        )
        self._credit = consumer_pb2.Credit(bytes=credit_bytes, batches=credit_batches)
        self._session_timeout = session_timeout_ms / 1000
        self._auto_commit = auto_commit_interval
        self._session: Optional[_Session] = None
        # (topic, partition) -> next offset to hand out (what a commit stores).
        self._positions: Dict[TopicPartition, int] = {}
        self._committed: Dict[TopicPartition, int] = {}
        # Records received while `commit` waited for a new assignment.
        self._pending: "collections.deque[List[ConsumedRecord]]" = collections.deque()
        self._last_commit = time.monotonic()
        self._closed = False
        self._connect()

    @property
    def member_id(self) -> Optional[str]:
        return self._session.member_id if self._session else None

    @property
    def generation(self) -> Optional[int]:
        return self._session.generation if self._session else None

    def assignment(self) -> List[TopicPartition]:
        """The partitions this member reads now, sorted."""
        return sorted(self._positions)

    def positions(self) -> Dict[TopicPartition, int]:
        """The next offset `poll` hands out per partition (what `commit` stores)."""
        return dict(self._positions)

    def _connect(self) -> None:
        s = _Session(self._client, self._join, self._credit, self._session_timeout / 3)
        try:
            first = s.inbox.get(timeout=self._client.timeout)
        except queue.Empty:
            s.end(1.0)
            raise TributaryError(grpc.StatusCode.DEADLINE_EXCEEDED, "the server did not answer the join") from None
        if isinstance(first, TributaryError):
            s.end(1.0)
            raise first
        if first is _END or first.WhichOneof("kind") != "joined":
            s.end(1.0)
            raise TributaryError(grpc.StatusCode.INTERNAL, "the server did not answer the join")
        s.member_id = first.joined.member_id
        self._positions.clear()
        self._committed.clear()
        self._session = s

    def _rejoin(self) -> None:
        """Joins again after a lost session, retrying while the server may be restarting."""
        lost_at, backoff = time.monotonic(), 0.05
        while True:
            try:
                return self._connect()
            except TributaryError as e:
                retry = e.code in _REJOINABLE or e.code == grpc.StatusCode.DEADLINE_EXCEEDED
                if not retry or time.monotonic() - lost_at > max(self._session_timeout, 30.0):
                    raise
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def poll(self, timeout: Optional[float] = None) -> List[ConsumedRecord]:
        """The next records, waiting up to `timeout` seconds (forever with `None`) for
        some; an empty list when none came in time. Joins again if the session was lost."""
        if self._closed:
            raise TributaryError(grpc.StatusCode.CANCELLED, "the consumer is closed")
        if self._pending:
            return self._pending.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._session is None:
                self._rejoin()
            now = time.monotonic()
            if self._auto_commit is not None and now - self._last_commit >= self._auto_commit:
                try:
                    self.commit()
                except TributaryError:
                    pass  # a rebalance or a lost session: the next interval commits again
                self._last_commit = now
                if self._pending:
                    return self._pending.popleft()
            wait = None if deadline is None else max(0.0, deadline - now)
            if self._auto_commit is not None:
                due = self._last_commit + self._auto_commit - now
                wait = due if wait is None else min(wait, due)
            records = self._step(wait)
            if records:
                return records
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def __iter__(self) -> Iterator[ConsumedRecord]:
        while True:
            yield from self.poll()

    def _step(self, wait: Optional[float]) -> Optional[List[ConsumedRecord]]:
        """Handles one message from the server, waiting up to `wait` seconds for it."""
        s = self._session
        try:
            msg = s.inbox.get(timeout=None if wait is None else max(wait, 0.0))
        except queue.Empty:
            return None
        if msg is _END or isinstance(msg, TributaryError):
            error = msg if msg is not _END else TributaryError(grpc.StatusCode.UNAVAILABLE, "the server ended the session")
            s.end(1.0)
            self._session = None
            if error.code in _REJOINABLE:
                return None
            raise error
        kind = msg.WhichOneof("kind")
        if kind == "assignment":
            self._reassign(msg.assignment)
        elif kind == "records":
            return self._records(msg.records)
        return None

    def _reassign(self, a: consumer_pb2.Assignment) -> None:
        """A new assignment: commit and confirm what was taken away, start what was given."""
        new = {(p.topic, p.partition): p.offset for p in a.partitions}
        revoked = [tp for tp in self._positions if tp not in new]
        self._session.generation = a.generation
        if revoked:
            # The new owner starts from the cursor: store ours before letting go. When the
            # group has moved on already, the next assignment (every generation reaches
            # every member) says again what to let go, and the commit is retried then.
            try:
                self._commit_partitions(revoked)
            except TributaryError as e:
                if _stale(e):
                    return
                raise
            for tp in revoked:
                del self._positions[tp]
                self._committed.pop(tp, None)
            partitions = [consumer_pb2.TopicPartition(topic=t, partition=p) for t, p in revoked]
            self._session.send(revoked=consumer_pb2.Revoked(generation=a.generation, partitions=partitions))
        for tp, offset in new.items():
            self._positions.setdefault(tp, offset)

    def _records(self, r: consumer_pb2.PartitionRecords) -> List[ConsumedRecord]:
        tp = (r.topic, r.partition)
        out: List[ConsumedRecord] = []
        position = self._positions.get(tp)
        if position is not None:  # else a partition taken away since: dropped
            position = max(position, r.skipped_to)
            for b in r.batches:
                for c in unpack(r.topic, r.partition, b):
                    if c.offset >= position:
                        position = c.offset + 1
                        out.append(c)
            self._positions[tp] = position
        # Give back the credit these batches used.
        used = sum(b.ByteSize() for b in r.batches)
        self._session.send(credit=consumer_pb2.Credit(bytes=used, batches=len(r.batches)))
        return out

    def commit(self) -> None:
        """Commits the position of every record `poll` returned so far. When a rebalance
        moved the generation meanwhile, waits for the new assignment and commits what this
        member still owns (what it lost was committed when it let go)."""
        for _ in range(16):
            try:
                self._commit_partitions(list(self._positions))
                self._last_commit = time.monotonic()
                return
            except TributaryError as e:
                if not (_stale(e) and self._session is not None):
                    raise
            # A rebalance ends within a session timeout (a member that does not confirm a
            # revocation in time is removed); its assignment reaches every member.
            generation = self._session.generation
            give_up = time.monotonic() + 2 * self._session_timeout
            while self._session is not None and self._session.generation == generation:
                if time.monotonic() > give_up:
                    raise TributaryError(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"no new assignment after generation {generation}; commit again later",
                    )
                records = self._step(self._session_timeout)
                if records:
                    self._pending.append(records)
        raise TributaryError(grpc.StatusCode.ABORTED, "the group kept rebalancing; commit again later")

    def _commit_partitions(self, partitions: List[TopicPartition]) -> None:
        cursors = [
            consumer_pb2.CursorCommit(topic=t, partition=p, offset=self._positions[(t, p)])
            for t, p in partitions
            if (t, p) in self._positions and self._committed.get((t, p)) != self._positions[(t, p)]
        ]
        if not cursors:
            return
        s = self._session
        if s is None:
            raise TributaryError(
                grpc.StatusCode.UNAVAILABLE,
                "the group session was lost before the commit; uncommitted records will be delivered again",
            )
        req = consumer_pb2.CommitOffsetsRequest(
            stream=self.stream,
            group=self.group,
            member_id=s.member_id,
            generation=s.generation,
            cursors=cursors,
        )
        self._client.call(self._client.consumer_stub.CommitOffsets, req)
        for c in cursors:
            self._committed[(c.topic, c.partition)] = c.offset

    def close(self) -> None:
        """Commits (when auto-commit is on) and leaves the group."""
        if self._closed:
            return
        try:
            if self._auto_commit is not None and self._session is not None:
                self.commit()
        finally:
            self._closed = True
            if self._session is not None:
                self._session.end(self._session_timeout)
                self._session = None

    def __enter__(self) -> "GroupConsumer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
