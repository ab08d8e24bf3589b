"""repair.lua against a real Redis: each of Minion's five kinds with small thresholds, batching,
and the raw keyspace afterwards (no index names a job or worker that is gone)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from broker.keyspace import Keyspace
from broker.store import Completion, JobSpec, RepairCounts, RetryOptions, Store

LONG = 3600.0


@pytest.fixture
def store(redis: aioredis.Redis) -> Store:
    return Store(redis)


@pytest.fixture
def ks(namespace: str) -> Keyspace:
    return Keyspace(namespace)


async def keys(redis: Any, ks: Keyspace) -> set[str]:
    return {k.decode()[len(ks.prefix) :] for k in await redis.keys(ks.prefix + "*")}


async def job(redis: Any, ks: Keyspace, job_id: int) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (await redis.hgetall(ks.job(job_id))).items()}


async def members(redis: Any, ks: Keyspace, key: str) -> set[int]:
    return {int(m) for m in await redis.zrange(ks.key(key), 0, -1)}


async def assert_job_indexes(redis: Any, ks: Keyspace) -> None:
    """jobs, state:*, finished_at, inactive_since and expiring agree with the job hashes."""
    ids = await members(redis, ks, "jobs")
    hashes = {int(k[len("job:") :]) for k in await keys(redis, ks) if k.startswith("job:")}
    assert ids == hashes
    by_state: dict[str, set[int]] = {}
    for i in ids:
        by_state.setdefault((await job(redis, ks, i))["state"], set()).add(i)
    for state in ("inactive", "active", "failed", "finished"):
        assert await members(redis, ks, f"state:{state}") == by_state.get(state, set())
    assert await members(redis, ks, "finished_at") <= by_state.get("finished", set())
    assert await members(redis, ks, "inactive_since") == by_state.get("inactive", set())
    assert await members(redis, ks, "expiring") <= by_state.get("inactive", set())


async def repair(store: Store, namespace: str, **thresholds: float) -> RepairCounts:
    t = {"missing_after": LONG, "remove_after": LONG, "stuck_after": LONG, **thresholds}
    return await store.repair(namespace, t["missing_after"], t["remove_after"], t["stuck_after"])


async def worker(store: Store, namespace: str) -> int:
    return (await store.register_worker(namespace, None, host="h", pid=1, status="{}")).id


async def finish(store: Store, namespace: str, wid: int, count: int = 1) -> list[int]:
    jobs, _, _ = await store.dequeue(namespace, wid, count=count)
    await store.complete_jobs(namespace, [Completion(j.id, j.retries, False) for j in jobs])
    return [j.id for j in jobs]


async def test_nothing_to_repair(store, redis, ks, namespace):
    assert await repair(store, namespace) == RepairCounts()
    assert await keys(redis, ks) == set()


async def test_missing_workers_are_removed_without_touching_jobs(store, redis, ks, namespace):
    a = await worker(store, namespace)
    b = await worker(store, namespace)
    await store.broadcast(namespace, "x", "[]")
    await asyncio.sleep(0.15)
    await store.register_worker(namespace, b, host="h", pid=1, status="{}")  # heartbeat
    counts = await repair(store, namespace, missing_after=0.1)
    assert counts == RepairCounts(missing_workers=1)
    left = await keys(redis, ks)
    assert f"worker:{a}" not in left and f"inbox:{a}" not in left
    assert (
        await members(redis, ks, "workers") == {b} == await members(redis, ks, "workers_notified")
    )
    assert await repair(store, namespace, missing_after=0.1) == RepairCounts()


async def test_streaming_workers_are_judged_by_stream_missing_after(store, redis, ks, namespace):
    a = await worker(store, namespace)
    b = await worker(store, namespace)
    await redis.zadd(ks.key("workers_streaming"), {str(a): 0.0})  # as subscribe.lua marks it
    await store.register_worker(namespace, a, host="h", pid=1, status="{}")  # heartbeat moves it
    assert await redis.zscore(ks.key("workers_streaming"), str(a)) > 0
    assert await redis.zscore(ks.key("workers_streaming"), str(b)) is None
    await asyncio.sleep(0.15)
    counts = await store.repair(namespace, LONG, LONG, LONG, stream_missing_after=0.1)
    assert counts == RepairCounts(missing_workers=1)
    assert await members(redis, ks, "workers") == {b}
    assert "workers_streaming" not in await keys(redis, ks)


async def test_old_finished_jobs_are_deleted(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    await store.enqueue(namespace, [JobSpec(task="t", notes={"tag": '"x"'}) for _ in range(3)])
    done = await finish(store, namespace, wid, 3)
    await asyncio.sleep(0.15)
    (fresh,) = await store.enqueue(namespace, [JobSpec(task="t")])
    await finish(store, namespace, wid)
    assert await repair(store, namespace, remove_after=0.1) == RepairCounts(old_jobs=3)
    assert await members(redis, ks, "jobs") == {fresh}
    for i in done:
        assert f"job:{i}" not in await keys(redis, ks)
    assert "note:tag" not in await keys(redis, ks)
    await assert_job_indexes(redis, ks)
    stats = await store.stats(namespace)
    assert stats["finished_jobs"] == 1


async def test_parent_of_an_unfinished_child_is_kept_until_the_child_finishes(
    store, redis, ks, namespace
):
    wid = await worker(store, namespace)
    (parent, other) = await store.enqueue(namespace, [JobSpec(task="p"), JobSpec(task="p")])
    await finish(store, namespace, wid, 2)
    (child,) = await store.enqueue(namespace, [JobSpec(task="c", parents=[parent])])
    (sibling,) = await store.enqueue(namespace, [JobSpec(task="c", parents=[other])])
    await finish(store, namespace, wid)  # both children are runnable: one finishes
    states = {i: (await job(redis, ks, i))["state"] for i in (child, sibling)}
    assert sorted(states.values()) == ["finished", "inactive"]
    waiting = child if states[child] == "inactive" else sibling
    blocked = parent if waiting == child else other
    await asyncio.sleep(0.15)

    counts = await repair(store, namespace, remove_after=0.1)
    assert counts.old_jobs == 2  # the parent with a finished child, and that child
    assert await members(redis, ks, "jobs") == {blocked, waiting}
    assert await members(redis, ks, "kept_parents") == {blocked}
    assert blocked not in await members(redis, ks, "finished_at")
    # A kept parent is not looked at again until remove_after has passed.
    assert await repair(store, namespace, remove_after=0.1) == RepairCounts()
    await assert_job_indexes(redis, ks)

    await finish(store, namespace, wid)
    assert (await job(redis, ks, waiting))["state"] == "finished"
    await asyncio.sleep(0.15)
    assert await repair(store, namespace, remove_after=0.1) == RepairCounts(old_jobs=2)
    assert not {k for k in await keys(redis, ks) if k.startswith(("job:", "children:"))}
    assert "kept_parents" not in await keys(redis, ks)
    await assert_job_indexes(redis, ks)


async def test_kept_parent_that_was_retried_is_dropped_from_kept(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    (parent,) = await store.enqueue(namespace, [JobSpec(task="p")])
    await finish(store, namespace, wid)
    await store.enqueue(namespace, [JobSpec(task="c", parents=[parent], delay=LONG)])
    await asyncio.sleep(0.15)
    assert await repair(store, namespace, remove_after=0.1) == RepairCounts()
    assert await members(redis, ks, "kept_parents") == {parent}
    assert await store.retry_job(namespace, parent, 0, RetryOptions())
    await asyncio.sleep(0.15)
    assert await repair(store, namespace, remove_after=0.1) == RepairCounts()
    assert "kept_parents" not in await keys(redis, ks)
    assert (await job(redis, ks, parent))["state"] == "inactive"


async def test_expired_inactive_jobs_are_deleted(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    (gone, running, _keep) = await store.enqueue(
        namespace,
        [JobSpec(task="t", expire=0.1, priority=1), JobSpec(task="t", expire=0.1, priority=2),
         JobSpec(task="t", expire=LONG)],
    )  # fmt: skip
    jobs, _, _ = await store.dequeue(namespace, wid)
    assert jobs[0].id == running
    await asyncio.sleep(0.15)
    assert await repair(store, namespace) == RepairCounts(expired_jobs=1)
    assert gone not in await members(redis, ks, "jobs")
    assert (await job(redis, ks, running))["state"] == "active"  # expiry only hits inactive jobs
    await assert_job_indexes(redis, ks)


async def test_jobs_of_workers_that_went_away_fail_and_retry(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    once, twice, fg = await store.enqueue(
        namespace,
        [JobSpec(task="t", priority=3), JobSpec(task="t", attempts=2, priority=2),
         JobSpec(task="t", priority=1, queue="minion_foreground")],
    )  # fmt: skip
    jobs, _, _ = await store.dequeue(
        namespace, wid, count=3, queues=["default", "minion_foreground"]
    )
    assert [j.id for j in jobs] == [once, twice, fg]
    alive = await worker(store, namespace)
    (other,) = await store.enqueue(namespace, [JobSpec(task="t")])
    await store.dequeue(namespace, alive)
    assert await repair(store, namespace) == RepairCounts()  # all workers still registered

    await store.unregister_worker(namespace, wid)
    assert await repair(store, namespace) == RepairCounts(abandoned_jobs=2)
    a = await job(redis, ks, once)
    assert a["state"] == "failed" and json.loads(a["result"]) == "Worker went away"
    b = await job(redis, ks, twice)
    assert b["state"] == "inactive" and b["retries"] == "1" and b["attempts"] == "1"
    assert json.loads(b["result"]) == "Worker went away"
    assert (await job(redis, ks, fg))["state"] == "active"
    assert (await job(redis, ks, other))["state"] == "active"
    assert await redis.smembers(ks.key(f"worker_jobs:{wid}")) == {str(fg).encode()}
    assert await redis.hgetall(ks.key("busy_workers")) == {
        str(wid).encode(): b"1",
        str(alive).encode(): b"1",
    }
    assert await repair(store, namespace) == RepairCounts()
    await assert_job_indexes(redis, ks)


async def test_missing_worker_jobs_fail_in_the_same_repair(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    await store.enqueue(namespace, [JobSpec(task="t")])
    await store.dequeue(namespace, wid)
    await asyncio.sleep(0.15)
    assert await repair(store, namespace, missing_after=0.1) == RepairCounts(
        missing_workers=1, abandoned_jobs=1
    )
    assert "busy_workers" not in await keys(redis, ks)


async def test_stuck_inactive_jobs_fail_without_finished(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    (stuck, blocked_parent) = await store.enqueue(
        namespace, [JobSpec(task="t"), JobSpec(task="t", priority=-1)]
    )
    (child,) = await store.enqueue(namespace, [JobSpec(task="c", parents=[stuck], lax=True)])
    jobs, _, _ = await store.dequeue(namespace, wid, tasks=["c"])
    assert jobs == []  # the child is parked on its inactive parent
    await asyncio.sleep(0.15)
    (fresh,) = await store.enqueue(namespace, [JobSpec(task="t", delay=LONG)])
    counts = await repair(store, namespace, stuck_after=0.1)
    assert counts == RepairCounts(stuck_jobs=3)  # both parents and the waiting child
    for i in (stuck, blocked_parent, child):
        f = await job(redis, ks, i)
        assert f["state"] == "failed" and "finished" not in f
        assert json.loads(f["result"]) == "Job appears stuck in queue"
    assert (await job(redis, ks, fresh))["state"] == "inactive"
    assert not {
        k for k in await keys(redis, ks) if k.startswith(("ready:", "parked:", "readytasks:"))
    }
    history = await store.history(namespace)
    assert sum(failed for _, _, failed in history) == 0
    await assert_job_indexes(redis, ks)


async def test_stuck_parent_releases_a_lax_child(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    (parent,) = await store.enqueue(namespace, [JobSpec(task="t")])
    await asyncio.sleep(0.15)
    (child,) = await store.enqueue(namespace, [JobSpec(task="c", parents=[parent], lax=True)])
    jobs, _, _ = await store.dequeue(namespace, wid, tasks=["c"])
    assert jobs == []  # parked on its inactive parent
    assert await repair(store, namespace, stuck_after=0.1) == RepairCounts(stuck_jobs=1)
    jobs, _, _ = await store.dequeue(namespace, wid, tasks=["c"])
    assert [j.id for j in jobs] == [child]


async def test_repair_works_in_bounded_batches(store, redis, ks, namespace):
    wid = await worker(store, namespace)
    await store.enqueue(namespace, [JobSpec(task="t") for _ in range(25)])
    await finish(store, namespace, wid, 25)
    await asyncio.sleep(0.15)
    first, more = await store.repair_batch(namespace, LONG, 0.1, LONG, batch=10)
    assert first == RepairCounts(old_jobs=10) and more
    total = await store.repair(namespace, LONG, 0.1, LONG, batch=10)
    assert total == RepairCounts(old_jobs=15)
    _, more = await store.repair_batch(namespace, LONG, 0.1, LONG, batch=10)
    assert not more
    await assert_job_indexes(redis, ks)


async def test_repair_drops_expired_lock_holders(store, redis, ks, namespace):
    await store.acquire_lock(namespace, "short", 0.05)
    await store.acquire_lock(namespace, "long", LONG)
    await asyncio.sleep(0.1)
    assert await repair(store, namespace) == RepairCounts()
    assert "lock:short" not in await keys(redis, ks)
    assert await redis.zcard(ks.key("locks")) == 1


async def test_repair_lock_is_held_by_one_token(store, redis, ks, namespace):
    assert await store.hold_repair_lock(namespace, "a", 1000)
    assert not await store.hold_repair_lock(namespace, "b", 1000)
    assert await store.hold_repair_lock(namespace, "a", 5000)  # extend
    assert 1000 < await redis.pttl(ks.repair_lock) <= 5000
    assert not await store.hold_repair_lock(namespace, "b", 0)  # not b's to release
    assert await redis.get(ks.repair_lock) == b"a"
    assert await store.hold_repair_lock(namespace, "a", 0)
    assert await store.hold_repair_lock(namespace, "b", 50)
    await asyncio.sleep(0.1)
    assert await store.hold_repair_lock(namespace, "a", 1000)  # b's lease ran out
