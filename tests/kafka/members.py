"""Long-running stock Kafka clients for the end-to-end tests (tests/tests/kafka_groups.rs):
consumer-group members, a producer and a plain reader, each its own process so a test can
`kill -9` one. Connection settings come from clients.py's config builders.

The only argument is a JSON spec, as clients.py takes, plus:

    {"client": "confluent" | "kafka-python" | "aiokafka",   # produce, read: confluent
     "role": "member" | "produce" | "read",
     "bootstrap": ..., "security": {...},        # as in clients.py
     "topics": [NAME, ...],                      # member, read
     "group": ID, "strategy": "range" | "roundrobin" | "cooperative-sticky",
     "session_timeout_ms": N,                    # member
     "instance_id": ID,                          # member, confluent: a static member
     "records": [{"topic", "partition", "key", "value", "headers": [[K, V], ...]}],
     "compression": "gzip" | "snappy" | "lz4" | "zstd" | "none",   # produce
     "count": N}                                 # read: stop after N records

Every line printed is one JSON event, flushed: {"event": "assigned" | "revoked",
"partitions": [[TOPIC, P], ...]} (the partitions added or taken away, whichever the
protocol says), {"event": "record", "topic", "partition", "offset", "timestamp", "key",
"value", "headers"} (null key, value or header value as null), {"event": "committed", "offsets":
[[TOPIC, P, NEXT OFFSET], ...]}, {"event": "produced", "offsets": [[TOPIC, P, OFFSET],
...]}, {"event": "done"}, {"event": "error", "error": TEXT}. A member takes commands on
stdin, one a line: `commit` (commits every assigned partition it read from, the offset
after the last record read, and answers `committed`), `close` (leaves the group and
exits).
"""

import asyncio
import json
import queue
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree for the import below
from clients import TIMEOUT_S, aiokafka_config, confluent_config, kafka_python_config  # noqa: E402


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def text(b):
    return None if b is None else b.decode("utf-8", "backslashreplace")


def record(topic, partition, offset, timestamp, key, value, headers):
    emit(
        "record",
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        key=text(key),
        value=text(value),
        headers=[[k, text(v)] for k, v in (headers or [])],
    )


def commands():
    """Lines of stdin, read on a thread so the poll loop never blocks on them."""
    q = queue.Queue()

    def read():
        for line in sys.stdin:
            q.put(line.strip())
        q.put("close")  # stdin closed: the test is gone

    threading.Thread(target=read, daemon=True).start()
    return q


class Member:
    """What a member read, per assigned partition: the offset after its last record."""

    def __init__(self):
        self.assigned = set()
        self.next = {}

    def assign(self, tps):
        self.assigned |= set(tps)
        emit("assigned", partitions=sorted([t, p] for t, p in tps))

    def revoke(self, tps):
        self.assigned -= set(tps)
        for tp in tps:
            self.next.pop(tp, None)
        emit("revoked", partitions=sorted([t, p] for t, p in tps))

    def read(self, topic, partition, offset):
        self.next[(topic, partition)] = offset + 1

    def got(self, tp, msg):
        """A kafka-python or aiokafka record (their fields are named alike)."""
        self.read(tp.topic, tp.partition, msg.offset)
        record(
            tp.topic, tp.partition, msg.offset, msg.timestamp, msg.key, msg.value, msg.headers
        )

    def to_commit(self):
        return sorted((t, p, o) for (t, p), o in self.next.items() if (t, p) in self.assigned)


# --- confluent-kafka (librdkafka) ---------------------------------------------------------


def confluent_conf(spec, **extra):
    conf, _errors = confluent_config(spec)
    conf.update(extra)
    return conf


def confluent_member(spec):
    from confluent_kafka import Consumer, TopicPartition

    conf = confluent_conf(
        spec,
        **{
            "group.id": spec["group"],
            "client.id": spec.get("client_id", "confluent-member"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": spec["session_timeout_ms"],
            "heartbeat.interval.ms": 500,
            "partition.assignment.strategy": spec["strategy"],
        },
    )
    if spec.get("instance_id"):
        conf["group.instance.id"] = spec["instance_id"]
    consumer = Consumer(conf)
    m = Member()
    consumer.subscribe(
        spec["topics"],
        on_assign=lambda _c, ps: m.assign([(p.topic, p.partition) for p in ps]),
        on_revoke=lambda _c, ps: m.revoke([(p.topic, p.partition) for p in ps]),
        on_lost=lambda _c, ps: m.revoke([(p.topic, p.partition) for p in ps]),
    )
    cmds = commands()
    while True:
        msg = consumer.poll(0.1)
        if msg is not None:
            if msg.error():
                emit("error", error=str(msg.error()))
            else:
                m.read(msg.topic(), msg.partition(), msg.offset())
                record(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.timestamp()[1],
                    msg.key(),
                    msg.value(),
                    msg.headers(),
                )
        try:
            cmd = cmds.get_nowait()
        except queue.Empty:
            continue
        if cmd == "commit":
            offsets = m.to_commit()
            if offsets:
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for t, p, o in offsets],
                    asynchronous=False,
                )
            emit("committed", offsets=[list(x) for x in offsets])
        elif cmd == "close":
            consumer.close()
            emit("done")
            return


def confluent_produce(spec):
    from confluent_kafka import Producer

    conf = confluent_conf(
        spec,
        **{
            "compression.type": spec.get("compression", "none"),
            "linger.ms": 50,
            "acks": "all",
            "enable.idempotence": False,
        },
    )
    producer = Producer(conf)
    done = []
    for r in spec["records"]:
        headers = [(k, None if v is None else v.encode()) for k, v in r.get("headers", [])]
        producer.produce(
            r["topic"],
            key=None if r.get("key") is None else r["key"].encode(),
            value=None if r.get("value") is None else r["value"].encode(),
            partition=r.get("partition", -1),
            headers=headers or None,
            on_delivery=lambda err, msg: done.append((err, msg)),
        )
    producer.flush(TIMEOUT_S)
    errors = [str(e) for e, _ in done if e is not None]
    if errors or len(done) != len(spec["records"]):
        emit("error", error=f"{len(done)} delivered of {len(spec['records'])}: {errors}")
        return
    emit("produced", offsets=[[m.topic(), m.partition(), m.offset()] for _, m in done])


def confluent_read(spec):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    conf = confluent_conf(spec, **{"group.id": "reader", "enable.auto.commit": False})
    consumer = Consumer(conf)
    tps = []
    for t in spec["topics"]:
        md = consumer.list_topics(topic=t, timeout=TIMEOUT_S)
        tps += [TopicPartition(t, p, OFFSET_BEGINNING) for p in md.topics[t].partitions]
    consumer.assign(tps)
    deadline = time.time() + TIMEOUT_S * 3
    n = 0
    while n < spec["count"] and time.time() < deadline:
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            emit("error", error=str(msg.error()))
            continue
        n += 1
        record(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            msg.timestamp()[1],
            msg.key(),
            msg.value(),
            msg.headers(),
        )
    consumer.close()
    emit("done")


# --- kafka-python -------------------------------------------------------------------------


def kafka_python_member(spec):
    from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}
    m = Member()

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            m.revoke([(tp.topic, tp.partition) for tp in revoked])

        def on_partitions_assigned(self, assigned):
            m.assign([(tp.topic, tp.partition) for tp in assigned])

    consumer = KafkaConsumer(
        group_id=spec["group"],
        client_id=spec.get("client_id", "kafka-python-member"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=spec["session_timeout_ms"],
        heartbeat_interval_ms=500,
        partition_assignment_strategy=[assignors[spec["strategy"]]],
        **kafka_python_config(spec),
    )
    consumer.subscribe(spec["topics"], listener=Listener())
    cmds = commands()
    while True:
        for tp, msgs in consumer.poll(timeout_ms=100).items():
            for msg in msgs:
                m.got(tp, msg)
        try:
            cmd = cmds.get_nowait()
        except queue.Empty:
            continue
        if cmd == "commit":
            from kafka import TopicPartition

            offsets = m.to_commit()
            if offsets:
                consumer.commit(
                    {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for t, p, o in offsets}
                )
            emit("committed", offsets=[list(x) for x in offsets])
        elif cmd == "close":
            consumer.close()
            emit("done")
            return


# --- aiokafka ------------------------------------------------------------------------------


def aiokafka_member(spec):
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}
    m = Member()

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked):
            m.revoke([(tp.topic, tp.partition) for tp in revoked])

        async def on_partitions_assigned(self, assigned):
            m.assign([(tp.topic, tp.partition) for tp in assigned])

    async def run():
        consumer = AIOKafkaConsumer(
            group_id=spec["group"],
            client_id=spec.get("client_id", "aiokafka-member"),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=spec["session_timeout_ms"],
            heartbeat_interval_ms=500,
            partition_assignment_strategy=(assignors[spec["strategy"]],),
            **aiokafka_config(spec),
        )
        await consumer.start()
        consumer.subscribe(spec["topics"], listener=Listener())
        cmds = commands()
        while True:
            for tp, msgs in (await consumer.getmany(timeout_ms=100)).items():
                for msg in msgs:
                    m.got(tp, msg)
            try:
                cmd = cmds.get_nowait()
            except queue.Empty:
                continue
            if cmd == "commit":
                offsets = m.to_commit()
                if offsets:
                    await consumer.commit({TopicPartition(t, p): o for t, p, o in offsets})
                emit("committed", offsets=[list(x) for x in offsets])
            elif cmd == "close":
                await consumer.stop()
                emit("done")
                return

    asyncio.run(run())


def main():
    spec = json.loads(sys.argv[1])
    op = f"{spec['client'].replace('-', '_')}_{spec['role']}"
    try:
        globals()[op](spec)
    except Exception as e:  # noqa: BLE001 - the client's own error is the answer
        emit("error", error=f"{type(e).__name__}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
