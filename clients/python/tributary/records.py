"""Records as the application sees them: what it produces, and what it reads back with
its topic, partition and offset; plus the conversions to and from `RecordBatch`.

`None` and empty differ for keys, values and header values, as in Kafka: a `None` key is
unkeyed (spread over the partitions; refused by a compacted stream), an empty key is a key
(hashed to its partition), and a `None` value is a tombstone (it deletes its key on a
compacted stream) where an empty value is a value."""

from dataclasses import dataclass, field
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from tributary.v1 import records_pb2


@dataclass(frozen=True)
class Record:
    """A record to produce. A `None` key is unkeyed; a `None` value is a tombstone."""

    value: Optional[bytes]
    key: Optional[bytes] = None
    headers: Sequence[Tuple[str, Optional[bytes]]] = ()
    timestamp_ms: Optional[int] = None


@dataclass(frozen=True)
class ConsumedRecord:
    """A stored record. `timestamp_ms` is the producer's create time, or the append time
    (on log-append-time streams, and for records produced without one)."""

    topic: str
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    timestamp_ms: int
    headers: List[Tuple[str, Optional[bytes]]] = field(default_factory=list)


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


# A plain value (`None`: a tombstone) or a `Record`.
Producible = Union[bytes, str, None, Record]


def _bytes(v: Union[bytes, str, None]) -> Optional[bytes]:
    if v is None:
        return None
    return v.encode() if isinstance(v, str) else bytes(v)


def _field(msg, name: str):
    """A `bytes` field that may be null: `None` when absent."""
    return getattr(msg, name) if msg.HasField(name) else None


def to_batch(records: Iterable[Producible], key: Union[bytes, str, None]) -> records_pb2.RecordBatch:
    """One batch of `records`; plain values get `key`. `None` is sent as null: the field is
    left out (an empty one is sent, as empty)."""
    batch = records_pb2.RecordBatch()
    for r in records:
        if not isinstance(r, Record):
            r = Record(value=_bytes(r), key=_bytes(key))
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
            key=_field(r, "key"),
            value=_field(r, "value"),
            timestamp_ms=r.timestamp_ms if own else batch.append_time_ms,
            headers=[(h.key, _field(h, "value")) for h in r.headers],
        )
