"""Stock Kafka clients, driven by the end-to-end tests (tests/tests/kafka_clients.rs).

One call per run: the only argument is a JSON object saying which client, which operation
and how to connect; the one line printed is a JSON object with the result, or with
`error` (the client's own words) when the client failed. Each operation is a function
`CLIENT_OP` below.

    {"client": "confluent" | "kafka-python" | "aiokafka",
     "op": "metadata",
     "bootstrap": "HOST:PORT",
     "topics": [NAME, ...]          # metadata of these; all topics when absent
     "security": {"protocol": "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL",
                  "mechanism": "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER",
                  "user": ..., "password": ...,   # OAUTHBEARER: password is the token
                  "ca": PEM FILE, "cert": PEM FILE, "key": PEM FILE}}

Metadata's result: {"topics": {NAME: PARTITION COUNT, ...}}; a topic the broker answered
with an error maps to the error's name instead.

Records, as produce takes and consume answers them (texts are UTF-8; null is null):

    {"partition": N, "key": TEXT | null, "value": TEXT | null,
     "headers": [[KEY, TEXT | null], ...], "timestamp": MS}      # consume adds "offset"

    "produce":  + "topic", "records", "compression": "none" | "gzip" | "snappy" | "lz4" | "zstd"
                -> {"produced": N}
    "consume":  + "topic", "count": N -> {"records": [...]} in (partition, offset) order,
                from the earliest offset of every partition, without a group
    "offsets_for_times": + "topic", "partition", "times": [MS, ...]
                -> {"offsets": [OFFSET | -1 | null, ...]} as the client reports "none"
    "admin":    + "steps": [{"do": "create", "name", "partitions", "configs": {K: V}},
                            {"do": "grow", "name", "partitions"},
                            {"do": "describe", "name"},   -> {K: V} of the topic's configs
                            {"do": "alter", "name", "configs": {K: V}},   # incremental SET
                            {"do": "delete", "name"}]
                -> {"steps": ["ok" | {"error": KAFKA ERROR NAME} | {K: V}, ...]}
"""

import asyncio
import json
import re
import sys
import time

TIMEOUT_S = 10
# How long a consume waits for its records: it ends as soon as it has them all.
CONSUME_S = 30


def security(spec):
    return spec.get("security") or {"protocol": "PLAINTEXT"}


def raw(text):
    return None if text is None else text.encode()


def text(raw_bytes):
    return None if raw_bytes is None else bytes(raw_bytes).decode()


def record(partition, offset, key, value, headers, timestamp):
    return {
        "partition": partition,
        "offset": offset,
        "key": text(key),
        "value": text(value),
        "headers": [[k, text(v)] for k, v in headers or []],
        "timestamp": timestamp,
    }


def send_args(r):
    """A record as kafka-python's and aiokafka's `send` take it."""
    return {
        "key": raw(r["key"]),
        "value": raw(r["value"]),
        "partition": r["partition"],
        "timestamp_ms": r["timestamp"],
        "headers": [(k, raw(v)) for k, v in r["headers"]],
    }


def in_order(records):
    records.sort(key=lambda r: (r["partition"], r["offset"]))
    return {"records": records}


def offsets_at(consumer, times, find):
    """`find(time)` for each time, then the consumer closed."""
    try:
        return {"offsets": [find(t) for t in times]}
    except Exception as e:  # noqa: BLE001 - the client's error is the answer
        return {"error": kafka_error(e)}
    finally:
        consumer.close()


def run_steps(admin, steps, step):
    """`step(admin, s)` for each admin step; a refused one answers its error's name."""
    answers = []
    for s in steps:
        try:
            answers.append(step(admin, s))
        except Exception as e:  # noqa: BLE001 - the broker's error is the answer
            answers.append({"error": kafka_error(e)})
    return {"steps": answers}


def kafka_error(e):
    """A Kafka error's name, from any of the Python clients' exceptions."""
    arg = e.args[0] if getattr(e, "args", None) else None
    if hasattr(arg, "name") and callable(arg.name):  # confluent's KafkaError
        return arg.name()
    return getattr(e, "message", None) or f"{type(e).__name__}: {e}"


# --- confluent-kafka (librdkafka) ---------------------------------------------------------


def confluent_config(spec):
    sec = security(spec)
    errors = []
    conf = {
        "bootstrap.servers": spec["bootstrap"],
        "security.protocol": sec["protocol"],
        "socket.timeout.ms": TIMEOUT_S * 1000,
        # Surface an authentication failure at once rather than after the timeout.
        "error_cb": lambda e: errors.append(str(e)),
    }
    mechanism = sec.get("mechanism")
    if mechanism == "OAUTHBEARER":
        token = sec["password"]
        conf["sasl.mechanisms"] = "OAUTHBEARER"
        conf["oauth_cb"] = lambda _config: (token, time.time() + 3600)
    elif mechanism:
        conf["sasl.mechanisms"] = mechanism
        conf["sasl.username"] = sec["user"]
        conf["sasl.password"] = sec["password"]
    if sec.get("ca"):
        conf["ssl.ca.location"] = sec["ca"]
    if sec.get("cert"):
        conf["ssl.certificate.location"] = sec["cert"]
        conf["ssl.key.location"] = sec["key"]
    return conf, errors


def confluent_metadata(spec):
    from confluent_kafka.admin import AdminClient

    conf, errors = confluent_config(spec)
    admin = AdminClient(conf)
    if "OAUTHBEARER" == security(spec).get("mechanism"):
        admin.poll(0)  # runs oauth_cb
    deadline = time.time() + TIMEOUT_S
    topics = {}
    names = spec.get("topics")
    try:
        for name in names if names is not None else [None]:
            while True:
                admin.poll(0.1)  # serves error_cb
                if errors and any("uthenticat" in e for e in errors):
                    return {"error": "; ".join(errors)}
                try:
                    md = admin.list_topics(topic=name, timeout=1)
                    break
                except Exception as e:  # noqa: BLE001 - the client's own error is the answer
                    if time.time() > deadline:
                        return {"error": f"{e}; {'; '.join(errors)}"}
            for t in md.topics.values():
                topics[t.topic] = t.error.name() if t.error else len(t.partitions)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{e}; {'; '.join(errors)}"}
    return {"topics": topics}


def confluent_produce(spec):
    from confluent_kafka import Producer

    conf, errors = confluent_config(spec)
    conf["compression.type"] = spec.get("compression", "none")
    conf["linger.ms"] = 100  # the records go together, in few (compressed) batches
    producer = Producer(conf)
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(err.name())

    for r in spec["records"]:
        producer.produce(
            spec["topic"],
            key=raw(r["key"]),
            value=raw(r["value"]),
            partition=r["partition"],
            timestamp=r["timestamp"],
            headers=[(k, raw(v)) for k, v in r["headers"]],
            on_delivery=delivered,
        )
    left = producer.flush(TIMEOUT_S)
    if left or failures:
        return {"error": f"{left} undelivered; {failures}; {errors}"}
    return {"produced": len(spec["records"])}


def confluent_consumer(spec):
    from confluent_kafka import Consumer

    conf, _errors = confluent_config(spec)
    # A group id is required, though partitions are assigned and nothing is committed.
    conf.update({"group.id": "tributary-e2e", "enable.auto.commit": False})
    return Consumer(conf)


def confluent_consume(spec):
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    consumer = confluent_consumer(spec)
    try:
        md = consumer.list_topics(spec["topic"], timeout=TIMEOUT_S)
        parts = md.topics[spec["topic"]].partitions
        consumer.assign([TopicPartition(spec["topic"], p, OFFSET_BEGINNING) for p in parts])
        records = []
        deadline = time.time() + CONSUME_S
        while len(records) < spec["count"] and time.time() < deadline:
            m = consumer.poll(0.2)
            if m is None:
                continue
            if m.error():
                return {"error": m.error().name()}
            _type, ts = m.timestamp()
            records.append(record(m.partition(), m.offset(), m.key(), m.value(), m.headers(), ts))
        return in_order(records)
    finally:
        consumer.close()


def confluent_offsets_for_times(spec):
    from confluent_kafka import KafkaException, TopicPartition

    consumer = confluent_consumer(spec)

    def find(t):
        tp = TopicPartition(spec["topic"], spec["partition"], t)
        (found,) = consumer.offsets_for_times([tp], timeout=TIMEOUT_S)
        if found.error:
            raise KafkaException(found.error)
        return found.offset

    return offsets_at(consumer, spec["times"], find)


def confluent_step(admin, step):
    from confluent_kafka.admin import (
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        NewTopic,
        ResourceType,
    )

    name = step["name"]
    resource = ConfigResource(ResourceType.TOPIC, name)
    match step["do"]:
        case "create":
            t = NewTopic(name, step["partitions"], config=step.get("configs", {}))
            admin.create_topics([t])[name].result(TIMEOUT_S)
        case "grow":
            admin.create_partitions([NewPartitions(name, step["partitions"])])[name].result()
        case "describe":
            entries = admin.describe_configs([resource])[resource].result(TIMEOUT_S)
            return {k: e.value for k, e in sorted(entries.items())}
        case "alter":
            for k, v in step["configs"].items():
                entry = ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                resource.add_incremental_config(entry)
            admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)
        case "delete":
            admin.delete_topics([name])[name].result(TIMEOUT_S)
    return "ok"


def confluent_admin(spec):
    from confluent_kafka.admin import AdminClient

    conf, _errors = confluent_config(spec)
    return run_steps(AdminClient(conf), spec["steps"], confluent_step)


# --- kafka-python -------------------------------------------------------------------------


def kafka_python_config(spec):
    sec = security(spec)
    conf = {
        "bootstrap_servers": spec["bootstrap"],
        "security_protocol": sec["protocol"],
        "request_timeout_ms": TIMEOUT_S * 1000,
    }
    mechanism = sec.get("mechanism")
    if mechanism == "OAUTHBEARER":
        from kafka.net.sasl.oauth import AbstractTokenProvider

        class Provider(AbstractTokenProvider):
            def token(self):
                return sec["password"]

        conf["sasl_mechanism"] = "OAUTHBEARER"
        conf["sasl_oauth_token_provider"] = Provider()
    elif mechanism:
        conf["sasl_mechanism"] = mechanism
        conf["sasl_plain_username"] = sec["user"]
        conf["sasl_plain_password"] = sec["password"]
    if sec.get("ca"):
        conf["ssl_cafile"] = sec["ca"]
    if sec.get("cert"):
        conf["ssl_certfile"] = sec["cert"]
        conf["ssl_keyfile"] = sec["key"]
    return conf


def kafka_python_metadata(spec):
    from kafka import KafkaConsumer

    try:
        consumer = KafkaConsumer(**kafka_python_config(spec))
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    try:
        names = spec.get("topics")
        if names is None:
            names = sorted(consumer.topics())
        topics = {}
        for name in names:
            parts = consumer.partitions_for_topic(name)
            topics[name] = len(parts) if parts is not None else "UNKNOWN_TOPIC_OR_PART"
        return {"topics": topics}
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        consumer.close()


def kafka_python_produce(spec):
    from kafka import KafkaProducer

    compression = spec.get("compression", "none")
    try:
        producer = KafkaProducer(
            **kafka_python_config(spec),
            compression_type=None if compression == "none" else compression,
            linger_ms=100,
            # Idempotence (kafka-python's default) is tested on its own.
            enable_idempotence=False,
        )
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    try:
        sent = [producer.send(spec["topic"], **send_args(r)) for r in spec["records"]]
        producer.flush(TIMEOUT_S)
        for f in sent:
            f.get(TIMEOUT_S)
        return {"produced": len(sent)}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_error(e)}
    finally:
        producer.close(TIMEOUT_S)


def kafka_python_consumer(spec):
    from kafka import KafkaConsumer

    return KafkaConsumer(
        **kafka_python_config(spec), enable_auto_commit=False, auto_offset_reset="earliest"
    )


def kafka_python_consume(spec):
    from kafka import TopicPartition

    consumer = kafka_python_consumer(spec)
    try:
        parts = consumer.partitions_for_topic(spec["topic"]) or []
        consumer.assign([TopicPartition(spec["topic"], p) for p in parts])
        consumer.seek_to_beginning()
        records = []
        deadline = time.time() + CONSUME_S
        while len(records) < spec["count"] and time.time() < deadline:
            for msgs in consumer.poll(timeout_ms=200).values():
                for m in msgs:
                    records.append(
                        record(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp)
                    )
        return in_order(records)
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_error(e)}
    finally:
        consumer.close()


def kafka_python_offsets_for_times(spec):
    from kafka import TopicPartition

    consumer = kafka_python_consumer(spec)
    tp = TopicPartition(spec["topic"], spec["partition"])

    def find(t):
        found = consumer.offsets_for_times({tp: t})[tp]
        return None if found is None else found.offset

    return offsets_at(consumer, spec["times"], find)


def kafka_python_step(admin, step):
    from kafka import errors as Errors
    from kafka.admin import ConfigResource, ConfigResourceType

    name = step["name"]
    match step["do"]:
        case "create":
            t = {"num_partitions": step["partitions"], "configs": step.get("configs", {})}
            admin.create_topics({name: t})
        case "grow":
            admin.create_partitions({name: step["partitions"]})
        case "describe":
            resource = ConfigResource(ConfigResourceType.TOPIC, name)
            answer = admin.describe_configs([resource], config_filter="all")
            (configs,) = answer["topic"].values()
            return {k: c["value"] for k, c in sorted(configs.items())}
        case "alter":
            resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=step["configs"])
            answer = admin.alter_configs([resource], raise_on_unknown=False)
            (result,) = answer["topic"].values()
            # A refusal comes back as its text: "[Error CODE] Class: message".
            refused = re.match(r"\[Error (\d+)\]", str(result))
            if refused:
                return {"error": Errors.for_code(int(refused[1])).message}
        case "delete":
            admin.delete_topics([name])
    return "ok"


def kafka_python_admin(spec):
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**kafka_python_config(spec))
    try:
        return run_steps(admin, spec["steps"], kafka_python_step)
    finally:
        admin.close()


# --- aiokafka -----------------------------------------------------------------------------


def aiokafka_config(spec):
    sec = security(spec)
    conf = {
        "bootstrap_servers": spec["bootstrap"],
        "security_protocol": sec["protocol"],
        "request_timeout_ms": TIMEOUT_S * 1000,
    }
    mechanism = sec.get("mechanism")
    if mechanism == "OAUTHBEARER":
        from aiokafka.abc import AbstractTokenProvider

        class Provider(AbstractTokenProvider):
            async def token(self):
                return sec["password"]

        conf["sasl_mechanism"] = "OAUTHBEARER"
        conf["sasl_oauth_token_provider"] = Provider()
    elif mechanism:
        conf["sasl_mechanism"] = mechanism
        conf["sasl_plain_username"] = sec["user"]
        conf["sasl_plain_password"] = sec["password"]
    if sec["protocol"] in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        conf["ssl_context"] = create_ssl_context(
            cafile=sec.get("ca"), certfile=sec.get("cert"), keyfile=sec.get("key")
        )
    return conf


def aiokafka_metadata(spec):
    from aiokafka.admin import AIOKafkaAdminClient

    async def run():
        admin = AIOKafkaAdminClient(**aiokafka_config(spec))
        try:
            await admin.start()
        except Exception as e:  # noqa: BLE001
            await admin.close()
            return {"error": f"{type(e).__name__}: {e}"}
        try:
            names = spec.get("topics")
            if names is None:
                names = sorted(await admin.list_topics())
            topics = {}
            for t in await admin.describe_topics(names):
                code = t["error_code"]
                topics[t["topic"]] = len(t["partitions"]) if code == 0 else f"error {code}"
            return {"topics": topics}
        except Exception as e:  # noqa: BLE001
            return {"error": f"{type(e).__name__}: {e}"}
        finally:
            await admin.close()

    return asyncio.run(run())


def aiokafka_produce(spec):
    from aiokafka import AIOKafkaProducer

    compression = spec.get("compression", "none")

    async def run():
        producer = AIOKafkaProducer(
            **aiokafka_config(spec),
            compression_type=None if compression == "none" else compression,
            linger_ms=100,
        )
        await producer.start()
        try:
            sent = [await producer.send(spec["topic"], **send_args(r)) for r in spec["records"]]
            for f in sent:
                await f
            return {"produced": len(sent)}
        finally:
            await producer.stop()

    try:
        return asyncio.run(run())
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_error(e)}


def aiokafka_consume(spec):
    from aiokafka import AIOKafkaConsumer

    async def run():
        # Without a group, a subscription takes every partition, from the earliest offset.
        consumer = AIOKafkaConsumer(
            spec["topic"],
            **aiokafka_config(spec),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            records = []
            deadline = time.time() + CONSUME_S
            while len(records) < spec["count"] and time.time() < deadline:
                batch = await consumer.getmany(timeout_ms=200)
                for msgs in batch.values():
                    for m in msgs:
                        records.append(
                            record(m.partition, m.offset, m.key, m.value, m.headers, m.timestamp)
                        )
            return in_order(records)
        finally:
            await consumer.stop()

    try:
        return asyncio.run(run())
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_error(e)}


def main():
    spec = json.loads(sys.argv[1])
    op = f"{spec['client'].replace('-', '_')}_{spec['op']}"
    result = globals()[op](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
