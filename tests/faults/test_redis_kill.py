"""kill -9 of Redis (AOF, appendfsync always) mid-run, then a restart on the same port: the
brokers reconnect, no acknowledged job is lost, and every job finishes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobwire import Client
from tests.faults.conftest import Cluster
from tests.faults.harness import Processes, retrying, serving, tally, wait_for

JOBS = 500
OUTAGE = 1.0  # seconds Redis stays down
RECOVERY_LIMIT = 30.0  # seconds from the restart until every job has finished


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
        system.redis.proc.kill9()
        time.sleep(OUTAGE)
        system.redis = procs.restart_redis(system.redis)
        restarted = time.monotonic()
        wait_for(lambda: all(serving(b.target) for b in system.brokers), 20, "brokers SERVING")
        unavailable = [0]  # UNAVAILABLE answers after both brokers reported SERVING again

        def finished() -> int:
            return retrying(lambda: client.stats().finished_jobs, unavailable=unavailable)

        try:
            wait_for(lambda: finished() >= JOBS, RECOVERY_LIMIT, "all finished")
        except AssertionError:
            result = tally(client, ids, runs)
            print(
                f"\n[faults] redis kill -9: {result} NOT all finished; "
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
            f"UNAVAILABLE after SERVING: {unavailable[0]}"
        )
    assert (result.lost, result.stuck, result.done_twice) == (0, 0, 0)
