"""The Python worker runtime end to end: a real broker, Redis, and workers in their own threads."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobwire import AsyncClient, Client, Worker
from jobwire.worker import Job, terminated

# Process tasks live at module level: job processes import them by name.


def proc_add(job: Job, a: int, b: int) -> dict[str, int]:
    return {"sum": a + b, "pid": os.getpid()}


def proc_exit(job: Job, code: int) -> None:
    os._exit(code)


def proc_sigkill(job: Job) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def proc_raise(job: Job) -> None:
    raise RuntimeError("from a job process")


def proc_sleep(job: Job, seconds: float) -> None:
    job.note(sleeping=True)
    time.sleep(seconds)


def proc_finish_itself(job: Job) -> str:
    job.finish("by the task")
    return "ignored"


def test_terminated_is_minions_text() -> None:
    assert terminated(3, 0) == "Job terminated unexpectedly (exit code: 3, signal: 0)"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `predicate` every 20 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Runner:
    """Starts workers in threads with their own event loops; stops them after the test."""

    def __init__(self, target: str, namespace: str) -> None:
        self.target = target
        self.namespace = namespace
        self.started: list[tuple[Worker, threading.Thread, Client]] = []

    def worker(self, *, target: str | None = None, **options: Any) -> Worker:
        client = Client(target or self.target, namespace=self.namespace, timeout=5)
        options.setdefault("spare", 0)
        worker = Worker(client, **options)
        self.started.append((worker, threading.Thread(), client))
        return worker

    def start(
        self, worker: Worker, make_client: Callable[[], AsyncClient] | None = None
    ) -> Worker:
        """Run `worker` in a thread; `make_client` gives it a client made inside its own loop
        (a channel belongs to the loop that opens it)."""
        errors: list[BaseException] = []

        async def run() -> None:
            if make_client is not None:
                worker.client = make_client()
            await worker.run_async()

        def main() -> None:
            try:
                asyncio.run(run())
            except BaseException as error:  # surfaced by the test through `errors`
                errors.append(error)

        thread = threading.Thread(target=main, daemon=True)
        for index, (w, _, client) in enumerate(self.started):
            if w is worker:
                self.started[index] = (w, thread, client)
        thread.start()
        assert worker.ready.wait(10), errors
        return worker

    def join(self, worker: Worker, timeout: float = 10.0) -> None:
        for w, thread, _ in self.started:
            if w is worker:
                thread.join(timeout)
                assert not thread.is_alive()

    def close(self) -> None:
        for worker, thread, client in self.started:
            if thread.is_alive():
                worker.stop(force=True)
                thread.join(10)
            client.close()


@pytest.fixture
def runner(broker: Any, namespace: str) -> Iterator[Runner]:
    r = Runner(broker.target, namespace)
    yield r
    r.close()


def done(client: Client, job_id: int, timeout: float = 30.0) -> Any:
    return client.result(job_id, interval=0.02, timeout=timeout)


def test_jobs_run_by_priority_with_concurrency_one(client: Client, runner: Runner) -> None:
    seen: list[int] = []
    worker = runner.worker(concurrency=1)

    @worker.task("record")
    def record(job: Job, priority: int) -> None:
        seen.append(priority)

    ids = [client.enqueue("record", [p], priority=p) for p in (2, 0, 4, 1, 3)]
    runner.start(worker)
    for job_id in ids:
        assert done(client, job_id).state == "finished"
    assert seen == [4, 3, 2, 1, 0]


def test_async_thread_and_process_tasks(client: Client, runner: Runner) -> None:
    threads: list[str] = []
    thread_worker = runner.worker(queues=["t"])
    process_worker = runner.worker(queues=["p"], executor="process")

    @thread_worker.task("add")
    def add(job: Job, a: int, b: int) -> int:
        threads.append(threading.current_thread().name)
        return a + b

    @thread_worker.task("aadd")
    async def aadd(job: Job, a: int, b: int) -> int:
        await job.anote(progress="50%")
        await asyncio.sleep(0)
        return a + b

    process_worker.add_task("add", proc_add)
    runner.start(thread_worker)
    runner.start(process_worker)

    in_thread = client.enqueue("add", [1, 2], queue="t")
    in_loop = client.enqueue("aadd", [3, 4], queue="t")
    in_process = client.enqueue("add", [5, 6], queue="p")
    assert done(client, in_thread).result == 3
    assert threads[0].startswith("jobwire-job")
    info = done(client, in_loop)
    assert (info.result, info.notes["progress"]) == (7, "50%")
    info = done(client, in_process)
    assert isinstance(info.result, dict), info.result
    assert info.result["sum"] == 11
    assert info.result["pid"] != os.getpid()
    assert info.notes["minion_pid"] == info.result["pid"]


def test_exception_fails_the_job_with_error_and_traceback(client: Client, runner: Runner) -> None:
    worker = runner.worker()

    @worker.task("boom")
    def boom(job: Job) -> None:
        raise ValueError("boom")

    runner.start(worker)
    info = done(client, client.enqueue("boom"))
    assert info.state == "failed"
    assert info.result["error"] == "ValueError: boom"
    assert info.result["traceback"].startswith("Traceback (most recent call last):")
    assert 'raise ValueError("boom")' in info.result["traceback"]


def test_job_process_crash_and_exception(client: Client, runner: Runner) -> None:
    worker = runner.worker(executor="process", concurrency=3)
    worker.add_task("exit", proc_exit)
    worker.add_task("sigkill", proc_sigkill)
    worker.add_task("raise", proc_raise)
    runner.start(worker)
    exited = client.enqueue("exit", [3])
    killed = client.enqueue("sigkill")
    raised = client.enqueue("raise")
    assert done(client, exited).result == terminated(3, 0)
    assert done(client, killed).result == terminated(0, 9)
    assert done(client, raised).result["error"] == "RuntimeError: from a job process"


def test_note_and_finish_inside_the_task_win(client: Client, runner: Runner) -> None:
    worker = runner.worker(executor="thread")
    process_worker = runner.worker(executor="process", queues=["p"])
    outcomes: list[bool] = []

    @worker.task("self")
    def finish_itself(job: Job) -> str:
        job.note(progress="50%")
        outcomes.append(job.finish({"done": True}))
        return "ignored"

    @worker.task("fail")
    def fail_itself(job: Job) -> str:
        outcomes.append(job.fail())
        return "ignored"

    process_worker.add_task("self", proc_finish_itself)
    runner.start(worker)
    runner.start(process_worker)
    info = done(client, client.enqueue("self"))
    assert (info.state, info.result) == ("finished", {"done": True})
    assert info.notes == {"progress": "50%"}
    info = done(client, client.enqueue("fail"))
    assert (info.state, info.result) == ("failed", "Unknown error")
    assert outcomes == [True, True]
    assert done(client, client.enqueue("self", queue="p")).result == "by the task"


def test_jobs_zero_pauses_and_jobs_two_resumes(client: Client, runner: Runner) -> None:
    worker = runner.worker(concurrency=1)

    @worker.task("noop")
    def noop(job: Job) -> str:
        return "ran"

    runner.start(worker)
    assert client.broadcast("jobs", ["0"], [worker.id or 0])

    def status() -> dict[str, Any]:
        return client.list_workers(ids=[worker.id or 0])[0].status

    wait_for(lambda: status()["jobs"] == 0)
    job_id = client.enqueue("noop")
    time.sleep(0.3)
    assert client.job_info(job_id).state == "inactive"  # type: ignore[union-attr]
    assert client.broadcast("jobs", [2])
    assert done(client, job_id).result == "ran"
    assert worker.settings.concurrency == 2
    wait_for(lambda: status()["jobs"] == 2)


def test_custom_command_arrives_live(client: Client, runner: Runner) -> None:
    worker = runner.worker()
    got: list[tuple[Any, ...]] = []
    arrived = threading.Event()
    worker.add_task("noop", lambda job: None)

    @worker.command("ping")
    def ping(w: Worker, *args: Any) -> None:
        got.append(args)
        arrived.set()

    runner.start(worker)
    assert client.broadcast("nosuch", ["ignored"])
    assert client.broadcast("ping", ["a", 1])
    assert arrived.wait(2)
    assert got == [("a", 1)]


def test_per_task_limit_is_respected(client: Client, runner: Runner) -> None:
    worker = runner.worker(concurrency=4, limits={"slow": 1})
    lock = threading.Lock()
    running = {"slow": 0, "fast": 0}
    most = {"slow": 0, "fast": 0}

    def track(name: str) -> None:
        with lock:
            running[name] += 1
            most[name] = max(most[name], running[name])
        time.sleep(0.05)
        with lock:
            running[name] -= 1

    worker.add_task("slow", lambda job: track("slow"))
    worker.add_task("fast", lambda job: track("fast"))
    ids = [client.enqueue("slow") for _ in range(4)] + [client.enqueue("fast") for _ in range(3)]
    runner.start(worker)
    for job_id in ids:
        assert done(client, job_id).state == "finished"
    assert most["slow"] == 1
    assert most["fast"] >= 2


def test_stop_command_and_kill(client: Client, runner: Runner) -> None:
    worker = runner.worker(concurrency=2)
    process_worker = runner.worker(executor="process", queues=["p"])
    started = threading.Event()

    @worker.task("wait")
    def wait(job: Job) -> str:
        started.set()
        job.killed.wait(5)
        return "ignored"

    process_worker.add_task("sleep", proc_sleep)
    runner.start(worker)
    runner.start(process_worker)
    job_id = client.enqueue("wait")
    assert started.wait(5)
    client.broadcast("stop", [job_id])
    assert done(client, job_id).result == "Job terminated unexpectedly (exit code: 0, signal: 9)"

    slow = client.enqueue("sleep", [30], queue="p")
    wait_for(lambda: client.job_info(slow).notes.get("sleeping"))  # type: ignore[union-attr]
    client.broadcast("kill", ["TERM", str(slow)])
    info = done(client, slow)
    assert info.result == "Job terminated unexpectedly (exit code: 0, signal: 15)"


def test_graceful_stop_finishes_running_jobs_then_unregisters(
    client: Client, runner: Runner
) -> None:
    worker = runner.worker()
    started, release = threading.Event(), threading.Event()

    @worker.task("block")
    def block(job: Job) -> str:
        started.set()
        release.wait(5)
        return "finished anyway"

    runner.start(worker)
    job_id = client.enqueue("block")
    waiting = client.enqueue("block", delay=0.3)
    assert started.wait(5)
    worker.stop()
    time.sleep(0.4)  # the delayed job becomes ready: a stopping worker must not take it
    assert client.job_info(job_id).state == "active"  # type: ignore[union-attr]
    assert client.list_workers(ids=[worker.id or 0]).total == 1
    release.set()
    runner.join(worker)
    assert client.job_info(job_id).result == "finished anyway"  # type: ignore[union-attr]
    assert client.job_info(waiting).state == "inactive"  # type: ignore[union-attr]
    assert client.list_workers(ids=[worker.id or 0]).total == 0


def test_poll_mode(client: Client, runner: Runner) -> None:
    worker = runner.worker(mode="poll", concurrency=2, poll_wait=0.5)
    got = threading.Event()
    worker.add_task("add", lambda job, a, b: a + b)
    worker.add_command("ping", lambda w: got.set())
    runner.start(worker)
    ids = [client.enqueue("add", [i, i]) for i in range(5)]
    assert [done(client, job_id).result for job_id in ids] == [0, 2, 4, 6, 8]
    client.broadcast("ping")
    assert got.wait(3)


def test_reconnect_to_another_broker_loses_and_duplicates_nothing(
    make_broker: Callable[..., Any], client: Client, runner: Runner
) -> None:
    first = make_broker()
    worker = runner.worker(target=first.target, concurrency=2)
    performed: list[int] = []
    lock = threading.Lock()

    @worker.task("work")
    def work(job: Job, n: int) -> int:
        time.sleep(0.01)
        with lock:
            performed.append(job.id)
        return n

    ids = [client.enqueue("work", [n]) for n in range(40)]
    runner.start(worker)
    wait_for(lambda: len(performed) >= 5)
    first.call(first.broker.stop(0.2))  # mid-run: streams end with UNAVAILABLE
    make_broker(listen=first.target)  # a replica on the same address and Redis
    for n, job_id in enumerate(ids):
        assert done(client, job_id).result == n
    assert sorted(performed) == sorted(ids)
    worker.stop()
    runner.join(worker)
    assert client.list_workers(ids=[worker.id or 0]).total == 0
