"""The JobwireError subclass the SDK raises for each status a real broker answers, and the
client-side waits that raise a TimeoutError."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest

import jobwire
from jobwire import (
    AsyncClient,
    Client,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    JobwireError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from jobwire.errors import from_rpc_error
from jobwire.v1 import worker_service_pb2, worker_service_pb2_grpc
from tests.security.helpers import SECRETS, role_tokens


def test_every_subclass_is_exported_and_a_jobwire_error() -> None:
    for name in jobwire.__all__:
        if name.endswith("Error"):
            assert issubclass(getattr(jobwire, name), JobwireError)
    assert issubclass(DeadlineExceededError, TimeoutError)
    assert not issubclass(NotFoundError, TimeoutError)


def test_empty_task_name_is_invalid_argument_with_its_field(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.enqueue("")
    error = caught.value
    assert isinstance(error, JobwireError) and error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in error.field_violations] == ["task"]
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InvalidArgumentError and copy.field_violations == error.field_violations


def test_client_side_invalid_input_is_invalid_argument(client: Client) -> None:
    with pytest.raises(InvalidArgumentError, match="limit"):
        client.lock("l", 10, limit=0)


def test_result_of_an_unknown_job_is_not_found(client: Client) -> None:
    assert client.job_info(987_654_321) is None
    with pytest.raises(NotFoundError, match="job 987654321 not found") as caught:
        client.result(987_654_321, timeout=5)
    assert isinstance(caught.value, JobwireError)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


async def test_async_result_of_an_unknown_job_is_not_found(aclient: AsyncClient) -> None:
    assert await aclient.job_info(987_654_321) is None
    with pytest.raises(NotFoundError):
        await aclient.result(987_654_321, timeout=5)


def test_result_of_a_job_still_waiting_times_out(client: Client) -> None:
    job_id = client.enqueue("never-run")
    with pytest.raises(TimeoutError) as caught:
        client.result(job_id, interval=0.01, timeout=0.05)
    error = caught.value
    assert isinstance(error, DeadlineExceededError) and isinstance(error, JobwireError)
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"job {job_id} did not finish or fail" in error.reason


async def test_async_result_of_a_job_still_waiting_times_out(aclient: AsyncClient) -> None:
    job_id = await aclient.enqueue("never-run")
    with pytest.raises(DeadlineExceededError):
        await aclient.result(job_id, interval=0.01, timeout=0.05)


def test_a_call_past_its_deadline_is_a_timeout(namespace: str) -> None:
    # A listener that accepts connections and never answers: the call can only run out of time
    # (a deadline of microseconds against a real broker may still be met on a fast path).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        target = f"127.0.0.1:{silent.getsockname()[1]}"
        with (
            Client(target, namespace=namespace, timeout=0.3) as client,
            pytest.raises(TimeoutError) as caught,
        ):
            client.stats()
    assert isinstance(caught.value, DeadlineExceededError)


def test_clients_default_to_a_30_second_deadline(broker: Any) -> None:
    with Client(broker.target) as client:
        assert client.timeout == 30.0
        assert client.async_client().timeout == 30.0
    assert AsyncClient(broker.target).timeout == 30.0
    with Client(broker.target, timeout=None) as client:
        assert client.timeout is None


def test_no_broker_listening_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        Client(f"127.0.0.1:{port}", timeout=5) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.stats()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("token", ["", "not-a-known-token"])
def test_no_or_unknown_token_is_unauthenticated(
    make_broker: Any, tmp_path: Path, namespace: str, token: str
) -> None:
    guarded = make_broker(auth_file=role_tokens(tmp_path / "tokens.toml"))
    with (
        Client(guarded.target, namespace=namespace, token=token) as client,
        pytest.raises(UnauthenticatedError) as caught,
    ):
        client.stats()
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_token_without_the_role_is_permission_denied(
    make_broker: Any, tmp_path: Path, namespace: str
) -> None:
    guarded = make_broker(auth_file=role_tokens(tmp_path / "tokens.toml"))
    with Client(guarded.target, namespace=namespace, token=SECRETS["read"]) as reader:
        assert reader.stats().enqueued_jobs == 0
        with pytest.raises(PermissionDeniedError) as denied:
            reader.enqueue("t")
    assert isinstance(denied.value, JobwireError)
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_namespace_over_the_limit_is_resource_exhausted(
    client: Client, make_broker: Any, namespace: str
) -> None:
    client.enqueue("t")  # registers this test's namespace: the Redis now holds at least one
    full = make_broker(max_namespaces=1)
    with (
        Client(full.target, namespace=f"{namespace}-more") as other,
        pytest.raises(ResourceExhaustedError) as caught,
    ):
        other.enqueue("t")
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stream_of_an_unregistered_worker_is_failed_precondition(
    broker: Any, namespace: str
) -> None:
    with grpc.insecure_channel(broker.target) as channel:
        stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
        stream = stub.Subscribe(
            worker_service_pb2.SubscribeRequest(namespace=namespace, worker_id=424242),
            timeout=10,
        )
        with pytest.raises(grpc.RpcError) as raw:
            next(iter(stream))
    error = from_rpc_error(raw.value)
    assert isinstance(error, FailedPreconditionError) and "not registered" in error.reason
