"""Stock Kafka clients against the Kafka door's security (tests/tests/kafka_security.rs):
rate quotas answered with throttle_time_ms, a rotated token ending a session, and each
authorization error code as the clients report it.

Called as clients.py is (one JSON spec argument, one JSON line printed) and with its
connection settings (`confluent_config`, `kafka_python_config`); the spec adds "topic",
"group" and "count" where an operation needs them. Errors are answered by their Kafka
name ("TOPIC_AUTHORIZATION_FAILED"), as each client reports them.
"""

import json
import sys
import time

from clients import TIMEOUT_S, confluent_config, kafka_python_config


def confluent_error(e):
    """The Kafka name of a confluent-kafka error or exception."""
    err = e.args[0] if e.args and hasattr(e.args[0], "name") else e
    return err.name() if hasattr(err, "name") else str(e)


# --- confluent-kafka ---------------------------------------------------------------------


def confluent_produce(spec):
    """Produces `count` records of 1 KiB; the deliveries and the largest throttle the
    client reported (librdkafka's throttle callback). `timeout_s` bounds each record's
    delivery: a throttled client holds the records after a throttled request for the
    throttle time, so it must be longer than the whole debt, however the records batch."""
    from confluent_kafka import Producer

    conf, errors = confluent_config(spec)
    throttles = []
    timeout_s = spec.get("timeout_s", TIMEOUT_S)
    conf["throttle_cb"] = lambda event: throttles.append(event.throttle_time * 1000)
    conf["message.timeout.ms"] = timeout_s * 1000
    producer = Producer(conf)
    delivered, failed = [], []

    def report(err, _msg):
        (failed if err else delivered).append(err.name() if err else 1)

    for _ in range(spec.get("count", 1)):
        producer.produce(spec["topic"], value=b"x" * 1024, partition=0, on_delivery=report)
        producer.poll(0)
    producer.flush(timeout_s * 3)
    producer.poll(0.1)  # serves throttle_cb for the last response
    refused = [e for e in errors if "uthenticat" in e]
    if refused:
        return {"error": refused[0], "delivered": len(delivered)}
    if failed:
        return {"error": failed[0], "delivered": len(delivered)}
    if len(delivered) < spec.get("count", 1):
        return {"error": "; ".join(errors) or "not delivered", "delivered": len(delivered)}
    return {"delivered": len(delivered), "throttle_ms": max(throttles, default=0)}


def confluent_rotation(spec):
    """Produces one record; says so and waits for a line on stdin (the test rotates the
    token meanwhile); then produces again on the same producer: the second delivery, or
    the error the client reports."""
    from confluent_kafka import Producer

    conf, errors = confluent_config(spec)
    conf["message.timeout.ms"] = TIMEOUT_S * 1000
    producer = Producer(conf)
    results = []

    def report(err, _msg):
        results.append(err.name() if err else "delivered")

    producer.produce(spec["topic"], value=b"before", partition=0, on_delivery=report)
    producer.flush(TIMEOUT_S)
    print(json.dumps({"first": results[:1]}), flush=True)
    sys.stdin.readline()
    producer.produce(spec["topic"], value=b"after", partition=0, on_delivery=report)
    deadline = time.time() + TIMEOUT_S * 2
    while time.time() < deadline and len(results) < 2:
        producer.poll(0.1)
        if any("uthenticat" in e for e in errors):
            return {"error": "; ".join(errors)}
    return {"second": results[1:], "errors": errors}


def confluent_fetch(spec):
    """Reads partition 0 from the start, without a group: the first record or error."""
    from confluent_kafka import Consumer, TopicPartition

    conf, errors = confluent_config(spec)
    # librdkafka's consumer needs a group id even to read without one; the group's own
    # refusal (its coordinator's) is reported beside the fetch's, and skipped.
    conf["group.id"] = "unused"
    conf["enable.auto.commit"] = False
    consumer = Consumer(conf)
    try:
        consumer.assign([TopicPartition(spec["topic"], 0, 0)])
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().name() != "GROUP_AUTHORIZATION_FAILED":
                    return {"error": msg.error().name()}
                continue
            return {"read": len(msg.value())}
        return {"error": "; ".join(errors) or "nothing read"}
    finally:
        consumer.close()


def confluent_join(spec):
    """Subscribes as a member of `group`: the assignment, or the error."""
    from confluent_kafka import Consumer

    conf, errors = confluent_config(spec)
    conf["group.id"] = spec["group"]
    conf["enable.auto.commit"] = False
    assigned = []
    consumer = Consumer(conf)
    try:
        consumer.subscribe([spec["topic"]], on_assign=lambda _c, ps: assigned.extend(ps))
        deadline = time.time() + TIMEOUT_S * 2
        while time.time() < deadline and not assigned:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                return {"error": msg.error().name()}
        if assigned:
            return {"assigned": len(assigned)}
        return {"error": "; ".join(errors) or "no assignment"}
    finally:
        consumer.close()


def confluent_commit(spec):
    """Commits offset 1 of partition 0 for `group`, without joining it (the admin
    client's: a consumer's commit only waits while its coordinator is refused)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    conf, _errors = confluent_config(spec)
    admin = AdminClient(conf)
    offsets = [TopicPartition(spec["topic"], 0, 1)]
    futures = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(spec["group"], offsets)], request_timeout=TIMEOUT_S
    )
    try:
        for f in futures.values():
            for tp in f.result(TIMEOUT_S).topic_partitions:
                if tp.error:
                    return {"error": tp.error.name()}
        return {"committed": True}
    except Exception as e:  # noqa: BLE001
        return {"error": confluent_error(e)}


def confluent_create_topic(spec):
    from confluent_kafka.admin import AdminClient, NewTopic

    conf, _errors = confluent_config(spec)
    admin = AdminClient(conf)
    futures = admin.create_topics([NewTopic(spec["topic"], 1)], request_timeout=TIMEOUT_S)
    try:
        futures[spec["topic"]].result(TIMEOUT_S)
        return {"created": True}
    except Exception as e:  # noqa: BLE001 - the client's own error is the answer
        return {"error": confluent_error(e)}


def confluent_alter_broker(spec):
    """Sets a broker config (cluster admins only)."""
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    conf, _errors = confluent_config(spec)
    admin = AdminClient(conf)
    entry = ConfigEntry("log.retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[entry])
    futures = admin.incremental_alter_configs([resource], request_timeout=TIMEOUT_S)
    try:
        for f in futures.values():
            f.result(TIMEOUT_S)
        return {"altered": True}
    except Exception as e:  # noqa: BLE001
        return {"error": confluent_error(e)}


# --- kafka-python ------------------------------------------------------------------------


def kafka_python_error(e):
    return getattr(e, "message", None) or type(e).__name__


def kafka_python_produce(spec):
    from kafka import KafkaProducer

    try:
        producer = KafkaProducer(**kafka_python_config(spec))
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        producer.send(spec["topic"], value=b"x" * 1024, partition=0).get(TIMEOUT_S)
        return {"delivered": 1}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        producer.close(timeout=1)


def kafka_python_consumer(spec, **extra):
    from kafka import KafkaConsumer

    conf = kafka_python_config(spec)
    conf.update(enable_auto_commit=False, **extra)
    return KafkaConsumer(**conf)


def kafka_python_fetch(spec):
    from kafka import TopicPartition

    try:
        consumer = kafka_python_consumer(spec)
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        tp = TopicPartition(spec["topic"], 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        deadline = time.time() + TIMEOUT_S
        while time.time() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                return {"read": len(records[0].value)}
        return {"error": "nothing read"}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        consumer.close()


def kafka_python_join(spec):
    try:
        consumer = kafka_python_consumer(spec, group_id=spec["group"])
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        consumer.subscribe([spec["topic"]])
        deadline = time.time() + TIMEOUT_S * 2
        while time.time() < deadline and not consumer.assignment():
            consumer.poll(timeout_ms=500)
        return {"assigned": len(consumer.assignment())}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        consumer.close()


def kafka_python_commit(spec):
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    try:
        consumer = kafka_python_consumer(spec, group_id=spec["group"])
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        tp = TopicPartition(spec["topic"], 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(1, "", -1)})
        return {"committed": True}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        consumer.close()


def kafka_python_admin(spec):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**kafka_python_config(spec))


def kafka_python_metadata(spec):
    """The named topic's error, as Metadata answers it."""
    try:
        admin = kafka_python_admin(spec)
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        for t in admin.describe_topics([spec["topic"]]):
            code = t["error_code"]
            if code:
                from kafka.errors import for_code

                return {"error": for_code(code).message}
            return {"partitions": len(t["partitions"])}
        return {"error": "no topic answered"}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        admin.close()


def kafka_python_create_topic(spec):
    from kafka.admin import NewTopic

    try:
        admin = kafka_python_admin(spec)
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        admin.create_topics([NewTopic(spec["topic"], 1, 1)], timeout_ms=TIMEOUT_S * 1000)
        return {"created": True}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        admin.close()


def kafka_python_alter_broker(spec):
    from kafka.admin import ConfigResource, ConfigResourceType

    try:
        admin = kafka_python_admin(spec)
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    try:
        resource = ConfigResource(
            ConfigResourceType.BROKER, "0", configs={"log.retention.ms": "1000"}
        )
        # Refusals come back per resource, as text: "[Error 31] ClusterAuthorization…".
        for errors in admin.alter_configs([resource], raise_on_unknown=False).values():
            for error in errors.values():
                if error:
                    from kafka.errors import for_code

                    code = int(error.split("]")[0].removeprefix("[Error "))
                    return {"error": for_code(code).message}
        return {"altered": True}
    except Exception as e:  # noqa: BLE001
        return {"error": kafka_python_error(e)}
    finally:
        admin.close()


def main():
    spec = json.loads(sys.argv[1])
    op = f"{spec['client'].replace('-', '_')}_{spec['op']}"
    result = globals()[op](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
