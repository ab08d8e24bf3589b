"""Property-based requests to every RPC of every service, sent with raw stubs.

For any generated request: the answer is never INTERNAL or UNKNOWN; a rejected request leaves the
namespace's keys (and the namespace registry) exactly as they were; after an accepted request,
every read of the namespace still answers OK. Requests are built from the message descriptors,
with values chosen near every bound (ids, durations, pages, names, counts) and duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import redis
from google.protobuf import descriptor, duration_pb2, message, struct_pb2, timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker import limits
from broker.keyspace import NAMESPACE_PATTERN, NAMESPACES_KEY
from jobwire.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
    lock_service_pb2,
    lock_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)

EXAMPLES = 30  # per RPC; the module runs in well under a minute
FD = descriptor.FieldDescriptor
SERVICES = [
    (job_service_pb2, job_service_pb2_grpc.JobServiceStub),
    (worker_service_pb2, worker_service_pb2_grpc.WorkerServiceStub),
    (lock_service_pb2, lock_service_pb2_grpc.LockServiceStub),
    (schedule_service_pb2, schedule_service_pb2_grpc.ScheduleServiceStub),
    (admin_service_pb2, admin_service_pb2_grpc.AdminServiceStub),
]
METHODS = [
    (stub, method)
    for module, stub in SERVICES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


# Values near every bound ---------------------------------------------------------------------


def _edges(low: int, high: int) -> st.SearchStrategy[int]:
    marks = [0, 1, 2, 3, -1, 2**31 - 1, -(2**31), 2**52, 2**53 - 1, 2**53, 2**53 + 1]
    marks += [limits.MAX_OFFSET, limits.MAX_OFFSET + 1, limits.MAX_LIMIT + 1, 2**63 - 1, -(2**63)]
    return st.one_of(
        st.integers(0, 4),
        st.sampled_from([m for m in marks if low <= m <= high]),
        st.integers(low, high),
    )


INT32 = _edges(-(2**31), 2**31 - 1)
INT64 = _edges(-(2**63), 2**63 - 1)
NAMES = st.one_of(
    st.sampled_from(["t", "default", "q", "l", "s", "other"]),
    st.sampled_from(["", "x" * limits.MAX_NAME, "x" * (limits.MAX_NAME + 1), "a\nb", "\x00", "é"]),
    st.text(max_size=12),
)
CRONS = st.one_of(
    st.sampled_from(["@daily", "*/5 * * * *", "0 0 30 2 *", "61 * * * *", "bad", ""]),
    st.just("* " * limits.MAX_CRON),
    st.text(max_size=20),
)
SECONDS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([limits.MAX_DURATION, limits.MAX_DURATION + 1, -limits.MAX_DURATION - 1]),
    st.sampled_from([limits.MAX_WAIT + 1, 2**63 - 1, -(2**63)]),
)
NANOS = st.sampled_from([0, 1, 50_000_000, 999_999_999, 1_000_000_000, -1, 2**31 - 1])
DURATIONS = st.builds(duration_pb2.Duration, seconds=SECONDS, nanos=NANOS)
# A Dequeue waits at most a fraction of a second here: longer accepted waits only cost time.
WAITS = st.builds(
    duration_pb2.Duration,
    seconds=st.sampled_from([0, -1, limits.MAX_WAIT + 1, 2**63 - 1]),
    nanos=st.sampled_from([0, 50_000_000, -1, 1_000_000_000]),
)
TIMESTAMPS = st.builds(timestamp_pb2.Timestamp, seconds=INT64, nanos=NANOS)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(2**60), 2**60)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _value(data: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if data is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        value.bool_value = data
    elif isinstance(data, (int, float)):
        value.number_value = float(data)
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, list):
        value.list_value.values.extend(_value(v) for v in data)
    else:
        for key, item in data.items():
            value.struct_value.fields[key].CopyFrom(_value(item))
    return value


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    return _value(data).struct_value


def _list(data: list[Any]) -> struct_pb2.ListValue:
    return _value(data).list_value


STRUCTS = st.one_of(
    st.dictionaries(st.text(max_size=6), JSON, max_size=4),
    st.builds(
        lambda n: {f"k{i}": i for i in range(n)}, st.sampled_from([limits.MAX_NOTE_KEYS + 1])
    ),
).map(_struct)
LISTS = st.lists(JSON, max_size=4).map(_list)
VALUES = JSON.map(_value)


def _repeated(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A few values, or a few values repeated many times (duplicates are dropped, not counted)."""
    return st.one_of(
        st.lists(element, max_size=4),
        st.builds(lambda items: items * 500, st.lists(element, min_size=1, max_size=2)),
    )


def _scalar(field: descriptor.FieldDescriptor, namespace: str, bad: bool) -> st.SearchStrategy[Any]:
    """Values of a scalar field: ordinary ones, or (bad) ones at and past every bound."""
    if field.name == "namespace":
        if not bad:
            return st.just(namespace)
        return st.sampled_from(["", "other", "ns\n", "bad{x}", "x" * 65, namespace])
    if field.type == FD.TYPE_STRING:
        if field.name == "cron":
            return CRONS if bad else st.sampled_from(["@daily", "*/5 * * * *"])
        return NAMES if bad else st.sampled_from(["t", "default", "q", "l", "s"])
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type == FD.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [n for n in field.enum_type.values_by_number if n]
        return st.sampled_from([*numbers, 0, -1, 99]) if bad else st.sampled_from(numbers)
    if field.type in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return INT64 if bad else st.integers(0, 4)
    if field.type in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return INT32 if bad else st.integers(0, 4)
    raise AssertionError(f"no strategy for {field.full_name}")


# Ordinary values of the well-known types (the bad ones are above).
FINE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FINE = {
    "google.protobuf.Duration": st.builds(
        duration_pb2.Duration, seconds=st.integers(0, 3), nanos=st.sampled_from([0, 50_000_000])
    ),
    "google.protobuf.Timestamp": st.builds(timestamp_pb2.Timestamp, seconds=st.integers(0, 2**31)),
    "google.protobuf.Struct": st.dictionaries(
        st.text(min_size=1, max_size=6), FINE_JSON, max_size=3
    ).map(_struct),
    "google.protobuf.ListValue": st.lists(FINE_JSON, max_size=3).map(_list),
    "google.protobuf.Value": FINE_JSON.map(_value),
}
BAD = {
    "google.protobuf.Duration": DURATIONS,
    "google.protobuf.Timestamp": TIMESTAMPS,
    "google.protobuf.Struct": STRUCTS,
    "google.protobuf.ListValue": LISTS,
    "google.protobuf.Value": VALUES,
}
FINE_WAITS = st.builds(duration_pb2.Duration, nanos=st.sampled_from([0, 50_000_000]))


def _message(
    desc: descriptor.Descriptor, namespace: str, depth: int = 0, bad: bool = True
) -> st.SearchStrategy[message.Message]:
    """Requests of one type: ordinary ones, ones with a single bad field, and ones where any field
    may be bad, so every bound is probed both alone and among others."""
    if desc.full_name in FINE:
        return BAD[desc.full_name] if bad else FINE[desc.full_name]
    message_type: Any = _classes[desc.full_name]
    names = [f.name for f in desc.fields]

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        mode = draw(st.sampled_from(["fine", "one", "any"])) if bad else "fine"
        chosen = draw(st.sampled_from(names)) if mode == "one" else None
        out = message_type()
        for field in desc.fields:
            is_bad = (mode == "any" and draw(st.booleans())) or field.name == chosen
            if not (is_bad or draw(st.booleans())):
                continue
            target = getattr(out, field.name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                keys = _scalar(field.message_type.fields_by_name["key"], namespace, is_bad)
                values = _scalar(field.message_type.fields_by_name["value"], namespace, is_bad)
                target.update(draw(st.dictionaries(keys, values, max_size=3)))
            elif field.message_type is not None:
                if depth > 1:
                    continue
                element: st.SearchStrategy[Any]
                if field.name == "wait":
                    element = WAITS if is_bad else FINE_WAITS
                else:
                    element = _message(field.message_type, namespace, depth + 1, is_bad)
                if field.is_repeated:
                    target.extend(draw(st.lists(element, max_size=3)))
                else:
                    target.CopyFrom(draw(element))
            elif field.is_repeated:
                target.extend(draw(_repeated(_scalar(field, namespace, is_bad))))
            else:
                setattr(out, field.name, draw(_scalar(field, namespace, is_bad)))
        return out

    return build()


def _message_classes() -> dict[str, type[message.Message]]:
    classes: dict[str, type[message.Message]] = {}
    for module, _ in SERVICES:
        for name in dir(module):
            item = getattr(module, name)
            if isinstance(item, type) and issubclass(item, message.Message):
                classes[item.DESCRIPTOR.full_name] = item
    from jobwire.v1 import job_pb2

    classes["jobwire.v1.JobIds"] = job_pb2.JobIds
    return classes


_classes = _message_classes()


# The broker under test -------------------------------------------------------------------------


@pytest.fixture
def sync_redis(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    yield client
    client.close()


def snapshot(r: redis.Redis, namespace: str) -> tuple[Any, ...]:
    """Every key of the namespace with its DUMP, and the namespace registry."""
    keys = sorted(r.keys(f"jobwire:{{{namespace}}}:*"))
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
    dumps = pipe.execute()
    return tuple(zip(keys, dumps, strict=True)), tuple(sorted(r.smembers(NAMESPACES_KEY)))


def canary(channel: grpc.Channel, namespace: str) -> None:
    """Every read of the namespace answers OK."""
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    jobs.GetJob(job_service_pb2.GetJobRequest(namespace=namespace, id=1), timeout=10)
    jobs.ListJobs(job_service_pb2.ListJobsRequest(namespace=namespace), timeout=10)
    lock_service_pb2_grpc.LockServiceStub(channel).ListLocks(
        lock_service_pb2.ListLocksRequest(namespace=namespace), timeout=10
    )
    schedule_service_pb2_grpc.ScheduleServiceStub(channel).ListSchedules(
        schedule_service_pb2.ListSchedulesRequest(namespace=namespace), timeout=10
    )
    worker_service_pb2_grpc.WorkerServiceStub(channel).ListWorkers(
        worker_service_pb2.ListWorkersRequest(namespace=namespace), timeout=10
    )


def seed(channel: grpc.Channel, namespace: str) -> None:
    """A worker (id 1) running one of three jobs, a lock and a schedule, for requests to hit."""
    j = job_service_pb2
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    worker_service_pb2_grpc.WorkerServiceStub(channel).RegisterWorker(
        worker_service_pb2.RegisterWorkerRequest(namespace=namespace)
    )
    for task in ("t", "t", "other"):
        jobs.Enqueue(j.EnqueueRequest(namespace=namespace, task=task, parents=[1]))
    jobs.Dequeue(j.DequeueRequest(namespace=namespace, worker_id=1, id=1))
    lock_service_pb2_grpc.LockServiceStub(channel).AcquireLock(
        lock_service_pb2.AcquireLockRequest(
            namespace=namespace, name="l", duration=duration_pb2.Duration(seconds=3600)
        )
    )
    schedule_service_pb2_grpc.ScheduleServiceStub(channel).UpsertSchedule(
        schedule_service_pb2.UpsertScheduleRequest(
            namespace=namespace, name="s", cron="@daily", task="t"
        )
    )


def call(channel: grpc.Channel, stub_type: Callable[..., Any], name: str, request: Any) -> Any:
    """Sends the request; the status code (OK for an accepted one). A stream that opens is
    accepted and cancelled at once."""
    method = getattr(stub_type(channel), name)
    try:
        if name != "Subscribe":
            method(request, timeout=10)
            return grpc.StatusCode.OK
        stream = method(request, timeout=10)
        stream.initial_metadata()
        deadline = time.monotonic() + 0.05
        while not stream.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not stream.done():
            stream.cancel()
            return grpc.StatusCode.OK
        return stream.code()
    except grpc.RpcError as error:
        return error.code()


def settle(r: redis.Redis, namespace: str) -> None:
    """Waits until the namespace stops changing (a cancelled stream returns its jobs)."""
    before = snapshot(r, namespace)
    for _ in range(100):
        time.sleep(0.02)
        after = snapshot(r, namespace)
        if after == before:
            return
        before = after


@pytest.mark.parametrize(
    ("stub_type", "method"),
    METHODS,
    ids=[f"{m.containing_service.name}.{m.name}" for _, m in METHODS],
)
def test_any_request_gets_a_precise_status(
    channel: grpc.Channel,
    sync_redis: redis.Redis,
    namespace: str,
    stub_type: Callable[..., Any],
    method: descriptor.MethodDescriptor,
) -> None:
    seed(channel, namespace)
    counts = {"accepted": 0, "rejected": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request=_message(method.input_type, namespace))
    def check(request: message.Message) -> None:
        before = snapshot(sync_redis, namespace)
        code = call(channel, stub_type, method.name, request)
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), request
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, request
        if code == grpc.StatusCode.OK:
            counts["accepted"] += 1
            if method.name == "Subscribe":
                settle(sync_redis, namespace)
            target = getattr(request, "namespace", "")
            canary(channel, namespace)
            if target and target != namespace and NAMESPACE_PATTERN.fullmatch(target):
                canary(channel, target)
        else:
            counts["rejected"] += 1
            assert snapshot(sync_redis, namespace) == before, (code, request)

    check()
    print(f"{method.full_name}: {counts}")
    assert sum(counts.values()) > 0
