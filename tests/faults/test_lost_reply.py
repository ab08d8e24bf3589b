"""Lost Redis replies: a script ran in Redis, but the connection broke before its reply reached
the broker. Every job must still finish, exactly once."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import scripts
from jobwire import Client
from tests.faults.harness import Processes, retrying, tally, wait_for
from tests.faults.redis_proxy import RedisProxy, Then, script_call

JOBS = 20
RECOVERY_LIMIT = 15.0


def sha(script: str) -> str:
    """The SHA1 the broker calls `script` by (EVALSHA)."""
    return hashlib.sha1(scripts.source(script).encode()).hexdigest()


@pytest.fixture
def proxy(procs: Processes) -> Iterator[RedisProxy]:
    relay = RedisProxy(procs.redis().port).start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("then", ["reset", "hold"])
@pytest.mark.parametrize("script", ["dispatch_jobs", "complete_jobs"])
def test_a_lost_reply_leaves_no_job_behind(
    script: str, then: Then, procs: Processes, proxy: RedisProxy, tmp_path: Path, namespace: str
) -> None:
    broker = procs.broker(
        "broker", proxy.url, stream_missing_after=2.0, repair_interval=0.5, lease_grace=1.0
    )
    runs = tmp_path / "runs.log"
    with Client(broker.target, namespace=namespace) as client:
        # Jobs first: the worker's first dispatch then takes some, and its reply is the one lost.
        ids = client.enqueue_many([{"task": "sleep", "args": [0.05]} for _ in range(JOBS)])
        proxy.lose_replies(1, match=script_call(sha(script)), then=then)
        procs.worker("worker", broker.target, namespace, runs, concurrency=4, heartbeat=0.5)
        wait_for(lambda: proxy.lost == 1, 15, f"a lost reply of {script}")
        lost_at = time.monotonic()

        def all_finished() -> bool:
            stats = retrying(client.stats)
            return bool(stats.finished_jobs >= JOBS)

        wait_for(all_finished, RECOVERY_LIMIT, "all finished")
        recovery = time.monotonic() - lost_at
        result = tally(client, ids, runs)
        print(
            f"\n[faults] lost reply of {script} ({then}): {result} "
            f"all_finished_after={recovery:.1f}s"
        )
    assert (result.lost, result.stuck, result.done_twice) == (0, 0, 0)
