"""Request building and response parsing shared by Client and AsyncClient.

Each builder turns one client method's arguments into a `Call`: which stub method to invoke, the
request message, and how to turn the response into the method's result. The two clients only
differ in how they run a Call (blocking or awaited), so the wire mapping lives here once.
Builders raise JobwireError (INVALID_ARGUMENT, naming the argument) for values the wire cannot
carry; all other validation is the broker's.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, ParamSpec, TypeVar

import grpc
from google.protobuf.message import Message

from jobwire import convert
from jobwire.convert import (
    InvalidValue,
    to_duration,
    to_ids,
    to_int,
    to_int32,
    to_list_value,
    to_state,
    to_str,
    to_strs,
    to_struct,
    to_value,
)
from jobwire.errors import DeadlineExceededError, NotFoundError, invalid_argument
from jobwire.types import (
    DequeuedJob,
    Dispatched,
    History,
    JobInfo,
    LockInfo,
    Page,
    Registration,
    RepairReport,
    ScheduleInfo,
    Stats,
    WorkerInfo,
)
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

DEFAULT_TARGET = "127.0.0.1:50051"
# Largest message the SDK's own channels accept: far above what a broker sends (it caps its
# messages at a few MiB), so one large job or page never makes a worker reconnect forever.
MAX_RECEIVE_BYTES = 64 * 1024 * 1024
# Options of every channel the SDK opens itself (Client, AsyncClient, workers, job processes).
CHANNEL_OPTIONS: list[tuple[str, Any]] = [("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
DEFAULT_NAMESPACE = "default"
# Per-call deadline of Client and AsyncClient in seconds, the CLI's and workers' too; pass
# timeout=None for calls without one.
DEFAULT_TIMEOUT = 30.0
# States after which a job no longer changes by itself (what `result()` waits for).
DONE_STATES = frozenset({"finished", "failed"})
ENQUEUE_OPTIONS = frozenset(
    {"task", "args", "attempts", "delay", "expire", "lax", "notes", "parents", "priority", "queue"}
)

T = TypeVar("T")
P = ParamSpec("P")
Service = Literal["jobs", "workers", "locks", "schedules", "admin"]


@dataclasses.dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One unary RPC to make: `service.method(request)`, answer read by `parse`.

    A Call without a request is answered by `parse(None)` with no round trip (for example a
    dequeue restricted to an empty list of tasks). `wait` is how long the broker may hold the
    call on purpose; it is added to the client's deadline.
    """

    service: Service
    method: str
    request: Message | None
    parse: Callable[[Any], T]
    wait: float = 0.0

    def deadline(self, timeout: float | None) -> float | None:
        """The gRPC timeout for this call given the client's per-call timeout."""
        return None if timeout is None else timeout + self.wait


# The stub class of each service, by the name a Call uses.
_STUB_TYPES: dict[str, Any] = {
    "jobs": job_service_pb2_grpc.JobServiceStub,
    "workers": worker_service_pb2_grpc.WorkerServiceStub,
    "locks": lock_service_pb2_grpc.LockServiceStub,
    "schedules": schedule_service_pb2_grpc.ScheduleServiceStub,
    "admin": admin_service_pb2_grpc.AdminServiceStub,
}


class Stubs:
    """The five service stubs on one channel (sync or grpc.aio: the stubs are the same)."""

    def __init__(self, channel: Any) -> None:
        self._stubs = {service: stub(channel) for service, stub in _STUB_TYPES.items()}

    def method(self, call: Call[Any]) -> Any:
        """The multi-callable that makes `call`."""
        return getattr(self._stubs[call.service], call.method)


def _checked(build: Callable[P, T]) -> Callable[P, T]:
    """Turn a conversion failure inside a builder into JobwireError(INVALID_ARGUMENT)."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return build(*args, **kwargs)
        except InvalidValue as error:
            raise invalid_argument(error.field, error.description) from None

    return wrapper


@_checked
def namespace(value: object) -> str:
    """The namespace a client sends with every request."""
    return to_str(value, "namespace")


def before(call: Call[Page[T]], id: int) -> Call[Page[T]]:
    """The same list call for the rows with an id lower than `id` (the next page)."""
    assert call.request is not None
    request = type(call.request)()
    request.CopyFrom(call.request)
    request.before = id  # type: ignore[attr-defined]
    return dataclasses.replace(call, request=request)


def result_timeout(id: int, timeout: float) -> DeadlineExceededError:
    """The error `result()` raises when the job is still running after `timeout` seconds."""
    return DeadlineExceededError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"job {id} did not finish or fail within {timeout:g} seconds",
    )


def job_not_found(id: int) -> NotFoundError:
    """The error `result()` raises when there is no job `id` (never was, or removed)."""
    return NotFoundError(grpc.StatusCode.NOT_FOUND, f"job {id} not found")


# --- jobs -----------------------------------------------------------------------------------


def _enqueue_request(
    namespace: str,
    task: object,
    args: object,
    *,
    attempts: object,
    delay: object,
    expire: object,
    lax: object,
    notes: object,
    parents: object,
    priority: object,
    queue: object,
    prefix: str = "",
) -> job_service_pb2.EnqueueRequest:
    request = job_service_pb2.EnqueueRequest(
        namespace=namespace,
        task=to_str(task, f"{prefix}task"),
        args=to_list_value(args, f"{prefix}args"),
        attempts=to_int32(attempts, f"{prefix}attempts"),
        lax=bool(lax),
        parents=to_ids(parents, f"{prefix}parents"),
        priority=to_int32(priority, f"{prefix}priority"),
        queue=to_str(queue, f"{prefix}queue"),
    )
    wait = to_duration(delay, f"{prefix}delay")
    if wait.ToNanoseconds():
        request.delay.CopyFrom(wait)
    if expire is not None:
        request.expire.CopyFrom(to_duration(expire, f"{prefix}expire"))
    if notes is not None:
        request.notes.CopyFrom(to_struct(notes, f"{prefix}notes"))
    return request


def _id(response: Any) -> int:
    return int(response.id)


@_checked
def enqueue(
    namespace: str,
    task: str,
    args: Sequence[Any],
    *,
    attempts: int,
    delay: float,
    expire: float | None,
    lax: bool,
    notes: Mapping[str, Any] | None,
    parents: Iterable[int],
    priority: int,
    queue: str,
) -> Call[int]:
    request = _enqueue_request(
        namespace,
        task,
        args,
        attempts=attempts,
        delay=delay,
        expire=expire,
        lax=lax,
        notes=notes,
        parents=parents,
        priority=priority,
        queue=queue,
    )
    return Call("jobs", "Enqueue", request, _id)


@_checked
def enqueue_many(namespace: str, jobs: Iterable[Mapping[str, Any]]) -> Call[list[int]]:
    requests = []
    for index, job in enumerate(jobs):
        prefix = f"jobs[{index}]"
        if not isinstance(job, Mapping):
            raise InvalidValue(
                prefix, f"must be a dict of enqueue arguments, not {type(job).__name__}"
            )
        unknown = sorted(set(job) - ENQUEUE_OPTIONS, key=str)
        if unknown:
            raise InvalidValue(f"{prefix}.{unknown[0]}", "is not an argument of enqueue")
        if "task" not in job:
            raise InvalidValue(f"{prefix}.task", "is required")
        requests.append(
            _enqueue_request(
                "",
                job["task"],
                job.get("args", ()),
                attempts=job.get("attempts", 1),
                delay=job.get("delay", 0),
                expire=job.get("expire"),
                lax=job.get("lax", False),
                notes=job.get("notes"),
                parents=job.get("parents", ()),
                priority=job.get("priority", 0),
                queue=job.get("queue", "default"),
                prefix=f"{prefix}.",
            )
        )
    if not requests:
        return Call("jobs", "BatchEnqueue", None, lambda _: [])
    request = job_service_pb2.BatchEnqueueRequest(namespace=namespace, requests=requests)
    return Call("jobs", "BatchEnqueue", request, lambda response: list(response.ids))


@_checked
def dequeue(
    namespace: str,
    worker_id: int,
    count: int,
    wait: float,
    *,
    id: int | None,
    min_priority: int | None,
    queues: Iterable[str],
    tasks: Iterable[str] | None,
) -> Call[list[DequeuedJob]]:
    """Dequeue up to `count` jobs; an empty `queues` or `tasks` list matches nothing (Minion)."""
    queue_names = to_strs(queues, "queues")
    task_names = None if tasks is None else to_strs(tasks, "tasks")
    wanted = to_int32(count, "count")
    wait_for = to_duration(wait, "wait")
    if not queue_names or task_names == [] or wanted == 0:
        return Call("jobs", "Dequeue", None, lambda _: [])
    request = job_service_pb2.DequeueRequest(
        namespace=namespace,
        worker_id=to_int(worker_id, "worker_id"),
        queues=queue_names,
        tasks=task_names or (),
        count=wanted,
    )
    if wait_for.ToNanoseconds() > 0:
        request.wait.CopyFrom(wait_for)
    if id is not None:
        request.id = to_int(id, "id")
    if min_priority is not None:
        request.min_priority = to_int32(min_priority, "min_priority")
    return Call(
        "jobs",
        "Dequeue",
        request,
        lambda response: [convert.dequeued_job(job) for job in response.jobs],
        wait=max(float(wait), 0.0),
    )


def _completion(
    namespace: str, id: int, retries: int, result: Any, lease: int | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "namespace": namespace,
        "id": to_int(id, "id"),
        "retries": to_int32(retries, "retries"),
    }
    if result is not None:
        fields["result"] = to_value(result, "result")
    if lease is not None:
        fields["lease"] = to_int(lease, "lease")
    return fields


@_checked
def finish_job(
    namespace: str, id: int, retries: int, result: Any, lease: int | None = None
) -> Call[bool]:
    request = job_service_pb2.FinishJobRequest(**_completion(namespace, id, retries, result, lease))
    return Call("jobs", "FinishJob", request, lambda response: bool(response.finished))


@_checked
def fail_job(
    namespace: str, id: int, retries: int, result: Any, lease: int | None = None
) -> Call[bool]:
    request = job_service_pb2.FailJobRequest(**_completion(namespace, id, retries, result, lease))
    return Call("jobs", "FailJob", request, lambda response: bool(response.failed))


def completion(index: int, completion: Any) -> job_service_pb2.Completion:
    """One `(id, retries, outcome, result[, lease])` tuple as a Completion message."""
    field = f"completions[{index}]"
    if not isinstance(completion, (tuple, list)) or len(completion) not in (4, 5):
        raise InvalidValue(field, "must be a tuple (id, retries, outcome, result[, lease])")
    id, retries, outcome, result, *lease = completion
    item = job_service_pb2.Completion(
        id=to_int(id, f"{field}.id"),
        retries=to_int32(retries, f"{field}.retries"),
        outcome=convert.to_outcome(outcome, f"{field}.outcome"),
    )
    if result is not None:
        item.result.CopyFrom(to_value(result, f"{field}.result"))
    if lease and lease[0] is not None:
        item.lease = to_int(lease[0], f"{field}.lease")
    return item


@_checked
def complete_jobs(
    namespace: str, completions: Iterable[tuple[Any, ...] | job_service_pb2.Completion]
) -> Call[list[bool]]:
    items = [
        item if isinstance(item, job_service_pb2.Completion) else completion(index, item)
        for index, item in enumerate(completions)
    ]
    if not items:
        return Call("jobs", "CompleteJobs", None, lambda _: [])
    request = job_service_pb2.CompleteJobsRequest(namespace=namespace, completions=items)
    return Call("jobs", "CompleteJobs", request, lambda response: list(response.applied))


@_checked
def retry_job(
    namespace: str,
    id: int,
    retries: int,
    *,
    attempts: int | None,
    delay: float,
    expire: float | None,
    lax: bool | None,
    parents: Iterable[int] | None,
    priority: int | None,
    queue: str | None,
    lease: int | None = None,
) -> Call[bool]:
    request = job_service_pb2.RetryJobRequest(
        namespace=namespace, id=to_int(id, "id"), retries=to_int32(retries, "retries")
    )
    if attempts is not None:
        request.attempts = to_int32(attempts, "attempts")
    wait = to_duration(delay, "delay")
    if wait.ToNanoseconds():
        request.delay.CopyFrom(wait)
    if expire is not None:
        request.expire.CopyFrom(to_duration(expire, "expire"))
    if lax is not None:
        request.lax = bool(lax)
    if parents is not None:
        request.parents.SetInParent()
        request.parents.ids.extend(to_ids(parents, "parents"))
    if priority is not None:
        request.priority = to_int32(priority, "priority")
    if queue is not None:
        request.queue = to_str(queue, "queue")
    if lease is not None:
        request.lease = to_int(lease, "lease")
    return Call("jobs", "RetryJob", request, lambda response: bool(response.retried))


@_checked
def remove_job(namespace: str, id: int) -> Call[bool]:
    request = job_service_pb2.RemoveJobRequest(namespace=namespace, id=to_int(id, "id"))
    return Call("jobs", "RemoveJob", request, lambda response: bool(response.removed))


@_checked
def note(namespace: str, id: int, merge: Mapping[str, Any]) -> Call[bool]:
    request = job_service_pb2.NoteJobRequest(
        namespace=namespace, id=to_int(id, "id"), merge=to_struct(merge, "merge")
    )
    return Call("jobs", "NoteJob", request, lambda response: bool(response.updated))


def _job_or_none(response: job_service_pb2.GetJobResponse) -> JobInfo | None:
    return convert.job_info(response.job) if response.HasField("job") else None


@_checked
def job_info(namespace: str, id: int) -> Call[JobInfo | None]:
    request = job_service_pb2.GetJobRequest(namespace=namespace, id=to_int(id, "id"))
    return Call("jobs", "GetJob", request, _job_or_none)


@_checked
def list_jobs(
    namespace: str,
    offset: int,
    limit: int,
    *,
    before: int | None,
    ids: Iterable[int] | None,
    notes: Iterable[str] | None,
    queues: Iterable[str] | None,
    states: Iterable[str] | None,
    tasks: Iterable[str] | None,
) -> Call[Page[JobInfo]]:
    request = job_service_pb2.ListJobsRequest(
        namespace=namespace,
        offset=to_int(offset, "offset"),
        limit=to_int32(limit, "limit"),
        ids=_ids(ids, "ids"),
        notes=_strs(notes, "notes"),
        queues=_strs(queues, "queues"),
        states=[to_state(name, f"states[{i}]") for i, name in enumerate(_strs(states, "states"))],
        tasks=_strs(tasks, "tasks"),
    )
    if before is not None:
        request.before = to_int(before, "before")
    return Call(
        "jobs",
        "ListJobs",
        request,
        lambda response: Page([convert.job_info(job) for job in response.jobs], response.total),
    )


def _strs(values: object, field: str) -> list[str]:
    """An optional list filter: None means no filter."""
    return [] if values is None else to_strs(values, field)


def _ids(values: object, field: str) -> list[int]:
    """An optional list of ids: None means no filter."""
    return [] if values is None else to_ids(values, field)


# --- admin ----------------------------------------------------------------------------------


def stats(namespace: str) -> Call[Stats]:
    request = admin_service_pb2.StatsRequest(namespace=namespace)
    return Call("admin", "Stats", request, convert.stats)


def history(namespace: str) -> Call[History]:
    request = admin_service_pb2.HistoryRequest(namespace=namespace)
    return Call("admin", "History", request, convert.history)


def repair(namespace: str) -> Call[RepairReport]:
    request = admin_service_pb2.RepairRequest(namespace=namespace)
    return Call("admin", "Repair", request, convert.repair_report)


def reset(namespace: str, *, all: bool, locks: bool) -> Call[None]:
    request = admin_service_pb2.ResetRequest(namespace=namespace, all=bool(all), locks=bool(locks))
    return Call("admin", "Reset", request, lambda _: None)


# --- workers --------------------------------------------------------------------------------


@_checked
def register_worker(
    namespace: str,
    id: int | None,
    *,
    status: Mapping[str, Any] | None,
    host: str | None,
    pid: int | None,
    running: Iterable[int] | None = None,
    lease_duration: float | None = None,
) -> Call[int]:
    call = heartbeat(
        namespace,
        id,
        status=status,
        host=host,
        pid=pid,
        running=running,
        lease_duration=lease_duration,
    )
    return Call("workers", "RegisterWorker", call.request, _id)


@_checked
def heartbeat(
    namespace: str,
    id: int | None,
    *,
    status: Mapping[str, Any] | None,
    host: str | None,
    pid: int | None,
    running: Iterable[int] | None,
    lease_duration: float | None,
) -> Call[Registration]:
    request = worker_service_pb2.RegisterWorkerRequest(
        namespace=namespace,
        host=socket.gethostname() if host is None else to_str(host, "host"),
        pid=os.getpid() if pid is None else to_int32(pid, "pid"),
    )
    if id is not None:
        request.id = to_int(id, "id")
    if status is not None:
        request.status.CopyFrom(to_struct(status, "status"))
    if running is not None:
        request.running.SetInParent()
        request.running.ids.extend(to_ids(running, "running"))
    if lease_duration is not None:
        request.lease_duration.CopyFrom(to_duration(lease_duration, "lease_duration"))
    return Call("workers", "RegisterWorker", request, _registration)


def _registration(response: Any) -> Registration:
    return Registration(
        id=int(response.id), created=bool(response.created), lost=list(response.lost)
    )


@_checked
def unregister_worker(namespace: str, id: int) -> Call[None]:
    request = worker_service_pb2.UnregisterWorkerRequest(namespace=namespace, id=to_int(id, "id"))
    return Call("workers", "UnregisterWorker", request, lambda _: None)


@_checked
def list_workers(
    namespace: str, offset: int, limit: int, *, before: int | None, ids: Iterable[int] | None
) -> Call[Page[WorkerInfo]]:
    request = worker_service_pb2.ListWorkersRequest(
        namespace=namespace,
        offset=to_int(offset, "offset"),
        limit=to_int32(limit, "limit"),
        ids=_ids(ids, "ids"),
    )
    if before is not None:
        request.before = to_int(before, "before")
    return Call(
        "workers",
        "ListWorkers",
        request,
        lambda response: Page(
            [convert.worker_info(worker) for worker in response.workers], response.total
        ),
    )


@_checked
def broadcast(namespace: str, command: str, args: Sequence[Any], ids: Iterable[int]) -> Call[bool]:
    request = worker_service_pb2.BroadcastRequest(
        namespace=namespace,
        command=to_str(command, "command"),
        args=to_list_value(args, "args"),
        ids=to_ids(ids, "ids"),
    )
    return Call("workers", "Broadcast", request, lambda response: bool(response.delivered))


@_checked
def receive(namespace: str, worker_id: int) -> Call[list[list[Any]]]:
    request = worker_service_pb2.ReceiveRequest(
        namespace=namespace, worker_id=to_int(worker_id, "worker_id")
    )
    return Call(
        "workers",
        "Receive",
        request,
        lambda response: [convert.from_list_value(command) for command in response.commands],
    )


# --- locks ----------------------------------------------------------------------------------


@_checked
def lock(namespace: str, name: str, duration: float, *, limit: int) -> Call[bool]:
    """Acquire a lock; a duration <= 0 only checks (Minion), sent as an unset duration.

    `limit` must be at least 1, as in Minion: the wire's 0 means "unset" (1), so 0 is refused
    here rather than taken for 1."""
    if isinstance(limit, int) and limit < 1:
        raise invalid_argument("limit", "must be at least 1")
    request = lock_service_pb2.AcquireLockRequest(
        namespace=namespace, name=to_str(name, "name"), limit=to_int32(limit, "limit")
    )
    hold = to_duration(duration, "duration")
    if hold.ToNanoseconds() > 0:
        request.duration.CopyFrom(hold)
    return Call("locks", "AcquireLock", request, lambda response: bool(response.acquired))


@_checked
def unlock(namespace: str, name: str) -> Call[bool]:
    request = lock_service_pb2.ReleaseLockRequest(namespace=namespace, name=to_str(name, "name"))
    return Call("locks", "ReleaseLock", request, lambda response: bool(response.released))


@_checked
def list_locks(
    namespace: str, offset: int, limit: int, *, names: Iterable[str] | None
) -> Call[Page[LockInfo]]:
    request = lock_service_pb2.ListLocksRequest(
        namespace=namespace,
        offset=to_int(offset, "offset"),
        limit=to_int32(limit, "limit"),
        names=_strs(names, "names"),
    )
    return Call(
        "locks",
        "ListLocks",
        request,
        lambda response: Page([convert.lock_info(lock) for lock in response.locks], response.total),
    )


# --- schedules ------------------------------------------------------------------------------


@_checked
def schedule(
    namespace: str,
    name: str,
    cron: str,
    task: str,
    args: Sequence[Any],
    *,
    attempts: int,
    expire: float | None,
    lax: bool,
    notes: Mapping[str, Any] | None,
    priority: int,
    queue: str,
) -> Call[int]:
    request = schedule_service_pb2.UpsertScheduleRequest(
        namespace=namespace,
        name=to_str(name, "name"),
        cron=to_str(cron, "cron"),
        task=to_str(task, "task"),
        args=to_list_value(args, "args"),
        attempts=to_int32(attempts, "attempts"),
        lax=bool(lax),
        priority=to_int32(priority, "priority"),
        queue=to_str(queue, "queue"),
    )
    if expire is not None:
        request.expire.CopyFrom(to_duration(expire, "expire"))
    if notes is not None:
        request.notes.CopyFrom(to_struct(notes, "notes"))
    return Call("schedules", "UpsertSchedule", request, _id)


@_checked
def unschedule(namespace: str, name: str) -> Call[bool]:
    request = schedule_service_pb2.DeleteScheduleRequest(
        namespace=namespace, name=to_str(name, "name")
    )
    return Call("schedules", "DeleteSchedule", request, lambda response: bool(response.deleted))


@_checked
def pause_schedule(namespace: str, name: str) -> Call[bool]:
    request = schedule_service_pb2.PauseScheduleRequest(
        namespace=namespace, name=to_str(name, "name")
    )
    return Call("schedules", "PauseSchedule", request, lambda response: bool(response.found))


@_checked
def resume_schedule(namespace: str, name: str) -> Call[bool]:
    request = schedule_service_pb2.ResumeScheduleRequest(
        namespace=namespace, name=to_str(name, "name")
    )
    return Call("schedules", "ResumeSchedule", request, lambda response: bool(response.found))


@_checked
def list_schedules(
    namespace: str,
    offset: int,
    limit: int,
    *,
    before: int | None,
    ids: Iterable[int] | None,
    names: Iterable[str] | None,
) -> Call[Page[ScheduleInfo]]:
    request = schedule_service_pb2.ListSchedulesRequest(
        namespace=namespace,
        offset=to_int(offset, "offset"),
        limit=to_int32(limit, "limit"),
        ids=_ids(ids, "ids"),
        names=_strs(names, "names"),
    )
    if before is not None:
        request.before = to_int(before, "before")
    return Call(
        "schedules",
        "ListSchedules",
        request,
        lambda response: Page(
            [convert.schedule_info(item) for item in response.schedules], response.total
        ),
    )


def dispatch_schedules(namespace: str) -> Call[list[Dispatched]]:
    request = schedule_service_pb2.DispatchSchedulesRequest(namespace=namespace)
    return Call(
        "schedules",
        "DispatchSchedules",
        request,
        lambda response: [convert.dispatched(item) for item in response.dispatched],
    )
