"""Schedule scripts against a real Redis: the raw keyspace each one leaves behind.

Schedules are made due without waiting for the clock by writing next_run straight into the hash
and schedules_due (``make_due``), exactly where upsert_schedule puts it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import pytest
import redis.asyncio as aioredis

from broker.cron import CronError, next_cron_time
from broker.keyspace import Keyspace
from broker.store import JobSpec, Store


@pytest.fixture
def store(redis: aioredis.Redis) -> Store:
    return Store(redis)


@pytest.fixture
def ks(namespace: str) -> Keyspace:
    return Keyspace(namespace)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def redis_now(redis: aioredis.Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1_000_000


async def schedule_hash(redis: aioredis.Redis, ks: Keyspace, schedule_id: int) -> dict[str, str]:
    raw = await redis.hgetall(ks.schedule(schedule_id))
    return {text(k): text(v) for k, v in raw.items()}


async def make_due(redis: aioredis.Redis, ks: Keyspace, schedule_id: int, at: float) -> str:
    """Moves a schedule's next_run to `at` (in the past to make it due); the stored text."""
    text = f"{at:.6f}"
    await redis.hset(ks.schedule(schedule_id), "next_run", text)
    if await redis.hget(ks.schedule(schedule_id), "paused") == b"0":
        await redis.zadd(ks.key("schedules_due"), {str(schedule_id): at})
    return text


async def due_score(redis: aioredis.Redis, ks: Keyspace, schedule_id: int) -> float | None:
    return await redis.zscore(ks.key("schedules_due"), str(schedule_id))


SPEC = JobSpec(
    task="report",
    args='[1,"two"]',
    attempts=3,
    expire=600.0,
    lax=True,
    notes={"team": '"ops"', "n": "1.5"},
    priority=7,
    queue="reports",
)


# upsert_schedule ----------------------------------------------------------------------------------


async def test_upsert_creates_every_index(store, redis, namespace, ks):
    before = await redis_now(redis)
    sid = await store.upsert_schedule(namespace, "nightly", "0 3 * * *", SPEC)
    assert sid == 1
    h = await schedule_hash(redis, ks, sid)
    next_run = next_cron_time("0 3 * * *", before)
    assert h == {
        "name": "nightly",
        "cron": "0 3 * * *",
        "task": "report",
        "args": '[1,"two"]',
        "attempts": "3",
        "expire": "600",
        "lax": "1",
        "notes": h["notes"],
        "priority": "7",
        "queue": "reports",
        "created": h["created"],
        "next_run": f"{next_run:.6f}",
        "paused": "0",
    }
    assert json.loads(h["notes"]) == {"team": '"ops"', "n": "1.5"}
    assert before <= float(h["created"]) <= await redis_now(redis)
    assert await redis.get(ks.key("ids:schedule")) == b"1"
    assert await redis.zrange(ks.key("schedules"), 0, -1, withscores=True) == [(b"1", 1.0)]
    assert await redis.hgetall(ks.key("schedule_names")) == {b"nightly": b"1"}
    assert await due_score(redis, ks, sid) == next_run


async def test_upsert_same_cron_keeps_id_next_run_and_state(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "*/5 * * * *", SPEC)
    await store.upsert_schedule(namespace, "other", "* * * * *", JobSpec(task="x"))
    kept = await make_due(redis, ks, sid, 1000.5)
    await redis.hset(ks.schedule(sid), mapping={"last_job": "42", "last_run": "999.000000"})
    created = (await schedule_hash(redis, ks, sid))["created"]

    again = await store.upsert_schedule(
        namespace, "a", "*/5 * * * *", JobSpec(task="other", queue="q2", priority=-1)
    )

    assert again == sid
    h = await schedule_hash(redis, ks, sid)
    assert h["next_run"] == kept
    assert await due_score(redis, ks, sid) == 1000.5
    assert (h["created"], h["last_job"], h["last_run"], h["paused"]) == (
        created,
        "42",
        "999.000000",
        "0",
    )
    # The job fields are replaced, and an expiry no longer given is gone.
    assert (h["task"], h["queue"], h["priority"], h["attempts"], h["lax"]) == (
        "other",
        "q2",
        "-1",
        "1",
        "0",
    )
    assert "expire" not in h
    assert json.loads(h["notes"]) == {}
    assert await redis.get(ks.key("ids:schedule")) == b"2"


async def test_upsert_changed_cron_replaces_next_run(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "*/5 * * * *", SPEC)
    await make_due(redis, ks, sid, 1000.0)
    now = await redis_now(redis)
    assert await store.upsert_schedule(namespace, "a", "0 0 1 1 *", SPEC) == sid
    expected = next_cron_time("0 0 1 1 *", now)
    assert (await schedule_hash(redis, ks, sid))["next_run"] == f"{expected:.6f}"
    assert await due_score(redis, ks, sid) == expected


async def test_upsert_of_paused_schedule_stays_paused(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "*/5 * * * *", SPEC)
    assert await store.pause_schedule(namespace, "a")
    await store.upsert_schedule(namespace, "a", "@hourly", SPEC)
    h = await schedule_hash(redis, ks, sid)
    assert (h["paused"], h["cron"]) == ("1", "@hourly")
    assert await due_score(redis, ks, sid) is None


async def test_upsert_without_a_match_writes_nothing(store, redis, namespace, ks):
    with pytest.raises(CronError, match="No matching time found for cron expression"):
        await store.upsert_schedule(namespace, "never", "0 0 30 2 *", SPEC)
    assert await redis.keys(ks.prefix + "*") == []


# delete / pause / resume --------------------------------------------------------------------------


async def test_delete_removes_every_trace(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "* * * * *", SPEC)
    await store.upsert_schedule(namespace, "b", "* * * * *", SPEC)
    assert await store.delete_schedule(namespace, "a") is True
    assert await redis.exists(ks.schedule(sid)) == 0
    assert await redis.zrange(ks.key("schedules"), 0, -1) == [b"2"]
    assert await redis.zrange(ks.key("schedules_due"), 0, -1) == [b"2"]
    assert await redis.hgetall(ks.key("schedule_names")) == {b"b": b"2"}
    assert await store.delete_schedule(namespace, "a") is False


async def test_pause_and_resume_move_the_due_entry(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "* * * * *", SPEC)
    next_run = float((await schedule_hash(redis, ks, sid))["next_run"])
    assert await store.pause_schedule(namespace, "a") is True
    assert await store.pause_schedule(namespace, "a") is True  # already paused: still found
    assert (await schedule_hash(redis, ks, sid))["paused"] == "1"
    assert await due_score(redis, ks, sid) is None
    assert await store.resume_schedule(namespace, "a") is True
    assert await store.resume_schedule(namespace, "a") is True
    assert (await schedule_hash(redis, ks, sid))["paused"] == "0"
    assert await due_score(redis, ks, sid) == next_run
    for call in (store.pause_schedule, store.resume_schedule, store.delete_schedule):
        assert await call(namespace, "missing") is False


# list_schedules -----------------------------------------------------------------------------------


async def test_list_filters_order_and_total(store, redis, namespace):
    for name in ("a", "b", "c", "d", "e"):
        await store.upsert_schedule(namespace, name, "@daily", JobSpec(task=name))

    async def ids(offset: int = 0, limit: int = 100, **filters: Any) -> tuple[list[int], int]:
        rows, total = await store.list_schedules(namespace, offset, limit, **filters)
        return [r.id for r in rows], total

    assert await ids() == ([5, 4, 3, 2, 1], 5)
    assert await ids(1, 2) == ([4, 3], 5)
    assert await ids(before=4) == ([3, 2, 1], 3)
    assert await ids(ids=[1, 3, 9]) == ([3, 1], 2)
    assert await ids(names=["b", "e", "zz"]) == ([5, 2], 2)
    assert await ids(ids=[1, 2, 5], names=["b", "e", "c"]) == ([5, 2], 2)
    assert await ids(ids=[1, 2, 5], names=["b", "e"], before=5) == ([2], 1)
    assert await ids(1, 1, names=["a", "b", "c"]) == ([2], 3)
    # Minion's quirk: an empty page has total 0.
    assert await ids(10, 5) == ([], 0)
    assert await ids(0, 0) == ([], 0)
    assert await ids(5, 5, ids=[1, 2]) == ([], 0)


async def test_list_rows_carry_every_field(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "0 3 * * *", SPEC)
    await redis.hset(ks.schedule(sid), mapping={"last_job": "9", "last_run": "12.500000"})
    [row], total = await store.list_schedules(namespace, 0, 10)
    h = await schedule_hash(redis, ks, sid)
    assert total == 1
    assert row.id == sid and row.name == "a" and row.cron == "0 3 * * *" and row.task == "report"
    assert row.args == '[1,"two"]' and row.attempts == 3 and row.expire == 600.0
    assert row.lax is True and row.priority == 7 and row.queue == "reports"
    assert row.notes == {"team": '"ops"', "n": "1.5"}
    assert row.created == float(h["created"]) and row.next_run == float(h["next_run"])
    assert row.paused is False and row.last_job == 9 and row.last_run == 12.5


# due_schedules / fire_schedules (dispatch) --------------------------------------------------------


async def job_hash(redis: aioredis.Redis, ks: Keyspace, job_id: int) -> dict[str, str]:
    raw = await redis.hgetall(ks.job(job_id))
    return {text(k): text(v) for k, v in raw.items()}


async def test_fired_job_is_the_job_enqueue_makes(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "* * * * *", SPEC)
    await make_due(redis, ks, sid, 1000.0)
    [fired] = await store.dispatch_schedules(namespace)
    [enqueued] = await store.enqueue(namespace, [SPEC])
    assert fired == (sid, "a", 1)
    assert fired.job == 1 and enqueued == 2
    times = ("created", "delayed", "expires")
    made, reference = await job_hash(redis, ks, 1), await job_hash(redis, ks, 2)
    assert {k: v for k, v in made.items() if k not in times} == {
        k: v for k, v in reference.items() if k not in times
    }
    assert float(made["expires"]) == pytest.approx(float(made["created"]) + 600)
    assert await redis.hgetall(ks.key("notes:1")) == await redis.hgetall(ks.key("notes:2"))
    for index in ("jobs", "state:inactive", "queue:reports", "task:report", "note:team"):
        assert await redis.zrange(ks.key(index), 0, -1) == [b"1", b"2"], index
    assert await redis.zcard(ks.key("ready:7:reports:report")) == 2


async def test_fire_records_last_job_and_moves_next_run(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "*/10 * * * *", SPEC)
    overdue = (await redis_now(redis)) - 3 * 3600  # hours overdue: fires once, no catch-up
    await make_due(redis, ks, sid, overdue)
    before = await redis_now(redis)
    assert await store.dispatch_schedules(namespace) == [(sid, "a", 1)]
    after = await redis_now(redis)
    h = await schedule_hash(redis, ks, sid)
    assert h["last_job"] == "1"
    assert before <= float(h["last_run"]) <= after
    next_run = float(h["next_run"])
    assert next_run in {next_cron_time("*/10 * * * *", t) for t in (before, after)}
    assert await due_score(redis, ks, sid) == next_run
    assert await store.dispatch_schedules(namespace) == []
    assert await redis.get(ks.key("ids:job")) == b"1"


async def test_due_schedules_reads_the_clock_and_the_stored_next_run(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "0 * * * *", SPEC)
    now = await redis_now(redis)
    expected = await make_due(redis, ks, sid, now - 1)
    [due_now, due_id, cron, stored] = await store._run("due_schedules", namespace, [10])
    assert (due_id, cron, stored) == (str(sid).encode(), b"0 * * * *", expected.encode())
    assert float(due_now) >= now


async def test_fire_is_compare_and_set(store, redis, namespace, ks):
    a = await store.upsert_schedule(namespace, "a", "* * * * *", SPEC)
    b = await store.upsert_schedule(namespace, "b", "* * * * *", SPEC)
    c = await store.upsert_schedule(namespace, "c", "* * * * *", SPEC)
    d = await store.upsert_schedule(namespace, "d", "* * * * *", SPEC)
    e = await store.upsert_schedule(namespace, "e", "* * * * *", SPEC)
    texts = {sid: await make_due(redis, ks, sid, 1000.0) for sid in (a, b, c, d, e)}
    await store.pause_schedule(namespace, "b")  # paused since the reading
    await store.delete_schedule(namespace, "c")  # deleted since the reading
    await store.upsert_schedule(namespace, "d", "*/2 * * * *", SPEC)  # cron changed
    await make_due(redis, ks, e, 2000.0)  # fired by someone else (next_run moved)
    args: list[str] = []
    for sid in (a, b, c, d, e):
        args += [str(sid), texts[sid], "* * * * *", "4000.0"]
    out = await store._run("fire_schedules", namespace, args)
    assert out == [[str(a).encode(), b"a", b"1"]]
    # Replaying the same reading fires nothing: a's next_run has moved on.
    assert await store._run("fire_schedules", namespace, args) == []
    assert await redis.get(ks.key("ids:job")) == b"1"
    assert (await schedule_hash(redis, ks, a))["next_run"] == "4000.000000"
    assert await due_score(redis, ks, a) == 4000.0


async def test_paused_overdue_schedule_fires_once_after_resume(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "* * * * *", SPEC)
    await make_due(redis, ks, sid, 1000.0)
    await store.pause_schedule(namespace, "a")
    assert await store.dispatch_schedules(namespace) == []
    await store.resume_schedule(namespace, "a")
    assert await store.dispatch_schedules(namespace) == [(sid, "a", 1)]
    assert await store.dispatch_schedules(namespace) == []


async def test_three_dispatchers_racing_fire_each_schedule_once(redis_server, redis, namespace, ks):
    # Worst case, made deterministic: every dispatcher reads the same due schedules before any
    # of them fires, so all nine compare-and-set calls compete for the same 100 firings.
    attempted: list[int] = []
    all_read = asyncio.Event()

    class Racing(Store):
        async def _run(self, name: str, namespace: str, args: Iterable[Any] = ()) -> Any:
            if name == "fire_schedules":
                args = list(args)
                attempted.append(len(args) // 4)
                if len(attempted) == 9:
                    all_read.set()
                await all_read.wait()
            return await super()._run(name, namespace, args)

    stores = [Racing(aioredis.Redis.from_url(redis_server)) for _ in range(3)]
    try:
        for i in range(100):
            sid = await stores[0].upsert_schedule(namespace, f"s{i}", "* * * * *", SPEC)
            await make_due(redis, ks, sid, 1000.0 + i)
        rounds = await asyncio.gather(
            *(s.dispatch_schedules(namespace) for s in stores for _ in range(3))
        )
    finally:
        for s in stores:
            await s.redis.aclose()
    fired = [d for r in rounds for d in r]
    assert len(fired) == 100
    assert sorted(d.id for d in fired) == list(range(1, 101))
    assert sorted(d.job for d in fired) == list(range(1, 101))
    assert await redis.get(ks.key("ids:job")) == b"100"
    assert await redis.zcard(ks.key("state:inactive")) == 100
    assert attempted == [100] * 9


async def test_dispatch_reads_past_one_batch(store, redis, namespace, ks, monkeypatch):
    monkeypatch.setattr("broker.store.DISPATCH_BATCH", 3)
    for i in range(7):
        sid = await store.upsert_schedule(namespace, f"s{i}", "* * * * *", SPEC)
        await make_due(redis, ks, sid, 1000.0 + i)
    fired = await store.dispatch_schedules(namespace)
    assert [d.id for d in fired] == list(range(1, 8))


# stats / reset ------------------------------------------------------------------------------------


async def test_stats_count_unpaused_and_paused_schedules(store, redis, namespace):
    for name in ("a", "b", "c"):
        await store.upsert_schedule(namespace, name, "@daily", SPEC)
    await store.pause_schedule(namespace, "b")
    stats = await store.stats(namespace)
    assert (stats["schedules"], stats["inactive_schedules"]) == (2, 1)
    await store.delete_schedule(namespace, "b")
    stats = await store.stats(namespace)
    assert (stats["schedules"], stats["inactive_schedules"]) == (2, 0)


async def test_reset_all_removes_every_schedule_key(store, redis, namespace, ks):
    sid = await store.upsert_schedule(namespace, "a", "* * * * *", SPEC)
    await make_due(redis, ks, sid, 1000.0)
    await store.dispatch_schedules(namespace)
    await store.reset(namespace, all=True)
    assert await redis.keys(ks.prefix + "*") == []
    assert await store.upsert_schedule(namespace, "a", "* * * * *", SPEC) == 1
