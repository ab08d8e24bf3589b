"""Unit tests of the SDK's conversions (convert.py), errors (errors.py) and request building.

No broker here: error decoding runs against a tiny grpc.aio server on 127.0.0.1:0 whose
JobService aborts with a rich status or echoes what it received.
"""

from __future__ import annotations

import asyncio
import math
import pickle
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from jobwire import AsyncClient, Client, JobwireError, NotFoundError, Page, convert
from jobwire.convert import InvalidValue
from jobwire.errors import from_rpc_error
from jobwire.v1 import (
    admin_service_pb2,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    lock_service_pb2,
    lock_service_pb2_grpc,
    schedule_pb2,
)

UTC = UTC


# --- JSON values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -7,
        2**53,
        -(2**53),
        1.5,
        -0.25,
        1e300,
        "",
        "grüße ✓",
        [],
        {},
        [1, "two", None, [3.5, {"x": []}], {}],
        {"a": {"b": {"c": [True, None]}}, "empty": {}, "list": []},
    ],
)
def test_json_values_round_trip(value: Any) -> None:
    assert convert.from_value(convert.to_value(value)) == value
    # Through the wire format too, so unset/empty sub-messages are not lost.
    decoded = Value.FromString(convert.to_value(value).SerializeToString())
    assert convert.from_value(decoded) == value


def test_numbers_come_back_as_int_when_integral() -> None:
    read = convert.from_value(convert.to_value([3, 3.0, 2.5, True, -0.0, 2.0**60]))
    assert read == [3, 3, 2.5, True, 0, 2.0**60]
    assert [type(item) for item in read] == [int, int, float, bool, int, float]


def test_bool_is_not_a_number() -> None:
    assert convert.to_value(True).WhichOneof("kind") == "bool_value"
    assert convert.to_value(1).WhichOneof("kind") == "number_value"


def test_unset_value_reads_as_none() -> None:
    assert convert.from_value(Value()) is None


def test_tuples_and_mappings_are_json() -> None:
    from types import MappingProxyType

    value = convert.to_value((1, MappingProxyType({"k": (2,)})))
    assert convert.from_value(value) == [1, {"k": [2]}]


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ([1, {2, 3}], "args[1]", "set is not a JSON value"),
        ([{"when": datetime(2024, 1, 1)}], "args[0].when", "datetime"),
        ([{1: "x"}], "args[0]", "key 1 is not a string"),
        ([math.nan], "args[0]", "not a JSON number"),
        ([math.inf], "args[0]", "not a JSON number"),
        ([2**53 + 1], "args[0]", "beyond 2**53"),
        ([b"bytes"], "args[0]", "bytes is not a JSON value"),
    ],
)
def test_non_json_values_are_rejected_naming_the_path(value: Any, path: str, fragment: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        convert.to_list_value(value, "args")
    assert caught.value.field == path
    assert fragment in caught.value.description
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize("value", ["abc", {"a": 1}, {1, 2}, None, 5, (x for x in [1])])
def test_args_must_be_a_list_or_tuple(value: Any) -> None:
    with pytest.raises(InvalidValue, match=r"^args: must be a list"):
        convert.to_list_value(value, "args")


@pytest.mark.parametrize("value", [[("a", 1)], "abc", None, 3])
def test_notes_must_be_a_dict(value: Any) -> None:
    with pytest.raises(InvalidValue, match=r"^notes: must be a dict"):
        convert.to_struct(value, "notes")


def test_struct_round_trip() -> None:
    notes = {"progress": 0.5, "tags": ["a", "b"], "n": 3, "none": None}
    struct = convert.to_struct(notes)
    assert isinstance(struct, Struct)
    assert convert.from_struct(Struct.FromString(struct.SerializeToString())) == notes


# --- scalars --------------------------------------------------------------------------------


def test_integers_are_checked_against_their_field() -> None:
    assert convert.to_int(2**63 - 1, "id") == 2**63 - 1
    assert convert.to_int32(-(2**31), "priority") == -(2**31)
    with pytest.raises(InvalidValue, match=r"^priority: 2147483648 is out of range"):
        convert.to_int32(2**31, "priority")
    with pytest.raises(InvalidValue, match=r"^id: must be an integer, not bool"):
        convert.to_int(True, "id")
    with pytest.raises(InvalidValue, match=r"^id: must be an integer, not float"):
        convert.to_int(1.0, "id")
    with pytest.raises(InvalidValue, match=r"^id: must be an integer, not str"):
        convert.to_int("5", "id")


def test_id_and_string_lists() -> None:
    assert convert.to_ids((1, 2), "parents") == [1, 2]
    assert convert.to_ids(range(3), "parents") == [0, 1, 2]
    with pytest.raises(InvalidValue, match=r"^parents\[1\]: must be an integer"):
        convert.to_ids([1, "2"], "parents")
    with pytest.raises(InvalidValue, match=r"^parents: must be a list of ids"):
        convert.to_ids(5, "parents")
    assert convert.to_strs(["a"], "queues") == ["a"]
    with pytest.raises(InvalidValue, match=r"^queues: must be a list of strings, not str"):
        convert.to_strs("default", "queues")


# --- time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 1, -1, 1.5, -1.5, 0.000000001, 86400 * 365, 12.345678901])
def test_durations_round_trip(seconds: float) -> None:
    duration = convert.to_duration(seconds, "delay")
    assert isinstance(duration, Duration)
    assert convert.from_duration(duration) == pytest.approx(seconds, abs=1e-9)
    # seconds and nanos always share a sign, as Duration requires
    assert duration.seconds * duration.nanos >= 0


@pytest.mark.parametrize("seconds", [math.nan, math.inf, 1e12, "5", None, True])
def test_invalid_durations(seconds: Any) -> None:
    with pytest.raises(InvalidValue) as caught:
        convert.to_duration(seconds, "expire")
    assert caught.value.field == "expire"


def test_timestamps_are_timezone_aware_utc() -> None:
    stamp = Timestamp(seconds=1_700_000_000, nanos=123_456_789)
    moment = convert.from_timestamp(stamp)
    assert moment == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)

    paris = timezone(timedelta(hours=1))
    local = datetime(2024, 2, 29, 13, 0, tzinfo=paris)
    assert convert.from_timestamp(convert.to_timestamp(local, "at")) == local
    with pytest.raises(InvalidValue, match=r"^at: must be a timezone-aware datetime"):
        convert.to_timestamp(datetime(2024, 1, 1), "at")


# --- enums ----------------------------------------------------------------------------------


def test_states_both_ways() -> None:
    for name in ("inactive", "active", "failed", "finished"):
        assert convert.from_state(convert.to_state(name, "states[0]")) == name
    assert convert.to_state("failed") == job_pb2.STATE_FAILED
    assert convert.from_state(job_pb2.STATE_UNSPECIFIED) == "unspecified"
    assert convert.from_state(99) == "99"


@pytest.mark.parametrize("name", ["done", "FAILED", "", None, 3])
def test_unknown_state_is_a_value_error_naming_the_argument(name: Any) -> None:
    with pytest.raises(ValueError, match=r"^states\[2\]: unknown state .*inactive, active"):
        convert.to_state(name, "states[2]")


def test_outcomes() -> None:
    assert convert.to_outcome("finished") == job_service_pb2.OUTCOME_FINISHED
    assert convert.to_outcome("failed") == job_service_pb2.OUTCOME_FAILED
    with pytest.raises(ValueError, match=r"^completions\[0\]\.outcome: unknown outcome"):
        convert.to_outcome("done", "completions[0].outcome")


# --- messages to result types ---------------------------------------------------------------


def _stamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


def test_job_info_fresh_job() -> None:
    job = job_pb2.Job(
        id=5,
        task="add",
        args=convert.to_list_value([2, 3]),
        attempts=1,
        created=_stamp(100),
        delayed=_stamp(100),
        queue="default",
        state=job_pb2.STATE_INACTIVE,
        time=_stamp(101),
    )
    info = convert.job_info(job)
    assert info.id == 5 and info.task == "add" and info.args == [2, 3]
    assert info.state == "inactive"
    assert info.created == datetime.fromtimestamp(100, UTC)
    assert info.time == datetime.fromtimestamp(101, UTC)
    assert info.expires is None and info.finished is None and info.started is None
    assert info.retried is None
    assert info.worker is None
    assert info.result is None
    assert info.notes == {} and info.parents == [] and info.children == []


def test_job_info_finished_job() -> None:
    job = job_pb2.Job(
        id=9,
        children=[10, 11],
        parents=[1],
        notes=convert.to_struct({"progress": 1}),
        result=convert.to_value({"sum": 5}),
        state=job_pb2.STATE_FINISHED,
        started=_stamp(200),
        finished=_stamp(201),
        expires=_stamp(300),
        worker=3,
        retries=2,
        retried=_stamp(150),
        lax=True,
        priority=-4,
    )
    info = convert.job_info(job)
    assert info.state == "finished"
    assert info.result == {"sum": 5}
    assert info.worker == 3
    assert info.children == [10, 11] and info.parents == [1]
    assert info.notes == {"progress": 1}
    assert info.lax is True and info.priority == -4 and info.retries == 2
    assert info.finished == datetime.fromtimestamp(201, UTC)
    with pytest.raises(AttributeError):
        info.state = "failed"  # type: ignore[misc]


def test_job_result_null_is_none() -> None:
    job = job_pb2.Job(result=convert.to_value(None))
    assert convert.job_info(job).result is None


def test_dequeued_job() -> None:
    message = job_pb2.DequeuedJob(
        id=1,
        task="t",
        args=convert.to_list_value([[1]]),
        retries=0,
        queue="q",
        priority=2,
        attempts=3,
        notes=convert.to_struct({"a": "b"}),
        parents=[4],
    )
    job = convert.dequeued_job(message)
    assert (job.id, job.task, job.args, job.retries) == (1, "t", [[1]], 0)
    assert (job.queue, job.priority, job.attempts, job.notes, job.parents) == (
        "q",
        2,
        3,
        {"a": "b"},
        [4],
    )


def test_stats_history_and_repair() -> None:
    stats = convert.stats(
        admin_service_pb2.StatsResponse(
            active_jobs=1, enqueued_jobs=9, uptime=Duration(seconds=3, nanos=500_000_000)
        )
    )
    assert stats.uptime == 3.5 and stats.active_jobs == 1 and stats.enqueued_jobs == 9
    assert stats.schedules == 0 and stats.inactive_workers == 0
    history = convert.history(
        admin_service_pb2.HistoryResponse(
            daily=[
                admin_service_pb2.HourlyCount(epoch=_stamp(3600 * h), finished_jobs=h)
                for h in range(24)
            ]
        )
    )
    assert len(history.daily) == 24
    assert history.daily[23].epoch == datetime.fromtimestamp(3600 * 23, UTC)
    assert history.daily[23].finished_jobs == 23 and history.daily[23].failed_jobs == 0
    report = convert.repair_report(admin_service_pb2.RepairResponse(stuck_jobs=2))
    assert report.stuck_jobs == 2 and report.old_jobs == 0


def test_schedule_info() -> None:
    fresh = convert.schedule_info(schedule_pb2.Schedule(id=1, name="n", cron="@daily"))
    assert fresh.expire is None and fresh.last_job is None and fresh.last_run is None
    assert fresh.args == [] and fresh.notes == {}
    fired = convert.schedule_info(
        schedule_pb2.Schedule(
            id=1, expire=Duration(seconds=60), last_job=12, last_run=_stamp(5), paused=True
        )
    )
    assert fired.expire == 60.0 and fired.last_job == 12 and fired.paused is True


def test_page_is_iterable_and_sized() -> None:
    page = Page([1, 2, 3], total=10)
    assert list(page) == [1, 2, 3] and len(page) == 3 and page[-1] == 3 and page.total == 10
    assert not Page([], total=0)


# --- errors ---------------------------------------------------------------------------------


def _bad_request(message: str, *violations: tuple[str, str]) -> status_pb2.Status:
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message)
    detail = status.details.add()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in violations
            ]
        )
    )
    info = status.details.add()
    info.Pack(error_details_pb2.ErrorInfo(reason="BAD_TASK", domain="jobwire"))
    return status


@dataclass
class FakeJobService(job_service_pb2_grpc.JobServiceServicer):
    """Aborts Enqueue of task "bad"/"plain"/"broken", echoes everything else it is sent."""

    requests: list[Any] = field(default_factory=list)

    async def Enqueue(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.requests.append(request)
        if request.task == "bad":
            status = rpc_status.to_status(
                _bad_request("task must not be empty", ("task", "must not be empty"))
            )
            await context.abort(status.code, status.details, status.trailing_metadata)
        if request.task == "plain":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Redis is unreachable")
        if request.task == "broken":  # details that contradict the status: code/message win
            status = rpc_status.to_status(_bad_request("other message", ("x", "y")))
            await context.abort(grpc.StatusCode.INTERNAL, "boom", status.trailing_metadata)
        return job_service_pb2.EnqueueResponse(id=len(self.requests))

    async def Dequeue(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.requests.append(request)
        return job_service_pb2.DequeueResponse(
            jobs=[job_pb2.DequeuedJob(id=i + 1, task="t") for i in range(max(request.count, 1))]
        )

    async def GetJob(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.requests.append(request)
        if request.id != 1:
            return job_service_pb2.GetJobResponse()
        return job_service_pb2.GetJobResponse(
            job=job_pb2.Job(id=1, state=job_pb2.STATE_FAILED, result=convert.to_value("oops"))
        )

    async def ListJobs(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.requests.append(request)
        before = request.before if request.HasField("before") else 251
        ids = list(range(before - 1, max(before - 1 - request.limit, 0), -1))
        return job_service_pb2.ListJobsResponse(
            jobs=[job_pb2.Job(id=i) for i in ids], total=len(ids)
        )


@dataclass
class FakeLockService(lock_service_pb2_grpc.LockServiceServicer):
    """Grants every lock except "busy"; records the calls."""

    calls: list[tuple[str, str, float]] = field(default_factory=list)

    async def AcquireLock(self, request: Any, context: Any) -> Any:  # noqa: N802
        duration = convert.from_duration(request.duration)
        self.calls.append(("acquire", request.name, duration))
        return lock_service_pb2.AcquireLockResponse(acquired=request.name != "busy")

    async def ReleaseLock(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.calls.append(("release", request.name, 0.0))
        return lock_service_pb2.ReleaseLockResponse(released=True)


@dataclass
class FakeBroker:
    target: str
    service: FakeJobService
    locks: FakeLockService


@pytest.fixture
async def fake_broker() -> AsyncIterator[FakeBroker]:
    server = grpc.aio.server()
    # Only the RPCs these tests call are implemented; the rest stay abstract in the stubs.
    service, locks = FakeJobService(), FakeLockService()  # type: ignore[abstract]
    job_service_pb2_grpc.add_JobServiceServicer_to_server(service, server)
    lock_service_pb2_grpc.add_LockServiceServicer_to_server(locks, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield FakeBroker(f"127.0.0.1:{port}", service, locks)
    finally:
        await server.stop(None)


async def test_rich_status_is_decoded_from_aio_error(fake_broker: FakeBroker) -> None:
    async with grpc.aio.insecure_channel(fake_broker.target) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Enqueue(job_service_pb2.EnqueueRequest(task="bad"))
    error = from_rpc_error(caught.value)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "task must not be empty"
    assert error.field_violations == [("task", "must not be empty")]
    assert isinstance(error.details[0], error_details_pb2.BadRequest)
    assert isinstance(error.details[1], error_details_pb2.ErrorInfo)
    assert error.details[1].reason == "BAD_TASK"
    assert str(error) == "INVALID_ARGUMENT: task must not be empty (task: must not be empty)"


async def test_clients_raise_jobwire_error_never_grpc(fake_broker: FakeBroker) -> None:
    async with AsyncClient(fake_broker.target, namespace="ns1", timeout=5) as client:
        with pytest.raises(JobwireError) as caught:
            await client.enqueue("bad")
        assert caught.value.field_violations == [("task", "must not be empty")]
        with pytest.raises(JobwireError) as plain:
            await client.enqueue("plain")
        assert plain.value.code is grpc.StatusCode.UNAVAILABLE
        assert plain.value.field_violations == [] and plain.value.details == []
        assert str(plain.value) == "UNAVAILABLE: Redis is unreachable"
        with pytest.raises(JobwireError) as broken:
            await client.enqueue("broken")
        assert broken.value.code is grpc.StatusCode.INTERNAL
        assert broken.value.reason == "boom" and broken.value.field_violations == []

    def sync() -> JobwireError:
        with Client(fake_broker.target, timeout=5) as client, pytest.raises(JobwireError) as sync:
            client.enqueue("bad")
        return sync.value

    error = await asyncio.to_thread(sync)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.field_violations == [("task", "must not be empty")]


async def test_unreachable_broker_is_unavailable() -> None:
    async with AsyncClient("127.0.0.1:1", timeout=5) as client:
        with pytest.raises(JobwireError) as caught:
            await client.stats()
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE


def test_async_client_made_outside_a_loop() -> None:
    client = AsyncClient("127.0.0.1:1", timeout=5)

    async def stats() -> None:
        try:
            await client.stats()
        finally:
            await client.close()

    with pytest.raises(JobwireError) as caught:
        asyncio.run(stats())
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE


async def test_guard_releases_only_a_live_lock(fake_broker: FakeBroker) -> None:
    async with AsyncClient(fake_broker.target) as client:
        async with client.guard("a", 60, limit=2) as guard:
            assert guard is not None and guard.name == "a" and not guard.expired
        async with client.guard("busy", 60) as busy:
            assert busy is None
        async with client.guard("short", 0.05) as short:
            assert short is not None
            await asyncio.sleep(0.1)
            assert short.expired
        async with client.guard("check", 0) as check:  # duration 0 only checks
            assert check is not None
        assert await client.is_locked("busy") is True
        assert await client.is_locked("a") is False

    def sync() -> None:
        with Client(fake_broker.target) as client, client.guard("s", 60) as guard:
            assert guard is not None

    await asyncio.to_thread(sync)
    assert fake_broker.locks.calls == [
        ("acquire", "a", 60.0),
        ("release", "a", 0.0),
        ("acquire", "busy", 60.0),
        ("acquire", "short", 0.05),
        ("acquire", "check", 0.0),
        ("acquire", "busy", 0.0),
        ("acquire", "a", 0.0),
        ("acquire", "s", 60.0),
        ("release", "s", 0.0),
    ]


def test_jobwire_error_is_one_line_and_picklable() -> None:
    error = JobwireError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "bad\ninput",
        field_violations=[("limit", "must be at most 1000"), ("task", "")],
        details=[error_details_pb2.ErrorInfo(reason="R")],
    )
    assert str(error) == "INVALID_ARGUMENT: bad input (limit: must be at most 1000; task)"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.reason, copy.field_violations) == (
        error.code,
        error.reason,
        error.field_violations,
    )
    assert copy.details == error.details and str(copy) == str(error)


def test_client_side_validation_names_the_argument() -> None:
    client = Client("127.0.0.1:1")  # never contacted: bad input fails before any call
    try:
        with pytest.raises(JobwireError) as caught:
            client.enqueue("task", "not a list")
        assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.field_violations == [("args", "must be a list, not str")]
        with pytest.raises(JobwireError, match=r"notes: must be a dict"):
            client.enqueue("task", notes=["a"])  # type: ignore[arg-type]
        with pytest.raises(JobwireError, match=r"states\[0\]: unknown state 'done'"):
            client.list_jobs(states=["done"])
        with pytest.raises(JobwireError, match=r"jobs\[1\]\.args\[0\]: set is not"):
            client.enqueue_many([{"task": "a"}, {"task": "b", "args": [set()]}])
        with pytest.raises(JobwireError, match=r"jobs\[0\]\.when: is not an argument"):
            client.enqueue_many([{"task": "a", "when": 1}])
        with pytest.raises(JobwireError, match=r"completions\[0\]\.outcome: unknown outcome"):
            client.complete_jobs([(1, 0, "done", None)])
        # nothing to do: answered without a round trip
        assert client.dequeue(1, tasks=[]) is None
        assert client.dequeue(1, queues=[]) is None
        assert client.dequeue_many(1, 0) == []
        assert client.enqueue_many([]) == []
        assert client.complete_jobs([]) == []
    finally:
        client.close()
    with pytest.raises(JobwireError, match=r"namespace: must be a string"):
        Client(namespace=None)  # type: ignore[arg-type]


async def test_requests_carry_namespace_and_options(fake_broker: FakeBroker) -> None:
    async with AsyncClient(fake_broker.target, namespace="tenant") as client:
        await client.enqueue("t", [1], delay=1.5, expire=60, notes={"a": None}, parents=[3])
        await client.enqueue("t")
        jobs = await client.dequeue_many(7, 3, wait=0.25, tasks=["t"], min_priority=2)
        job = await client.dequeue(7)
        assert [j.id for j in jobs] == [1, 2, 3] and job is not None and job.id == 1
        info = await client.result(1, interval=0.01, timeout=1)
        assert info is not None and info.state == "failed" and info.result == "oops"
        with pytest.raises(NotFoundError, match="job 2 not found"):
            await client.result(2, timeout=1)
        ids = [info.id async for info in client.jobs(states=["finished"])]
    assert ids == list(range(250, 0, -1))

    sent = fake_broker.service.requests
    assert {request.namespace for request in sent} == {"tenant"}
    first, bare, many, one = sent[:4]
    assert first.delay == Duration(seconds=1, nanos=500_000_000)
    assert first.expire == Duration(seconds=60)
    assert convert.from_struct(first.notes) == {"a": None}
    assert list(first.parents) == [3] and first.attempts == 1 and first.queue == "default"
    assert not bare.HasField("delay") and not bare.HasField("expire")
    assert not bare.HasField("notes") and convert.from_list_value(bare.args) == []
    assert many.count == 3 and many.wait == Duration(nanos=250_000_000)
    assert list(many.tasks) == ["t"] and list(many.queues) == ["default"]
    assert many.min_priority == 2 and not many.HasField("id")
    assert one.count == 1 and list(one.tasks) == [] and not one.HasField("wait")
    pages = [request for request in sent if isinstance(request, job_service_pb2.ListJobsRequest)]
    assert [p.before if p.HasField("before") else None for p in pages] == [None, 151, 51, 1]
    assert {tuple(p.states) for p in pages} == {(job_pb2.STATE_FINISHED,)}
