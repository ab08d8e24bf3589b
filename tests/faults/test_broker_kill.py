"""kill -9 of one broker behind nginx while two worker processes run 500 jobs: the workers move
to the other broker through nginx and every job finishes exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobwire import Client
from tests.faults.conftest import Cluster
from tests.faults.harness import Processes, longest_pause, serving, tally, wait_for

JOBS = 500
RECOVERY_LIMIT = 30.0  # seconds from the kill until every job has finished


@pytest.mark.timeout(150)
def test_kill9_of_a_broker_mid_run_loses_nothing_and_runs_nothing_twice(
    cluster: Callable[..., Cluster], procs: Processes, tmp_path: Path, namespace: str
) -> None:
    system = cluster()
    runs = tmp_path / "runs.log"
    with Client(system.target, namespace=namespace) as client:
        ids = client.enqueue_many([{"task": "sleep", "args": [0.1]} for _ in range(JOBS)])
        for i in range(2):
            procs.worker(f"worker{i}", system.target, namespace, runs, concurrency=4)
        wait_for(lambda: client.stats().finished_jobs >= JOBS // 4, 60, "a quarter finished")
        system.brokers[0].proc.kill9()
        killed, killed_at = time.monotonic(), time.time()
        finished_at_kill = client.stats().finished_jobs
        try:
            wait_for(lambda: client.stats().finished_jobs >= JOBS, RECOVERY_LIMIT, "all finished")
        finally:
            recovery = time.monotonic() - killed
            result = tally(client, ids, runs)
            print(
                f"\n[faults] broker kill -9 behind nginx: {result} "
                f"finished_at_kill={finished_at_kill} all_finished_after={recovery:.1f}s "
                f"longest_pause_after_kill={longest_pause(runs, killed_at):.2f}s"
            )
    assert (result.lost, result.stuck, result.done_twice) == (0, 0, 0)
    assert result.finished == JOBS
    assert len(result.done_by) == 2  # both workers ran jobs
    assert serving(system.restart_broker(0).target)  # the same port serves again
