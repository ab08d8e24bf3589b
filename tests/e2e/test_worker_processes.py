"""Whole-system runs with real worker processes: brokers, Redis and `jobwire.Worker` processes,
as in production. Each job is counted by the process that ran it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobwire import Client

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from jobwire import Client, Worker

    target, namespace, log, concurrency, heartbeat = sys.argv[1:6]
    worker = Worker(Client(target, namespace=namespace), concurrency=int(concurrency),
                    heartbeat_interval=float(heartbeat))
    out = open(log, "a", buffering=1)

    @worker.task("count")
    async def count(job):
        out.write(f"{job.id}\\n")

    @worker.task("hang")
    def hang(job):
        out.write(f"started {job.id}\\n")
        time.sleep(60)

    worker.run()
    """
)


def wait_for(condition: Callable[[], Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def spawn_worker(
    tmp_path: Path, namespace: str
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    script = tmp_path / "worker_main.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}"}
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(target: str, log: Path, *, concurrency: int = 20, heartbeat: float = 5.0) -> Any:
        with (tmp_path / f"worker-{len(procs)}.err").open("wb") as err:
            args = [target, namespace, str(log), str(concurrency), str(heartbeat)]
            proc = subprocess.Popen([sys.executable, str(script), *args], env=env, stderr=err)
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_ten_workers_two_brokers_run_ten_thousand_jobs_exactly_once(
    make_broker: Any, namespace: str, spawn_worker: Any, tmp_path: Path
) -> None:
    brokers = [make_broker(), make_broker()]
    logs = [tmp_path / f"ran-{i}.log" for i in range(10)]
    workers = [spawn_worker(brokers[i % 2].target, logs[i]) for i in range(10)]
    total = 10_000
    with Client(brokers[0].target, namespace=namespace) as client:
        for _ in range(total // 1000):
            client.enqueue_many([{"task": "count"} for _ in range(1000)])
        wait_for(lambda: client.stats().finished_jobs == total, timeout=120)
        stats = client.stats()
        assert (stats.inactive_jobs, stats.active_jobs, stats.failed_jobs) == (0, 0, 0)
    ran = Counter(int(line) for log in logs if log.exists() for line in log.read_text().split())
    assert len(ran) == total
    assert set(ran.values()) == {1}, [job for job, n in ran.items() if n > 1][:10]
    assert sum(1 for log in logs if log.exists()) > 2  # the work was spread out
    assert all(worker.poll() is None for worker in workers)


def test_killed_worker_process_means_worker_went_away_and_a_retry(
    make_broker: Any, namespace: str, spawn_worker: Any, tmp_path: Path
) -> None:
    replica = make_broker(stream_missing_after=1.0, repair_interval=0.3)
    log = tmp_path / "hang.log"
    worker = spawn_worker(replica.target, log, concurrency=1, heartbeat=0.2)
    with Client(replica.target, namespace=namespace) as client:
        job_id = client.enqueue("hang", attempts=2)
        wait_for(lambda: log.exists() and f"started {job_id}" in log.read_text(), timeout=30)
        info = client.job_info(job_id)
        assert info is not None and info.state == "active"
        worker.kill()  # SIGKILL mid-job: no goodbye, no unregister
        worker.wait(10)

        def retried() -> bool:
            current = client.job_info(job_id)
            return current is not None and current.retries == 1

        wait_for(retried, timeout=20)
        info = client.job_info(job_id)
        assert info is not None
        assert (info.state, info.result, info.attempts) == ("inactive", "Worker went away", 1)
        assert client.stats().workers == 0
