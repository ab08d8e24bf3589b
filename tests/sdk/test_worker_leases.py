"""The Python worker's side of leases and reports: what heartbeats and completions carry, results
too large for one request, outcomes the broker refuses, and stopping with no broker to talk to."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from jobwire import AsyncClient, Client
from jobwire.v1 import job_service_pb2, worker_service_pb2
from jobwire.worker import MAX_REPORT_BYTES, Job
from tests.sdk.test_worker import Runner, wait_for
from tests.sdk.test_worker import runner as runner  # the fixture, shared


def done(client: Client, job_id: int, timeout: float = 20.0) -> Any:
    return client.result(job_id, interval=0.02, timeout=timeout)


class Recorder(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Keeps a copy of every unary request the worker sends, by method name."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        method = client_call_details.method
        name = (method.decode() if isinstance(method, bytes) else method).rsplit("/", 1)[-1]
        copy = type(request)()
        copy.CopyFrom(request)
        self.requests.append((name, copy))
        return await continuation(client_call_details, request)

    def sent(self, name: str) -> list[Any]:
        return [request for method, request in list(self.requests) if method == name]


def test_a_result_too_large_for_one_request_fails_the_job(
    client: Client, broker: Any, namespace: str, runner: Runner
) -> None:
    worker = runner.worker(concurrency=1)
    worker.add_task("big", lambda job: "x" * 5_000_000)
    runner.start(worker)
    info = done(client, client.enqueue("big"))
    assert info.state == "failed"
    error = info.result["error"]
    assert error.startswith("result too large: 50000")
    assert error.endswith(f"bytes (limit {MAX_REPORT_BYTES})")


def test_stream_messages_larger_than_grpcs_default_limit_are_received(
    client: Client, runner: Runner
) -> None:
    # Both jobs are ready before the worker subscribes: they arrive in one message of ~6 MB.
    ids = [client.enqueue("length", ["x" * 3_000_000]) for _ in range(2)]
    worker = runner.worker(concurrency=2)
    worker.add_task("length", lambda job, text: len(text))
    runner.start(worker)
    for job_id in ids:
        assert done(client, job_id).result == 3_000_000


def test_large_results_queued_during_a_broker_restart_all_finish(
    make_broker: Callable[..., Any],
    client: Client,
    runner: Runner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Four 3 MB outcomes wait for the broker together; one request cannot carry them all.
    first = make_broker()
    worker = runner.worker(target=first.target, concurrency=4)
    release = threading.Event()
    started = threading.Semaphore(0)

    @worker.task("large")
    def large(job: Job, fill: str) -> str:
        started.release()
        release.wait(10)
        return fill * 3_000_000

    runner.start(worker)
    ids = [client.enqueue("large", [fill]) for fill in "abcd"]
    for _ in ids:
        assert started.acquire(timeout=10)
    first.call(first.broker.stop(0.1))
    with caplog.at_level(logging.WARNING, logger="jobwire.worker"):
        release.set()
        wait_for(lambda: "cannot report 4 outcomes" in caplog.text)
    make_broker(listen=first.target)  # a replica on the same address and Redis
    for job_id, fill in zip(ids, "abcd", strict=True):
        info = done(client, job_id)
        assert info.state == "finished"
        assert info.result == fill * 3_000_000


def test_heartbeats_list_the_jobs_held_and_completions_carry_their_lease(
    client: Client, broker: Any, namespace: str, runner: Runner
) -> None:
    recorder = Recorder()
    worker = runner.worker(concurrency=1, heartbeat_interval=0.1)
    started, release = threading.Event(), threading.Event()
    leases: dict[int, int] = {}

    @worker.task("hold")
    def hold(job: Job) -> str:
        leases[job.id] = job.lease or 0
        started.set()
        release.wait(10)
        return "done"

    def make_client() -> AsyncClient:
        channel = grpc.aio.insecure_channel(broker.target, interceptors=[recorder])
        return AsyncClient(broker.target, namespace=namespace, channel=channel, timeout=5)

    runner.start(worker, make_client)
    first = recorder.sent("RegisterWorker")[0]
    assert not first.HasField("id")
    assert first.HasField("running") and list(first.running.ids) == []
    assert first.lease_duration.ToTimedelta().total_seconds() == 30.0  # max(6 x 0.1 s, 30 s)

    job_id = client.enqueue("hold")
    assert started.wait(10)

    def listed() -> bool:
        beats = recorder.sent("RegisterWorker")
        return any(list(beat.running.ids) == [job_id] and beat.id == worker.id for beat in beats)

    wait_for(listed)
    release.set()
    assert done(client, job_id).result == "done"
    [request] = [r for r in recorder.sent("CompleteJobs") if r.completions[0].id == job_id]
    completion: job_service_pb2.Completion = request.completions[0]
    # The lease the broker handed out comes back.
    assert leases[job_id] > 0 and completion.HasField("lease")
    assert completion.lease == leases[job_id]
    worker.stop()
    wait_for(lambda: not worker.ready.is_set())
    beats = recorder.sent("RegisterWorker")
    assert all(beat.HasField("running") for beat in beats)
    assert isinstance(beats[-1], worker_service_pb2.RegisterWorkerRequest)


def test_a_job_retried_while_running_runs_again_and_the_stale_outcome_is_refused(
    client: Client, broker: Any, namespace: str, runner: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    worker = runner.worker(concurrency=2)
    attempts: dict[int, threading.Event] = {0: threading.Event(), 1: threading.Event()}
    started: dict[int, threading.Event] = {0: threading.Event(), 1: threading.Event()}

    @worker.task("twice")
    def twice(job: Job) -> str:
        started[job.retries].set()
        attempts[job.retries].wait(10)
        return f"attempt {job.retries}"

    runner.start(worker)
    job_id = client.enqueue("twice")
    assert started[0].wait(10)
    assert client.retry_job(job_id, 0)  # while it runs: the broker hands it out again
    assert started[1].wait(10)  # to the same worker, as a new attempt
    with caplog.at_level(logging.WARNING, logger="jobwire.worker"):
        attempts[0].set()  # the first attempt ends: its outcome is refused

        def refused() -> bool:
            return any(
                f"job {job_id}: outcome refused" in record.getMessage() for record in caplog.records
            )

        wait_for(refused)
    assert client.job_info(job_id).state == "active"  # type: ignore[union-attr]
    attempts[1].set()
    info = done(client, job_id)
    assert (info.state, info.result, info.retries) == ("finished", "attempt 1", 1)


def test_a_lost_lease_stops_the_job_and_reports_nothing(
    client: Client, namespace: str, runner: Runner
) -> None:
    """The broker handed the attempt elsewhere (here: an admin retry and another worker took
    it). The next heartbeat lists it, the broker answers it lost, and the worker stops it."""
    worker = runner.worker(concurrency=1, heartbeat_interval=0.1)
    killed, started = threading.Event(), threading.Event()

    @worker.task("long")
    def long(job: Job) -> str:
        started.set()
        if job.killed.wait(10):
            killed.set()
        return "late"

    runner.start(worker)
    job_id = client.enqueue("long", queue="solo")
    assert not started.wait(0.2)  # the worker takes queue "default" only
    other = client.register_worker()
    client.retry_job(job_id, 0, queue="default")
    assert started.wait(10)
    assert client.retry_job(job_id, 1, queue="solo")  # taken away while it runs
    taken = client.dequeue(other, queues=["solo"])
    assert taken is not None and taken.id == job_id
    assert killed.wait(10)
    time.sleep(0.3)
    info = client.job_info(job_id)
    assert info is not None and (info.state, info.worker, info.result) == ("active", other, None)


def test_a_worker_recreated_after_repair_subscribes_again(
    client: Client, namespace: str, runner: Runner
) -> None:
    """Repair removed the live worker (its heartbeats stopped for a while); its next heartbeat
    re-creates it, the broker ends its old stream, and it keeps taking jobs."""
    worker = runner.worker(concurrency=1, heartbeat_interval=0.1)

    @worker.task("echo")
    def echo(job: Job, value: int) -> int:
        return value

    runner.start(worker)
    wid = worker.id
    assert wid is not None
    assert done(client, client.enqueue("echo", [1])).result == 1
    client.unregister_worker(wid)  # what repair does to a missing worker
    wait_for(lambda: client.list_workers(ids=[wid]).total == 1)
    assert done(client, client.enqueue("echo", [2])).result == 2


# --- stopping as a real process -------------------------------------------------------------

WORKER_SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading, time
    from jobwire import Client, Worker

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    worker = Worker(Client(sys.argv[1], namespace=sys.argv[2], timeout=5), concurrency=1, spare=0)

    @worker.task("stubborn")
    def stubborn(job):
        print("started", job.id, flush=True)
        time.sleep(120)  # ignores job.killed

    worker.run()
    print("exited", flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def start_worker() -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    """Starts WORKER_SCRIPT as a process; killed after the test if still running."""
    started: list[subprocess.Popen[str]] = []

    def start(target: str, namespace: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, target, namespace],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _wait_for_line(stream: Any, text: str, timeout: float = 15.0) -> str:
    """Read lines until one contains `text` (a reader thread, so a silent process times out)."""
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        for line in stream:
            seen.append(line)
            if text in line:
                found.append(line)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"no line with {text!r} in {timeout} s; saw: {''.join(seen)[-2000:]}"
    return found[0]


def test_a_worker_that_cannot_reach_the_broker_exits_on_sigterm(
    start_worker: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    proc = start_worker(f"127.0.0.1:{_free_port()}", "default")
    _wait_for_line(proc.stderr, "cannot register")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0
    assert "exited" in out


def test_a_worker_whose_broker_went_away_exits_on_sigterm(
    make_broker: Callable[..., Any],
    client: Client,
    namespace: str,
    start_worker: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    first = make_broker()
    proc = start_worker(first.target, namespace)
    wait_for(lambda: client.list_workers().total == 1)
    first.call(first.broker.stop(0.1))  # the stream ends; reconnecting fails from now on
    _wait_for_line(proc.stderr, "reconnecting")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "exited" in out


def test_a_forced_stop_leaves_a_running_thread_job_to_the_broker_and_exits(
    broker: Any,
    client: Client,
    namespace: str,
    start_worker: Callable[[str, str], subprocess.Popen[str]],
) -> None:
    proc = start_worker(broker.target, namespace)
    job_id = client.enqueue("stubborn", attempts=2)
    assert proc.stdout is not None
    assert _wait_for_line(proc.stdout, "started").split() == ["started", str(job_id)]
    proc.send_signal(signal.SIGINT)
    _wait_for_line(proc.stderr, "finishing running jobs")
    proc.send_signal(signal.SIGINT)  # forced: the thread cannot be stopped
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "exited" in out
    # Not reported with an invented exit code: the job waits for the broker's repair.
    info = client.job_info(job_id)
    assert info is not None and info.state == "active" and info.result is None
    assert client.list_workers().total == 0
    assert client.repair().abandoned_jobs == 1
    info = client.job_info(job_id)
    assert info is not None
    assert (info.state, info.retries) == ("inactive", 1)  # "Worker went away", retried
