"""Health checking and server reflection against a running Tributary server, with grpcio's
own clients (not Tributary's): what grpcurl, a load balancer or a Kubernetes probe does,
with no proto files.

usage: grpc_probe.py HOST:PORT TOKEN

Prints one line per step. tests/tests/ops.rs reads them: after `WATCH SERVING` it sends the
server SIGTERM (the server runs with a shutdown delay, so it keeps serving while it reports
NOT_SERVING); the script then expects the open Watch stream to say NOT_SERVING and end, and
a new Check to say NOT_SERVING. Any unmet expectation exits non-zero.
"""

import sys

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ["", "tributary.v1.Admin", "tributary.v1.Producer", "tributary.v1.Consumer"]


def say(*words):
    print(*words, flush=True)


def main(addr, token):
    channel = grpc.insecure_channel(addr)
    health = health_pb2_grpc.HealthStub(channel)

    for service in SERVICES:
        r = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert r.status == SERVING, (service, r)
    try:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        raise AssertionError("an unknown service was reported healthy")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
    say("CHECK SERVING")

    # Reflection: the services, then a call built only from the descriptors it returned.
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    for s in SERVICES[1:] + ["grpc.health.v1.Health"]:
        assert s in services, services
    pool = DescriptorPool(db)
    for name, method in [
        ("tributary.v1.Producer", "Produce"),
        ("tributary.v1.Consumer", "Fetch"),
        ("tributary.v1.Admin", "Checkpoint"),
    ]:
        assert method in pool.FindServiceByName(name).methods_by_name, (name, method)
    get_cluster = pool.FindServiceByName("tributary.v1.Admin").methods_by_name["GetCluster"]
    request = message_factory.GetMessageClass(get_cluster.input_type)
    response = message_factory.GetMessageClass(get_cluster.output_type)
    call = channel.unary_unary(
        "/tributary.v1.Admin/GetCluster",
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString,
    )
    cluster = call(request(), metadata=[("authorization", "Bearer " + token)], timeout=10)
    say("CLUSTER", cluster.cluster_id)

    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=120)
    first = next(watch)
    assert first.status == SERVING, first
    say("WATCH SERVING")
    second = next(watch)
    assert second.status == NOT_SERVING, second
    say("WATCH NOT_SERVING")
    for extra in watch:
        raise AssertionError(f"the watch went on after NOT_SERVING: {extra}")
    say("WATCH END")

    r = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert r.status == NOT_SERVING, r
    say("CHECK NOT_SERVING")


if __name__ == "__main__":
    main(*sys.argv[1:])
