"""The client: one gRPC channel to a Tributary server, with the bearer token on every call.

Administration (users, volumes, streams, topics, groups) returns the API's messages
(`tributary.v1.admin_pb2.Stream`, ...); data calls take and return the plain types of
`records`. Every refused call raises `TributaryError` with the gRPC status code.
"""

import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import grpc

from tributary.errors import TributaryError
from tributary.records import Fetched, Offset, Producible, to_batch, unpack
from tributary.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    consumer_pb2,
    consumer_pb2_grpc,
    producer_pb2,
    producer_pb2_grpc,
    records_pb2,
)

PemSource = Union[bytes, str, os.PathLike]

# Responses are bounded by the server (fetch budgets, the group credit), not by a guess
# here: a single stored batch may exceed grpcio's 4 MiB default. After a lost connection
# (a server restart), reconnect within 2 s rather than grpcio's backoff of up to 2 minutes.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 << 20),
    ("grpc.max_send_message_length", 256 << 20),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

_ENUMS = {
    "durability": {
        "sync": admin_pb2.DURABILITY_SYNC,
        "buffered": admin_pb2.DURABILITY_BUFFERED,
    },
    "timestamp_type": {
        "create_time": records_pb2.TIMESTAMP_TYPE_CREATE_TIME,
        "log_append_time": records_pb2.TIMESTAMP_TYPE_LOG_APPEND_TIME,
    },
}

_OFFSET_SPECS = {
    "earliest": consumer_pb2.OFFSET_SPEC_EARLIEST,
    "latest": consumer_pb2.OFFSET_SPEC_LATEST,
}


def _pem(source: Optional[PemSource]) -> Optional[bytes]:
    """PEM bytes as given, or read from a path."""
    if source is None or isinstance(source, bytes):
        return source
    with open(source, "rb") as f:
        return f.read()


def _attributes(kw: Mapping[str, object]) -> admin_pb2.StreamAttributes:
    """Stream attributes from keywords; `durability` and `timestamp_type` take names."""
    fields = dict(kw)
    for name, values in _ENUMS.items():
        if isinstance(fields.get(name), str):
            try:
                fields[name] = values[fields[name]]
            except KeyError:
                raise ValueError(f"{name} must be one of {sorted(values)}, not {fields[name]!r}") from None
    try:
        return admin_pb2.StreamAttributes(**fields)
    except ValueError as e:
        raise ValueError(f"stream attributes: {e}") from None


class Client:
    """A connection to a Tributary server.

    `url` is `http://HOST:PORT`, `https://HOST:PORT`, or `HOST:PORT` (TLS when a CA
    certificate is given). `ca_cert` (PEM bytes or a file path) verifies the server; without
    it an `https` URL uses the system's roots. `client_cert` and `client_key` authenticate
    with mutual TLS. `timeout` (seconds) bounds every unary call.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        ca_cert: Optional[PemSource] = None,
        *,
        client_cert: Optional[PemSource] = None,
        client_key: Optional[PemSource] = None,
        timeout: float = 30.0,
    ):
        parts = urlsplit(url if "://" in url else f"//{url}")
        if parts.scheme not in ("", "http", "https") or not parts.netloc:
            raise ValueError(f"url: expected http://HOST:PORT or https://HOST:PORT, got {url!r}")
        tls = parts.scheme == "https" or (parts.scheme == "" and ca_cert is not None)
        if parts.scheme == "http" and (ca_cert is not None or client_cert is not None):
            raise ValueError(f"url: {url!r} is plain http, but TLS certificates were given")
        if tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_pem(ca_cert),
                private_key=_pem(client_key),
                certificate_chain=_pem(client_cert),
            )
            self._channel = grpc.secure_channel(parts.netloc, creds, _CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(parts.netloc, _CHANNEL_OPTIONS)
        self.timeout = timeout
        self._metadata: Tuple[Tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.admin_stub = admin_pb2_grpc.AdminStub(self._channel)
        self.producer_stub = producer_pb2_grpc.ProducerStub(self._channel)
        self.consumer_stub = consumer_pb2_grpc.ConsumerStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, method, request, timeout: Optional[float] = None):
        """Calls a unary method of a stub with this client's credentials."""
        try:
            return method(request, metadata=self._metadata, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise TributaryError.from_rpc(e) from e

    # Cluster and users.

    def cluster(self) -> admin_pb2.Cluster:
        return self.call(self.admin_stub.GetCluster, admin_pb2.GetClusterRequest())

    def whoami(self) -> admin_pb2.User:
        return self.call(self.admin_stub.WhoAmI, admin_pb2.WhoAmIRequest())

    def create_user(
        self, name: str, groups: Sequence[str] = (), cluster_admin: bool = False
    ) -> Tuple[admin_pb2.User, str]:
        """Creates a user; returns it and its bearer token (shown only here)."""
        r = self.call(
            self.admin_stub.CreateUser,
            admin_pb2.CreateUserRequest(name=name, groups=groups, cluster_admin=cluster_admin),
        )
        return r.user, r.token

    def list_users(self) -> List[admin_pb2.User]:
        return list(self.call(self.admin_stub.ListUsers, admin_pb2.ListUsersRequest()).users)

    def delete_user(self, name: str) -> None:
        self.call(self.admin_stub.DeleteUser, admin_pb2.DeleteUserRequest(name=name))

    def rotate_token(self, name: str = "") -> str:
        """A new token for `name` (the caller by default); the old one stops working."""
        return self.call(self.admin_stub.RotateToken, admin_pb2.RotateTokenRequest(name=name)).token

    # Volumes.

    def create_volume(
        self,
        path: str,
        owner: str = "",
        admin_perm: Optional[str] = None,
        *,
        max_bytes: Optional[int] = None,
        max_streams: Optional[int] = None,
        max_topics: Optional[int] = None,
    ) -> admin_pb2.Volume:
        quotas = admin_pb2.VolumeQuotas(
            max_bytes=max_bytes, max_streams=max_streams, max_topics=max_topics
        )
        req = admin_pb2.CreateVolumeRequest(path=path, owner=owner, quotas=quotas)
        if admin_perm is not None:
            req.admin_perm = admin_perm
        return self.call(self.admin_stub.CreateVolume, req)

    def list_volumes(self) -> List[admin_pb2.Volume]:
        return list(self.call(self.admin_stub.ListVolumes, admin_pb2.ListVolumesRequest()).volumes)

    def describe_volume(self, path: str) -> admin_pb2.Volume:
        return self.call(self.admin_stub.DescribeVolume, admin_pb2.DescribeVolumeRequest(path=path))

    def delete_volume(self, path: str, force: bool = False) -> None:
        """Deletes a volume; with `force`, also every stream in it."""
        self.call(self.admin_stub.DeleteVolume, admin_pb2.DeleteVolumeRequest(path=path, force=force))

    # Streams.

    def create_stream(self, path: str, **attributes) -> admin_pb2.Stream:
        """Creates a stream. Attributes are `StreamAttributes` fields as keywords, e.g.
        `default_partitions=4, ttl_ms=0, durability="buffered", consume_perm="p"`."""
        req = admin_pb2.CreateStreamRequest(path=path, attributes=_attributes(attributes))
        return self.call(self.admin_stub.CreateStream, req)

    def list_streams(self, prefix: str = "") -> List[admin_pb2.Stream]:
        r = self.call(self.admin_stub.ListStreams, admin_pb2.ListStreamsRequest(prefix=prefix))
        return list(r.streams)

    def describe_stream(self, path: str) -> admin_pb2.Stream:
        return self.call(self.admin_stub.DescribeStream, admin_pb2.DescribeStreamRequest(path=path))

    def edit_stream(self, path: str, **attributes) -> admin_pb2.Stream:
        """Changes the attributes given; the rest stay as they are."""
        req = admin_pb2.EditStreamRequest(path=path, attributes=_attributes(attributes))
        return self.call(self.admin_stub.EditStream, req)

    def purge_stream(self, path: str) -> admin_pb2.PurgeStreamResponse:
        """Runs retention (and key compaction) on the stream now."""
        return self.call(self.admin_stub.PurgeStream, admin_pb2.PurgeStreamRequest(path=path))

    def delete_stream(self, path: str) -> None:
        self.call(self.admin_stub.DeleteStream, admin_pb2.DeleteStreamRequest(path=path))

    # Topics (`STREAM_PATH:TOPIC`).

    def create_topic(self, path: str, partitions: Optional[int] = None) -> admin_pb2.Topic:
        req = admin_pb2.CreateTopicRequest(path=path, partitions=partitions)
        return self.call(self.admin_stub.CreateTopic, req)

    def list_topics(self, stream: str) -> List[admin_pb2.Topic]:
        r = self.call(self.admin_stub.ListTopics, admin_pb2.ListTopicsRequest(stream=stream))
        return list(r.topics)

    def describe_topic(self, path: str) -> admin_pb2.Topic:
        """The topic with each partition's offsets, size and append times."""
        return self.call(self.admin_stub.DescribeTopic, admin_pb2.DescribeTopicRequest(path=path))

    def edit_topic(self, path: str, partitions: int) -> admin_pb2.Topic:
        """Grows the topic to `partitions` partitions (a topic never shrinks)."""
        req = admin_pb2.EditTopicRequest(path=path, partitions=partitions)
        return self.call(self.admin_stub.EditTopic, req)

    def delete_topic(self, path: str) -> None:
        self.call(self.admin_stub.DeleteTopic, admin_pb2.DeleteTopicRequest(path=path))

    # Data.

    def produce(
        self,
        topic: str,
        records: Iterable[Producible],
        key: Union[bytes, str, None] = None,
        partition: Optional[int] = None,
    ) -> List[Offset]:
        """Appends `records` to `topic` as one batch: all of them or none.

        Each record is a value (bytes or str, keyed with `key`; `None` is a tombstone) or a
        `Record`. Without `partition`, keyed records (an empty key too) go to
        `murmur2(key) % partitions` and unkeyed ones (`key=None`) to a partition chosen per
        request. Returns where each record went, in order.
        """
        req = producer_pb2.ProduceRequest(topic=topic, batch=to_batch(records, key))
        if partition is not None:
            req.partition = partition
        count = len(req.batch.records)
        r = self.call(self.producer_stub.Produce, req)
        if not r.acks:
            return []
        next_offset = {a.partition: a.base_offset for a in r.acks}
        partitions = list(r.record_partitions) or [r.acks[0].partition] * count
        out = []
        for p in partitions:
            out.append(Offset(p, next_offset[p]))
            next_offset[p] += 1
        return out

    def partitions(self, topic: str) -> int:
        """The topic's partition count (creating it, where the stream auto-creates topics)."""
        req = producer_pb2.GetPartitionsRequest(topic=topic)
        return self.call(self.producer_stub.GetPartitions, req).partitions

    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_bytes: int = 0,
        max_wait_ms: int = 0,
    ) -> Fetched:
        """Records of one partition from `offset`, waiting up to `max_wait_ms` at the end."""
        req = consumer_pb2.FetchRequest(
            topic=topic,
            partition=partition,
            offset=offset,
            max_bytes=max_bytes,
            max_wait_ms=max_wait_ms,
        )
        timeout = self.timeout + max_wait_ms / 1000
        r = self.call(self.consumer_stub.Fetch, req, timeout=timeout)
        name = topic.rsplit(":", 1)[-1]
        records = [c for b in r.batches for c in unpack(name, partition, b) if c.offset >= offset]
        next_offset = records[-1].offset + 1 if records else offset
        return Fetched(records, next_offset, r.high_watermark, r.log_start_offset)

    def list_offsets(
        self, topic: str, partitions: Sequence[int] = (), *, latest: bool = True
    ) -> Dict[int, int]:
        """Each partition's latest (high-water mark) or earliest offset; every partition
        when `partitions` is empty."""
        spec = _OFFSET_SPECS["latest" if latest else "earliest"]
        return self._offsets(topic, partitions, spec, 0)

    def offsets_for_time(
        self, topic: str, timestamp_ms: int, partitions: Sequence[int] = ()
    ) -> Dict[int, int]:
        """Each partition's first offset whose timestamp is at or after `timestamp_ms`."""
        return self._offsets(topic, partitions, consumer_pb2.OFFSET_SPEC_TIMESTAMP, timestamp_ms)

    def _offsets(self, topic, partitions, spec, timestamp_ms) -> Dict[int, int]:
        req = consumer_pb2.ListOffsetsRequest(
            topic=topic, partitions=partitions, spec=spec, timestamp_ms=timestamp_ms
        )
        r = self.call(self.consumer_stub.ListOffsets, req)
        return {o.partition: o.offset for o in r.offsets}

    # Consumer groups.

    def group_consumer(self, stream: str, group: str, topics: Sequence[str] = (), **config):
        """Joins `group` as a new member reading `topics` of `stream`: a `GroupConsumer`
        (see its documentation for `config`)."""
        from tributary.group import GroupConsumer

        return GroupConsumer(self, stream, group, topics, **config)

    def commit_offsets(
        self, stream: str, group: str, offsets: Mapping[Tuple[str, int], int]
    ) -> None:
        """Stores `{(topic, partition): next offset}` as the group's cursors; allowed only
        while the group has no members (members commit through their `GroupConsumer`)."""
        cursors = [
            consumer_pb2.CursorCommit(topic=t, partition=p, offset=o)
            for (t, p), o in sorted(offsets.items())
        ]
        req = consumer_pb2.CommitOffsetsRequest(stream=stream, group=group, cursors=cursors)
        self.call(self.consumer_stub.CommitOffsets, req)

    def list_groups(self, stream: str) -> List[consumer_pb2.GroupSummary]:
        r = self.call(self.consumer_stub.ListGroups, consumer_pb2.ListGroupsRequest(stream=stream))
        return list(r.groups)

    def describe_group(self, stream: str, group: str) -> consumer_pb2.GroupDescription:
        """Members, generation, and each partition's cursor, end and lag."""
        req = consumer_pb2.DescribeGroupRequest(stream=stream, group=group)
        return self.call(self.consumer_stub.DescribeGroup, req)

    def reset_group(
        self,
        stream: str,
        group: str,
        to: Union[str, int] = "earliest",
        topic: str = "",
        timestamp_ms: Optional[int] = None,
    ) -> consumer_pb2.GroupDescription:
        """Moves the group's cursors (no member may be reading): to `"earliest"`,
        `"latest"`, an offset, or the first record at or after `timestamp_ms`."""
        req = consumer_pb2.ResetGroupRequest(stream=stream, group=group, topic=topic)
        if timestamp_ms is not None:
            req.to = consumer_pb2.OFFSET_SPEC_TIMESTAMP
            req.timestamp_ms = timestamp_ms
        elif isinstance(to, int):
            req.offset = to
        elif to in _OFFSET_SPECS:
            req.to = _OFFSET_SPECS[to]
        else:
            raise ValueError(f"to: expected 'earliest', 'latest' or an offset, got {to!r}")
        return self.call(self.consumer_stub.ResetGroup, req)

    def delete_group(self, stream: str, group: str) -> None:
        """Deletes the group's cursors (no member may be reading)."""
        req = consumer_pb2.DeleteGroupRequest(stream=stream, group=group)
        self.call(self.consumer_stub.DeleteGroup, req)
