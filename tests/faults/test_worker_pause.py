"""A worker paused (SIGSTOP) longer than stream_missing_after: repair removes it and fails its
jobs, which another worker retries. When it resumes, its stale outcomes are refused (fencing),
its next heartbeat re-creates it, and it is served again: nothing is lost, stuck or finished
twice, and it never idles with an open stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobwire import Client
from tests.faults.conftest import Cluster
from tests.faults.harness import Processes, read_runs, tally, wait_for

JOBS = 12
PAUSE = 4.0  # seconds, twice stream_missing_after
# From the pause: detection (stream_missing_after + a repair interval), then Minion's retry
# backoff of 15 s before a failed job may run again, then the run itself.
RECOVERY_LIMIT = 45.0


@pytest.mark.timeout(120)
def test_a_paused_worker_loses_its_jobs_to_another_and_is_served_again_when_it_resumes(
    cluster: Callable[..., Cluster], procs: Processes, tmp_path: Path, namespace: str
) -> None:
    system = cluster(stream_missing_after=2.0, repair_interval=0.3)
    runs = tmp_path / "runs.log"
    with Client(system.target, namespace=namespace) as client:
        paused = procs.worker(
            "paused", system.target, namespace, runs, concurrency=4, heartbeat=0.2,
            queues=("default", "only-paused"),
        )  # fmt: skip
        wait_for(lambda: client.list_workers().total == 1, 20, "the first worker registered")
        ids = client.enqueue_many([{"task": "sleep", "args": [3], "attempts": 2}] * 4)
        wait_for(lambda: client.stats().active_jobs == 4, 20, "the paused worker took 4 jobs")
        survivor = procs.worker(
            "survivor", system.target, namespace, runs, concurrency=8, heartbeat=0.2
        )
        ids += client.enqueue_many([{"task": "sleep", "args": [0.2]}] * (JOBS - 4))
        paused.pause()
        paused_at = time.monotonic()
        time.sleep(PAUSE)
        paused.resume()
        wait_for(lambda: client.stats().finished_jobs >= JOBS, RECOVERY_LIMIT, "all finished")
        recovered = time.monotonic() - paused_at
        # Served again after it was re-created: a job only it may take.
        only = client.enqueue("sleep", [0.1], queue="only-paused")
        served = wait_for(
            lambda: (info := client.job_info(only)) is not None and info.state == "finished",
            20,
            "the resumed worker ran a new job",
        )
        result = tally(client, ids, runs)
        records = read_runs(runs)
        first_four = {info.id: info for info in client.list_jobs(ids=ids[:4])}
        print(
            f"\n[faults] worker SIGSTOP {PAUSE:.0f}s: {result} all_finished_after={recovered:.1f}s "
            f"resumed_worker_served_after={served:.1f}s"
        )
    assert (result.lost, result.stuck, result.attempt_done_twice) == (0, 0, 0)
    for job_id, info in first_four.items():
        # Failed by repair ("Worker went away") and retried: the paused worker's late outcome of
        # the first attempt was refused (it would have finished the job with retries 0).
        assert (info.state, info.retries) == ("finished", 1), (job_id, info)
        assert any(r.job == job_id and r.retries == 0 and r.pid == paused.pid for r in records)
    assert survivor.alive()
    assert any(r.job == only and r.pid == paused.pid and r.event == "done" for r in records)
