"""Transparent coalescing of concurrent calls into batch RPCs (like Redis auto-pipelining).

One Python gRPC server answers a few thousand unary calls a second, while one BatchEnqueue moves
thousands of jobs. So a client sends a call at once when none of the same kind is in flight (no
added latency for a lone caller) and sends the calls that arrive meanwhile together in the next
RPC: `enqueue` as one BatchEnqueue, `finish_job`/`fail_job` as one CompleteJobs. Each caller still
gets its own answer or error:

- A batch is atomic on the broker. When it fails with INVALID_ARGUMENT naming one item
  (`requests[3].task`), nothing happened: that caller gets the error a plain call would have got
  (field `task`) and the others are sent again. Without an item named, each is sent alone.
- Any other error (UNAVAILABLE, DEADLINE_EXCEEDED, ...) goes to every caller of the batch and is
  never retried here: the batch may have taken effect.
- Each caller gives up at its own deadline; the RPC's deadline is the latest of its batch.

`Coalescer` serves threads (the first caller becomes the sender, the others wait on the lock's
condition for their own result); `AsyncCoalescer` serves tasks (futures and one sender task).
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from typing import Any, Generic, Protocol, TypeVar

import grpc
from google.rpc import error_details_pb2

from jobwire import _requests as rq
from jobwire.errors import JobwireError, from_rpc_error, jobwire_error
from jobwire.v1 import job_service_pb2

__all__ = [
    "AsyncCoalescer",
    "Coalescer",
    "async_runner",
    "merge_completions",
    "merge_enqueues",
    "runner",
]

# Most calls in one batch RPC; more go in the following ones.
MAX_BATCH = 1000
# Most request bytes in one batch (a lone call may be larger): every broker accepts this much,
# its receive limit being 64 KiB plus twice its largest payload.
MAX_BATCH_BYTES = 64 * 1024

T = TypeVar("T")
# The batch item an INVALID_ARGUMENT names: `requests[3].` of `requests[3].task`.
_ITEM = re.compile(r"\w+\[(\d+)\]\.")

# How to send one call with a timeout (the RPC's result, parsed), blocking or awaited.
Run = Callable[[rq.Call[Any], "float | None"], Any]
AsyncRun = Callable[[rq.Call[Any], "float | None"], Awaitable[Any]]
# How to send many: the one batch call that makes all of them, answering in their order.
Merge = Callable[[list[rq.Call[T]]], rq.Call[list[T]]]


class _Future(Protocol):
    """What a slot needs of `concurrent.futures.Future` and `asyncio.Future`."""

    def done(self) -> bool: ...
    def cancel(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


@dataclasses.dataclass(eq=False)
class _Slot(Generic[T]):
    """One caller's call, its deadline (`time.monotonic()`, None: none) and its answer."""

    call: rq.Call[T]
    deadline: float | None
    future: _Future


class Coalescer(Generic[T]):
    """Coalesces one kind of call from many threads: `run` sends one, `merge` makes many one."""

    def __init__(self, run: Run, merge: Merge[T]) -> None:
        self._run = run
        self._merge = merge
        self._cond = threading.Condition(threading.Lock())
        self._pending: collections.deque[_Slot[T]] = collections.deque()
        self._sending = False

    def call(self, call: rq.Call[T], timeout: float | None) -> T:
        """The answer to `call`, sent alone or in a batch with the calls of other threads."""
        future: Future[T] = Future()
        slot = _Slot(call, _deadline(timeout), future)
        with self._cond:
            self._pending.append(slot)
            try:
                while not future.done():
                    if not self._sending:  # this thread sends the oldest calls, maybe its own
                        self._sending = True
                        batch = _take(self._pending)
                        self._cond.release()
                        try:
                            self._send(batch)
                        finally:
                            self._cond.acquire()
                            self._sending = False
                            self._cond.notify_all()
                    elif not self._cond.wait(_remaining(slot.deadline)) and not future.done():
                        raise _deadline_exceeded()
            except BaseException:
                if slot in self._pending:
                    self._pending.remove(slot)
                raise
        return future.result()

    def _send(self, batch: list[_Slot[T]]) -> None:
        groups = collections.deque([batch])
        while groups:
            group, timeout = _live(groups.popleft())
            if not group:
                continue
            try:
                response = self._run(_merged(group, self._merge), timeout)
            except JobwireError as error:
                groups.extend(_regroup(group, error))
            except BaseException as error:
                _fail([*group, *(slot for rest in groups for slot in rest)], error)
                raise
            else:
                _settle(group, response)


class AsyncCoalescer(Generic[T]):
    """Coalesces one kind of call from many tasks of one event loop, sent by one sender task."""

    def __init__(self, run: AsyncRun, merge: Merge[T]) -> None:
        self._run = run
        self._merge = merge
        self._pending: collections.deque[_Slot[T]] = collections.deque()
        self._sender: asyncio.Task[None] | None = None

    async def call(self, call: rq.Call[T], timeout: float | None) -> T:
        """The answer to `call`, sent alone or in a batch with the calls of other tasks."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        slot = _Slot(call, _deadline(timeout), future)
        self._pending.append(slot)
        if self._sender is None:
            self._sender = loop.create_task(self._drain())
        # Awaited directly, so cancelling the caller cancels the future at once and the sender
        # drops the unsent call; at the deadline the future fails and is dropped the same way.
        expiry = None
        if slot.deadline is not None:
            expiry = loop.call_later(_remaining(slot.deadline) or 0.0, _expire, future)
        try:
            return await future
        finally:
            if expiry is not None:
                expiry.cancel()

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._send(_take(self._pending))
        finally:
            self._sender = None
            _fail(self._pending, JobwireError(grpc.StatusCode.CANCELLED, "the sender stopped"))
            self._pending.clear()

    async def _send(self, batch: list[_Slot[T]]) -> None:
        groups = collections.deque([batch])
        while groups:
            group, timeout = _live(groups.popleft())
            if not group:
                continue
            try:
                response = await self._run(_merged(group, self._merge), timeout)
            except JobwireError as error:
                groups.extend(_regroup(group, error))
            except BaseException as error:
                _fail([*group, *(slot for rest in groups for slot in rest)], error)
                if not isinstance(error, Exception):
                    raise
            else:
                _settle(group, response)


# --- how to send ----------------------------------------------------------------------------


def runner(stubs: rq.Stubs) -> Run:
    """Send a Call on a blocking channel with the given timeout."""

    def run(call: rq.Call[Any], timeout: float | None) -> Any:
        try:
            response = stubs.method(call)(call.request, timeout=timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return call.parse(response)

    return run


def async_runner(stubs: Callable[[], rq.Stubs | None]) -> AsyncRun:
    """Send a Call on the grpc.aio channel of `stubs()` (None once the client is closed)."""

    async def run(call: rq.Call[Any], timeout: float | None) -> Any:
        current = stubs()
        if current is None:
            raise JobwireError(grpc.StatusCode.CANCELLED, "the client is closed")
        try:
            response = await current.method(call)(call.request, timeout=timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return call.parse(response)

    return run


def merge_enqueues(calls: list[rq.Call[int]]) -> rq.Call[list[int]]:
    """Several Enqueue calls of one namespace as one BatchEnqueue."""
    requests: list[Any] = [call.request for call in calls]
    request = job_service_pb2.BatchEnqueueRequest(
        namespace=requests[0].namespace, requests=requests
    )
    return rq.Call("jobs", "BatchEnqueue", request, lambda response: list(response.ids))


def merge_completions(calls: list[rq.Call[bool]]) -> rq.Call[list[bool]]:
    """Several FinishJob and FailJob calls of one namespace as one CompleteJobs."""
    completions = []
    for call in calls:
        request: Any = call.request
        outcome = (
            job_service_pb2.OUTCOME_FAILED
            if call.method == "FailJob"
            else job_service_pb2.OUTCOME_FINISHED
        )
        completion = job_service_pb2.Completion(
            id=request.id,
            retries=request.retries,
            outcome=outcome,
            result=request.result if request.HasField("result") else None,
        )
        if request.HasField("lease"):
            completion.lease = request.lease
        completions.append(completion)
    first: Any = calls[0].request
    request = job_service_pb2.CompleteJobsRequest(
        namespace=first.namespace, completions=completions
    )
    return rq.Call("jobs", "CompleteJobs", request, lambda response: list(response.applied))


# --- shared by both flavours ----------------------------------------------------------------


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_deadline_exceeded())


def _deadline_exceeded() -> JobwireError:
    return jobwire_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")


def _take(pending: collections.deque[_Slot[T]]) -> list[_Slot[T]]:
    """The next batch: the oldest waiting calls, at most MAX_BATCH and MAX_BATCH_BYTES of them."""
    batch: list[_Slot[T]] = []
    size = 0
    while pending and len(batch) < MAX_BATCH:
        request = pending[0].call.request
        size += (0 if request is None else request.ByteSize()) + 8  # + its framing
        if batch and size > MAX_BATCH_BYTES:
            break
        batch.append(pending.popleft())
    return batch


def _live(group: list[_Slot[T]]) -> tuple[list[_Slot[T]], float | None]:
    """The calls of `group` still awaited (expired ones fail) and the timeout for their RPC."""
    now = time.monotonic()
    live = []
    for slot in group:
        if slot.future.done():  # its caller gave up
            continue
        if slot.deadline is not None and slot.deadline <= now:
            _fail([slot], _deadline_exceeded())
            continue
        live.append(slot)
    deadlines = [slot.deadline for slot in live if slot.deadline is not None]
    if not live or len(deadlines) < len(live):
        return live, None
    return live, max(deadlines) - now


def _merged(group: list[_Slot[T]], merge: Merge[T]) -> rq.Call[Any]:
    """What to send for `group`: a lone call as itself (a plain Enqueue), else the batch call."""
    return group[0].call if len(group) == 1 else merge([slot.call for slot in group])


def _settle(group: list[_Slot[T]], response: Any) -> None:
    values = [response] if len(group) == 1 else response
    for slot, value in zip(group, values, strict=True):
        if not slot.future.done():
            slot.future.set_result(value)


def _fail(slots: Iterable[_Slot[Any]], error: BaseException) -> None:
    for slot in slots:
        if slot.future.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            slot.future.cancel()
        else:
            slot.future.set_exception(copy.copy(error))  # one instance per raising caller


def _regroup(group: list[_Slot[T]], error: JobwireError) -> list[list[_Slot[T]]]:
    """Give `error` to the callers it is for; return the groups to send again (nothing ran)."""
    if len(group) == 1 or error.code != grpc.StatusCode.INVALID_ARGUMENT:
        _fail(group, error)
        return []
    field = error.field_violations[0][0] if error.field_violations else ""
    item = _ITEM.match(field)
    if item is None or int(item[1]) >= len(group):
        return [[slot] for slot in group]  # which one is bad? ask one at a time
    index = int(item[1])
    _fail([group[index]], _unprefixed(error, item[0]))
    return [group[:index] + group[index + 1 :]]


def _unprefixed(error: JobwireError, prefix: str) -> JobwireError:
    """A batch item's error as the plain call would have raised it: `requests[3].task` -> `task`."""
    details = []
    for detail in error.details:
        if isinstance(detail, error_details_pb2.BadRequest):
            detail = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=violation.field.removeprefix(prefix),
                        description=violation.description,
                    )
                    for violation in detail.field_violations
                ]
            )
        details.append(detail)
    return jobwire_error(
        error.code,
        error.reason.removeprefix(prefix),
        field_violations=[
            (field.removeprefix(prefix), text) for field, text in error.field_violations
        ],
        details=details,
    )
