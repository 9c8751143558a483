"""Python client for Tributary.

    from tributary import Client

    client = Client("http://127.0.0.1:7400", token="trb_...")
    client.create_stream("/acme/events", default_partitions=4)
    offsets = client.produce("/acme/events:clicks", [b"a", b"b"], key="user-1")
    with client.group_consumer("/acme/events", "billing", ["clicks"]) as consumer:
        for record in consumer:
            ...

`tributary.v1` holds the modules generated from `proto/` (see generate.py); the rest is a
small wrapper over them. Every refused call raises `TributaryError`.
"""

try:
    from tributary.v1 import consumer_pb2 as _generated  # noqa: F401
except ImportError as e:  # pragma: no cover - a setup error, said plainly
    raise ImportError(
        "tributary.v1 is generated from proto/: run `python clients/python/generate.py`, "
        "or install the package with pip (which generates it)"
    ) from e

from tributary.client import Client
from tributary.errors import TributaryError
from tributary.group import GroupConsumer
from tributary.records import ConsumedRecord, Fetched, Offset, Record

__all__ = [
    "Client",
    "ConsumedRecord",
    "Fetched",
    "GroupConsumer",
    "Offset",
    "Record",
    "TributaryError",
]
