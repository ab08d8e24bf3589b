"""LockService through gRPC: shared locks with limits, checks, unlock order, expiry, listing."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import duration_pb2

from jobwire import Client, JobwireError
from jobwire.v1 import lock_service_pb2, lock_service_pb2_grpc


def test_exclusive_and_shared_locks(client: Client) -> None:
    assert client.lock("foo", 10)
    assert not client.lock("foo", 10)
    assert client.is_locked("foo") and not client.is_locked("bar")
    assert all(client.lock("pool", 10, limit=3) for _ in range(3))
    assert not client.lock("pool", 10, limit=3)
    assert not client.lock("pool", 10, limit=2)
    assert client.lock("pool", 10, limit=4)
    assert client.stats().active_locks == 5


def test_zero_and_negative_durations_only_check(client: Client) -> None:
    assert client.lock("c", 0) and client.lock("c", -1)
    assert client.list_locks().total == 0
    assert client.lock("c", 10)
    assert not client.lock("c", 0)
    assert client.lock("c", 0, limit=2)
    assert client.list_locks().total == 1


def test_unlock_releases_the_holder_expiring_soonest(client: Client) -> None:
    client.lock("u", 30, limit=3)
    client.lock("u", 10, limit=3)
    client.lock("u", 20, limit=3)
    assert client.unlock("u")
    assert [lk.id for lk in client.list_locks()] == [3, 1]
    assert client.unlock("u") and client.unlock("u")
    assert not client.unlock("u")


def test_expired_locks_are_invisible(client: Client) -> None:
    assert client.lock("short", 0.05, limit=2)
    assert client.lock("short", 10, limit=2)
    time.sleep(0.1)
    assert [lk.id for lk in client.list_locks(names=["short"])] == [2]
    assert client.stats().active_locks == 1
    assert client.lock("short", 10, limit=2)
    assert client.unlock("short") and client.unlock("short")
    assert not client.unlock("short")  # the expired holder is not released


def test_list_locks(client: Client) -> None:
    for name in ["a", "b", "a"]:
        client.lock(name, 10, limit=5)
    page = client.list_locks()
    assert [(lk.id, lk.name) for lk in page] == [(3, "a"), (2, "b"), (1, "a")]
    assert page.total == 3 and all(lk.expires is not None for lk in page)
    assert [lk.id for lk in client.list_locks(1, 1)] == [2]
    page = client.list_locks(names=["a"])
    assert [lk.id for lk in page] == [3, 1] and page.total == 2
    empty = client.list_locks(5)
    assert list(empty) == [] and empty.total == 0


def test_guard(client: Client) -> None:
    with client.guard("g", 10) as guard:
        assert guard is not None
        with client.guard("g", 10) as busy:
            assert busy is None
    assert not client.is_locked("g")


def test_reset_locks(client: Client) -> None:
    client.lock("a", 10)
    client.register_worker()
    client.reset(locks=True)
    assert client.list_locks().total == 0 and client.stats().workers == 1
    assert client.lock("a", 10)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (lock_service_pb2.AcquireLockRequest(name="", limit=1), "name"),
        (lock_service_pb2.AcquireLockRequest(name="x", limit=-1), "limit"),
        (lock_service_pb2.AcquireLockRequest(name="x" * 300), "name"),
    ],
)
def test_bad_acquire_is_invalid_argument(channel, namespace: str, request_, field) -> None:
    stub = lock_service_pb2_grpc.LockServiceStub(channel)
    request_.namespace = namespace
    request_.duration.CopyFrom(duration_pb2.Duration(seconds=10))
    with pytest.raises(grpc.RpcError) as raised:
        stub.AcquireLock(request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in raised.value.details()
    listed = stub.ListLocks(lock_service_pb2.ListLocksRequest(namespace=namespace))
    assert listed.total == 0


def test_limit_zero_means_one(channel, namespace: str) -> None:
    stub = lock_service_pb2_grpc.LockServiceStub(channel)
    ten = duration_pb2.Duration(seconds=10)
    ask = lock_service_pb2.AcquireLockRequest(namespace=namespace, name="z", duration=ten, limit=0)
    assert stub.AcquireLock(ask).acquired
    assert not stub.AcquireLock(ask).acquired


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.lock("", 10), "name"),
        (lambda c: c.unlock(""), "name"),
        (lambda c: c.list_locks(offset=-1), "offset"),
        (lambda c: c.list_locks(limit=1001), "limit"),
        (lambda c: c.list_locks(names=[""]), "names[0]"),
    ],
)
def test_bad_input_through_the_client(client: Client, call, field) -> None:
    with pytest.raises(JobwireError) as raised:
        call(client)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v[0] for v in raised.value.field_violations] == [field]
    assert client.stats().active_locks == 0


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_invalid_and_takes_nothing(client: Client, limit: int) -> None:
    with pytest.raises(JobwireError) as raised:
        client.lock("capped", 60, limit=limit)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert client.list_locks().total == 0
