"""kill -9 of Redis (AOF, appendfsync always) mid-run, then a restart on the same port: the
brokers reconnect, no acknowledged job is lost (not even one enqueued just before the kill),
and every job finishes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobwire import Client, JobwireError
from tests.faults.conftest import Cluster
from tests.faults.harness import Processes, retrying, serving, tally, wait_for

JOBS = 500
OUTAGE = 1.0  # seconds Redis stays down
RECOVERY_LIMIT = 30.0  # seconds from the restart until every job has finished


class Producer:
    """Enqueues one job at a time in a thread; keeps the ids the broker acknowledged."""

    def __init__(self, target: str, namespace: str) -> None:
        self.client = Client(target, namespace=namespace)
        self.acked: list[int] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.acked.append(self.client.enqueue("sleep", [0.01]))
            except JobwireError:
                self.failed += 1
                time.sleep(0.05)

    def __str__(self) -> str:
        return f"enqueued_during_outage: acked={len(self.acked)} failed={self.failed}"


@pytest.mark.timeout(150)
def test_kill9_of_redis_mid_run_loses_no_acknowledged_job(
    cluster: Callable[..., Cluster], procs: Processes, tmp_path: Path, namespace: str
) -> None:
    system = cluster(stream_missing_after=10.0, repair_interval=1.0)
    runs = tmp_path / "runs.log"
    with Client(system.target, namespace=namespace) as client:
        ids = client.enqueue_many([{"task": "sleep", "args": [0.1]} for _ in range(JOBS)])
        for i in range(2):
            procs.worker(f"worker{i}", system.target, namespace, runs, concurrency=4)
        wait_for(lambda: client.stats().finished_jobs >= JOBS // 4, 60, "a quarter finished")
        producer = Producer(system.target, namespace)
        producer.start()
        time.sleep(0.3)
        system.redis.proc.kill9()
        time.sleep(OUTAGE)
        system.redis = procs.restart_redis(system.redis)
        restarted = time.monotonic()
        wait_for(lambda: all(serving(b.target) for b in system.brokers), 20, "brokers SERVING")
        time.sleep(0.5)
        producer.stop()
        ids += producer.acked
        unavailable = [0]  # UNAVAILABLE answers after both brokers reported SERVING again

        def all_done() -> bool:
            stats = retrying(client.stats, unavailable=unavailable)
            return bool(stats.inactive_jobs == stats.active_jobs == 0)

        try:
            wait_for(all_done, RECOVERY_LIMIT, "all finished")
        except AssertionError:
            result = tally(client, ids, runs)
            print(
                f"\n[faults] redis kill -9: {result} NOT all finished; {producer} "
                f"UNAVAILABLE after SERVING: {unavailable[0]}"
            )
            if result.lost == 0:
                pytest.xfail(
                    f"{result.stuck} jobs not finished after a Redis restart "
                    f"({dict(result.stuck_states)}): replies lost with the connection leave "
                    "jobs active under live workers (leases fix this)"
                )
            raise
        recovery = time.monotonic() - restarted
        result = tally(client, ids, runs)
        print(
            f"\n[faults] redis kill -9: {result} all_finished_after_restart={recovery:.1f}s "
            f"{producer} UNAVAILABLE after SERVING: {unavailable[0]}"
        )
    assert (result.lost, result.stuck, result.done_twice) == (0, 0, 0)
    assert producer.acked and producer.failed  # enqueues went on through the outage
