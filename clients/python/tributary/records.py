"""Records as the application sees them: what it produces, and what it reads back with
its topic, partition and offset; plus the conversions to and from `RecordBatch`."""

from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from tributary.v1 import records_pb2


@dataclass(frozen=True)
class Record:
    """A record to produce. An empty key means unkeyed."""

    value: bytes
    key: bytes = b""
    headers: Sequence[Tuple[str, bytes]] = ()
    timestamp_ms: Optional[int] = None


@dataclass(frozen=True)
class ConsumedRecord:
    """A stored record. `timestamp_ms` is the producer's create time, or the append time
    (on log-append-time streams, and for records produced without one)."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: List[Tuple[str, bytes]] = field(default_factory=list)


class Offset(NamedTuple):
    """Where a produced record was stored."""

    partition: int
    offset: int


class Fetched(NamedTuple):
    records: List[ConsumedRecord]
    # Where the next fetch continues: after the last record returned (offsets may jump
    # in a compacted stream), or the requested offset when nothing came.
    next_offset: int
    high_watermark: int
    log_start_offset: int


Producible = Union[bytes, str, Record]


def _bytes(v: Union[bytes, str, None]) -> bytes:
    if v is None:
        return b""
    return v.encode() if isinstance(v, str) else bytes(v)


def to_batch(records: Iterable[Producible], key: Union[bytes, str, None]) -> records_pb2.RecordBatch:
    """One batch of `records`; plain values get `key`."""
    batch = records_pb2.RecordBatch()
    default_key = _bytes(key)
    for r in records:
        if not isinstance(r, Record):
            r = Record(value=_bytes(r), key=default_key)
        pb = batch.records.add(key=_bytes(r.key), value=_bytes(r.value))
        for k, v in r.headers:
            pb.headers.add(key=k, value=_bytes(v))
        if r.timestamp_ms is not None:
            pb.timestamp_ms = r.timestamp_ms
    return batch


def unpack(topic: str, partition: int, batch: records_pb2.RecordBatch) -> Iterator[ConsumedRecord]:
    """The records of a stored batch with their offsets and effective timestamps."""
    append_time = batch.timestamp_type == records_pb2.TIMESTAMP_TYPE_LOG_APPEND_TIME
    for i, r in enumerate(batch.records):
        own = r.HasField("timestamp_ms") and not append_time
        yield ConsumedRecord(
            topic=topic,
            partition=partition,
            offset=batch.base_offset + i,
            key=r.key,
            value=r.value,
            timestamp_ms=r.timestamp_ms if own else batch.append_time_ms,
            headers=[(h.key, h.value) for h in r.headers],
        )
