"""Leases against a real Redis, through the Store: minting, fencing, heartbeat reconciliation,
expiry, and what a worker re-created after repair sees. After each step the whole keyspace is
checked with the job scripts' invariants (every active job holds exactly one lease)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis.asyncio as aioredis

from broker.keyspace import Keyspace
from broker.store import Completion, Dequeued, JobSpec, RetryOptions, Store
from tests.scripts.test_job_scripts import (
    Check,
    assert_consistent,
    job_hash,
    redis_now,
    subscribed,
)

GRACE = 0.3


@pytest.fixture
def store(redis: aioredis.Redis) -> Store:
    return Store(redis, lease_duration=60.0, lease_grace=GRACE)


@pytest.fixture
def ks(namespace: str) -> Keyspace:
    return Keyspace(namespace)


@pytest.fixture
def check(redis: aioredis.Redis, namespace: str) -> Check:
    async def run() -> None:
        await assert_consistent(redis, namespace)

    return run


async def take(store: Store, ns: str, worker: int, count: int = 1) -> list[Dequeued]:
    jobs, _, _ = await store.dequeue(ns, worker, count=count)
    return jobs


async def lease_expiry(redis: aioredis.Redis, ks: Keyspace, job_id: int) -> float | None:
    score = await redis.zscore(ks.key("leases"), str(job_id))
    return None if score is None else float(score)


async def heartbeat(store: Store, ns: str, worker: int, running: list[int] | None = None,
                    lease: float | None = None):  # fmt: skip
    return await store.register_worker(
        ns, worker, host="h", pid=1, status="{}", running=running, lease_duration=lease
    )


async def test_each_activation_gets_a_new_unique_lease(store, redis, ks, namespace, check):
    await store.enqueue(namespace, [JobSpec("t"), JobSpec("t")])
    await heartbeat(store, namespace, 1)
    first, second = await take(store, namespace, 1, count=2)
    assert first.lease > 0 and second.lease > 0
    now = await redis_now(redis)
    assert await lease_expiry(redis, ks, first.id) == pytest.approx(now + 60.0, abs=1)
    await check()
    # Handed back unchanged (same retries) and taken again: a new lease, the old one is stale.
    assert await store.undeliver_jobs(namespace, 1, None, [first]) == 1
    (again,) = await take(store, namespace, 2)
    assert (again.id, again.retries) == (first.id, first.retries)
    assert again.lease > first.lease
    stale = Completion(first.id, first.retries, False, "1", first.lease)
    assert await store.complete_jobs(namespace, [stale]) == [False]
    fresh = Completion(again.id, again.retries, False, "2", again.lease)
    assert await store.complete_jobs(namespace, [fresh]) == [True]
    assert await lease_expiry(redis, ks, first.id) is None
    await check()


async def test_completions_without_a_lease_keep_minions_retries_guard(store, namespace, check):
    await store.enqueue(namespace, [JobSpec("t")])
    (job,) = await take(store, namespace, 1)
    assert await store.complete_jobs(namespace, [Completion(job.id, job.retries + 1, True)]) == [
        False
    ]
    assert await store.complete_jobs(namespace, [Completion(job.id, job.retries, True)]) == [True]
    await check()


async def test_retry_with_a_lease_needs_that_attempt_active(store, namespace, check):
    await store.enqueue(namespace, [JobSpec("t")])
    (job,) = await take(store, namespace, 1)
    wrong = job.lease + 1
    assert not await store.retry_job(namespace, job.id, job.retries, RetryOptions(), wrong)
    assert await store.retry_job(namespace, job.id, job.retries, RetryOptions(), job.lease)
    # Inactive now: a give-back with the old lease does nothing; Minion's plain retry still works.
    assert not await store.retry_job(namespace, job.id, job.retries + 1, RetryOptions(), job.lease)
    assert await store.retry_job(namespace, job.id, job.retries + 1, RetryOptions())
    await check()


async def test_the_worker_sets_its_lease_duration(store, redis, ks, namespace, check):
    await heartbeat(store, namespace, 5, lease=7.5)
    await store.enqueue(namespace, [JobSpec("t")])
    (job,) = await take(store, namespace, 5)
    now = await redis_now(redis)
    assert await lease_expiry(redis, ks, job.id) == pytest.approx(now + 7.5, abs=0.5)
    await heartbeat(store, namespace, 5)  # keeps its duration
    assert await lease_expiry(redis, ks, job.id) == pytest.approx(now + 7.5, abs=0.5)
    await check()


async def test_a_heartbeat_without_a_list_extends_every_lease(store, redis, ks, namespace):
    await heartbeat(store, namespace, 1, lease=2.0)
    await store.enqueue(namespace, [JobSpec("t"), JobSpec("t")])
    jobs = await take(store, namespace, 1, count=2)
    before = [await lease_expiry(redis, ks, j.id) for j in jobs]
    await asyncio.sleep(GRACE + 0.05)
    registered = await heartbeat(store, namespace, 1)
    assert registered.lost == [] and not registered.created
    after = [await lease_expiry(redis, ks, j.id) for j in jobs]
    assert all(a and b and a > b for a, b in zip(after, before, strict=True))
    assert [(await job_hash(redis, ks, j.id))["state"] for j in jobs] == ["active", "active"]


async def test_a_heartbeat_hands_back_what_the_worker_never_got(store, redis, ks, namespace, check):
    """The reply of a dequeue (or a dispatch) was lost: the jobs are active under a live worker
    that does not know them. Its next heartbeat lists what it runs, and the rest goes back."""
    await heartbeat(store, namespace, 1)
    await store.enqueue(namespace, [JobSpec("t", priority=2), JobSpec("t", priority=1)])
    got, lost_in_transit = await take(store, namespace, 1, count=2)
    # Young unlisted jobs may still be on their way: kept (and not extended) for the grace.
    registered = await heartbeat(store, namespace, 1, running=[got.id])
    assert (await job_hash(redis, ks, lost_in_transit.id))["state"] == "active"
    await asyncio.sleep(GRACE + 0.05)
    registered = await heartbeat(store, namespace, 1, running=[got.id, 999])
    assert registered.lost == [999]
    h = await job_hash(redis, ks, lost_in_transit.id)
    assert (h["state"], h["retries"]) == ("inactive", "0")  # unchanged: the attempt never ran
    assert (await job_hash(redis, ks, got.id))["state"] == "active"
    await check()
    (again,) = await take(store, namespace, 2)
    assert again.id == lost_in_transit.id and again.lease != lost_in_transit.lease
    await check()


async def test_lost_lists_jobs_the_worker_no_longer_holds(store, namespace, check):
    await heartbeat(store, namespace, 1)
    await store.enqueue(namespace, [JobSpec("t")])
    (job,) = await take(store, namespace, 1)
    assert await store.retry_job(namespace, job.id, job.retries, RetryOptions())  # e.g. by admin
    registered = await heartbeat(store, namespace, 1, running=[job.id])
    assert registered.lost == [job.id]
    await check()


async def test_expired_leases_fail_with_worker_went_away_and_retry(
    store, redis, ks, namespace, check
):
    await heartbeat(store, namespace, 1, lease=1.0)
    await store.enqueue(
        namespace,
        [JobSpec("t", attempts=2), JobSpec("t"), JobSpec("t", queue="minion_foreground")],
    )
    retried, failed = await take(store, namespace, 1, count=2)
    (foreground,) = (await store.dequeue(namespace, 1, queues=["minion_foreground"]))[0]
    assert await store.reclaim_leases(namespace) == (0, False)
    await asyncio.sleep(1.05)
    assert await store.reclaim_leases(namespace) == (2, False)
    h = await job_hash(redis, ks, retried.id)
    assert (h["state"], h["retries"], h["result"]) == ("inactive", "1", '"Worker went away"')
    h = await job_hash(redis, ks, failed.id)
    assert (h["state"], h["result"]) == ("failed", '"Worker went away"')
    assert (await job_hash(redis, ks, foreground.id))["state"] == "active"  # left to its worker
    stale = Completion(failed.id, failed.retries, False, "null", failed.lease)
    assert await store.complete_jobs(namespace, [stale]) == [False]
    assert await store.reclaim_leases(namespace) == (0, False)
    # The foreground job lost its lease entry: the invariant allows no other exception.
    await redis.zadd(ks.key("leases"), {str(foreground.id): 1e12})
    await check()


async def test_reclaim_is_bounded_per_call(store, namespace):
    await heartbeat(store, namespace, 1, lease=1.0)
    await store.enqueue(namespace, [JobSpec("t") for _ in range(5)])
    await take(store, namespace, 1, count=5)
    await asyncio.sleep(1.05)
    assert await store.reclaim_leases(namespace, 2) == (2, True)
    assert await store.reclaim_leases(namespace, 2) == (2, True)
    assert await store.reclaim_leases(namespace, 2) == (1, False)
    assert (await store.stats(namespace))["failed_jobs"] == 5


async def test_a_worker_recreated_after_repair_loses_its_stream(store, redis, ks, namespace):
    """Repair removed a live streaming worker; its next heartbeat re-creates it. The heartbeat
    says so, wakes the replica holding the stream, and dispatch reports that stream as no
    longer current so the broker ends it and the worker subscribes again."""
    sub = await subscribed(store, namespace, worker=3, concurrency=2)
    await store.enqueue(namespace, [JobSpec("t")])
    pubsub = redis.pubsub()
    await pubsub.subscribe(ks.key("slots"))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await redis.delete(ks.key("worker:3"))  # what repair does to a missing worker
    registered = await heartbeat(store, namespace, 3, running=[])
    assert registered.created and registered.id == 3
    message = await pubsub.get_message(timeout=1)
    assert message is not None and message["data"] == b"3"
    await pubsub.aclose()
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 10)
    assert jobs == [None]
    opened = await store.subscribe(namespace, 3, [])
    assert opened is not None
    jobs, _, _ = await store.dispatch_jobs(
        namespace, [dataclasses.replace(sub, epoch=opened[0])], 10
    )
    assert len(jobs[0] or []) == 1


async def test_lease_tokens_stay_unique_across_a_reset(store, namespace):
    await store.enqueue(namespace, [JobSpec("t")])
    (before,) = await take(store, namespace, 1)
    await store.reset(namespace, all=True)
    await store.enqueue(namespace, [JobSpec("t")])
    (after,) = await take(store, namespace, 1)
    assert after.id == before.id  # ids restart at 1 ...
    assert after.lease > before.lease  # ... leases do not, so a stale handle stays stale
    stale = Completion(before.id, before.retries, False, "null", before.lease)
    assert await store.complete_jobs(namespace, [stale]) == [False]


async def test_subscribe_extends_leases_and_redelivers_with_the_same_lease(
    store, redis, ks, namespace, check
):
    sub = await subscribed(store, namespace, worker=4, concurrency=2)
    await store.enqueue(namespace, [JobSpec("t"), JobSpec("t")])
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 10)
    first, second = jobs[0] or []
    opened = await store.subscribe(namespace, 4, [first.id])  # second never arrived
    assert opened is not None
    (redelivered,) = opened[2]
    assert (redelivered.id, redelivered.lease) == (second.id, second.lease)
    await check()


async def test_each_attempt_outranks_the_last_even_if_the_clock_stepped_back(
    store, redis, ks, namespace, check
):
    """Tokens come from Redis' clock; a job's next token is above its last one whatever the
    clock says (a failover to a replica whose clock is behind)."""
    await store.enqueue(namespace, [JobSpec("t")])
    (job,) = await take(store, namespace, 1)
    ahead = job.lease + 10**12  # as if the previous attempt's clock had been far ahead
    await redis.hset(ks.job(job.id), "lease", str(ahead))
    assert await store.undeliver_jobs(namespace, 1, None, [dataclasses.replace(job, lease=ahead)])
    (again,) = await take(store, namespace, 2)
    assert again.lease == ahead + 1
    await check()
