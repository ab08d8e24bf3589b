"""Hostile and heavy requests, sent with raw stubs: precise statuses, nothing changed, bounded work.

Each section covers one kind of input: ids, durations, pages, undecodable bytes, repeated fields
and counts, namespaces, and load shedding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from broker import limits
from broker.config import Settings
from broker.keyspace import NAMESPACES_KEY, Keyspace
from jobwire.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    lock_service_pb2,
    lock_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)

INT64_MAX = 2**63 - 1
HUGE = duration_pb2.Duration(seconds=INT64_MAX)


class Stubs:
    """Raw stubs of every service on one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self.workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
        self.locks = lock_service_pb2_grpc.LockServiceStub(channel)
        self.schedules = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture
def stubs(channel: grpc.Channel) -> Stubs:
    return Stubs(channel)


def field_of(error: grpc.RpcError) -> str:
    """The field a BadRequest detail names."""
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            field: str = bad.field_violations[0].field
            return field
    raise AssertionError(f"no BadRequest in {status}")


def invalid(method: Callable[..., Any], request: Any) -> str:
    """Calls `method`, which must answer INVALID_ARGUMENT; the field it names."""
    with pytest.raises(grpc.RpcError) as raised:
        method(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    return field_of(raised.value)


def canary(stubs: Stubs, namespace: str) -> None:
    """Every read of the namespace answers OK."""
    stubs.jobs.GetJob(job_service_pb2.GetJobRequest(namespace=namespace, id=1))
    stubs.jobs.ListJobs(job_service_pb2.ListJobsRequest(namespace=namespace))
    stubs.locks.ListLocks(lock_service_pb2.ListLocksRequest(namespace=namespace))
    stubs.schedules.ListSchedules(schedule_service_pb2.ListSchedulesRequest(namespace=namespace))
    stubs.workers.ListWorkers(worker_service_pb2.ListWorkersRequest(namespace=namespace))
    stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))


# Ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 2**53, 9007199254740993, INT64_MAX])
def test_ids_outside_1_to_2_53_are_invalid(stubs: Stubs, namespace: str, bad: int) -> None:
    j, w, s = job_service_pb2, worker_service_pb2, schedule_service_pb2
    cases: list[tuple[Callable[..., Any], Any, str]] = [
        (stubs.workers.RegisterWorker, w.RegisterWorkerRequest(id=bad), "id"),
        (stubs.workers.UnregisterWorker, w.UnregisterWorkerRequest(id=bad), "id"),
        (stubs.workers.Receive, w.ReceiveRequest(worker_id=bad), "worker_id"),
        (stubs.workers.ListWorkers, w.ListWorkersRequest(before=bad), "before"),
        (stubs.workers.ListWorkers, w.ListWorkersRequest(ids=[1, bad]), "ids[1]"),
        (stubs.workers.Broadcast, w.BroadcastRequest(command="c", ids=[bad]), "ids[0]"),
        (stubs.jobs.Enqueue, j.EnqueueRequest(task="t", parents=[bad]), "parents[0]"),
        (
            stubs.jobs.BatchEnqueue,
            j.BatchEnqueueRequest(requests=[j.EnqueueRequest(task="t", parents=[bad])]),
            "requests[0].parents[0]",
        ),
        (stubs.jobs.Dequeue, j.DequeueRequest(worker_id=bad), "worker_id"),
        (stubs.jobs.Dequeue, j.DequeueRequest(worker_id=1, id=bad), "id"),
        (stubs.jobs.FinishJob, j.FinishJobRequest(id=bad), "id"),
        (stubs.jobs.FailJob, j.FailJobRequest(id=bad), "id"),
        (
            stubs.jobs.CompleteJobs,
            j.CompleteJobsRequest(completions=[j.Completion(id=bad, outcome=j.OUTCOME_FAILED)]),
            "completions[0].id",
        ),
        (stubs.jobs.RetryJob, j.RetryJobRequest(id=bad), "id"),
        (
            stubs.jobs.RetryJob,
            j.RetryJobRequest(id=1, parents=job_pb2.JobIds(ids=[bad])),
            "parents.ids[0]",
        ),
        (stubs.jobs.RemoveJob, j.RemoveJobRequest(id=bad), "id"),
        (stubs.jobs.NoteJob, j.NoteJobRequest(id=bad), "id"),
        (stubs.jobs.GetJob, j.GetJobRequest(id=bad), "id"),
        (stubs.jobs.ListJobs, j.ListJobsRequest(before=bad), "before"),
        (stubs.jobs.ListJobs, j.ListJobsRequest(ids=[bad]), "ids[0]"),
        (stubs.schedules.ListSchedules, s.ListSchedulesRequest(before=bad), "before"),
        (stubs.schedules.ListSchedules, s.ListSchedulesRequest(ids=[bad]), "ids[0]"),
    ]
    for method, request, field in cases:
        request.namespace = namespace
        assert invalid(method, request) == field, request
    stats = stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))
    assert (stats.enqueued_jobs, stats.workers) == (0, 0)


def test_largest_ids_are_exact_and_registration_keeps_working(stubs: Stubs, namespace: str) -> None:
    w = worker_service_pb2
    chosen = limits.MAX_CHOSEN_WORKER_ID
    assert (
        stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace, id=chosen)).id
        == chosen
    )
    assert (
        invalid(
            stubs.workers.RegisterWorker,
            w.RegisterWorkerRequest(namespace=namespace, id=chosen + 1),
        )
        == "id"
    )
    # New workers continue the sequence after the chosen id, exactly.
    new = stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace))
    assert new.id == chosen + 1
    top = limits.MAX_ID
    jobs = stubs.jobs.ListJobs(job_service_pb2.ListJobsRequest(namespace=namespace, ids=[top]))
    assert list(jobs.jobs) == []
    canary(stubs, namespace)


# Durations -------------------------------------------------------------------------------------


def test_durations_beyond_their_range_are_invalid_and_reads_stay_ok(
    stubs: Stubs, namespace: str
) -> None:
    j, s, lk = job_service_pb2, schedule_service_pb2, lock_service_pb2
    over = duration_pb2.Duration(seconds=limits.MAX_DURATION + 1)
    bad_nanos = duration_pb2.Duration(seconds=1, nanos=1_000_000_000)
    for duration in (HUGE, over, bad_nanos):
        cases: list[tuple[Callable[..., Any], Any, str]] = [
            (
                stubs.locks.AcquireLock,
                lk.AcquireLockRequest(name="l", duration=duration),
                "duration",
            ),
            (stubs.jobs.Enqueue, j.EnqueueRequest(task="t", delay=duration), "delay"),
            (stubs.jobs.Enqueue, j.EnqueueRequest(task="t", expire=duration), "expire"),
            (
                stubs.jobs.BatchEnqueue,
                j.BatchEnqueueRequest(requests=[j.EnqueueRequest(task="t", expire=duration)]),
                "requests[0].expire",
            ),
            (stubs.jobs.RetryJob, j.RetryJobRequest(id=1, delay=duration), "delay"),
            (stubs.jobs.RetryJob, j.RetryJobRequest(id=1, expire=duration), "expire"),
            (
                stubs.schedules.UpsertSchedule,
                s.UpsertScheduleRequest(name="s", cron="@daily", task="t", expire=duration),
                "expire",
            ),
            (stubs.jobs.Dequeue, j.DequeueRequest(worker_id=1, wait=duration), "wait"),
        ]
        for method, request, field in cases:
            request.namespace = namespace
            assert invalid(method, request) == field
    # A negative lock duration only checks, as in Minion; the most negative one too.
    most_negative = duration_pb2.Duration(seconds=-limits.MAX_DURATION)
    checked = stubs.locks.AcquireLock(
        lk.AcquireLockRequest(namespace=namespace, name="l", duration=most_negative)
    )
    assert checked.acquired
    # The longest accepted durations leave every read working.
    longest = duration_pb2.Duration(seconds=limits.MAX_DURATION)
    stubs.locks.AcquireLock(lk.AcquireLockRequest(namespace=namespace, name="l", duration=longest))
    stubs.jobs.Enqueue(
        j.EnqueueRequest(namespace=namespace, task="t", delay=longest, expire=longest)
    )
    stubs.schedules.UpsertSchedule(
        s.UpsertScheduleRequest(
            namespace=namespace, name="s", cron="@daily", task="t", expire=longest
        )
    )
    canary(stubs, namespace)
    assert stubs.locks.ListLocks(lk.ListLocksRequest(namespace=namespace)).total == 1


async def test_stored_times_out_of_range_are_clamped(
    stubs: Stubs, namespace: str, redis: aioredis.Redis
) -> None:
    """A stored time beyond what a Timestamp holds (written before the bounds existed) reads as
    the largest Timestamp instead of failing every read of the namespace."""
    j, s = job_service_pb2, schedule_service_pb2
    job_id = stubs.jobs.Enqueue(j.EnqueueRequest(namespace=namespace, task="t")).id
    stubs.schedules.UpsertSchedule(
        s.UpsertScheduleRequest(namespace=namespace, name="s", cron="@daily", task="t")
    )
    ks = Keyspace(namespace)
    await redis.hset(
        ks.job(job_id), mapping={"expires": "9.2233720368548e+18", "delayed": "-1e300"}
    )
    await redis.hset(ks.schedule(1), mapping={"expire": "9.2233720368548e+18", "next_run": "inf"})
    job = stubs.jobs.GetJob(j.GetJobRequest(namespace=namespace, id=job_id)).job
    assert job.expires.seconds == 253_402_300_799  # 9999-12-31T23:59:59Z
    assert job.delayed.seconds == -62_135_596_800  # 0001-01-01T00:00:00Z
    (schedule,) = stubs.schedules.ListSchedules(
        s.ListSchedulesRequest(namespace=namespace)
    ).schedules
    assert schedule.next_run.seconds == 253_402_300_799
    assert schedule.expire.seconds == 315_575_999_999
    canary(stubs, namespace)


# Pages -----------------------------------------------------------------------------------------


def test_offsets_and_limits_are_bounded(stubs: Stubs, namespace: str) -> None:
    lists = [
        (stubs.jobs.ListJobs, job_service_pb2.ListJobsRequest),
        (stubs.workers.ListWorkers, worker_service_pb2.ListWorkersRequest),
        (stubs.locks.ListLocks, lock_service_pb2.ListLocksRequest),
        (stubs.schedules.ListSchedules, schedule_service_pb2.ListSchedulesRequest),
    ]
    for method, request_type in lists:
        for offset in (INT64_MAX, limits.MAX_OFFSET + 1, -1):
            assert invalid(method, request_type(namespace=namespace, offset=offset)) == "offset"
        for limit in (2**31 - 1, limits.MAX_LIMIT + 1, -1):
            assert invalid(method, request_type(namespace=namespace, limit=limit)) == "limit"
        method(request_type(namespace=namespace, offset=limits.MAX_OFFSET, limit=limits.MAX_LIMIT))


# Undecodable bytes ------------------------------------------------------------------------------


def _nested_notes(depth: int) -> bytes:
    notes = struct_pb2.Struct()
    inner = notes
    for _ in range(depth):
        inner = inner.fields["a"].struct_value
    body = notes.SerializeToString()  # serializing has no depth limit; decoding has
    length = bytearray()
    n = len(body)
    while True:  # varint
        length.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    task = job_service_pb2.EnqueueRequest(task="t").SerializeToString()
    return task + b"\x42" + bytes(length) + body  # field 8 (notes), length-delimited


ENQUEUE, STATS = "/jobwire.v1.JobService/Enqueue", "/jobwire.v1.AdminService/Stats"
SUBSCRIBE = "/jobwire.v1.WorkerService/Subscribe"
UNDECODABLE = {  # bytes, and the methods that cannot decode them
    "garbage": (b"\xff\xff\xff\xff", [ENQUEUE, STATS, SUBSCRIBE]),
    "truncated": (
        job_service_pb2.EnqueueRequest(namespace="x", task="task").SerializeToString()[:-3],
        [ENQUEUE, STATS, SUBSCRIBE],
    ),
    # field 1 (namespace in every request), bytes that are not UTF-8
    "invalid utf-8": (b"\x0a\x02\xc3\x28", [ENQUEUE, STATS, SUBSCRIBE]),
    "nested 45 deep": (_nested_notes(45), [ENQUEUE]),
}


@pytest.mark.parametrize(("data", "methods"), UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_undecodable_requests_are_invalid_argument(
    channel: grpc.Channel, data: bytes, methods: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    for method in methods:
        with pytest.raises(grpc.RpcError) as raised:
            if method == SUBSCRIBE:
                stream = channel.unary_stream(
                    method, request_serializer=None, response_deserializer=None
                )
                list(stream(data, timeout=10))
            else:
                call = channel.unary_unary(
                    method, request_serializer=None, response_deserializer=None
                )
                call(data, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = raised.value.details()
        assert details.startswith("request: cannot be decoded: not a valid jobwire.v1.")
        assert "Error" not in details and "Traceback" not in details
        assert field_of(raised.value) == "request"
    rejected = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(rejected) == len(methods)
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in rejected)
    assert not [r for r in caplog.records if r.exc_info]


def test_undecodable_request_changes_nothing(
    channel: grpc.Channel, stubs: Stubs, namespace: str
) -> None:
    data = job_service_pb2.EnqueueRequest(namespace=namespace, task="t").SerializeToString()
    call = channel.unary_unary(
        "/jobwire.v1.JobService/Enqueue", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError):
        call(data + b"\x12\x01\xff", timeout=10)  # a second task field, not UTF-8
    stats = stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))
    assert stats.enqueued_jobs == 0
    call(data, timeout=10)  # the same bytes without the bad field decode fine
    assert stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace)).enqueued_jobs == 1


# Repeated fields and counts ---------------------------------------------------------------------


def test_duplicates_are_dropped_not_rejected(stubs: Stubs, namespace: str) -> None:
    j, w = job_service_pb2, worker_service_pb2
    a = stubs.jobs.Enqueue(j.EnqueueRequest(namespace=namespace, task="a", queue="q")).id
    b = stubs.jobs.Enqueue(j.EnqueueRequest(namespace=namespace, task="b", parents=[a] * 5000)).id
    request = j.ListJobsRequest(
        namespace=namespace,
        states=[job_pb2.STATE_INACTIVE] * 100_000,
        tasks=["a", "b"] * 50_000,
        queues=["q", "default"] * 50_000,
        ids=[a, b] * 50_000,
    )
    started = time.monotonic()
    page = stubs.jobs.ListJobs(request)
    assert sorted(job.id for job in page.jobs) == [a, b] and page.total == 2
    got = stubs.jobs.GetJob(j.GetJobRequest(namespace=namespace, id=b)).job
    assert list(got.parents) == [a]
    worker = stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace)).id
    taken = stubs.jobs.Dequeue(
        j.DequeueRequest(
            namespace=namespace, worker_id=worker, queues=["q"] * 10_000, tasks=["a"] * 10_000
        )
    )
    assert [job.id for job in taken.jobs] == [a]
    sent = stubs.workers.Broadcast(
        w.BroadcastRequest(namespace=namespace, command="c", ids=[worker] * 100_000)
    )
    assert sent.delivered
    received = stubs.workers.Receive(w.ReceiveRequest(namespace=namespace, worker_id=worker))
    assert len(received.commands) == 1
    print(f"duplicate-heavy calls took {time.monotonic() - started:.2f} s")


def _notes(keys: int) -> struct_pb2.Struct:
    notes = struct_pb2.Struct()
    for i in range(keys):
        notes[f"k{i}"] = i
    return notes


def test_counts_and_sizes_beyond_limits_are_invalid(stubs: Stubs, namespace: str) -> None:
    j, w, s, lk = job_service_pb2, worker_service_pb2, schedule_service_pb2, lock_service_pb2
    many = limits.MAX_IDS + 1
    filter_ids = limits.MAX_FILTER_IDS + 1
    long_name = "x" * (limits.MAX_NAME + 1)
    big_args = struct_pb2.ListValue()
    big_args.append("x" * limits.MAX_COMMAND_BYTES)
    big_status = struct_pb2.Struct()
    big_status["s"] = "x" * limits.MAX_STATUS_BYTES
    cases: list[tuple[Callable[..., Any], Any, str]] = [
        (
            stubs.jobs.Enqueue,
            j.EnqueueRequest(task="t", notes=_notes(limits.MAX_NOTE_KEYS + 1)),
            "notes",
        ),
        (
            stubs.jobs.NoteJob,
            j.NoteJobRequest(id=1, merge=_notes(limits.MAX_NOTE_KEYS + 1)),
            "merge",
        ),
        (
            stubs.jobs.Enqueue,
            j.EnqueueRequest(task="t", parents=range(1, limits.MAX_PARENTS + 2)),
            "parents",
        ),
        (
            stubs.jobs.Dequeue,
            j.DequeueRequest(worker_id=1, queues=[f"q{i}" for i in range(limits.MAX_QUEUES + 1)]),
            "queues",
        ),
        (
            stubs.jobs.Dequeue,
            j.DequeueRequest(worker_id=1, tasks=[f"t{i}" for i in range(limits.MAX_TASKS + 1)]),
            "tasks",
        ),
        (
            stubs.jobs.ListJobs,
            j.ListJobsRequest(tasks=[f"t{i}" for i in range(limits.MAX_FILTER_VALUES + 1)]),
            "tasks",
        ),
        (
            stubs.jobs.ListJobs,
            j.ListJobsRequest(notes=[f"n{i}" for i in range(limits.MAX_FILTER_VALUES + 1)]),
            "notes",
        ),
        (stubs.jobs.ListJobs, j.ListJobsRequest(ids=range(1, filter_ids + 1)), "ids"),
        (stubs.workers.ListWorkers, w.ListWorkersRequest(ids=range(1, filter_ids + 1)), "ids"),
        (stubs.workers.Broadcast, w.BroadcastRequest(command="c", ids=range(1, many + 1)), "ids"),
        (stubs.workers.Broadcast, w.BroadcastRequest(command="c", args=big_args), "args"),
        (stubs.workers.RegisterWorker, w.RegisterWorkerRequest(status=big_status), "status"),
        (stubs.workers.RegisterWorker, w.RegisterWorkerRequest(host=long_name), "host"),
        (
            stubs.schedules.ListSchedules,
            s.ListSchedulesRequest(ids=range(1, filter_ids + 1)),
            "ids",
        ),
        (
            stubs.schedules.UpsertSchedule,
            s.UpsertScheduleRequest(name="s", cron="* " * limits.MAX_CRON, task="t"),
            "cron",
        ),
        (
            stubs.schedules.UpsertSchedule,
            s.UpsertScheduleRequest(name=long_name, cron="@daily", task="t"),
            "name",
        ),
        (stubs.schedules.DeleteSchedule, s.DeleteScheduleRequest(name=long_name), "name"),
        (stubs.schedules.PauseSchedule, s.PauseScheduleRequest(name=long_name), "name"),
        (stubs.schedules.ResumeSchedule, s.ResumeScheduleRequest(name=long_name), "name"),
        (stubs.locks.AcquireLock, lk.AcquireLockRequest(name=long_name), "name"),
        (
            stubs.locks.AcquireLock,
            lk.AcquireLockRequest(name="l", limit=limits.MAX_CONCURRENCY + 1),
            "limit",
        ),
        (stubs.locks.ListLocks, lk.ListLocksRequest(names=[long_name]), "names[0]"),
        (
            stubs.jobs.BatchEnqueue,
            j.BatchEnqueueRequest(requests=[j.EnqueueRequest(task="t")] * (limits.MAX_BATCH + 1)),
            "requests",
        ),
        (
            stubs.jobs.CompleteJobs,
            j.CompleteJobsRequest(
                completions=[j.Completion(id=1, outcome=j.OUTCOME_FAILED)] * (limits.MAX_BATCH + 1)
            ),
            "completions",
        ),
    ]
    for method, request, field in cases:
        request.namespace = namespace
        assert invalid(method, request) == field, field
    stats = stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))
    assert (stats.enqueued_jobs, stats.workers, stats.schedules, stats.active_locks) == (0, 0, 0, 0)


def test_ready_sets_per_pick_are_bounded(stubs: Stubs, namespace: str) -> None:
    """Each pick looks at every (queue, task) pair: their number is bounded, and a Dequeue hands
    out fewer jobs than asked when count times pairs would exceed MAX_PICK_WORK."""
    j, w = job_service_pb2, worker_service_pb2
    queues = [f"q{i}" for i in range(limits.MAX_QUEUES)]
    tasks = [f"t{i}" for i in range(limits.MAX_READY_SETS // limits.MAX_QUEUES + 1)]
    request = j.DequeueRequest(namespace=namespace, worker_id=1, queues=queues, tasks=tasks)
    assert invalid(stubs.jobs.Dequeue, request) == "tasks"
    subscribe = w.SubscribeRequest(namespace=namespace, worker_id=1, queues=queues, tasks=tasks)
    with pytest.raises(grpc.RpcError) as raised:
        list(stubs.workers.Subscribe(subscribe, timeout=10))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(raised.value) == "tasks"
    tasks = [f"t{i}" for i in range(50)]
    stubs.jobs.BatchEnqueue(
        j.BatchEnqueueRequest(
            namespace=namespace, requests=[j.EnqueueRequest(task=tasks[i % 50]) for i in range(500)]
        )
    )
    worker = stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace)).id
    taken = stubs.jobs.Dequeue(
        j.DequeueRequest(namespace=namespace, worker_id=worker, tasks=tasks, count=1000)
    )
    assert len(taken.jobs) == limits.MAX_PICK_WORK // 50


@pytest.mark.parametrize("field", ["concurrency", "spare", "limits[t]", "running", "queues"])
def test_subscribe_bounds(stubs: Stubs, namespace: str, field: str) -> None:
    w = worker_service_pb2
    worker = stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace)).id
    request = w.SubscribeRequest(namespace=namespace, worker_id=worker, concurrency=1)
    most = limits.MAX_CONCURRENCY + 1
    if field == "concurrency":
        request.concurrency = most
    elif field == "spare":
        request.spare = most
    elif field == "limits[t]":
        request.limits["t"] = most
    elif field == "running":
        request.running.extend(range(1, limits.MAX_IDS + 2))
    else:
        request.queues.extend(f"q{i}" for i in range(limits.MAX_QUEUES + 1))
    with pytest.raises(grpc.RpcError) as raised:
        list(stubs.workers.Subscribe(request, timeout=10))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(raised.value) == field


def test_batch_bytes_are_bounded(make_broker: Any, namespace: str) -> None:
    """A batch may not exceed MAX_BATCH_BYTES in total even when each job fits the payload limit
    (the receive limit, twice the payload limit, lets such a batch through here)."""
    broker = make_broker(
        max_payload_bytes=12 * 1024 * 1024, max_message_bytes=limits.MAX_BATCH_BYTES
    )
    j = job_service_pb2
    args = struct_pb2.ListValue()
    args.append("x" * (limits.MAX_BATCH_BYTES // 2))
    request = j.BatchEnqueueRequest(
        namespace=namespace, requests=[j.EnqueueRequest(task="t", args=args)] * 2
    )
    with grpc.insecure_channel(broker.target) as channel:
        stubs = Stubs(channel)
        assert invalid(stubs.jobs.BatchEnqueue, request) == "requests"
        stats = stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))
        assert stats.enqueued_jobs == 0


# Namespaces ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["ns\n", "\nns", "ns\r\n", "a b", "x" * 65, "ns{x}"])
def test_namespaces_are_matched_whole(stubs: Stubs, bad: str) -> None:
    request = job_service_pb2.EnqueueRequest(namespace=bad, task="t")
    assert invalid(stubs.jobs.Enqueue, request) == "namespace"
    with pytest.raises(ValueError, match="JOBWIRE_NAMESPACE"):
        Settings(namespace=bad)
    with pytest.raises(ValueError):
        Keyspace(bad)


async def test_reads_never_register_a_namespace(
    stubs: Stubs, namespace: str, redis: aioredis.Redis
) -> None:
    canary(stubs, namespace)
    stubs.admin.History(admin_service_pb2.HistoryRequest(namespace=namespace))
    assert not await redis.sismember(NAMESPACES_KEY, namespace)
    assert await redis.keys(f"jobwire:{{{namespace}}}:*") == []
    stubs.jobs.Enqueue(job_service_pb2.EnqueueRequest(namespace=namespace, task="t"))
    assert await redis.sismember(NAMESPACES_KEY, namespace)


async def test_namespace_registry_is_bounded(make_broker: Any, redis: aioredis.Redis) -> None:
    broker = make_broker(max_namespaces=2)
    j = job_service_pb2
    with grpc.insecure_channel(broker.target) as channel:
        stubs = Stubs(channel)
        stubs.jobs.Enqueue(j.EnqueueRequest(namespace="first", task="t"))
        stubs.locks.AcquireLock(
            lock_service_pb2.AcquireLockRequest(
                namespace="second", name="l", duration=duration_pb2.Duration(seconds=60)
            )
        )
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as raised:
                stubs.jobs.Enqueue(j.EnqueueRequest(namespace="third", task="t"))
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Known namespaces keep working, and reads of unknown ones answer (empty).
        stubs.jobs.Enqueue(j.EnqueueRequest(namespace="first", task="t"))
        canary(stubs, "third")
    assert sorted(await redis.smembers(NAMESPACES_KEY)) == [b"first", b"second"]
    assert await redis.keys("jobwire:{third}:*") == []


# Load shedding ---------------------------------------------------------------------------------


def test_streams_per_replica_are_bounded(make_broker: Any, namespace: str) -> None:
    broker = make_broker(max_streams=1)
    w = worker_service_pb2
    with grpc.insecure_channel(broker.target) as channel:
        stubs = Stubs(channel)
        ids = [
            stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace)).id
            for _ in range(2)
        ]
        first = stubs.workers.Subscribe(
            w.SubscribeRequest(namespace=namespace, worker_id=ids[0], concurrency=1)
        )
        first.initial_metadata()  # the stream is open
        with pytest.raises(grpc.RpcError) as raised:
            list(
                stubs.workers.Subscribe(
                    w.SubscribeRequest(namespace=namespace, worker_id=ids[1], concurrency=1),
                    timeout=10,
                )
            )
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The same worker reconnecting replaces its stream, so it is not refused.
        again = stubs.workers.Subscribe(
            w.SubscribeRequest(namespace=namespace, worker_id=ids[0], concurrency=1)
        )
        again.initial_metadata()
        with pytest.raises(grpc.RpcError) as ended:
            next(first)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE  # the old stream was replaced
        again.cancel()


def test_concurrent_calls_are_bounded(make_broker: Any, namespace: str) -> None:
    broker = make_broker(max_concurrent_rpcs=1)
    j, w = job_service_pb2, worker_service_pb2
    with grpc.insecure_channel(broker.target) as channel:
        stubs = Stubs(channel)
        worker = stubs.workers.RegisterWorker(w.RegisterWorkerRequest(namespace=namespace)).id
        long_poll = j.DequeueRequest(
            namespace=namespace, worker_id=worker, wait=duration_pb2.Duration(seconds=20)
        )
        poll = stubs.jobs.Dequeue.future(long_poll)
        deadline = time.monotonic() + 10
        while True:  # until the long poll holds the only slot
            if poll.done():  # it arrived while a Stats call held the slot: refused, send again
                assert poll.exception().code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                poll = stubs.jobs.Dequeue.future(long_poll)
            try:
                stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        poll.cancel()
        # With the slot free again, calls are served.
        deadline = time.monotonic() + 10
        while True:
            try:
                stubs.admin.Stats(admin_service_pb2.StatsRequest(namespace=namespace))
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_load_settings_must_be_positive() -> None:
    for name in (
        "JOBWIRE_MAX_NAMESPACES",
        "JOBWIRE_MAX_CONCURRENT_RPCS",
        "JOBWIRE_MAX_STREAMS",
        "JOBWIRE_PING_INTERVAL",
        "JOBWIRE_PING_TIMEOUT",
    ):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: "0"})
