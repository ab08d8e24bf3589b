"""Messages near and over the limits, through nginx to worker processes: jobs whose args fill
most of a message arrive one per message, results over the report cap fail their job with a
reason instead of looping, and several large results are reported in separate calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jobwire import Client
from tests.faults.conftest import Cluster
from tests.faults.harness import Processes, tally, wait_for

MIB = 1024 * 1024


@pytest.mark.timeout(120)
def test_large_args_and_results_are_delivered_reported_or_refused_never_looped(
    cluster: Callable[..., Cluster], procs: Processes, tmp_path: Path, namespace: str
) -> None:
    system = cluster()
    runs = tmp_path / "runs.log"
    with Client(system.target, namespace=namespace) as client:
        big_args = client.enqueue_many(
            [{"task": "blob", "args": ["x" * (5 * MIB // 2)]} for _ in range(2)]
        )
        big_results = client.enqueue_many(
            [{"task": "blob", "args": ["", 3 * MIB - 1024]} for _ in range(4)]
        )
        too_big = client.enqueue("blob", ["", 5 * MIB])
        ids = [*big_args, *big_results]
        procs.worker("worker", system.target, namespace, runs, concurrency=8, heartbeat=0.5)
        done = {"finished", "failed"}
        wait_for(
            lambda: all(
                (info := client.job_info(i)) is not None and info.state in done
                for i in [*ids, too_big]
            ),
            60,
            "every job ended",
        )
        result = tally(client, ids, runs)
        refused = client.job_info(too_big)
        print(f"\n[faults] oversized: {result}")
    assert (result.lost, result.stuck, result.attempt_done_twice) == (0, 0, 0)
    assert refused is not None and refused.state == "failed"
    assert "result too large" in str(refused.result)
