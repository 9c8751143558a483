"""An idempotent producer whose produce response is lost, driven by the end-to-end tests
(tests/tests/kafka_idempotence.rs) with a stock client: confluent-kafka (librdkafka, with
enable.idempotence=true) or kafka-python 3 (idempotent by default).

The only argument is a JSON object:

    {"client": "confluent" | "kafka-python", "bootstrap": "HOST:PORT", "topic": NAME,
     "user": ..., "password": ...}          # SASL PLAIN over plaintext

The producer writes `first` to partition 0 and waits for its acknowledgement (its
connection, producer id and metadata are then set up), prints {"ready": true}, and waits
for a line on stdin: the test arms its proxy to swallow the next response. It then writes
`second`, whose produce response is lost and which the client retries on a new
connection, and prints {"offsets": [FIRST, SECOND]} or {"error": ...}.
"""

import json
import sys

TIMEOUT_S = 30


def wait_for_test():
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()


def confluent(spec):
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": spec["user"],
            "sasl.password": spec["password"],
            "enable.idempotence": True,
            "retry.backoff.ms": 100,
            "socket.timeout.ms": TIMEOUT_S * 1000,
        }
    )
    offsets, errors = [], []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            offsets.append(msg.offset())

    for value, pause in ((b"first", True), (b"second", False)):
        producer.produce(spec["topic"], value=value, partition=0, on_delivery=delivered)
        if producer.flush(TIMEOUT_S) != 0:
            return {"error": f"{value!r} not delivered in {TIMEOUT_S} s", "errors": errors}
        if errors:
            return {"error": errors[0]}
        if pause:
            wait_for_test()
    return {"offsets": offsets}


def kafka_python(spec):
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=spec["bootstrap"],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username=spec["user"],
        sasl_plain_password=spec["password"],
        retry_backoff_ms=100,
        request_timeout_ms=TIMEOUT_S * 1000,
    )
    if not producer.config["enable_idempotence"]:
        return {"error": "kafka-python's producer is not idempotent by default"}
    offsets = []
    for value, pause in ((b"first", True), (b"second", False)):
        meta = producer.send(spec["topic"], value=value, partition=0).get(timeout=TIMEOUT_S)
        offsets.append(meta.offset)
        if pause:
            wait_for_test()
    producer.close(timeout=TIMEOUT_S)
    return {"offsets": offsets}


def main():
    spec = json.loads(sys.argv[1])
    run = {"confluent": confluent, "kafka-python": kafka_python}[spec["client"]]
    try:
        result = run(spec)
    except Exception as e:  # the client's own words, for the test's message
        result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
