"""ScheduleService through gRPC: a real broker, the Python SDK and a real Redis.

Schedules are made due without waiting for the clock by writing next_run straight into Redis
(``make_due``), exactly where UpsertSchedule stores it (see broker/keyspace.py, Schedules).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import grpc
import pytest
import redis as sync_redis

from broker.config import Settings
from broker.cron import next_cron_time
from broker.keyspace import Keyspace
from broker.scheduler import Scheduler
from broker.store import Dispatched, JobSpec, Store
from jobwire import Client, JobwireError


@pytest.fixture
def r(redis_server: str) -> Iterator[sync_redis.Redis]:
    with sync_redis.Redis.from_url(redis_server) as client:
        yield client


@pytest.fixture
def make_due(r: sync_redis.Redis, namespace: str) -> Callable[[int, float], None]:
    """Moves a schedule's next_run to `at` (epoch seconds; in the past makes it due now)."""
    ks = Keyspace(namespace)

    def move(schedule_id: int, at: float) -> None:
        r.hset(ks.schedule(schedule_id), "next_run", f"{at:.6f}")
        if r.hget(ks.schedule(schedule_id), "paused") == b"0":
            r.zadd(ks.key("schedules_due"), {str(schedule_id): at})

    return move


def redis_now(r: sync_redis.Redis) -> float:
    seconds, micros = r.time()
    return float(seconds + micros / 1_000_000)


def epoch(moment: datetime | None) -> float:
    assert moment is not None
    return moment.timestamp()


def one(client: Client, name: str) -> Any:
    [item] = client.list_schedules(names=[name]).items
    return item


# UpsertSchedule -----------------------------------------------------------------------------------


def test_upsert_creates_a_schedule_with_every_field(client, r):
    before = redis_now(r)
    sid = client.schedule(
        "nightly",
        "0 3 * * *",
        "report",
        [1, {"a": None}],
        attempts=3,
        expire=90.5,
        lax=True,
        notes={"team": "ops"},
        priority=-2,
        queue="reports",
    )
    s = one(client, "nightly")
    assert (s.id, s.name, s.cron, s.task, s.args) == (
        sid,
        "nightly",
        "0 3 * * *",
        "report",
        [1, {"a": None}],
    )
    assert (s.attempts, s.expire, s.lax, s.notes) == (3, 90.5, True, {"team": "ops"})
    assert (s.priority, s.queue, s.paused, s.last_job, s.last_run) == (
        -2,
        "reports",
        False,
        None,
        None,
    )
    assert before - 1 <= epoch(s.created) <= redis_now(r) + 1
    assert epoch(s.next_run) == next_cron_time("0 3 * * *", before)


def test_upsert_defaults(client):
    client.schedule("plain", "@hourly", "t")
    s = one(client, "plain")
    assert (s.args, s.attempts, s.expire, s.lax, s.notes, s.priority, s.queue) == (
        [], 1, None, False, {}, 0, "default",
    )  # fmt: skip


def test_upsert_same_cron_keeps_id_and_next_run(client, make_due):
    sid = client.schedule("a", "*/5 * * * *", "t", [1])
    make_due(sid, 1_000_000.0)
    assert client.pause_schedule("a")
    assert client.schedule("a", "*/5 * * * *", "other", [2], queue="q", priority=5) == sid
    s = one(client, "a")
    assert epoch(s.next_run) == 1_000_000.0
    assert (s.task, s.args, s.queue, s.priority, s.paused) == ("other", [2], "q", 5, True)
    assert client.list_schedules().total == 1


def test_upsert_changed_cron_replaces_next_run(client, make_due, r):
    sid = client.schedule("a", "*/5 * * * *", "t")
    make_due(sid, 1_000_000.0)
    now = redis_now(r)
    assert client.schedule("a", "0 0 1 1 *", "t") == sid
    s = one(client, "a")
    assert s.cron == "0 0 1 1 *"
    assert epoch(s.next_run) == next_cron_time("0 0 1 1 *", now)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("", 'Invalid cron expression "": expected 5 fields'),
        ("* * * *", 'Invalid cron expression "* * * *": expected 5 fields'),
        ("@fortnightly", 'Unknown cron nickname "@fortnightly"'),
        ("*/0 * * * *", 'Invalid step "0" in minute field'),
        ("* MON * * *", 'Invalid name "MON" in hour field'),
        ("5-2 * * * *", 'Value out of range in minute field "5-2" (0-59)'),
        ("0 0 30 2 *", "No matching time found for cron expression"),
    ],
)
def test_bad_cron_is_invalid_argument_and_writes_nothing(client, r, namespace, cron, message):
    with pytest.raises(JobwireError) as caught:
        client.schedule("bad", cron, "t")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.field_violations == [("cron", message)]
    assert r.keys(Keyspace(namespace).prefix + "*") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"task": ""}, "task"),
        ({"attempts": 0}, "attempts"),
        ({"expire": -1.0}, "expire"),
    ],
)
def test_upsert_rejects_bad_fields(client, r, namespace, kwargs, field):
    args: dict[str, Any] = {"name": "s", "cron": "@daily", "task": "t"} | kwargs
    name, cron, task = args.pop("name"), args.pop("cron"), args.pop("task")
    with pytest.raises(JobwireError) as caught:
        client.schedule(name, cron, task, **args)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in caught.value.field_violations] == [field]
    assert r.keys(Keyspace(namespace).prefix + "*") == []


# DeleteSchedule / PauseSchedule / ResumeSchedule --------------------------------------------------


def test_pause_resume_unschedule_answer_whether_the_name_exists(client):
    assert client.pause_schedule("a") is False
    assert client.resume_schedule("a") is False
    assert client.unschedule("a") is False
    client.schedule("a", "@daily", "t")
    assert client.pause_schedule("a") is True
    assert client.pause_schedule("a") is True
    assert one(client, "a").paused is True
    assert client.resume_schedule("a") is True
    assert client.resume_schedule("a") is True
    assert one(client, "a").paused is False
    assert client.unschedule("a") is True
    assert client.unschedule("a") is False
    assert client.list_schedules().items == []


# ListSchedules ------------------------------------------------------------------------------------


def test_list_filters_order_and_total(client):
    for name in "abcde":
        client.schedule(name, "@daily", "t")

    def ids(offset: int = 0, limit: int = 100, **filters: Any) -> tuple[list[int], int]:
        page = client.list_schedules(offset, limit, **filters)
        return [s.id for s in page.items], page.total

    assert ids() == ([5, 4, 3, 2, 1], 5)
    assert ids(1, 2) == ([4, 3], 5)
    assert ids(before=3) == ([2, 1], 2)
    assert ids(ids=[2, 4, 77]) == ([4, 2], 2)
    assert ids(names=["a", "e", "nope"]) == ([5, 1], 2)
    assert ids(ids=[1, 2], names=["b", "c"]) == ([2], 1)
    assert ids(9, 10) == ([], 0)  # Minion's quirk: an empty page has total 0


def test_list_limit_is_checked(client):
    with pytest.raises(JobwireError) as caught:
        client.list_schedules(0, 1001)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


# DispatchSchedules --------------------------------------------------------------------------------


def test_overdue_schedule_fires_once_and_moves_on(client, make_due, r):
    sid = client.schedule("a", "*/15 * * * *", "report", [7], notes={"k": 1}, priority=3, queue="q")
    make_due(sid, redis_now(r) - 5 * 3600)  # five hours overdue: one job, no catch-up burst
    before = redis_now(r)
    [fired] = client.dispatch_schedules()
    after = redis_now(r)
    assert (fired.id, fired.name) == (sid, "a")
    assert client.dispatch_schedules() == []

    job = client.job_info(fired.job)
    assert job is not None
    assert (job.task, job.args, job.notes, job.priority, job.queue, job.state) == (
        "report", [7], {"k": 1}, 3, "q", "inactive",
    )  # fmt: skip
    s = one(client, "a")
    assert s.last_job == fired.job
    assert before - 1e-3 <= epoch(s.last_run) <= after + 1e-3
    assert epoch(s.next_run) in {next_cron_time("*/15 * * * *", t) for t in (before, after)}
    assert client.stats().enqueued_jobs == 1


def test_paused_schedules_do_not_fire(client, make_due):
    sid = client.schedule("a", "@daily", "t")
    make_due(sid, 1000.0)
    client.pause_schedule("a")
    assert client.dispatch_schedules() == []
    client.resume_schedule("a")
    assert [d.id for d in client.dispatch_schedules()] == [sid]


def test_three_brokers_racing_enqueue_exactly_one_job_per_firing(make_broker, namespace, make_due):
    # Three replicas each run the dispatcher every 10 ms, and three clients call
    # DispatchSchedules as well; 100 yearly schedules are made due at once.
    brokers = [
        make_broker(namespace=namespace, dispatch_interval=0.01, repair_interval=0)
        for _ in range(3)
    ]
    clients = [Client(b.target, namespace=namespace) for b in brokers]
    try:
        ids = [clients[0].schedule(f"s{i}", "0 0 1 1 *", "t") for i in range(100)]
        fired: list[Any] = []

        def dispatch(c: Client) -> None:
            for _ in range(5):
                fired.extend(c.dispatch_schedules())

        threads = [threading.Thread(target=dispatch, args=(c,)) for c in clients]
        for sid in ids:
            make_due(sid, 1000.0)
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(s.last_job for s in clients[0].list_schedules(limit=100).items):
                break
            time.sleep(0.02)
        time.sleep(0.1)  # let any duplicate (there must be none) land

        schedules = clients[0].list_schedules(limit=100).items
        assert sorted(s.last_job or 0 for s in schedules) == list(range(1, 101))
        stats = clients[0].stats()
        assert stats.enqueued_jobs == 100
        assert stats.inactive_jobs == 100
        assert len({d.job for d in fired}) == len(fired)
    finally:
        for c in clients:
            c.close()


# Stats --------------------------------------------------------------------------------------------


def test_stats_count_schedules_and_inactive_schedules(client):
    for name in "abc":
        client.schedule(name, "@daily", "t")
    client.pause_schedule("c")
    stats = client.stats()
    assert (stats.schedules, stats.inactive_schedules) == (2, 1)
    client.unschedule("a")
    client.resume_schedule("c")
    stats = client.stats()
    assert (stats.schedules, stats.inactive_schedules) == (2, 0)


# Scheduler component ------------------------------------------------------------------------------


class FlakyStore:
    """Stands in for Store: the first dispatch fails, later ones answer nothing."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def dispatch_schedules(self, namespace: str) -> list[Dispatched]:
        self.calls.append(namespace)
        if len(self.calls) == 1:
            raise ConnectionError("redis went away")
        return []


async def test_scheduler_logs_failures_and_carries_on(caplog):
    store = FlakyStore()
    settings = Settings(redis_url="redis://unused", dispatch_interval=0.01)
    scheduler = Scheduler(store, settings, ["a", "b"])  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="jobwire.scheduler"):
        await scheduler.start()
        for _ in range(200):
            if len(store.calls) >= 6:
                break
            await asyncio.sleep(0.01)
        await scheduler.stop()
    assert store.calls[:4] == ["a", "b", "a", "b"]
    assert "dispatching schedules of namespace a failed" in caplog.text


async def test_scheduler_with_interval_zero_does_nothing():
    store = FlakyStore()
    scheduler = Scheduler(store, Settings(dispatch_interval=0), ["a"])  # type: ignore[arg-type]
    await scheduler.start()
    await asyncio.sleep(0.05)
    await scheduler.stop()
    assert store.calls == []


async def test_scheduler_fires_due_schedules(redis, namespace):
    store = Store(redis)
    ks = Keyspace(namespace)
    sid = await store.upsert_schedule(namespace, "a", "@daily", JobSpec(task="t"))
    await redis.hset(ks.schedule(sid), "next_run", "1000.000000")
    await redis.zadd(ks.key("schedules_due"), {str(sid): 1000.0})
    scheduler = Scheduler(store, Settings(dispatch_interval=0.01), [namespace])
    assert await scheduler.run_once(namespace) == [(sid, "a", 1)]
    assert await scheduler.run_once(namespace) == []
