"""Repair through gRPC with small thresholds set through the settings, and the Repairer loop:
two of them on one Redis never repair a namespace at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from broker.config import Settings
from broker.store import RepairCounts, Store
from broker.upkeep import Repairer
from jobwire import Client

FAST = {"missing_after": 0.2, "remove_after": 0.2, "stuck_after": 0.2}


def test_each_kind_of_repair(make_broker: Any, namespace: str) -> None:
    broker = make_broker(**FAST)
    with Client(broker.target, namespace=namespace) as c:
        gone = c.register_worker()
        quiet = c.register_worker()
        old, expiring, stuck, abandoned, retried = (
            c.enqueue("t", priority=5),
            c.enqueue("t", expire=0.1, priority=-9),
            c.enqueue("t", queue="later"),
            c.enqueue("t", priority=4),
            c.enqueue("t", attempts=2, priority=3),
        )
        done = c.dequeue(quiet)
        assert done is not None and done.id == old
        assert c.finish_job(old, 0)
        jobs = c.dequeue_many(gone, 2)
        assert [j.id for j in jobs] == [abandoned, retried]
        c.unregister_worker(gone)
        time.sleep(0.3)
        keep = c.register_worker()  # fresh heartbeat
        report = c.repair()
        assert (report.missing_workers, report.old_jobs, report.expired_jobs) == (1, 1, 1)
        # abandoned: two active jobs of the unregistered worker; stuck: `stuck` and the job
        # auto-retried just now is delayed by its backoff, so not stuck yet.
        assert (report.abandoned_jobs, report.stuck_jobs) == (2, 1)
        assert [w.id for w in c.list_workers()] == [keep]
        assert c.job_info(old) is None and c.job_info(expiring) is None
        a, s, r = c.job_info(abandoned), c.job_info(stuck), c.job_info(retried)
        assert a is not None and (a.state, a.result) == ("failed", "Worker went away")
        assert s is not None and (s.state, s.result) == ("failed", "Job appears stuck in queue")
        assert s.finished is None
        assert r is not None and (r.state, r.retries) == ("inactive", 1)
        again = c.repair()
        assert (again.old_jobs, again.abandoned_jobs, again.stuck_jobs) == (0, 0, 0)


def test_foreground_jobs_are_never_abandoned(make_broker: Any, namespace: str) -> None:
    broker = make_broker(**FAST)
    with Client(broker.target, namespace=namespace) as c:
        wid = c.register_worker()
        fg = c.enqueue("t", queue="minion_foreground")
        assert c.dequeue(wid, queues=["minion_foreground"]) is not None
        c.unregister_worker(wid)
        assert c.repair().abandoned_jobs == 0
        info = c.job_info(fg)
        assert info is not None and info.state == "active"


def test_broker_repairs_by_itself(make_broker: Any, namespace: str) -> None:
    broker = make_broker(namespace=namespace, repair_interval=0.1, **FAST)
    with Client(broker.target, namespace=namespace) as c:
        c.register_worker()
        deadline = time.monotonic() + 5
        while c.stats().workers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.stats().workers == 0


class Recording(Store):
    """A Store whose repair takes a while and records when it ran."""

    def __init__(self, client: aioredis.Redis, log: list[tuple[str, float, float]], name: str):
        super().__init__(client)
        self.log, self.name = log, name

    async def repair(self, *args: Any, **kwargs: Any) -> RepairCounts:
        start = time.monotonic()
        await asyncio.sleep(0.03)
        counts = await super().repair(*args, **kwargs)
        self.log.append((self.name, start, time.monotonic()))
        return counts


async def test_two_repairers_never_overlap(redis: aioredis.Redis, namespace: str) -> None:
    log: list[tuple[str, float, float]] = []
    settings = Settings(repair_interval=0.02, redis_url="redis://unused")
    repairers = [
        Repairer(Recording(redis, log, name), settings, [namespace], lease=0.5)
        for name in ("a", "b")
    ]
    for r in repairers:
        await r.start()
    await asyncio.sleep(0.8)
    for r in repairers:
        await r.stop()
    assert len(log) >= 5
    runs = sorted(log, key=lambda run: run[1])
    for (_, _, end), (_, start, _) in zip(runs, runs[1:], strict=False):
        assert start >= end
    assert await redis.get(repairers[0].store.keyspace(namespace).repair_lock) is None


async def test_repairer_skips_while_another_holds_the_lock(
    redis: aioredis.Redis, namespace: str
) -> None:
    log: list[tuple[str, float, float]] = []
    settings = Settings(repair_interval=10, redis_url="redis://unused")
    first = Repairer(Recording(redis, log, "a"), settings, [namespace])
    second = Repairer(Recording(redis, log, "b"), settings, [namespace])
    assert await first.run_once(namespace) == RepairCounts()
    assert await second.run_once(namespace) is None  # first keeps it for the interval
    await first.stop()  # releases it
    assert await second.run_once(namespace) == RepairCounts()
    await second.stop()
    assert [name for name, _, _ in log] == ["a", "b"]


async def test_zero_interval_disables_the_loop(redis: aioredis.Redis, namespace: str) -> None:
    log: list[tuple[str, float, float]] = []
    repairer = Repairer(Recording(redis, log, "a"), Settings(repair_interval=0), [namespace])
    await repairer.start()
    await asyncio.sleep(0.05)
    await repairer.stop()
    assert log == []
