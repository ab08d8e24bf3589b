"""Worker scripts against a real Redis: registry, heartbeats, listing, broadcast and receive,
and the raw keyspace each leaves behind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from broker.keyspace import Keyspace
from broker.store import JobSpec, Store


@pytest.fixture
def store(redis: aioredis.Redis) -> Store:
    return Store(redis)


@pytest.fixture
def ks(namespace: str) -> Keyspace:
    return Keyspace(namespace)


async def keys(redis: Any, ks: Keyspace) -> set[str]:
    """Every key of the namespace, without its prefix."""
    return {k.decode()[len(ks.prefix) :] for k in await redis.keys(ks.prefix + "*")}


async def worker_hash(redis: Any, ks: Keyspace, wid: int) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (await redis.hgetall(ks.worker(wid))).items()}


async def assert_registry_consistent(redis: Any, ks: Keyspace) -> None:
    """workers and workers_notified list exactly the worker hashes, with matching scores."""
    workers = await redis.zrange(ks.key("workers"), 0, -1, withscores=True)
    notified = dict(await redis.zrange(ks.key("workers_notified"), 0, -1, withscores=True))
    assert {m for m, _ in workers} == set(notified)
    for member, score in workers:
        assert score == int(member)
        h = await worker_hash(redis, ks, int(member))
        assert h, f"worker {member} indexed without a hash"
        assert float(h["notified"]) == pytest.approx(notified[member], abs=1e-6)
    hashes = {k for k in await keys(redis, ks) if k.startswith("worker:")}
    assert hashes == {f"worker:{m.decode()}" for m, _ in workers}


async def test_register_new_workers_get_increasing_ids(store, redis, ks, namespace):
    a = (await store.register_worker(namespace, None, host="h1", pid=10, status='{"jobs":4}')).id
    b = (await store.register_worker(namespace, None, host="h2", pid=20, status="{}")).id
    assert (a, b) == (1, 2)
    h = await worker_hash(redis, ks, a)
    assert h["host"] == "h1" and h["pid"] == "10" and json.loads(h["status"]) == {"jobs": 4}
    assert h["started"] == h["notified"]
    assert await redis.get(ks.key("ids:worker")) == b"2"
    await assert_registry_consistent(redis, ks)
    assert await keys(redis, ks) == {
        "ids:worker", "worker:1", "worker:2", "workers", "workers_notified"
    }  # fmt: skip


async def test_heartbeat_moves_notified_and_replaces_status_only(store, redis, ks, namespace):
    wid = (await store.register_worker(namespace, None, host="h", pid=1, status='{"a":1,"b":2}')).id
    before = await worker_hash(redis, ks, wid)
    await asyncio.sleep(0.01)
    again = (await store.register_worker(namespace, wid, host="other", pid=99, status='{"c":3}')).id
    assert again == wid
    after = await worker_hash(redis, ks, wid)
    assert after["host"] == "h" and after["pid"] == "1" and after["started"] == before["started"]
    assert float(after["notified"]) > float(before["notified"])
    assert json.loads(after["status"]) == {"c": 3}
    assert await redis.get(ks.key("ids:worker")) == b"1"
    await assert_registry_consistent(redis, ks)


async def test_reregistering_a_removed_id_recreates_it(store, redis, ks, namespace):
    wid = (await store.register_worker(namespace, None, host="h", pid=1, status="{}")).id
    await store.register_worker(namespace, None, host="h", pid=2, status="{}")
    assert await store.unregister_worker(namespace, wid)
    assert (await store.register_worker(namespace, wid, host="new", pid=3, status="{}")).id == wid
    assert (await worker_hash(redis, ks, wid))["host"] == "new"
    assert await redis.get(ks.key("ids:worker")) == b"2"
    # An id beyond the sequence moves it on, so a later new worker never merges into it.
    assert (await store.register_worker(namespace, 7, host="h", pid=4, status="{}")).id == 7
    assert (await store.register_worker(namespace, None, host="h", pid=5, status="{}")).id == 8
    await assert_registry_consistent(redis, ks)


async def test_unregister_leaves_active_jobs_for_repair(store, redis, ks, namespace):
    wid = (await store.register_worker(namespace, None, host="h", pid=1, status="{}")).id
    (job,) = await store.enqueue(namespace, [JobSpec(task="t")])
    jobs, _, _ = await store.dequeue(namespace, wid)
    assert [j.id for j in jobs] == [job]
    await store.broadcast(namespace, "jobs", "[1]", [wid])
    assert await store.unregister_worker(namespace, wid)
    assert not await store.unregister_worker(namespace, wid)
    left = await keys(redis, ks)
    assert f"worker:{wid}" not in left and f"inbox:{wid}" not in left
    assert "workers" not in left and "workers_notified" not in left
    assert await redis.smembers(ks.key(f"worker_jobs:{wid}")) == {str(job).encode()}
    assert await redis.hget(ks.job(job), "state") == b"active"
    stats = await store.stats(namespace)
    assert (stats["workers"], stats["active_workers"], stats["active_jobs"]) == (0, 1, 1)


async def test_list_workers_pages_filters_and_jobs(store, namespace):
    ids = [
        (await store.register_worker(namespace, None, host=f"h{i}", pid=i, status="{}")).id
        for i in range(5)
    ]
    await store.enqueue(namespace, [JobSpec(task="t") for _ in range(3)])
    await store.dequeue(namespace, ids[1], count=3)

    rows, total = await store.list_workers(namespace, 0, 10)
    assert [r.id for r in rows] == [5, 4, 3, 2, 1] and total == 5
    assert rows[3].jobs == [1, 2, 3] and rows[0].jobs == []
    assert rows[0].host == "h4" and rows[0].pid == 4 and rows[0].status == "{}"

    rows, total = await store.list_workers(namespace, 1, 2)
    assert [r.id for r in rows] == [4, 3] and total == 5
    rows, total = await store.list_workers(namespace, 0, 10, before=3)
    assert [r.id for r in rows] == [2, 1] and total == 2
    rows, total = await store.list_workers(namespace, 0, 10, ids=[1, 3, 3, 99])
    assert [r.id for r in rows] == [3, 1] and total == 2
    rows, total = await store.list_workers(namespace, 0, 1, ids=[1, 3], before=3)
    assert [r.id for r in rows] == [1] and total == 1
    # Minion's quirk: an empty page reports a total of 0.
    assert await store.list_workers(namespace, 10, 10) == ([], 0)
    assert await store.list_workers(namespace, 0, 10, ids=[42]) == ([], 0)


async def test_broadcast_to_chosen_and_all_workers(store, redis, ks, namespace):
    a, b, c = [
        (await store.register_worker(namespace, None, host="h", pid=i, status="{}")).id
        for i in range(3)
    ]
    nested = '[1,{"deep":[true,null,{"x":"y"}]},"s",2.5]'
    pubsub = redis.pubsub()
    await pubsub.subscribe(ks.inbox_channel)
    await pubsub.get_message(timeout=1)  # subscribe confirmation

    assert await store.broadcast(namespace, "jobs", nested, [a, c, c, 99])
    assert await store.broadcast(namespace, "stop", "[]")
    assert not await store.broadcast(namespace, "stop", "[]", [98, 99])

    published = []
    for _ in range(5):
        msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert msg is not None
        published.append(int(msg["data"]))
    assert sorted(published) == [a, a, b, c, c]
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05) is None
    await pubsub.aclose()

    first = [json.loads(m) for m in await store.receive(namespace, a)]
    assert first == [["jobs", 1, {"deep": [True, None, {"x": "y"}]}, "s", 2.5], ["stop"]]
    assert [json.loads(m) for m in await store.receive(namespace, b)] == [["stop"]]
    assert await store.receive(namespace, a) == []
    assert await store.receive(namespace, 12345) == []
    assert f"inbox:{a}" not in await keys(redis, ks) and f"inbox:{c}" in await keys(redis, ks)


async def test_broadcast_with_no_workers_reaches_nobody(store, redis, ks, namespace):
    assert not await store.broadcast(namespace, "jobs", "[4]")
    assert await keys(redis, ks) == set()


async def test_broadcast_to_all_walks_many_workers(store, namespace):
    for i in range(1203):
        await store.register_worker(namespace, None, host="h", pid=i, status="{}")
    assert await store.broadcast(namespace, "ping", "[]")
    assert await store.receive(namespace, 1) == ['["ping"]']
    assert await store.receive(namespace, 1203) == ['["ping"]']


async def test_stats_count_workers(store, namespace):
    a = (await store.register_worker(namespace, None, host="h", pid=1, status="{}")).id
    await store.register_worker(namespace, None, host="h", pid=2, status="{}")
    await store.enqueue(namespace, [JobSpec(task="t")])
    await store.dequeue(namespace, a)
    stats = await store.stats(namespace)
    assert (stats["workers"], stats["active_workers"], stats["inactive_workers"]) == (2, 1, 1)
