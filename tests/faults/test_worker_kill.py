"""kill -9 of one of two worker processes mid-run: the broker notices (stream gone, heartbeats
missing), fails its jobs with "Worker went away", and the other worker finishes the retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobwire import Client
from tests.faults.conftest import Cluster
from tests.faults.harness import Processes, read_runs, tally, wait_for

JOBS = 80
# Seconds from the kill until every job has finished: detection (about a second here), then
# Minion's retry backoff, retries ** 4 + 15 = 15 s before the first retry may run.
RECOVERY_LIMIT = 40.0


@pytest.mark.timeout(120)
def test_kill9_of_a_worker_fails_its_jobs_and_the_other_worker_finishes_them(
    cluster: Callable[..., Cluster], procs: Processes, tmp_path: Path, namespace: str
) -> None:
    system = cluster(stream_missing_after=1.0, repair_interval=0.3)
    runs = tmp_path / "runs.log"
    with Client(system.target, namespace=namespace) as client:
        # Only the doomed worker serves queue "doomed": its job there cannot be retried
        # (attempts=1), so the outcome stays visible.
        sentinel = client.enqueue("sleep", [60], queue="doomed", attempts=1)
        ids = client.enqueue_many(
            [{"task": "sleep", "args": [0.5], "attempts": 3} for _ in range(JOBS)]
        )
        doomed = procs.worker(
            "doomed", system.target, namespace, runs, concurrency=4, heartbeat=0.2,
            queues=("doomed", "default"),
        )  # fmt: skip
        survivor = procs.worker(
            "survivor", system.target, namespace, runs, concurrency=4, heartbeat=0.2
        )
        wait_for(lambda: client.stats().finished_jobs >= JOBS // 4, 60, "a quarter finished")
        doomed.kill9()
        killed, killed_at = time.monotonic(), time.time()
        wait_for(lambda: client.stats().finished_jobs >= JOBS, RECOVERY_LIMIT, "all finished")
        recovery = time.monotonic() - killed
        result = tally(client, ids, runs)
        records = read_runs(runs)
        mine = [(r.event, r.job, r.retries) for r in records if r.pid == doomed.pid]
        started = {(job, retries) for event, job, retries in mine if event == "start"}
        done = {(job, retries) for event, job, retries in mine if event == "done"}
        orphans = {job for job, _ in started - done if job != sentinel}
        infos = {info.id: info for info in client.list_jobs(ids=sorted(orphans), limit=100)}
        sentinel_info = client.job_info(sentinel)
        retried = [r.at for r in records if r.job in orphans and r.retries > 0]
        rerun_after = min(retried) - killed_at if retried else float("nan")
        print(
            f"\n[faults] worker kill -9: {result} orphaned_jobs={len(orphans)} "
            f"orphans_rerun_after={rerun_after:.1f}s all_finished_after={recovery:.1f}s"
        )
    assert (result.lost, result.stuck, result.attempt_done_twice) == (0, 0, 0)
    assert orphans, "the killed worker was running jobs"
    for job in orphans:  # each retried, then finished by the survivor
        assert infos[job].state == "finished" and infos[job].retries >= 1
        assert any(r.job == job and r.pid == survivor.pid and r.event == "done" for r in records)
    assert sentinel_info is not None
    assert (sentinel_info.state, sentinel_info.result) == ("failed", "Worker went away")
