"""Stock Kafka clients, driven by the end-to-end tests (tests/tests/kafka_clients.rs).

One call per run: the only argument is a JSON object saying which client, which operation
and how to connect; the one line printed is a JSON object with the result, or with
`error` (the client's own words) when the client failed. Each operation is a function
`CLIENT_OP` below; adding produce or consume means adding such functions.

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
"""

import asyncio
import json
import sys
import time

TIMEOUT_S = 10


def security(spec):
    return spec.get("security") or {"protocol": "PLAINTEXT"}


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


def main():
    spec = json.loads(sys.argv[1])
    op = f"{spec['client'].replace('-', '_')}_{spec['op']}"
    result = globals()[op](spec)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
