"""grpcurl-style discovery: the broker's services and their schemas through server reflection."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

JOBWIRE = [
    "jobwire.v1.AdminService",
    "jobwire.v1.JobService",
    "jobwire.v1.LockService",
    "jobwire.v1.ScheduleService",
    "jobwire.v1.WorkerService",
]


def test_reflection_lists_every_service(broker: Any) -> None:
    with grpc.insecure_channel(broker.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (response,) = stub.ServerReflectionInfo(iter([request]), timeout=10)
    names = {service.name for service in response.list_services_response.service}
    assert set(JOBWIRE) <= names
    assert "grpc.health.v1.Health" in names


def test_reflection_describes_methods(broker: Any) -> None:
    # Like `grpcurl describe jobwire.v1.WorkerService`: the schema comes from the server alone.
    with grpc.insecure_channel(broker.target) as channel:
        pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName("jobwire.v1.WorkerService")
        subscribe = service.methods_by_name["Subscribe"]
        assert subscribe.output_type.full_name == "jobwire.v1.SubscribeResponse"
        assert not subscribe.client_streaming
        assert pool.FindMessageTypeByName("jobwire.v1.EnqueueRequest").fields_by_name["task"]
