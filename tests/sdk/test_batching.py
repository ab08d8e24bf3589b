"""Coalescing of concurrent enqueue and finish/fail calls into batch RPCs, against a real broker.

A client interceptor counts the RPCs each client sends and can park them (`hold`), so that calls
arriving meanwhile are known to wait and go out together in the next batch.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from jobwire import AsyncClient, Client, JobwireError
from jobwire import _requests as rq
from jobwire.batching import Coalescer, merge_enqueues


class Recorder(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts RPCs by method; while `gate` is clear, RPCs wait before going out."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        with self.lock:
            self.calls[details.method.rsplit("/", 1)[-1]] += 1
        assert self.gate.wait(30)
        return continuation(details, request)


class AsyncRecorder(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts RPCs by method on a grpc.aio channel."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        self.calls[method.rsplit("/", 1)[-1]] += 1
        return await continuation(details, request)


@pytest.fixture
def recorded(broker: Any, namespace: str) -> Iterator[Callable[..., tuple[Client, Recorder]]]:
    """Factory: a Client (options as given) whose RPCs a fresh Recorder sees."""
    channels: list[grpc.Channel] = []

    def make(**options: Any) -> tuple[Client, Recorder]:
        recorder = Recorder()
        channel = grpc.intercept_channel(grpc.insecure_channel(broker.target), recorder)
        channels.append(channel)
        return Client(namespace=namespace, channel=channel, **options), recorder

    yield make
    for channel in channels:
        channel.close()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..count-1) in `count` threads started together; results in order."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def outcome(call: Callable[[], Any]) -> Any:
    """The call's result, or the JobwireError it raised."""
    try:
        return call()
    except JobwireError as error:
        return error


def test_threads_share_rpcs_and_get_their_own_ids(recorded: Any) -> None:
    client, recorder = recorded()

    def enqueue_50(thread: int) -> list[int]:
        return [client.enqueue("add", [thread, i]) for i in range(50)]

    chunks = in_threads(64, enqueue_50)
    ids = [id for chunk in chunks for id in chunk]
    assert len(set(ids)) == 3200
    stored = {job.id: job.args for job in client.jobs(fetch=1000)}
    # Every job is there, and every caller got the id of its own job.
    assert stored == {
        id: [thread, i] for thread, chunk in enumerate(chunks) for i, id in enumerate(chunk)
    }
    rpcs = recorder.calls["Enqueue"] + recorder.calls["BatchEnqueue"]
    assert recorder.calls["BatchEnqueue"] > 0
    assert rpcs < 3200, recorder.calls


def test_lone_caller_sends_plain_enqueue(recorded: Any) -> None:
    client, recorder = recorded()
    for _ in range(3):
        client.enqueue("add")
    assert recorder.calls == {"Enqueue": 3}


def test_bad_jobs_fail_only_their_callers(recorded: Any) -> None:
    client, recorder = recorded()
    plain, _ = recorded(coalesce=False)
    recorder.gate.clear()  # the first enqueue is held in flight; the others queue behind it
    with ThreadPoolExecutor(12) as pool:
        first = pool.submit(client.enqueue, "add", [0])
        wait_until(lambda: recorder.calls["Enqueue"] == 1)
        tasks = ["add"] * 10
        tasks[3], tasks[7] = "", "bad\x01"
        futures = [pool.submit(outcome, functools.partial(client.enqueue, t)) for t in tasks]
        wait_until(lambda: len(client._enqueues._pending) == 10)
        recorder.gate.set()
        results = [future.result() for future in futures]
        assert isinstance(first.result(), int)
    good = [result for i, result in enumerate(results) if i not in (3, 7)]
    assert all(isinstance(id, int) for id in good) and len(set(good)) == 8
    assert {job.id for job in client.jobs()} == {first.result(), *good}
    for index in (3, 7):
        error, alone = results[index], outcome(functools.partial(plain.enqueue, tasks[index]))
        assert isinstance(error, JobwireError) and isinstance(alone, JobwireError)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.field_violations[0][0] == "task"
        assert (error.reason, error.field_violations) == (alone.reason, alone.field_violations)
    # One batch of ten failed on the first bad job, nine failed on the second, eight went in.
    assert recorder.calls["BatchEnqueue"] == 3


def test_waiting_caller_keeps_its_deadline(recorded: Any) -> None:
    client, recorder = recorded(timeout=0.3)
    recorder.gate.clear()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(outcome, lambda: client.enqueue("first"))
        wait_until(lambda: recorder.calls["Enqueue"] == 1)
        started = time.monotonic()
        waiting = pool.submit(outcome, lambda: client.enqueue("waiting"))
        error = waiting.result()
        assert isinstance(error, JobwireError)
        assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert 0.25 < time.monotonic() - started < 2
        recorder.gate.set()
        first.result()
    assert "waiting" not in {job.task for job in client.jobs()}  # it was never sent


def test_finish_and_fail_coalesce_with_their_own_answers(recorded: Any) -> None:
    client, recorder = recorded()
    worker = client.register_worker()
    ids = client.enqueue_many([{"task": "t"} for _ in range(9)])
    jobs = {job.id: job for job in client.dequeue_many(worker, 9)}
    assert sorted(jobs) == sorted(ids)
    # Per job: finish, fail, or a finish with stale retries (False for that caller only).
    plan = [("finish", 0), ("fail", 0), ("finish", 5)] * 3
    recorder.gate.clear()
    with ThreadPoolExecutor(10) as pool:
        held = pool.submit(client.finish_job, 10**9, 0)  # no such job: False
        wait_until(lambda: recorder.calls["FinishJob"] == 1)
        futures = [
            pool.submit(getattr(client, f"{verb}_job"), id, jobs[id].retries + stale, {"n": i})
            for i, (id, (verb, stale)) in enumerate(zip(ids, plan, strict=True))
        ]
        wait_until(lambda: len(client._completions._pending) == 9)
        recorder.gate.set()
        answers = [future.result() for future in futures]
        assert held.result() is False
    assert answers == [True, True, False] * 3
    assert (recorder.calls["FinishJob"], recorder.calls["FailJob"]) == (1, 0)
    assert recorder.calls["CompleteJobs"] == 1
    states = [client.job_info(id).state for id in ids]
    assert states == ["finished", "failed", "active"] * 3
    assert client.job_info(ids[0]).result == {"n": 0}


def test_coalesce_off_sends_one_rpc_per_call(recorded: Any) -> None:
    client, recorder = recorded(coalesce=False)
    chunks = in_threads(16, lambda _: [client.enqueue("t") for _ in range(20)])
    assert len({id for chunk in chunks for id in chunk}) == 320
    worker = client.register_worker()
    jobs = client.dequeue_many(worker, 20)
    in_threads(20, lambda i: client.finish_job(jobs[i].id, jobs[i].retries))
    assert recorder.calls["Enqueue"] == 320 and recorder.calls["FinishJob"] == 20
    assert recorder.calls["BatchEnqueue"] == recorder.calls["CompleteJobs"] == 0


def test_failed_batch_fails_every_caller_and_is_not_retried() -> None:
    """UNAVAILABLE (say) may come after the batch took effect: all its callers get it, once."""
    sent: list[str] = []
    gate = threading.Event()

    def run(call: rq.Call[Any], timeout: float | None) -> Any:
        sent.append(call.method)
        if call.method == "Enqueue":
            assert gate.wait(10)
            return 1
        raise JobwireError(grpc.StatusCode.UNAVAILABLE, "Redis is unavailable; try again")

    coalescer = Coalescer(run, merge_enqueues)
    options: dict[str, Any] = dict(
        attempts=1, delay=0, expire=None, lax=False, notes=None, parents=(), priority=0, queue="q"
    )
    calls = [rq.enqueue("ns", "t", [i], **options) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(coalescer.call, calls[0], None)
        wait_until(lambda: sent == ["Enqueue"])
        rest = [pool.submit(outcome, functools.partial(coalescer.call, c, None)) for c in calls[1:]]
        wait_until(lambda: len(coalescer._pending) == 5)
        gate.set()
        assert first.result() == 1
        errors = [future.result() for future in rest]
    assert all(e.code == grpc.StatusCode.UNAVAILABLE for e in errors)
    assert len({id(e) for e in errors}) == 5  # each caller raises its own instance
    assert sent == ["Enqueue", "BatchEnqueue"]


# --- asyncio --------------------------------------------------------------------------------


async def test_tasks_share_rpcs_and_get_their_own_ids(broker: Any, namespace: str) -> None:
    recorder = AsyncRecorder()
    channel = grpc.aio.insecure_channel(broker.target, interceptors=[recorder])
    client = AsyncClient(namespace=namespace, channel=channel)
    try:

        async def enqueue_50(task: int) -> list[int]:
            return [await client.enqueue("add", [task, i]) for i in range(50)]

        chunks = await asyncio.gather(*(enqueue_50(task) for task in range(64)))
        ids = [id for chunk in chunks for id in chunk]
        assert len(set(ids)) == 3200
        page = await client.list_jobs(limit=1000)
        assert page.total == 3200
        for task, chunk in enumerate(chunks):
            info = await client.job_info(chunk[-1])
            assert info is not None and info.args == [task, 49]
        assert recorder.calls["BatchEnqueue"] > 0
        assert recorder.calls["Enqueue"] + recorder.calls["BatchEnqueue"] < 3200
    finally:
        await channel.close()


async def test_async_bad_job_fails_only_its_caller(aclient: AsyncClient) -> None:
    async def outcome(task: str) -> Any:
        try:
            return await aclient.enqueue(task)
        except JobwireError as error:
            return error

    await aclient.enqueue("warm")  # opens the channel; later calls coalesce
    results = await asyncio.gather(*(outcome("" if i == 5 else "add") for i in range(20)))
    error = results.pop(5)
    assert isinstance(error, JobwireError)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.field_violations == [("task", "must not be empty")]
    assert error.reason == "task: must not be empty"
    assert all(isinstance(id, int) for id in results) and len(set(results)) == 19


async def test_async_finish_and_fail(aclient: AsyncClient) -> None:
    worker = await aclient.register_worker()
    ids = await aclient.enqueue_many([{"task": "t"} for _ in range(6)])
    jobs = {job.id: job for job in await aclient.dequeue_many(worker, 6)}
    answers = await asyncio.gather(
        aclient.finish_job(ids[0], jobs[ids[0]].retries),
        aclient.fail_job(ids[1], jobs[ids[1]].retries, "boom"),
        aclient.finish_job(ids[2], jobs[ids[2]].retries + 1),
        aclient.fail_job(ids[3], jobs[ids[3]].retries + 1),
        aclient.finish_job(ids[4], jobs[ids[4]].retries),
        aclient.finish_job(ids[4], jobs[ids[4]].retries),  # the second one is too late
    )
    assert list(answers) == [True, True, False, False, True, False]
    infos = [await aclient.job_info(id) for id in ids[:5]]
    assert [info.state for info in infos if info] == [
        "finished", "failed", "active", "active", "finished"
    ]  # fmt: skip


async def test_async_cancelled_caller_is_not_sent(aclient: AsyncClient) -> None:
    await aclient.enqueue("warm")
    tasks = [asyncio.create_task(aclient.enqueue(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)  # all three are queued; the sender has not run yet
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert sorted(job.task for job in await aclient.list_jobs()) == ["a", "c", "warm"]
