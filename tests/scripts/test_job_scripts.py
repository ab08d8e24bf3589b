"""Job scripts against a real Redis, through the Store: after every operation the raw keyspace of
the namespace is read back (SCAN) and every index is checked against the job hashes.

The invariants (``assert_consistent``), worked out from ``broker/scripts/lib/*.lua``:

- each job hash is in exactly one ``state:<s>`` (its own), and in ``jobs``, ``queue:<its queue>``,
  ``task:<its task>``, ``sq:<its state>:<its queue>``, ``st:<its state>:<its task>``,
  ``qt:<len(q)>:<q>:<its task>``, ``sqt:<its state>:<len(q)>:<q>:<its task>`` and ``note:<k>``
  for exactly its note keys; nothing else is in them; ``qt_jobs`` counts the jobs of each
  (queue, task) pair that holds any, ``queue_tasks:<q>`` / ``task_queues:<t>`` name exactly
  those pairs and ``live_queues`` / ``live_tasks`` exactly their queues and tasks;
- an inactive job sits in at most one of: a ready set, ``delayed``, a ``parked:<p>`` set. One that
  has not expired sits in exactly one of them (in none it could never be dequeued: a LOST job).
  An expired one may be in none, because dequeue drops expired jobs from the ready sets lazily;
- ready sets hold inactive, due jobs of their queue and task, score -priority, not parked;
  ``readytasks:<q>`` names exactly the tasks with a non-empty ready set in ``q``;
- ``delayed``, ``inactive_since`` (every inactive job) and ``expiring`` (every inactive job with
  an expiry) hold only inactive jobs, scored by ``delayed``/``delayed``/``expires``;
- a parked job's parent still blocks it, or is inactive with an expiry and in ``parent_expiry``
  (which releases its children once it expires); ``parent_expiry`` holds only parents with parked
  children;
- ``finished_at`` holds exactly the finished jobs (scored by ``finished``); ``worker_jobs:<w>``
  and ``busy_workers`` agree with the active jobs' ``worker``; ``children:<p>`` agrees with the
  children's ``parents``; no parent before a job's ``pnext`` (a byte position in its parents
  JSON text) blocks it; stats equal the direct counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from broker.keyspace import Keyspace
from broker.store import Completion, Dequeued, JobSpec, RetryOptions, Store, Subscription


async def subscribed(store: Store, namespace: str, *, worker: int, **options: Any) -> Subscription:
    """A Subscription as a real stream holds it: the worker registered and subscribed (epoch)."""
    await store.register_worker(namespace, worker, host="h", pid=1, status="{}")
    opened = await store.subscribe(namespace, worker, [])
    assert opened is not None
    return Subscription(worker=worker, epoch=opened[0], **options)


STATES = ("inactive", "active", "failed", "finished")
EPS = 1e-5

Check = Callable[[], Awaitable[None]]


@pytest.fixture
def store(redis: aioredis.Redis) -> Store:
    return Store(redis)


@pytest.fixture
def ks(namespace: str) -> Keyspace:
    return Keyspace(namespace)


@pytest.fixture
def check(redis: aioredis.Redis, namespace: str) -> Check:
    """``await check()`` asserts every invariant of the namespace's keyspace."""

    async def run() -> None:
        await assert_consistent(redis, namespace)

    return run


# Reading the keyspace ----------------------------------------------------------------------------


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def redis_now(redis: aioredis.Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1_000_000


async def read_keyspace(redis: aioredis.Redis, ks: Keyspace) -> dict[str, Any]:
    """Every key of the namespace (without its prefix) -> its decoded value: str for strings,
    dict for hashes, {member: score} for sorted sets, set for sets, list for lists."""
    out: dict[str, Any] = {}
    async for raw in redis.scan_iter(match=ks.prefix + "*", count=1000):
        key = text(raw)
        kind = text(await redis.type(key))
        value: Any
        if kind == "string":
            value = text(await redis.get(key) or b"")
        elif kind == "hash":
            value = {text(k): text(v) for k, v in (await redis.hgetall(key)).items()}
        elif kind == "zset":
            pairs: Any = await redis.zrange(key, 0, -1, withscores=True)
            value = {text(m): s for m, s in pairs}
        elif kind == "set":
            value = {text(m) for m in await redis.smembers(key)}
        elif kind == "list":
            value = [text(v) for v in await redis.lrange(key, 0, -1)]
        else:
            continue  # vanished between SCAN and TYPE
        out[key[len(ks.prefix) :]] = value
    return out


@dataclass
class Raw:
    """The namespace's keys sorted by kind."""

    jobs: dict[int, dict[str, str]] = field(default_factory=dict)
    notes: dict[int, dict[str, str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)  # by full suffix
    by_prefix: dict[str, dict[str, Any]] = field(default_factory=dict)  # "queue:" -> {q: value}
    ready: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    sqt: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)
    plain: dict[str, Any] = field(default_factory=dict)  # keys without a variable part

    def zset(self, name: str) -> dict[str, float]:
        value: dict[str, float] = self.plain.get(name, {})
        return value

    def family(self, prefix: str) -> dict[str, Any]:
        return self.by_prefix.get(prefix, {})


PLAIN = {
    "ids:job", "ids:worker", "ids:lock", "ids:schedule", "jobs", "queues", "tasks", "notekeys",
    "delayed", "expiring", "inactive_since", "finished_at", "parent_expiry", "busy_workers",
    "history", "workers", "workers_notified", "workers_streaming", "locks", "lock_ids",
    "lock_names", "kept_parents", "schedules", "schedule_names", "schedules_due", "repair_lock",
    "leases", "qt_jobs", "live_queues", "live_tasks",
}  # fmt: skip
FAMILIES = (
    "state:", "queue:", "task:", "note:", "readytasks:", "children:", "parked:", "worker_jobs:",
    "worker:", "inbox:", "lock:", "schedule:", "queue_tasks:", "task_queues:", "sq:", "st:",
)  # fmt: skip


def classify(keys: dict[str, Any]) -> Raw:
    raw = Raw()
    for key, value in keys.items():
        if key in PLAIN:
            raw.plain[key] = value
        elif key.startswith("job:"):
            raw.jobs[int(key[4:])] = value
        elif key.startswith("notes:"):
            raw.notes[int(key[6:])] = value
        elif key.startswith("ready:"):
            length, rest = key[6:].split(":", 1)
            queue, task = rest[: int(length)], rest[int(length) + 1 :]
            assert rest[int(length)] == ":", f"malformed ready key {key}"
            raw.ready[(queue, task)] = value
        elif key.startswith(("sqt:", "qt:")):
            state, rest = key.split(":", 1)[1].split(":", 1) if key[0] == "s" else ("", key[3:])
            length, rest = rest.split(":", 1)
            queue, task = rest[: int(length)], rest[int(length) + 1 :]
            assert rest[int(length)] == ":", f"malformed key {key}"
            raw.sqt[(state, queue, task)] = value
        else:
            for prefix in FAMILIES:
                if key.startswith(prefix):
                    raw.by_prefix.setdefault(prefix, {})[key[len(prefix) :]] = value
                    break
            else:
                raise AssertionError(f"unknown key {key!r}")
    return raw


def members(zset: dict[str, float]) -> set[int]:
    return {int(m) for m in zset}


async def assert_consistent(redis: aioredis.Redis, namespace: str) -> None:
    """Asserts every invariant of the module docstring on the namespace's raw keyspace."""
    ks = Keyspace(namespace)
    t0 = await redis_now(redis)
    stats = await Store(redis).stats(namespace)
    raw = classify(await read_keyspace(redis, ks))
    t1 = await redis_now(redis)
    jobs = raw.jobs

    def num(job: dict[str, str], name: str) -> float | None:
        return float(job[name]) if name in job else None

    # jobs, state:<s>, queue:<q>, task:<t>, note:<k>: exactly what the hashes say.
    assert raw.zset("jobs") == {str(i): float(i) for i in jobs}
    assert set(raw.family("state:")) <= set(STATES)
    for state in STATES:
        zset = raw.family("state:").get(state, {})
        assert all(float(m) == s for m, s in zset.items()), f"state:{state} scores"
        expected = {i for i, j in jobs.items() if j["state"] == state}
        assert members(zset) == expected, f"state:{state}"
    for prefix, name in (("queue:", "queue"), ("task:", "task")):
        values = set(raw.family(prefix)) | {j[name] for j in jobs.values()}
        for value in values:
            zset = raw.family(prefix).get(value, {})
            assert all(float(m) == s for m, s in zset.items())
            assert members(zset) == {i for i, j in jobs.items() if j[name] == value}, prefix + value
        registry = raw.plain.get(name + "s", set())
        assert {j[name] for j in jobs.values()} <= registry, f"{name}s registry"
    assert set(raw.notes) <= set(jobs), "notes of a missing job"
    note_keys = set(raw.family("note:")) | {k for n in raw.notes.values() for k in n}
    for key in note_keys:
        zset = raw.family("note:").get(key, {})
        assert members(zset) == {i for i, n in raw.notes.items() if key in n}, f"note:{key}"
    assert note_keys <= raw.plain.get("notekeys", set())

    # sqt:<s>:<q>:<t> and the registries of (queue, task) pairs.
    combos: dict[tuple[str, str, str], dict[str, float]] = {}
    by_sq: dict[str, dict[str, float]] = {}
    by_st: dict[str, dict[str, float]] = {}
    for i, j in jobs.items():
        for combo in ((j["state"], j["queue"], j["task"]), ("", j["queue"], j["task"])):
            combos.setdefault(combo, {})[str(i)] = float(i)
        by_sq.setdefault(f"{j['state']}:{j['queue']}", {})[str(i)] = float(i)
        by_st.setdefault(f"{j['state']}:{j['task']}", {})[str(i)] = float(i)
    assert raw.sqt == combos, "sqt:<s>:<q>:<t> / qt:<q>:<t>"
    assert raw.family("sq:") == by_sq, "sq:<s>:<q>"
    assert raw.family("st:") == by_st, "st:<s>:<t>"
    pair_jobs: dict[tuple[str, str], int] = {}
    for j in jobs.values():
        pair_jobs[(j["queue"], j["task"])] = pair_jobs.get((j["queue"], j["task"]), 0) + 1
    fields = {f"{len(q)}:{q}:{t}": str(n) for (q, t), n in pair_jobs.items()}
    assert raw.plain.get("qt_jobs", {}) == fields, "qt_jobs"
    queue_tasks: dict[str, set[str]] = {}
    task_queues: dict[str, set[str]] = {}
    for q, t in pair_jobs:
        queue_tasks.setdefault(q, set()).add(t)
        task_queues.setdefault(t, set()).add(q)
    assert raw.family("queue_tasks:") == queue_tasks, "queue_tasks"
    assert raw.family("task_queues:") == task_queues, "task_queues"
    assert raw.plain.get("live_queues", set()) == set(queue_tasks), "live_queues"
    assert raw.plain.get("live_tasks", set()) == set(task_queues), "live_tasks"

    # Ready sets and readytasks.
    ready_of: dict[int, tuple[str, str]] = {}
    for (queue, task), zset in raw.ready.items():
        for member, score in zset.items():
            assert member == f"{int(member):020d}", f"ready member {member!r}"
            i = int(member)
            job = jobs.get(i)
            assert job is not None, f"ready job {i} has no hash"
            assert job["state"] == "inactive", f"ready job {i} is {job['state']}"
            assert (job["queue"], job["task"]) == (queue, task), f"job {i} in the wrong ready set"
            assert score == -int(job["priority"]), f"job {i} ready score"
            assert float(job["delayed"]) <= t1, f"job {i} ready before it is due"
            assert "parked" not in job, f"job {i} both ready and parked"
            assert i not in ready_of, f"job {i} in two ready sets"
            ready_of[i] = (queue, task)
    nonempty: dict[str, set[str]] = {}
    for queue, task in raw.ready:
        nonempty.setdefault(queue, set()).add(task)
    assert raw.family("readytasks:") == nonempty, "readytasks"

    inactive = {i: j for i, j in jobs.items() if j["state"] == "inactive"}
    delayed = raw.zset("delayed")
    assert members(delayed) <= set(inactive), "delayed holds a job that is not inactive"
    for m, score in delayed.items():
        assert score == pytest.approx(float(jobs[int(m)]["delayed"]), abs=EPS), f"delayed {m}"
    since = raw.zset("inactive_since")
    assert members(since) == set(inactive), "inactive_since"
    for m, score in since.items():
        assert score == pytest.approx(float(jobs[int(m)]["delayed"]), abs=EPS)
    expiring = raw.zset("expiring")
    assert members(expiring) == {i for i, j in inactive.items() if "expires" in j}, "expiring"
    for m, score in expiring.items():
        assert score == pytest.approx(float(jobs[int(m)]["expires"]), abs=EPS)

    # Parking.
    parked_in: dict[int, int] = {}
    for parent_key, kids in raw.family("parked:").items():
        for kid_key in kids:
            k = int(kid_key)
            assert k not in parked_in, f"job {k} parked twice"
            parked_in[k] = int(parent_key)
    for i, job in jobs.items():
        if "parked" in job:
            assert job["state"] == "inactive", f"job {i} parked but {job['state']}"
            assert parked_in.get(i) == int(job["parked"]), f"job {i} parked field vs set"
    for kid, pid in parked_in.items():
        parent = pid
        assert kid in jobs and jobs[kid].get("parked") == str(parent), f"parked:{parent} {kid}"
        assert parent in json.loads(jobs[kid]["parents"]), f"job {kid} parked on a non-parent"
        p = jobs.get(parent)
        assert p is not None, f"job {kid} parked on missing parent {parent}"
        state = p["state"]
        assert state != "finished", f"job {kid} parked on finished parent {parent}"
        if state == "failed":
            assert jobs[kid]["lax"] == "0", f"lax job {kid} parked on failed parent {parent}"
        if state == "inactive" and "expires" in p:
            assert str(parent) in raw.zset("parent_expiry"), (
                f"job {kid} parked on expiring parent {parent} that parent_expiry does not watch:"
                " nothing releases it when the parent expires"
            )
    for m, score in raw.zset("parent_expiry").items():
        assert raw.family("parked:").get(m), f"parent_expiry holds {m} without parked children"
        p = jobs.get(int(m))
        if p is not None and p["state"] == "inactive":
            assert score == pytest.approx(float(p["expires"]), abs=EPS), f"parent_expiry {m}"

    # Every inactive job that may still run is in exactly one place dequeue looks.
    for i, job in inactive.items():
        places = [
            name
            for name, inside in (
                ("ready", i in ready_of),
                ("delayed", str(i) in delayed),
                ("parked", i in parked_in),
            )
            if inside
        ]
        assert len(places) <= 1, f"job {i} in {places}"
        expires = num(job, "expires")
        if not places and not (expires is not None and expires <= t1):
            raise AssertionError(f"LOST JOB {i}: inactive, not expired, in no ready/delayed/parked")

    # Finished jobs, worker slots.
    finished = {i for i, j in jobs.items() if j["state"] == "finished"}
    kept = members(raw.zset("kept_parents"))
    assert members(raw.zset("finished_at")) | (kept & finished) == finished, "finished_at"
    assert not members(raw.zset("finished_at")) & kept
    for m, score in raw.zset("finished_at").items():
        assert score == pytest.approx(float(jobs[int(m)]["finished"]), abs=EPS)
    active_by_worker: dict[str, set[int]] = {}
    for i, job in jobs.items():
        if job["state"] == "active":
            assert "started" in job and "worker" in job, f"active job {i} without worker"
            active_by_worker.setdefault(job["worker"], set()).add(i)
    worker_jobs = {w: {int(m) for m in s} for w, s in raw.family("worker_jobs:").items()}
    assert worker_jobs == active_by_worker, "worker_jobs"
    busy = {w: int(n) for w, n in raw.plain.get("busy_workers", {}).items()}
    assert busy == {w: len(s) for w, s in active_by_worker.items()}, "busy_workers"

    # Leases: every active job holds one (a positive token in its hash, an expiry in `leases`);
    # nothing else is in `leases`.
    active = {i for i, j in jobs.items() if j["state"] == "active"}
    assert members(raw.zset("leases")) == active, "leases"
    assert all(int(jobs[i]["lease"]) > 0 for i in active), "an active job without a lease"

    # children:<p> against the children's parents.
    children_of: dict[int, set[int]] = {}
    for i, job in jobs.items():
        for parent_id in json.loads(job["parents"]):
            children_of.setdefault(int(parent_id), set()).add(i)
    stored = {int(p): {int(c) for c in s} for p, s in raw.family("children:").items()}
    for pid in set(stored) | set(children_of):
        if pid in jobs:
            assert stored.get(pid, set()) == children_of.get(pid, set()), f"children:{pid}"
        else:  # a removed parent's set is deleted; its children keep listing it
            assert stored.get(pid, set()) <= children_of.get(pid, set()), f"children:{pid}"

    # pnext: every parent before it does not block (its walk found so, and only retrying or
    # creating a parent could change that, which resets the position).
    for i, job in jobs.items():
        if "pnext" not in job:
            continue
        for match in re.finditer(r"-?\d+", job["parents"]):
            if match.start() + 1 >= int(job["pnext"]):
                break
            p = jobs.get(int(match.group()))
            if p is None or p["state"] == "finished":
                continue
            blocks = p["state"] == "active" or (p["state"] == "failed" and job["lax"] == "0")
            if p["state"] == "inactive":
                blocks = "expires" not in p or float(p["expires"]) > t0
            assert not blocks, f"job {i} walked past parent {match.group()}, which blocks it"

    # Stats against direct counts (Redis' clock inside stats lies between t0 and t1).
    def between(name: str, hidden: Callable[[dict[str, str], float], bool]) -> None:
        low = sum(1 for j in inactive.values() if not hidden(j, t0))
        high = sum(1 for j in inactive.values() if not hidden(j, t1))
        lo, hi = min(low, high), max(low, high)
        assert lo <= stats[name] <= hi, f"stats {name}={stats[name]}, direct {lo}..{hi}"

    between("inactive_jobs", lambda j, t: "expires" in j and float(j["expires"]) <= t)
    between("delayed_jobs", lambda j, t: float(j["delayed"]) <= t)
    for state in ("active", "failed", "finished"):
        count = sum(1 for j in jobs.values() if j["state"] == state)
        assert stats[f"{state}_jobs"] == count, f"stats {state}_jobs"
    assert stats["enqueued_jobs"] == int(raw.plain.get("ids:job", 0))
    assert stats["active_workers"] == len(active_by_worker)
    assert stats["workers"] == len(raw.zset("workers"))
    assert stats["inactive_workers"] == stats["workers"] - stats["active_workers"]


# Helpers -----------------------------------------------------------------------------------------


async def enqueue(store: Store, ns: str, task: str = "t", **options: Any) -> int:
    (job_id,) = await store.enqueue(ns, [JobSpec(task, **options)])
    return job_id


async def dequeue(store: Store, ns: str, worker: int = 1, **options: Any) -> Dequeued | None:
    jobs, _, _ = await store.dequeue(ns, worker, **options)
    assert len(jobs) <= 1
    return jobs[0] if jobs else None


async def dequeue_id(store: Store, ns: str, worker: int = 1, **options: Any) -> int | None:
    job = await dequeue(store, ns, worker, **options)
    return None if job is None else job.id


async def finish(store: Store, ns: str, job: Dequeued, result: str = "null") -> bool:
    (ok,) = await store.complete_jobs(ns, [Completion(job.id, job.retries, False, result)])
    return ok


async def fail(store: Store, ns: str, job: Dequeued, result: str = '"boom"') -> bool:
    (ok,) = await store.complete_jobs(ns, [Completion(job.id, job.retries, True, result)])
    return ok


async def job_hash(redis: aioredis.Redis, ks: Keyspace, job_id: int) -> dict[str, str]:
    return {text(k): text(v) for k, v in (await redis.hgetall(ks.job(job_id))).items()}


async def make_due(redis: aioredis.Redis, ks: Keyspace, job_id: int) -> None:
    """Time travel for backoffs too long to wait: moves a delayed job's `delayed` to Redis' now,
    in the hash and both sorted sets that carry it, so the next dequeue promotes it."""
    now = await redis_now(redis)
    await redis.hset(ks.job(job_id), "delayed", f"{now:.6f}")
    await redis.zadd(ks.key("delayed"), {str(job_id): now}, xx=True)
    await redis.zadd(ks.key("inactive_since"), {str(job_id): now}, xx=True)


async def ready_score(redis: aioredis.Redis, ks: Keyspace, queue: str, task: str, job_id: int):
    key = ks.key(f"ready:{len(queue)}:{queue}:{task}")
    return await redis.zscore(key, f"{job_id:020d}")


async def list_ids(store: Store, ns: str, offset: int = 0, limit: int = 100, **f: Any):
    rows, total = await store.list_jobs(ns, offset, limit, **f)
    return [r.id for r in rows], total


# Enqueue -----------------------------------------------------------------------------------------


async def test_enqueue_defaults(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace, "add", args="[1,2]")
    assert job_id == 1
    await check()
    h = await job_hash(redis, ks, job_id)
    assert h["state"] == "inactive" and h["task"] == "add" and h["args"] == "[1,2]"
    assert (h["attempts"], h["priority"], h["queue"], h["lax"], h["retries"]) == (
        "1", "0", "default", "0", "0"
    )  # fmt: skip
    assert h["parents"] == "[]" and h["created"] == h["delayed"]
    assert "expires" not in h and "started" not in h and "finished" not in h
    assert await ready_score(redis, ks, "default", "add", job_id) == 0
    assert set(await read_keyspace(redis, ks)) == {
        "ids:job", "job:1", "jobs", "state:inactive", "queue:default", "task:add", "queues",
        "tasks", "inactive_since", "ready:7:default:add", "readytasks:default",
        "sqt:inactive:7:default:add", "qt_jobs", "queue_tasks:default", "task_queues:add",
        "live_queues", "live_tasks", "sq:inactive:default", "st:inactive:add", "qt:7:default:add",
    }  # fmt: skip


async def test_enqueue_options(store, redis, ks, namespace, check):
    parent = await enqueue(store, namespace)
    job_id = await enqueue(
        store, namespace, "x", attempts=3, delay=100, expire=300, lax=True,
        notes={"a": "1", "b": '{"c":2}'}, parents=[parent, 99], priority=7, queue="q",
    )  # fmt: skip
    await check()
    h = await job_hash(redis, ks, job_id)
    assert (h["attempts"], h["lax"], h["priority"], h["queue"]) == ("3", "1", "7", "q")
    assert json.loads(h["parents"]) == [parent, 99]
    assert float(h["delayed"]) == pytest.approx(float(h["created"]) + 100, abs=EPS)
    assert float(h["expires"]) == pytest.approx(float(h["created"]) + 300, abs=EPS)
    assert await redis.zscore(ks.key("delayed"), job_id) is not None
    assert await ready_score(redis, ks, "q", "x", job_id) is None
    assert await redis.smembers(ks.key(f"children:{parent}")) == {b"2"}
    assert await redis.smembers(ks.key("children:99")) == {b"2"}
    notes = await redis.hgetall(ks.key(f"notes:{job_id}"))
    assert notes == {b"a": b"1", b"b": b'{"c":2}'}
    assert await redis.zrange(ks.key("note:b"), 0, -1) == [b"2"]
    stats = await store.stats(namespace)
    assert stats["delayed_jobs"] == 1 and stats["inactive_jobs"] == 2


async def test_enqueue_batch_is_one_call_with_ids_in_order(store, redis, ks, namespace, check):
    specs = [
        JobSpec("a"), JobSpec("b", queue="q1", priority=3), JobSpec("a", delay=60),
        JobSpec("c", notes={"k": "true"}, parents=[1]),
    ]  # fmt: skip
    assert await store.enqueue(namespace, specs) == [1, 2, 3, 4]
    await check()
    assert await store.enqueue(namespace, [JobSpec("a")] * 3) == [5, 6, 7]
    await check()
    assert (await store.stats(namespace))["enqueued_jobs"] == 7
    created = {(await job_hash(redis, ks, i))["created"] for i in range(1, 5)}
    assert len(created) == 1  # one script call, one clock reading


# Dequeue -----------------------------------------------------------------------------------------


async def test_dequeue_priority_desc_then_id_asc(store, namespace, check):
    prios = [0, 5, 5, -1, 10, 0]
    for p in prios:
        await enqueue(store, namespace, priority=p)
    await check()
    order = []
    while (job := await dequeue(store, namespace)) is not None:
        order.append(job.id)
        await check()
    assert order == [5, 2, 3, 1, 6, 4]


async def test_dequeue_count_and_fields(store, namespace, check):
    await enqueue(store, namespace, "a", args='["x"]', priority=1, notes={"n": "1"})
    await enqueue(store, namespace, "b", priority=2)
    await enqueue(store, namespace, "c")
    jobs, now, next_due = await store.dequeue(namespace, 4, count=2)
    await check()
    assert [j.id for j in jobs] == [2, 1] and next_due is None and now > 0
    second = jobs[1]
    assert (second.task, second.args, second.retries, second.notes) == ("a", '["x"]', 0, {"n": "1"})


async def test_dequeue_marks_active(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace)
    job = await dequeue(store, namespace, worker=7)
    assert job is not None and job.id == job_id
    await check()
    h = await job_hash(redis, ks, job_id)
    assert h["state"] == "active" and h["worker"] == "7" and "started" in h
    assert await redis.hgetall(ks.key("busy_workers")) == {b"7": b"1"}
    assert await redis.smembers(ks.key("worker_jobs:7")) == {str(job_id).encode()}


async def test_dequeue_id_option(store, namespace, check):
    await enqueue(store, namespace, priority=9)
    low = await enqueue(store, namespace, "t2", priority=-5, queue="q")
    delayed = await enqueue(store, namespace, delay=60)
    assert await dequeue_id(store, namespace, job_id=low) is None  # not in the queues asked for
    assert await dequeue_id(store, namespace, job_id=low, queues=["q"], tasks=["other"]) is None
    assert await dequeue_id(store, namespace, job_id=low, queues=["q"], min_priority=0) is None
    assert await dequeue_id(store, namespace, job_id=delayed) is None
    assert await dequeue_id(store, namespace, job_id=99) is None
    await check()
    assert await dequeue_id(store, namespace, job_id=low, queues=["q"]) == low
    await check()
    assert await dequeue_id(store, namespace, job_id=low, queues=["q"]) is None  # active now


async def test_dequeue_min_priority(store, namespace, check):
    await enqueue(store, namespace, priority=1)
    await enqueue(store, namespace, priority=3)
    assert await dequeue_id(store, namespace, min_priority=2) == 2
    assert await dequeue_id(store, namespace, min_priority=2) is None
    await check()
    assert await dequeue_id(store, namespace, min_priority=1) == 1
    await check()


async def test_dequeue_queues_and_tasks(store, namespace, check):
    a = await enqueue(store, namespace, "a", queue="q1", priority=1)
    b = await enqueue(store, namespace, "b", queue="q2", priority=2)
    c = await enqueue(store, namespace, "c", queue="q1", priority=3)
    d = await enqueue(store, namespace, "a")
    assert await dequeue_id(store, namespace) == d
    assert await dequeue_id(store, namespace, queues=["q1"], tasks=["a", "b"]) == a
    await check()
    assert await dequeue_id(store, namespace, queues=["q1"], tasks=["b"]) is None
    assert await dequeue_id(store, namespace, queues=["q2", "q1"]) == c
    assert await dequeue_id(store, namespace, queues=["nope"]) is None
    assert await dequeue_id(store, namespace, queues=["q1", "q2"]) == b
    await check()


async def test_delayed_not_dequeued_until_due(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace, delay=0.2)
    jobs, _, next_due = await store.dequeue(namespace, 1)
    assert jobs == [] and next_due is not None
    assert (await store.stats(namespace))["delayed_jobs"] == 1
    await check()
    await asyncio.sleep(0.25)
    assert (await store.stats(namespace))["delayed_jobs"] == 0
    await check()  # due but not yet promoted: still in `delayed`, not lost
    assert await dequeue_id(store, namespace) == job_id
    await check()
    assert await redis.zcard(ks.key("delayed")) == 0


async def test_expired_never_dequeued(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace, expire=0.1)
    keep = await enqueue(store, namespace, expire=60)
    await asyncio.sleep(0.15)
    assert (await store.stats(namespace))["inactive_jobs"] == 1
    assert await dequeue_id(store, namespace, job_id=job_id) is None
    assert await dequeue_id(store, namespace) == keep
    assert await dequeue_id(store, namespace) is None
    await check()
    # Dequeue dropped it from the ready set; it waits in expiring for repair.
    assert await ready_score(redis, ks, "default", "t", job_id) is None
    assert await redis.zscore(ks.key("expiring"), job_id) is not None
    assert await list_ids(store, namespace) == ([keep], 1)


@pytest.mark.parametrize("parent_state", ["finished", "missing", "removed", "expired"])
async def test_parents_that_do_not_block(store, namespace, check, parent_state):
    if parent_state == "missing":
        parent = 1000
    elif parent_state == "expired":
        parent = await enqueue(store, namespace, "p", queue="pq", expire=0.05)
        await asyncio.sleep(0.1)
    else:
        parent = await enqueue(store, namespace, "p", queue="pq")
        if parent_state == "finished":
            job = await dequeue(store, namespace, queues=["pq"])
            assert job is not None and await finish(store, namespace, job)
        else:
            assert await store.remove_job(namespace, parent)
    child = await enqueue(store, namespace, parents=[parent])
    await check()
    assert await dequeue_id(store, namespace) == child
    await check()


@pytest.mark.parametrize("parent_state", ["inactive", "active", "failed"])
async def test_parents_that_block(store, redis, ks, namespace, check, parent_state):
    parent = await enqueue(store, namespace, "p", queue="pq")
    if parent_state != "inactive":
        job = await dequeue(store, namespace, queues=["pq"])
        assert job is not None
        if parent_state == "failed":
            assert await fail(store, namespace, job)
    strict = await enqueue(store, namespace, parents=[parent])
    lax = await enqueue(store, namespace, parents=[parent], lax=True)
    expected = lax if parent_state == "failed" else None
    assert await dequeue_id(store, namespace) == expected
    await check()
    assert await dequeue_id(store, namespace, job_id=strict) is None
    h = await job_hash(redis, ks, strict)
    assert h["parked"] == str(parent)
    parked = {strict} if parent_state == "failed" else {strict, lax}
    assert await redis.smembers(ks.key(f"parked:{parent}")) == {str(i).encode() for i in parked}


async def test_parked_released_when_parent_finishes(store, redis, ks, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq")
    kids = [await enqueue(store, namespace, parents=[parent], priority=i) for i in range(3)]
    pjob = await dequeue(store, namespace, queues=["pq"])
    assert await dequeue_id(store, namespace) is None
    assert await redis.scard(ks.key(f"parked:{parent}")) == 3
    await check()
    assert pjob is not None and await finish(store, namespace, pjob)
    await check()
    assert await redis.exists(ks.key(f"parked:{parent}")) == 0
    assert [await dequeue_id(store, namespace) for _ in range(3)] == kids[::-1]
    await check()


async def test_parked_released_when_parent_removed(store, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq")
    child = await enqueue(store, namespace, parents=[parent])
    assert await dequeue_id(store, namespace) is None
    await check()
    assert await store.remove_job(namespace, parent)
    await check()
    assert await dequeue_id(store, namespace) == child
    await check()


async def test_parked_released_when_parent_expires(store, redis, ks, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq", expire=0.2)
    child = await enqueue(store, namespace, parents=[parent])
    assert await dequeue_id(store, namespace) is None
    await check()
    assert await redis.zscore(ks.key("parent_expiry"), parent) is not None
    await asyncio.sleep(0.25)
    assert await dequeue_id(store, namespace) == child
    await check()
    assert await redis.zcard(ks.key("parent_expiry")) == 0


async def test_parked_released_when_parent_fails_lax_only(store, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq")
    strict = await enqueue(store, namespace, parents=[parent])
    lax = await enqueue(store, namespace, parents=[parent], lax=True)
    pjob = await dequeue(store, namespace, queues=["pq"])
    assert await dequeue_id(store, namespace) is None  # both parked on the active parent
    await check()
    assert pjob is not None and await fail(store, namespace, pjob)
    await check()
    assert await dequeue_id(store, namespace) == lax
    assert await dequeue_id(store, namespace) is None  # strict parked again, on the failed parent
    await check()
    assert await dequeue_id(store, namespace, job_id=strict) is None


async def test_parked_child_of_auto_retried_parent_stays_blocked(store, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq", attempts=2)
    await enqueue(store, namespace, parents=[parent], lax=True)
    pjob = await dequeue(store, namespace, queues=["pq"])
    assert await dequeue_id(store, namespace) is None
    assert pjob is not None and await fail(store, namespace, pjob)  # back to inactive, delayed
    await check()
    assert await dequeue_id(store, namespace) is None
    await check()


async def test_second_parent_blocks_after_first_finishes(store, namespace, check):
    p1 = await enqueue(store, namespace, "p", queue="pq")
    p2 = await enqueue(store, namespace, "p", queue="pq")
    child = await enqueue(store, namespace, parents=[p1, p2])
    j1 = await dequeue(store, namespace, queues=["pq"])
    assert await dequeue_id(store, namespace) is None
    assert j1 is not None and await finish(store, namespace, j1)
    await check()
    assert await dequeue_id(store, namespace) is None  # now parked on p2
    await check()
    j2 = await dequeue(store, namespace, queues=["pq"])
    assert j2 is not None and await finish(store, namespace, j2)
    assert await dequeue_id(store, namespace) == child
    await check()


# Finish and fail ---------------------------------------------------------------------------------


async def test_finish_and_fail_guards(store, redis, ks, namespace, check):
    a = await enqueue(store, namespace)
    inactive = Dequeued(a, "t", "[]", 0, "default", 0, 1, "[]", {})
    assert not await finish(store, namespace, inactive)
    assert not await fail(store, namespace, inactive)
    job = await dequeue(store, namespace)
    assert job is not None
    stale = Dequeued(job.id, "t", "[]", 1, "default", 0, 1, "[]", {})
    assert not await finish(store, namespace, stale) and not await fail(store, namespace, stale)
    missing = Dequeued(99, "t", "[]", 0, "default", 0, 1, "[]", {})
    assert not await finish(store, namespace, missing)
    await check()
    assert await finish(store, namespace, job, '{"ok":true}')
    await check()
    assert not await finish(store, namespace, job) and not await fail(store, namespace, job)
    h = await job_hash(redis, ks, a)
    assert h["state"] == "finished" and h["result"] == '{"ok":true}' and "finished" in h
    assert await redis.zscore(ks.key("finished_at"), a) == pytest.approx(float(h["finished"]))
    assert await redis.hlen(ks.key("busy_workers")) == 0


async def test_complete_jobs_batch(store, namespace, check):
    await store.enqueue(namespace, [JobSpec("t")] * 4)
    jobs, _, _ = await store.dequeue(namespace, 3, count=4)
    results = await store.complete_jobs(
        namespace,
        [Completion(jobs[0].id, 0, False, "1"), Completion(jobs[1].id, 0, True, "2"),
         Completion(jobs[2].id, 5, False, "3"), Completion(jobs[3].id, 0, False, "4"),
         Completion(jobs[3].id, 0, True, "5")],
    )  # fmt: skip
    assert results == [True, True, False, True, False]
    await check()
    stats = await store.stats(namespace)
    assert (stats["finished_jobs"], stats["failed_jobs"], stats["active_jobs"]) == (2, 1, 1)


async def test_fail_without_attempts_left_stays_failed(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace)
    job = await dequeue(store, namespace)
    assert job is not None and await fail(store, namespace, job)
    await check()
    h = await job_hash(redis, ks, job_id)
    assert h["state"] == "failed" and h["result"] == '"boom"' and h["retries"] == "0"
    assert await redis.zscore(ks.key("finished_at"), job_id) is None


async def test_auto_retry_backoff(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace, attempts=3)
    job = await dequeue(store, namespace)
    assert job is not None and await fail(store, namespace, job, '"first"')
    await check()
    h = await job_hash(redis, ks, job_id)
    assert (h["state"], h["retries"], h["attempts"]) == ("inactive", "1", "2")
    assert h["result"] == '"first"'  # the failed result stays on the retried job
    assert float(h["delayed"]) - float(h["retried"]) == pytest.approx(15, abs=EPS)
    assert await redis.zscore(ks.key("delayed"), job_id) == pytest.approx(float(h["delayed"]))
    assert "finished" in h  # not cleared by retry
    assert await dequeue_id(store, namespace) is None
    assert await dequeue_id(store, namespace, job_id=job_id) is None
    assert (await store.stats(namespace))["delayed_jobs"] == 1
    assert not await fail(store, namespace, job)  # the handle went stale

    await make_due(redis, ks, job_id)
    job = await dequeue(store, namespace)
    assert job is not None and job.retries == 1
    await check()
    assert await fail(store, namespace, job)
    await check()
    h = await job_hash(redis, ks, job_id)
    assert (h["state"], h["retries"], h["attempts"]) == ("inactive", "2", "1")
    assert float(h["delayed"]) - float(h["retried"]) == pytest.approx(16, abs=EPS)

    await make_due(redis, ks, job_id)
    job = await dequeue(store, namespace)
    assert job is not None and job.retries == 2
    assert await fail(store, namespace, job)
    await check()
    h = await job_hash(redis, ks, job_id)
    assert (h["state"], h["retries"], h["attempts"]) == ("failed", "2", "1")
    history = await store.history(namespace)
    assert history[-1][2] == 1  # only the final failure counts


# Retry -------------------------------------------------------------------------------------------


async def jobs_in_every_state(store: Store, ns: str) -> dict[str, int]:
    """One job per state, plus a delayed and a parked inactive job."""
    ids = {
        "finished": await enqueue(store, ns, priority=5),
        "failed": await enqueue(store, ns, priority=4),
        "active": await enqueue(store, ns, priority=3),
    }
    for state in ("finished", "failed", "active"):
        job = await dequeue(store, ns, worker=1)
        assert job is not None and job.id == ids[state]
        if state == "finished":
            assert await finish(store, ns, job)
        elif state == "failed":
            assert await fail(store, ns, job)
    ids["inactive"] = await enqueue(store, ns, "other", queue="idle")
    ids["delayed"] = await enqueue(store, ns, delay=100)
    ids["parked"] = await enqueue(store, ns, parents=[ids["active"]])
    assert await dequeue(store, ns) is None  # parks it
    return ids


@pytest.mark.parametrize("kind", ["finished", "failed", "active", "inactive", "delayed", "parked"])
async def test_retry_from_every_state(store, redis, ks, namespace, check, kind):
    ids = await jobs_in_every_state(store, namespace)
    await check()
    job_id = ids[kind]
    before = await job_hash(redis, ks, job_id)
    assert not await store.retry_job(namespace, job_id, 1, RetryOptions())  # stale retries
    assert not await store.retry_job(namespace, 999, 0, RetryOptions())
    assert await store.retry_job(namespace, job_id, 0, RetryOptions())
    await check()
    h = await job_hash(redis, ks, job_id)
    assert h["state"] == "inactive" and h["retries"] == "1" and "parked" not in h
    assert float(h["delayed"]) == pytest.approx(float(h["retried"]), abs=EPS)
    for kept in ("finished", "result", "started", "worker"):
        assert h.get(kept) == before.get(kept)
    if kind == "active":
        assert await redis.exists(ks.key("worker_jobs:1"), ks.key("busy_workers")) == 0
    if kind == "finished":
        assert await redis.zscore(ks.key("finished_at"), job_id) is None
    queue, task = h["queue"], h["task"]
    if kind != "parked":
        assert await ready_score(redis, ks, queue, task, job_id) == -int(h["priority"])


async def test_retry_active_parent_releases_parked_children(store, namespace, check):
    ids = await jobs_in_every_state(store, namespace)
    assert await store.retry_job(namespace, ids["active"], 0, RetryOptions(priority=-1))
    await check()
    # The parent is inactive again: it still blocks, so the child parks again.
    got = [await dequeue_id(store, namespace, worker=2) for _ in range(2)]
    await check()
    assert got == [ids["active"], None]


async def test_retry_options(store, redis, ks, namespace, check):
    p1 = await enqueue(store, namespace, "p")
    p2 = await enqueue(store, namespace, "p")
    job_id = await enqueue(store, namespace, "x", parents=[p1], notes={"n": "1"})
    await check()
    options = RetryOptions(
        attempts=4, delay=50, expire=500, lax=True, parents=[p2], priority=9, queue="q2"
    )
    assert await store.retry_job(namespace, job_id, 0, options)
    await check()
    h = await job_hash(redis, ks, job_id)
    assert (h["attempts"], h["lax"], h["priority"], h["queue"]) == ("4", "1", "9", "q2")
    assert json.loads(h["parents"]) == [p2]
    assert float(h["delayed"]) == pytest.approx(float(h["retried"]) + 50, abs=EPS)
    assert float(h["expires"]) == pytest.approx(float(h["retried"]) + 500, abs=EPS)
    assert await redis.zrange(ks.key("queue:default"), 0, -1) == [b"1", b"2"]
    assert await redis.zrange(ks.key("queue:q2"), 0, -1) == [str(job_id).encode()]
    assert await redis.exists(ks.key(f"children:{p1}")) == 0
    assert await redis.smembers(ks.key(f"children:{p2}")) == {str(job_id).encode()}
    assert await redis.zscore(ks.key("delayed"), job_id) is not None
    assert await redis.smembers(ks.key("readytasks:default")) == {b"p"}

    # Undelayed now: lands in the new queue's ready set with the new priority.
    assert await store.retry_job(namespace, job_id, 1, RetryOptions(lax=False, priority=2))
    await check()
    h = await job_hash(redis, ks, job_id)
    assert (h["lax"], h["priority"], h["attempts"], h["queue"]) == ("0", "2", "4", "q2")
    assert await ready_score(redis, ks, "q2", "x", job_id) == -2
    assert await redis.smembers(ks.key("readytasks:q2")) == {b"x"}
    assert await dequeue_id(store, namespace, queues=["q2"]) is None  # p2 inactive blocks
    await check()
    assert await store.retry_job(namespace, job_id, 2, RetryOptions(parents=[]))
    await check()
    assert await dequeue_id(store, namespace, queues=["q2"]) == job_id
    await check()


async def test_retry_expired_job_keeps_expiry_unless_given(store, namespace, check):
    job_id = await enqueue(store, namespace, expire=0.05)
    await asyncio.sleep(0.1)
    assert await store.retry_job(namespace, job_id, 0, RetryOptions())
    await check()
    assert await dequeue_id(store, namespace) is None
    assert await store.retry_job(namespace, job_id, 1, RetryOptions(expire=60))
    await check()
    assert await dequeue_id(store, namespace) == job_id
    await check()


# Remove ------------------------------------------------------------------------------------------


async def test_remove_job(store, redis, ks, namespace, check):
    ids = await jobs_in_every_state(store, namespace)
    await store.note_job(namespace, ids["failed"], {"k": '"v"'})
    assert not await store.remove_job(namespace, ids["active"])
    assert not await store.remove_job(namespace, 999)
    await check()
    for kind in ("finished", "failed", "inactive", "delayed", "parked"):
        assert await store.remove_job(namespace, ids[kind]), kind
        await check()
        assert not await store.remove_job(namespace, ids[kind])
    left = {k for k in await read_keyspace(redis, ks) if k.split(":")[0] in ("job", "notes")}
    assert left == {f"job:{ids['active']}"}
    assert await redis.exists(ks.key("note:k")) == 0
    assert (await store.stats(namespace))["enqueued_jobs"] == 6


async def test_remove_leaves_nothing_but_registries(store, redis, ks, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq")
    child = await enqueue(store, namespace, "c", parents=[parent], notes={"a": "1"}, expire=60)
    delayed = await enqueue(store, namespace, "d", delay=60)
    assert await dequeue_id(store, namespace, queues=["default"]) is None  # parks the child
    for job_id in (child, parent, delayed):
        assert await store.remove_job(namespace, job_id)
        await check()
    assert set(await read_keyspace(redis, ks)) == {
        "ids:job", "queues", "tasks", "notekeys"
    }  # fmt: skip


# Notes -------------------------------------------------------------------------------------------


async def test_note_merge_null_removes_and_index(store, redis, ks, namespace, check):
    job_id = await enqueue(store, namespace, notes={"a": "1", "b": "2"})
    assert await store.note_job(namespace, job_id, {"b": '{"x":[1]}', "c": "true"})
    await check()
    notes = await redis.hgetall(ks.key(f"notes:{job_id}"))
    assert notes == {b"a": b"1", b"b": b'{"x":[1]}', b"c": b"true"}
    assert await store.note_job(namespace, job_id, {"a": None, "zz": None})
    await check()
    assert await redis.exists(ks.key("note:a")) == 0
    assert await list_ids(store, namespace, notes=["c"]) == ([job_id], 1)
    assert await list_ids(store, namespace, notes=["a"]) == ([], 0)
    assert not await store.note_job(namespace, 99, {"a": "1"})
    await check()
    assert await redis.exists(ks.key("notes:99"), ks.key("job:99")) == 0


async def test_note_works_in_every_state(store, namespace, check):
    ids = await jobs_in_every_state(store, namespace)
    for job_id in ids.values():
        assert await store.note_job(namespace, job_id, {"s": "1"})
    await check()
    assert (await list_ids(store, namespace, notes=["s"]))[1] == 6


# list_jobs ---------------------------------------------------------------------------------------


async def test_list_jobs_filters(store, namespace, check):
    await store.enqueue(
        namespace,
        [
            JobSpec("a", queue="q1", notes={"x": "1"}),  # 1
            JobSpec("b", queue="q1"),  # 2
            JobSpec("a", queue="q2", notes={"y": "1"}),  # 3
            JobSpec("c", queue="q2", parents=[1], notes={"x": "2", "y": "2"}),  # 4
            JobSpec("a"),  # 5
        ],
    )
    job = await dequeue(store, namespace, queues=["q2"])  # 3 active
    assert job is not None and job.id == 3
    await check()
    ids, total = await list_ids(store, namespace)
    assert (ids, total) == ([5, 4, 3, 2, 1], 5)
    assert await list_ids(store, namespace, states=["active"]) == ([3], 1)
    assert await list_ids(store, namespace, states=["inactive", "failed"]) == ([5, 4, 2, 1], 4)
    assert await list_ids(store, namespace, queues=["q1"]) == ([2, 1], 2)
    assert await list_ids(store, namespace, queues=["q1", "default"]) == ([5, 2, 1], 3)
    assert await list_ids(store, namespace, tasks=["a"]) == ([5, 3, 1], 3)
    assert await list_ids(store, namespace, notes=["x"]) == ([4, 1], 2)
    assert await list_ids(store, namespace, notes=["x", "y"]) == ([4, 3, 1], 3)
    assert await list_ids(store, namespace, ids=[1, 3, 3, 99]) == ([3, 1], 2)
    assert await list_ids(store, namespace, before=3) == ([2, 1], 2)
    assert await list_ids(store, namespace, tasks=["a"], queues=["q2"]) == ([3], 1)
    assert await list_ids(store, namespace, tasks=["a"], states=["inactive"]) == ([5, 1], 2)
    assert await list_ids(store, namespace, notes=["y"], states=["inactive"]) == ([4], 1)
    assert await list_ids(store, namespace, ids=[1, 2, 5], tasks=["a"], before=5) == ([1], 1)
    assert await list_ids(store, namespace, queues=["q1"], tasks=["c"]) == ([], 0)
    assert await list_ids(store, namespace, queues=["q1", "q2"], before=4, tasks=["a", "b"]) == (
        [3, 2, 1], 3
    )  # fmt: skip
    rows, _ = await store.list_jobs(namespace, 0, 10, ids=[1])
    assert rows[0].children == [4] and rows[0].notes == {"x": "1"}
    assert await store.get_job(namespace, 99) is None


async def test_list_jobs_offset_limit_and_empty_page_quirk(store, namespace, check):
    specs = [JobSpec("a", queue="q" if i % 2 else "default") for i in range(7)]
    await store.enqueue(namespace, specs)
    assert await list_ids(store, namespace, 2, 3) == ([5, 4, 3], 7)
    assert await list_ids(store, namespace, 6, 3) == ([1], 7)
    assert await list_ids(store, namespace, 7, 3) == ([], 0)  # Minion's quirk
    assert await list_ids(store, namespace, 1, 2, queues=["q"]) == ([4, 2], 3)
    assert await list_ids(store, namespace, 3, 2, queues=["q"]) == ([], 0)
    assert await list_ids(store, namespace, 1, 1, tasks=["a"], queues=["q"]) == ([4], 3)
    assert await list_ids(store, namespace, 5, 1, tasks=["a"], queues=["q"]) == ([], 0)
    assert await list_ids(store, namespace, 1, 1, ids=[1, 2, 3]) == ([2], 3)
    assert await list_ids(store, namespace, 3, 1, ids=[1, 2, 3]) == ([], 0)
    assert await list_ids(store, namespace, 0, 0) == ([], 0)
    await check()


async def test_list_jobs_hides_expired_inactive_jobs_from_page_and_total(store, namespace, check):
    await enqueue(store, namespace, "a")  # 1
    await enqueue(store, namespace, "a", expire=0.05)  # 2
    await enqueue(store, namespace, "b", expire=0.05, queue="q")  # 3
    active = await enqueue(store, namespace, "a", expire=0.05, priority=9)  # 4, dequeued
    assert await dequeue_id(store, namespace) == active
    await enqueue(store, namespace, "a", expire=60)  # 5
    await asyncio.sleep(0.1)
    assert await list_ids(store, namespace) == ([5, 4, 1], 3)
    assert await list_ids(store, namespace, 1, 1) == ([4], 3)
    assert await list_ids(store, namespace, tasks=["a"]) == ([5, 4, 1], 3)
    assert await list_ids(store, namespace, queues=["q"]) == ([], 0)
    assert await list_ids(store, namespace, states=["inactive"]) == ([5, 1], 2)
    assert await list_ids(store, namespace, states=["inactive"], tasks=["a"]) == ([5, 1], 2)
    assert await list_ids(store, namespace, before=4) == ([1], 1)
    assert await list_ids(store, namespace, ids=[2, 3]) == ([], 0)
    assert await store.get_job(namespace, 2) is None
    stats = await store.stats(namespace)
    assert (stats["inactive_jobs"], stats["active_jobs"]) == (2, 1)
    await check()


# Stats and history -------------------------------------------------------------------------------


async def test_stats(store, namespace, check):
    empty = await store.stats(namespace)
    assert all(empty[k] == 0 for k in empty if k != "uptime")
    ids = await jobs_in_every_state(store, namespace)
    await enqueue(store, namespace, expire=0.5)
    await enqueue(store, namespace, delay=0.5)
    job = await dequeue(store, namespace, worker=2, queues=["idle"])
    assert job is not None and job.id == ids["inactive"]
    await check()
    stats = await store.stats(namespace)
    assert (stats["active_jobs"], stats["failed_jobs"], stats["finished_jobs"]) == (2, 1, 1)
    assert (stats["inactive_jobs"], stats["delayed_jobs"]) == (4, 2)
    assert (stats["active_workers"], stats["enqueued_jobs"]) == (2, 8)
    await asyncio.sleep(0.55)
    stats = await store.stats(namespace)
    assert (stats["inactive_jobs"], stats["delayed_jobs"]) == (3, 1)
    await check()


async def test_history_buckets(store, namespace, check):
    for outcome in (True, True, False):
        await enqueue(store, namespace)
        job = await dequeue(store, namespace)
        assert job is not None
        assert await (fail if outcome else finish)(store, namespace, job)
    await check()
    buckets = await store.history(namespace)
    assert len(buckets) == 24
    epochs = [b[0] for b in buckets]
    assert all(b - a == pytest.approx(3600) for a, b in zip(epochs, epochs[1:], strict=False))
    assert buckets[-1][1:] == (1, 2)
    assert all(b[1:] == (0, 0) for b in buckets[:-1])


async def test_history_counts_jobs_by_their_current_state(store, redis, ks, namespace, check):
    """As Minion recomputes it: a job retried or removed after it ended leaves its hour; a failure
    that was retried automatically never counted; a stuck job counts where its last `finished`
    puts it."""

    async def ended() -> tuple[int, int]:
        last = (await store.history(namespace))[-1]
        return last[1], last[2]

    done = []
    for _ in range(3):
        await enqueue(store, namespace)
        job = await dequeue(store, namespace)
        assert job is not None and await finish(store, namespace, job)
        done.append(job)
    await enqueue(store, namespace, attempts=2)  # fails once, retried automatically
    job = await dequeue(store, namespace)
    assert job is not None and await fail(store, namespace, job)
    await enqueue(store, namespace)
    job = await dequeue(store, namespace)
    assert job is not None and await fail(store, namespace, job)
    failed = job
    assert await ended() == (3, 1)
    assert await store.retry_job(namespace, done[0].id, done[0].retries, RetryOptions())
    assert await store.remove_job(namespace, done[1].id)
    assert await store.remove_job(namespace, failed.id)
    assert await ended() == (1, 0)
    await check()
    # The retried job, inactive for too long, fails as stuck: it counts as failed again in the
    # hour of the `finished` its first attempt left.
    await redis.hset(ks.job(done[0].id), "delayed", "0")
    await redis.zadd(ks.key("inactive_since"), {str(done[0].id): 0})
    counts = await store.repair(namespace, 3600.0, 3600.0, 60.0)
    assert counts.stuck_jobs == 1
    assert await ended() == (1, 1)
    assert await store.remove_job(namespace, done[0].id)
    assert await ended() == (1, 0)


# Reset -------------------------------------------------------------------------------------------


async def populate(store: Store, ns: str) -> None:
    """Something in every job index, plus a worker, a lock and a schedule."""
    ids = await jobs_in_every_state(store, ns)
    await store.note_job(ns, ids["inactive"], {"n": "1"})
    await enqueue(store, ns, parents=[ids["delayed"]], expire=60)
    await enqueue(store, ns, expire=60, parents=[500])
    wid = (await store.register_worker(ns, None, host="h", pid=1, status="{}")).id
    await store.broadcast(ns, "stop")
    await store.acquire_lock(ns, "L", 60)
    await store.upsert_schedule(ns, "s", "* * * * *", JobSpec("t"))
    job = await dequeue(store, ns, worker=wid)
    assert job is not None


async def test_reset_runs_in_bounded_consistent_steps(store, redis, ks, namespace, check):
    """Each step deletes at most `batch` whole items; between steps every invariant holds, and a
    job enqueued mid-reset is deleted too rather than sharing an id with an older job."""
    await populate(store, namespace)
    await store.enqueue(namespace, [JobSpec("t", notes={"k": "1"}) for _ in range(10)])
    for i in range(3):
        await store.acquire_lock(namespace, f"L{i}", 60)
    steps = 0
    while await store._run("reset", namespace, ["all", 3]):
        steps += 1
        await check()
        if steps == 2:
            await enqueue(store, namespace)
    assert steps >= 6
    assert await read_keyspace(redis, ks) == {}
    assert await enqueue(store, namespace) == 1
    await check()


async def test_reset_all_leaves_nothing_and_restarts_ids(store, redis, ks, namespace, check):
    await populate(store, namespace)
    other = Keyspace("other")
    await store.enqueue("other", [JobSpec("t")])
    await check()
    await store.reset(namespace, all=True)
    assert await read_keyspace(redis, ks) == {}
    assert await redis.exists(other.job(1)) == 1
    await check()
    assert await enqueue(store, namespace) == 1
    assert (await store.register_worker(namespace, None, host="h", pid=1, status="{}")).id == 1
    await check()


@pytest.mark.parametrize("leftover", ["workers_streaming", "kept_parents"])
async def test_reset_all_after_streams_and_repair_leaves_nothing(
    store, redis, ks, namespace, leftover
):
    if leftover == "workers_streaming":
        wid = (await store.register_worker(namespace, None, host="h", pid=1, status="{}")).id
        assert await store.subscribe(namespace, wid, []) is not None
    else:  # a finished parent older than remove_after whose child has not finished is kept
        parent = await enqueue(store, namespace, "p", queue="pq")
        await enqueue(store, namespace, parents=[parent])
        job = await dequeue(store, namespace, queues=["pq"])
        assert job is not None and await finish(store, namespace, job)
        await asyncio.sleep(0.05)
        await store.repair(namespace, 1800, 0.01, 172800)
    assert leftover in await read_keyspace(redis, ks)
    await store.reset(namespace, all=True)
    assert await read_keyspace(redis, ks) == {}


async def test_reset_locks_only(store, redis, ks, namespace, check):
    await populate(store, namespace)
    before = await read_keyspace(redis, ks)
    await store.reset(namespace, locks=True)
    after = await read_keyspace(redis, ks)
    lock_keys = {"locks", "lock_ids", "lock_names", "lock:L"}
    assert lock_keys <= set(before)
    assert set(after) == set(before) - lock_keys
    assert all(after[k] == before[k] for k in after if k != "history")
    await check()
    await store.reset(namespace)  # neither: nothing
    assert await read_keyspace(redis, ks) == after


# Streams: dispatch_jobs and undeliver_jobs -------------------------------------------------------


async def test_dispatch_round_robin_best_first(store, namespace, check):
    await store.enqueue(namespace, [JobSpec("t", priority=p) for p in (1, 4, 3, 2, 0)])
    subs = [
        await subscribed(store, namespace, worker=1, concurrency=2),
        await subscribed(store, namespace, worker=2, concurrency=2),
    ]
    jobs, _, next_due = await store.dispatch_jobs(namespace, subs, 100)
    await check()
    assert [[j.id for j in js] for js in jobs] == [[2, 4], [3, 1]] and next_due is None
    jobs, _, _ = await store.dispatch_jobs(namespace, subs, 100)
    assert jobs == [[], []]  # both full


async def test_dispatch_budget_concurrency_and_running_jobs(store, namespace, check):
    await store.enqueue(namespace, [JobSpec("t")] * 10)
    assert await dequeue_id(store, namespace, worker=1) == 1  # one slot of worker 1 taken
    subs = [
        await subscribed(store, namespace, worker=1, concurrency=3),
        await subscribed(store, namespace, worker=2, concurrency=5),
    ]
    jobs, _, _ = await store.dispatch_jobs(namespace, subs, 3)
    assert [[j.id for j in js] for js in jobs] == [[2, 4], [3]]
    await check()
    jobs, _, _ = await store.dispatch_jobs(namespace, subs, 100)
    assert [[j.id for j in js] for js in jobs] == [[], [5, 6, 7, 8]]
    await check()


async def test_dispatch_task_limits_queues_and_min_priority(store, namespace, check):
    await store.enqueue(
        namespace,
        [JobSpec("a", priority=5), JobSpec("a", priority=5), JobSpec("b"), JobSpec("c", queue="q"),
         JobSpec("a", priority=-1, queue="q")],
    )  # fmt: skip
    sub = await subscribed(
        store, namespace, worker=1, concurrency=10, queues=["default", "q"], limits={"a": 1}
    )
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 100)
    assert [j.id for j in jobs[0]] == [1, 3, 4]
    await check()
    sub2 = await subscribed(
        store, namespace, worker=2, concurrency=10, queues=["q"], tasks=["a"], min_priority=0
    )
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub2], 100)
    assert jobs == [[]]
    sub2 = await subscribed(
        store, namespace, worker=2, concurrency=10, queues=["q", "default"], tasks=["a"]
    )
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub2], 100)
    assert [j.id for j in jobs[0]] == [2, 5]
    await check()


async def test_dispatch_spare_slots_only_for_high_priority(store, namespace, check):
    await store.enqueue(namespace, [JobSpec("t", priority=p) for p in (0, 0, 10, 0)])
    sub = await subscribed(store, namespace, worker=1, concurrency=1, spare=2, spare_min_priority=5)
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 100)
    assert [j.id for j in jobs[0]] == [3]  # the normal slot takes the best job
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 100)
    assert jobs == [[]]  # spare slots only for priority >= 5
    await enqueue(store, namespace, priority=6)
    await enqueue(store, namespace, priority=7)
    await enqueue(store, namespace, priority=8)
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 100)
    assert [j.id for j in jobs[0]] == [7, 6]  # two spare slots
    await check()


async def test_undeliver_jobs(store, redis, ks, namespace, check):
    await store.enqueue(namespace, [JobSpec("t", priority=1), JobSpec("t", expire=60)])
    sub = await subscribed(store, namespace, worker=3, concurrency=5)
    await store.register_worker(namespace, 4, host="h", pid=1, status="{}")
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 10)
    first, second = jobs[0]
    await check()
    assert await store.undeliver_jobs(namespace, 4, 0, [first]) == 0  # wrong worker
    other_lease = dataclasses.replace(first, lease=first.lease + 1)
    assert await store.undeliver_jobs(namespace, 3, sub.epoch, [other_lease]) == 0  # lease
    assert await store.undeliver_jobs(namespace, 3, sub.epoch, [first, second]) == 2
    await check()
    for job in (first, second):
        h = await job_hash(redis, ks, job.id)
        assert h["state"] == "inactive" and h["retries"] == "0"
    assert await redis.exists(ks.key("worker_jobs:3"), ks.key("busy_workers")) == 0
    assert await store.undeliver_jobs(namespace, 3, sub.epoch, [first]) == 0  # inactive
    assert await dequeue_id(store, namespace, worker=5) == first.id
    assert await dequeue_id(store, namespace, worker=5) == second.id
    await check()


async def test_a_stale_stream_neither_gets_jobs_nor_hands_them_back(
    store, redis, ks, namespace, check
):
    """After the worker re-subscribed (on any replica) and got its jobs again, the old stream's
    replica must not return those jobs to inactive (another worker would run them too)."""
    await store.enqueue(namespace, [JobSpec("t"), JobSpec("t")])
    old = await subscribed(store, namespace, worker=3, concurrency=1)
    jobs, _, _ = await store.dispatch_jobs(namespace, [old], 10)
    (job,) = jobs[0]
    opened = await store.subscribe(namespace, 3, [])  # reconnects, not running `job`
    assert opened is not None
    new_epoch, _, redelivered = opened
    assert [j.id for j in redelivered] == [job.id]
    assert await store.undeliver_jobs(namespace, 3, old.epoch, [job]) == 0
    assert (await job_hash(redis, ks, job.id))["state"] == "active"
    stale, _, _ = await store.dispatch_jobs(namespace, [old], 10)
    assert stale == [None]  # the broker ends such a stream
    fresh = Subscription(worker=3, epoch=new_epoch, concurrency=2)
    jobs, _, _ = await store.dispatch_jobs(namespace, [fresh], 10)
    assert len(jobs[0]) == 1
    await check()


# Bugs these invariants found (fixed in the scripts; kept as regression tests) -------------------


async def test_undelivered_expiring_parent_releases_children_when_it_expires(
    store, namespace, check
):
    parent = await enqueue(store, namespace, "p", queue="pq", expire=0.3)
    child = await enqueue(store, namespace, parents=[parent])
    sub = await subscribed(store, namespace, worker=1, concurrency=1, queues=["pq"])
    jobs, _, _ = await store.dispatch_jobs(namespace, [sub], 1)
    assert [j.id for j in jobs[0]] == [parent]
    assert await dequeue_id(store, namespace) is None  # child parked on the active parent
    assert await store.undeliver_jobs(namespace, 1, sub.epoch, jobs[0]) == 1
    await asyncio.sleep(0.35)  # the parent expires: Minion's child is runnable now
    assert await dequeue_id(store, namespace) == child
    await check()


async def test_stale_parent_expiry_entries_do_not_starve_expired_parents(
    store, redis, ks, namespace
):
    stale = 101
    # Expiries long enough that a loaded machine still parks every child before they pass.
    parents = await store.enqueue(namespace, [JobSpec("p", queue="pq", expire=1.0)] * stale)
    kids = await store.enqueue(namespace, [JobSpec("c", parents=[p]) for p in parents])
    assert await dequeue_id(store, namespace) is None  # parks every child
    for kid in kids:
        assert await store.remove_job(namespace, kid)
    real_parent = await enqueue(store, namespace, "p", queue="pq", expire=1.2)
    child = await enqueue(store, namespace, parents=[real_parent])
    assert await dequeue_id(store, namespace) is None
    await asyncio.sleep(1.25)  # every parent expired
    assert await dequeue_id(store, namespace) == child
    assert await redis.zcard(ks.key("parent_expiry")) == 0


async def test_removing_parked_child_drops_parent_expiry_entry(store, namespace, check):
    parent = await enqueue(store, namespace, "p", queue="pq", expire=60)
    child = await enqueue(store, namespace, parents=[parent])
    assert await dequeue_id(store, namespace) is None
    await check()
    assert await store.remove_job(namespace, child)
    await check()


async def test_dequeue_with_many_tasks_looks_only_at_ready_ones(store, redis, namespace, check):
    """A worker registering hundreds of tasks costs calls for the tasks with ready jobs only."""
    many = [f"t{i}" for i in range(200)]
    await enqueue(store, namespace, "t7", priority=1)
    await enqueue(store, namespace, "t150", priority=2)
    await enqueue(store, namespace, "other", priority=3)
    for i in range(30):  # more ready tasks than asked for: the other branch
        await enqueue(store, namespace, f"x{i}")
    calls_before = await zrange_calls(redis)
    assert await dequeue_id(store, namespace, tasks=many) == 2
    assert await zrange_calls(redis) - calls_before < 20
    assert await dequeue_id(store, namespace, tasks=["t7", "nope"]) == 1
    assert await dequeue_id(store, namespace, tasks=many) is None
    assert await dequeue_id(store, namespace) == 3
    await check()


async def zrange_calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_zrange", {}).get("calls", 0))


# Parent walks (pnext) ----------------------------------------------------------------------------


async def test_child_with_many_parents_examines_each_parent_once(
    store, redis, ks, namespace, check
):
    """Each release resumes the walk where it stopped: the position only moves forward."""
    parents = await store.enqueue(namespace, [JobSpec("p", queue="pq")] * 30)
    child = await enqueue(store, namespace, parents=parents)
    text_parents = (await job_hash(redis, ks, child))["parents"]
    positions = []
    for i, parent in enumerate(parents):
        assert await dequeue_id(store, namespace) is None  # parked on the next parent
        h = await job_hash(redis, ks, child)
        assert h["parked"] == str(parent)
        positions.append(int(h.get("pnext", 1)))
        assert text_parents[positions[-1] - 1 :].startswith(str(parent))
        job = await dequeue(store, namespace, queues=["pq"], job_id=parent)
        assert job is not None and await finish(store, namespace, job)
        if i % 10 == 0:
            await check()
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert await dequeue_id(store, namespace) == child
    await check()


@pytest.mark.parametrize("how", ["finished", "failed_lax", "expired"])
async def test_parent_retried_into_blocking_blocks_again(store, namespace, check, how):
    """Minion looks at every parent on every dequeue: a parent the walk passed because it did not
    block blocks again once retried."""
    expire = 0.05 if how == "expired" else None
    first = await enqueue(store, namespace, "p", queue="pq", expire=expire)
    if how != "expired":
        job = await dequeue(store, namespace, queues=["pq"])
        assert job is not None
        assert await (finish if how == "finished" else fail)(store, namespace, job)
    else:
        await asyncio.sleep(0.1)
    second = await enqueue(store, namespace, "p", queue="pq")
    child = await enqueue(store, namespace, parents=[first, second], lax=how == "failed_lax")
    assert await dequeue_id(store, namespace) is None  # walked past `first`, parked on `second`
    await check()
    options = RetryOptions(expire=60) if how == "expired" else RetryOptions()
    assert await store.retry_job(namespace, first, 0, options)
    await check()
    job = await dequeue(store, namespace, queues=["pq"], job_id=second)
    assert job is not None and await finish(store, namespace, job)
    assert await dequeue_id(store, namespace) is None  # `first` is inactive again: blocks
    await check()
    job = await dequeue(store, namespace, queues=["pq"], job_id=first)
    assert job is not None and await finish(store, namespace, job)
    assert await dequeue_id(store, namespace) == child
    await check()


async def test_parent_created_after_its_child_blocks_it(store, namespace, check):
    """A missing parent does not block, but once a job with that id exists it does."""
    blocker = await enqueue(store, namespace, "p", queue="pq")  # 1
    future = blocker + 2
    child = await enqueue(store, namespace, parents=[future, blocker])  # 2
    assert await dequeue_id(store, namespace) is None  # past the missing parent, parked on 1
    assert await enqueue(store, namespace, "p", queue="pq") == future
    await check()
    job = await dequeue(store, namespace, queues=["pq"], job_id=blocker)
    assert job is not None and await finish(store, namespace, job)
    assert await dequeue_id(store, namespace) is None  # the new parent blocks
    job = await dequeue(store, namespace, queues=["pq"], job_id=future)
    assert job is not None and await finish(store, namespace, job)
    assert await dequeue_id(store, namespace) == child
    await check()


async def test_new_parents_on_retry_start_the_walk_over(store, redis, ks, namespace, check):
    done = await enqueue(store, namespace, "p", queue="pq")
    job = await dequeue(store, namespace, queues=["pq"])
    assert job is not None and await finish(store, namespace, job)
    child = await enqueue(store, namespace, parents=[done])
    cjob = await dequeue(store, namespace)
    assert cjob is not None and cjob.id == child
    assert "pnext" in await job_hash(redis, ks, child)
    blocker = await enqueue(store, namespace, "p", queue="pq")
    assert await store.retry_job(namespace, child, 0, RetryOptions(parents=[blocker, done]))
    assert "pnext" not in await job_hash(redis, ks, child)
    assert await dequeue_id(store, namespace) is None
    await check()


# list_jobs against a model -----------------------------------------------------------------------


Model = list[tuple[int, str, str, str, set[str]]]


async def fill_for_model(store: Store, ns: str, n: int, seed: int) -> list[str]:
    """n random jobs in every state, queue, task and note mix, some expired (hidden); the
    queues used."""
    import random

    rng = random.Random(seed)
    queues, tasks, notes = ["q1", "q2", "a:b", "default"], ["t1", "t2", "x:y"], ["n1", "n2", "n3"]
    specs = [
        JobSpec(
            rng.choice(tasks),
            queue=rng.choice(queues),
            notes={k: "1" for k in notes if rng.random() < 0.3},
            expire=0.05 if rng.random() < 0.15 else None,
            priority=rng.randint(0, 3),
        )
        for _ in range(n)
    ]
    for i in range(0, n, 1000):
        await store.enqueue(ns, specs[i : i + 1000])
    taken, _, _ = await store.dequeue(ns, 1, count=n * 4 // 10, queues=queues)
    done = [Completion(j.id, j.retries, k % 3 == 1, '"boom"') for k, j in enumerate(taken)]
    await store.complete_jobs(ns, [c for k, c in enumerate(done) if k % 3 != 2])
    for job in taken[:12]:  # some retried into another queue
        assert await store.retry_job(ns, job.id, job.retries, RetryOptions(queue="q2"))
    await asyncio.sleep(0.1)  # the expiring inactive jobs expire
    return queues


async def read_model(redis: aioredis.Redis, ks: Keyspace, n: int) -> Model:
    """(id, state, queue, task, note keys) of every visible job, id descending."""
    now = await redis_now(redis)
    model = []
    for job_id in range(1, n + 1):
        h = await job_hash(redis, ks, job_id)
        note_keys = {text(k) for k in await redis.hkeys(ks.key(f"notes:{job_id}"))}
        hidden = h["state"] == "inactive" and "expires" in h and float(h["expires"]) <= now
        if not hidden:
            model.append((job_id, h["state"], h["queue"], h["task"], note_keys))
    model.sort(reverse=True)
    assert len(model) < n  # some are hidden
    return model


def model_page(model: Model, offset: int, limit: int, f: dict[str, Any]) -> tuple[list[int], int]:
    expected = [
        i
        for i, state, queue, task, keys in model
        if (not f.get("states") or state in f["states"])
        and (not f.get("queues") or queue in f["queues"])
        and (not f.get("tasks") or task in f["tasks"])
        and (not f.get("notes") or keys & set(f["notes"]))
        and ("before" not in f or i < f["before"])
    ]
    page = expected[offset : offset + limit]
    return page, len(expected) if page else 0


def random_filters(rng: Any, queues: list[str]) -> dict[str, Any]:
    def pick(values: list[str]) -> list[str]:
        return rng.sample(values, rng.randint(0, len(values))) if rng.random() < 0.6 else []

    f: dict[str, Any] = {
        "states": pick(list(STATES)), "queues": pick(queues + ["none"]),
        "tasks": pick(["t1", "t2", "x:y"]),
        "notes": pick(["n1", "n2", "n3"]) if rng.random() < 0.4 else [],
    }  # fmt: skip
    if rng.random() < 0.2:
        f["before"] = rng.randint(1, 170)
    return f


async def test_list_jobs_matches_a_model_for_every_filter_mix(store, redis, ks, namespace, check):
    """Many requests compared with the answer computed from the job hashes: same ids, order and
    total, whatever the filters, offset and limit."""
    import random

    queues = await fill_for_model(store, namespace, 160, seed=7)
    await check()
    model = await read_model(redis, ks, 160)
    rng = random.Random(7)
    for _ in range(250):
        f = random_filters(rng, queues)
        offset, limit = rng.choice([0, 0, 1, 5, 30, 100, 200]), rng.choice([1, 3, 10, 100])
        want = model_page(model, offset, limit, f)
        assert await list_ids(store, namespace, offset, limit, **f) == want, (offset, limit, f)
    # Repeated filter values count once.
    assert await list_ids(store, namespace, 0, 1000, states=["failed", "failed"]) == (
        await list_ids(store, namespace, 0, 1000, states=["failed"])
    )


async def test_list_jobs_deep_pages_match_the_model(store, redis, ks, namespace):
    """Enough jobs that the id search runs several rounds before it reads a window."""
    import random

    n = 6000
    queues = await fill_for_model(store, namespace, n, seed=11)
    model = await read_model(redis, ks, n)
    rng = random.Random(11)
    for _ in range(40):
        f = {k: v for k, v in random_filters(rng, queues).items() if k != "notes"}
        if "before" in f:
            f["before"] = rng.randint(1, n + 10)
        offset, limit = rng.randint(0, n), rng.choice([1, 10, 100, 1000])
        want = model_page(model, offset, limit, f)
        assert await list_ids(store, namespace, offset, limit, **f) == want, (offset, limit, f)
    for offset in (0, 999, 2500, len(model) - 1, len(model)):
        assert await list_ids(store, namespace, offset, 1000) == model_page(model, offset, 1000, {})


async def test_list_jobs_notes_with_broad_filters_is_refused(store, namespace, check):
    from broker.errors import ResourceExhausted

    await store.enqueue(namespace, [JobSpec("t", notes={"k": "1"})] * 10_001)
    # Either side alone is exact through its index.
    assert (await list_ids(store, namespace, 0, 1, notes=["k"]))[1] == 10_001
    assert (await list_ids(store, namespace, 0, 1, states=["inactive"]))[1] == 10_001
    with pytest.raises(ResourceExhausted, match="filters too broad"):
        await list_ids(store, namespace, notes=["k"], states=["inactive"])
    # One narrow side is enough.
    job = await enqueue(store, namespace, "t", notes={"k": "1"})
    assert await list_ids(store, namespace, notes=["k"], states=["active"]) == ([], 0)
    assert await list_ids(store, namespace, 0, 1, notes=["k"], ids=[job]) == ([job], 1)
    await enqueue(store, namespace, "rare", notes={"k": "2"})
    assert (await list_ids(store, namespace, notes=["k"], tasks=["rare"]))[1] == 1


async def test_list_jobs_waits_for_repair_when_too_many_jobs_expired(store, namespace):
    from broker.errors import TryAgain

    await store.enqueue(namespace, [JobSpec("t", expire=0.01)] * 10_001)
    await asyncio.sleep(0.05)
    with pytest.raises(TryAgain, match="expired"):
        await list_ids(store, namespace)
    assert await list_ids(store, namespace, states=["active"]) == ([], 0)  # no inactive: fine
    await store.repair(namespace, missing_after=1800, remove_after=172800, stuck_after=172800)
    assert await list_ids(store, namespace) == ([], 0)


async def test_list_jobs_filters_that_name_every_value_in_use(store, namespace, check):
    """A filter naming every queue (task, state) in use, or every one of the other filter's
    pairs, filters nothing more; two filters that imply each other still filter."""
    await store.enqueue(
        namespace,
        [JobSpec("a", queue="q1"), JobSpec("b", queue="q2"), JobSpec("b", queue="q3")],
    )
    assert await list_ids(store, namespace, queues=["q1"], tasks=["a"]) == ([1], 1)
    assert await list_ids(store, namespace, queues=["q1", "q2", "q3", "x"]) == ([3, 2, 1], 3)
    assert await list_ids(store, namespace, queues=["q2", "q3"], tasks=["b", "a"]) == ([3, 2], 2)
    assert await list_ids(store, namespace, queues=["q2"], tasks=["b"]) == ([2], 1)
    assert await list_ids(store, namespace, tasks=["a", "b"], states=list(STATES)) == (
        [3, 2, 1], 3
    )  # fmt: skip
    both: dict[str, Any] = {"queues": ["q1", "q2"], "tasks": ["b"], "states": ["inactive"]}
    assert await list_ids(store, namespace, **both) == ([2], 1)
    await check()
