"""Lock scripts against a real Redis: shared holders and limits, checks, expiry, unlock order,
listing, and the raw keyspace (every holder in lock:<name>, locks, lock_ids and lock_names)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from broker.keyspace import Keyspace
from broker.store import Store


@pytest.fixture
def store(redis: aioredis.Redis) -> Store:
    return Store(redis)


@pytest.fixture
def ks(namespace: str) -> Keyspace:
    return Keyspace(namespace)


async def keys(redis: Any, ks: Keyspace) -> set[str]:
    return {k.decode()[len(ks.prefix) :] for k in await redis.keys(ks.prefix + "*")}


async def holders(redis: Any, ks: Keyspace) -> dict[int, tuple[str, float]]:
    """Every stored holder id -> (name, expires), after checking the four indexes agree."""
    locks = {int(m): s for m, s in await redis.zrange(ks.key("locks"), 0, -1, withscores=True)}
    ids = {int(m): s for m, s in await redis.zrange(ks.key("lock_ids"), 0, -1, withscores=True)}
    names = {int(k): v.decode() for k, v in (await redis.hgetall(ks.key("lock_names"))).items()}
    assert set(locks) == set(ids) == set(names)
    assert all(ids[i] == i for i in ids)
    per_name: dict[int, float] = {}
    for key in await keys(redis, ks):
        if key.startswith("lock:"):
            assert await redis.ttl(ks.key(key)) == -1  # never a TTL on a shared set
            for m, s in await redis.zrange(ks.key(key), 0, -1, withscores=True):
                assert names[int(m)] == key[len("lock:") :]
                per_name[int(m)] = s
    assert per_name == locks
    for key in ("locks", "lock_ids"):
        if await redis.exists(ks.key(key)):
            assert await redis.ttl(ks.key(key)) == -1
    return {i: (names[i], locks[i]) for i in locks}


async def test_exclusive_lock(store, redis, ks, namespace):
    assert await store.acquire_lock(namespace, "foo", 10)
    assert not await store.acquire_lock(namespace, "foo", 10)
    assert await store.acquire_lock(namespace, "bar", 10)
    assert {name for name, _ in (await holders(redis, ks)).values()} == {"foo", "bar"}
    assert await redis.get(ks.key("ids:lock")) == b"2"


async def test_shared_lock_with_limits(store, redis, ks, namespace):
    assert all([await store.acquire_lock(namespace, "db", 10, 3) for _ in range(3)])
    assert not await store.acquire_lock(namespace, "db", 10, 3)
    # The limit is per call: a smaller one fails while more holders exist, a larger one passes.
    assert not await store.acquire_lock(namespace, "db", 10, 1)
    assert await store.acquire_lock(namespace, "db", 10, 4)
    assert len(await holders(redis, ks)) == 4
    assert (await store.stats(namespace))["active_locks"] == 4


async def test_zero_and_negative_durations_only_check(store, redis, ks, namespace):
    assert await store.acquire_lock(namespace, "foo", 0)
    assert await store.acquire_lock(namespace, "foo", -5)
    assert await keys(redis, ks) == set()
    assert await store.acquire_lock(namespace, "foo", 10)
    assert not await store.acquire_lock(namespace, "foo", 0)
    assert await store.acquire_lock(namespace, "foo", 0, 2)
    assert len(await holders(redis, ks)) == 1


async def test_expired_holders_are_dropped_everywhere_first(store, redis, ks, namespace):
    assert await store.acquire_lock(namespace, "a", 0.05)
    assert await store.acquire_lock(namespace, "b", 0.05)
    assert await store.acquire_lock(namespace, "c", 10)
    await asyncio.sleep(0.1)
    assert await store.list_locks(namespace, 0, 10, names=["a"]) == ([], 0)
    assert (await store.stats(namespace))["active_locks"] == 1
    assert await store.acquire_lock(namespace, "a", 10)
    left = await holders(redis, ks)
    assert sorted(name for name, _ in left.values()) == ["a", "c"]
    assert "lock:b" not in await keys(redis, ks)


async def test_short_lock_never_shortens_another_holder(store, redis, ks, namespace):
    assert await store.acquire_lock(namespace, "s", 10, 2)
    assert await store.acquire_lock(namespace, "s", 0.05, 2)
    await asyncio.sleep(0.1)
    rows, total = await store.list_locks(namespace, 0, 10)
    assert [r.id for r in rows] == [1] and total == 1
    assert not await store.acquire_lock(namespace, "s", 10, 1)
    assert await store.acquire_lock(namespace, "s", 10, 2)
    assert len(await holders(redis, ks)) == 2


async def test_unlock_releases_the_holder_expiring_soonest(store, redis, ks, namespace):
    await store.acquire_lock(namespace, "u", 30, 3)
    await store.acquire_lock(namespace, "u", 10, 3)
    await store.acquire_lock(namespace, "u", 20, 3)
    await store.acquire_lock(namespace, "other", 5)
    assert await store.release_lock(namespace, "u")
    assert sorted(await holders(redis, ks)) == [1, 3, 4]
    assert await store.release_lock(namespace, "u")
    assert sorted(await holders(redis, ks)) == [1, 4]
    assert await store.release_lock(namespace, "u")
    assert not await store.release_lock(namespace, "u")
    assert not await store.release_lock(namespace, "missing")
    assert sorted(await holders(redis, ks)) == [4]
    assert await store.release_lock(namespace, "other")
    assert await keys(redis, ks) == {"ids:lock"}


async def test_unlock_ignores_expired_holders(store, namespace):
    await store.acquire_lock(namespace, "e", 0.05)
    await asyncio.sleep(0.1)
    assert not await store.release_lock(namespace, "e")


async def test_list_locks_pages_and_filters(store, namespace):
    for name in ["a", "b", "a", "c", "b"]:
        assert await store.acquire_lock(namespace, name, 10, 5)
    await store.acquire_lock(namespace, "gone", 0.05)
    await asyncio.sleep(0.1)

    rows, total = await store.list_locks(namespace, 0, 10)
    assert [(r.id, r.name) for r in rows] == [(5, "b"), (4, "c"), (3, "a"), (2, "b"), (1, "a")]
    assert total == 5
    assert all(r.expires > 0 for r in rows)
    rows, total = await store.list_locks(namespace, 1, 2)
    assert [r.id for r in rows] == [4, 3] and total == 5
    rows, total = await store.list_locks(namespace, 0, 10, names=["a", "b", "a", "gone"])
    assert [r.id for r in rows] == [5, 3, 2, 1] and total == 4
    rows, total = await store.list_locks(namespace, 1, 1, names=["a"])
    assert [r.id for r in rows] == [1] and total == 2
    assert await store.list_locks(namespace, 9, 10) == ([], 0)
    assert await store.list_locks(namespace, 0, 10, names=["gone"]) == ([], 0)


async def test_list_locks_walks_past_many_holders(store, namespace):
    for _ in range(600):
        await store.acquire_lock(namespace, "many", 10, 1000)
    rows, total = await store.list_locks(namespace, 550, 100)
    assert [r.id for r in rows] == list(range(50, 0, -1)) and total == 600


async def test_reset_locks_clears_every_lock_key(store, redis, ks, namespace):
    await store.acquire_lock(namespace, "a", 10, 2)
    await store.acquire_lock(namespace, "a", 10, 2)
    await store.acquire_lock(namespace, "b", 10)
    await store.register_worker(namespace, None, host="h", pid=1, status="{}")
    await store.reset(namespace, locks=True)
    left = await keys(redis, ks)
    assert not {k for k in left if k.startswith("lock")}
    assert "worker:1" in left
    assert await store.acquire_lock(namespace, "a", 10)
