"""The only Redis caller: one method per Lua script, each one atomic state transition.

Methods take plain Python values and return plain Python values; the services convert them
to and from protobuf. Times are epoch seconds from Redis' own clock (``TIME`` in the scripts).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any, NamedTuple, Protocol

import redis.asyncio as aioredis
import redis.exceptions

from broker import scripts
from broker.cron import CronError, next_cron_time
from broker.errors import ResourceExhausted, TryAgain
from broker.keyspace import NAMESPACES_KEY, Keyspace
from broker.pipeline import Observer as ScriptObserver
from broker.pipeline import ScriptRunner
from broker.values import dumps


@dataclass(frozen=True)
class JobSpec:
    """One job to enqueue; args, notes values and result are already JSON text."""

    task: str
    args: str = "[]"
    attempts: int = 1
    delay: float = 0.0
    expire: float | None = None
    lax: bool = False
    notes: dict[str, str] = field(default_factory=dict)
    parents: Sequence[int] = ()
    priority: int = 0
    queue: str = "default"
    trace: str = ""  # the producer's W3C traceparent, handed to the worker with the job

    def to_args(self) -> list[str | int]:
        """The 11 ARGV values enqueue.lua reads per job (no JSON wrapper to decode in Lua)."""
        return [
            self.task,
            self.args,
            self.attempts,
            repr(float(self.delay)),
            "" if self.expire is None else repr(float(self.expire)),
            "1" if self.lax else "0",
            dumps(self.notes) if self.notes else "",
            dumps(list(self.parents)) if self.parents else "[]",
            self.priority,
            self.queue,
            self.trace,
        ]

    def to_json(self) -> str:
        """The spec as one JSON document (stored with schedules)."""
        return dumps(
            {
                "task": self.task,
                "args": self.args,
                "attempts": self.attempts,
                "delay": self.delay,
                "expire": self.expire,
                "lax": self.lax,
                "notes": self.notes,
                "parents": dumps(list(self.parents)),
                "priority": self.priority,
                "queue": self.queue,
            }
        )


@dataclass(frozen=True)
class Dequeued:
    """A job handed to a worker."""

    id: int
    task: str
    args: str
    retries: int
    queue: str
    priority: int
    attempts: int
    parents: str
    notes: dict[str, str]
    lease: int = 0  # fencing token of this attempt
    trace: str = ""  # W3C traceparent of the enqueue, "" for none
    delayed: float = 0.0  # when the job became runnable (enqueued, or its delay passed)


class JobTimings(Protocol):
    """Told how long jobs waited and ran (metrics); called on the broker's event loop."""

    def job_started(self, namespace: str, queue: str, waited: float) -> None: ...

    def job_ended(self, namespace: str, ran: float) -> None: ...


@dataclass(frozen=True)
class JobRow:
    """A stored job as list_jobs reads it: the raw hash, notes and children."""

    id: int
    fields: dict[str, str]
    notes: dict[str, str]
    children: list[int]
    time: float


@dataclass(frozen=True)
class RetryOptions:
    """retry_job options; None keeps the job's value."""

    attempts: int | None = None
    delay: float = 0.0
    expire: float | None = None
    lax: bool | None = None
    parents: Sequence[int] | None = None
    priority: int | None = None
    queue: str | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"delay": self.delay}
        for name in ("attempts", "expire", "lax", "priority", "queue"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.parents is not None:
            data["parents"] = dumps(list(self.parents))
        return dumps(data)


STATS_FIELDS = (
    "active_jobs",
    "active_locks",
    "active_workers",
    "delayed_jobs",
    "enqueued_jobs",
    "failed_jobs",
    "finished_jobs",
    "inactive_jobs",
    "inactive_schedules",
    "inactive_workers",
    "schedules",
    "workers",
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: Sequence[bytes]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _joined_pairs(joined: bytes) -> dict[str, str]:
    """A hash that a script joined with the unit separator (see list_jobs.lua)."""
    if not joined:
        return {}
    items = joined.decode().split("\x1f")
    return dict(zip(items[::2], items[1::2], strict=True))


def _dequeued(row: Sequence[Any]) -> Dequeued:
    """A job as the dequeue, dispatch and subscribe scripts return it."""
    return Dequeued(
        id=int(row[0]),
        task=_text(row[1]),
        args=_text(row[2]),
        retries=int(row[3]),
        queue=_text(row[4]),
        priority=int(row[5]),
        attempts=int(row[6]),
        parents=_text(row[7]),
        notes=_pairs(row[8]),
        lease=int(row[9]),
        trace=_text(row[10]),
        delayed=float(row[11]),
    )


@dataclass(frozen=True)
class Registered:
    """What a registration or heartbeat answered."""

    id: int
    created: bool  # a new worker, or one re-created after it was removed
    lost: list[int]  # listed as running but no longer active under the worker


class Completion(NamedTuple):
    """One finish or fail: guarded by retries and, when given, by the attempt's lease (a tuple:
    one is made per job on the completion path)."""

    id: int
    retries: int
    failed: bool
    result: str = "null"  # JSON text
    lease: int | None = None


@dataclass(frozen=True)
class Subscription:
    """What a streaming worker asked for (SubscribeRequest, validated)."""

    worker: int
    concurrency: int
    epoch: int = 0  # from subscribe(): only the worker's newest stream gets jobs
    queues: Sequence[str] = ("default",)
    tasks: Sequence[str] = ()
    min_priority: int | None = None
    limits: dict[str, int] = field(default_factory=dict)
    spare: int = 0
    spare_min_priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "epoch": self.epoch,
            "concurrency": self.concurrency,
            "queues": list(self.queues),
            "tasks": list(self.tasks),
            "min_priority": self.min_priority,
            "limits": self.limits,
            "spare": self.spare,
            "spare_min_priority": self.spare_min_priority,
        }


# Schedules (types) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleRow:
    """A stored schedule; args and notes values are JSON text, times epoch seconds."""

    id: int
    name: str
    cron: str
    task: str
    args: str
    attempts: int
    expire: float | None
    lax: bool
    notes: dict[str, str]
    priority: int
    queue: str
    created: float
    next_run: float
    paused: bool
    last_job: int | None
    last_run: float | None

    @classmethod
    def from_hash(cls, schedule_id: int, f: dict[str, str]) -> ScheduleRow:
        return cls(
            id=schedule_id,
            name=f["name"],
            cron=f["cron"],
            task=f["task"],
            args=f["args"],
            attempts=int(f["attempts"]),
            expire=float(f["expire"]) if "expire" in f else None,
            lax=f["lax"] == "1",
            notes=json.loads(f["notes"]),
            priority=int(f["priority"]),
            queue=f["queue"],
            created=float(f["created"]),
            next_run=float(f["next_run"]),
            paused=f["paused"] == "1",
            last_job=int(f["last_job"]) if "last_job" in f else None,
            last_run=float(f["last_run"]) if "last_run" in f else None,
        )


class Dispatched(NamedTuple):
    """One job a schedule enqueued: schedule id and name, job id."""

    id: int
    name: str
    job: int


# Most due schedules one dispatch round reads; dispatch repeats while rounds come back full.
DISPATCH_BATCH = 500

# End of Schedules (types) -----------------------------------------------------------------------


# Workers, Locks, Repair (types) -----------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRow:
    """A registered worker; status is JSON object text, times epoch seconds."""

    id: int
    host: str
    pid: int
    started: float
    notified: float
    status: str
    jobs: list[int]


@dataclass(frozen=True)
class LockRow:
    """One live holder of a named lock."""

    id: int
    name: str
    expires: float


@dataclass(frozen=True)
class RepairCounts:
    """What one repair changed, per kind (RepairResponse)."""

    missing_workers: int = 0
    old_jobs: int = 0
    expired_jobs: int = 0
    abandoned_jobs: int = 0
    stuck_jobs: int = 0

    def __add__(self, other: RepairCounts) -> RepairCounts:
        return RepairCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


# Most items one repair script call handles, so no call blocks Redis for long.
REPAIR_BATCH = 300

# End of Workers, Locks, Repair (types) ----------------------------------------------------------


# Scripts that never register a namespace: reads (so reads cannot fill the registry), and upkeep,
# which visits only registered namespaces and the broker's default one.
_READS = frozenset(
    {"history", "list_jobs", "list_locks", "list_schedules", "list_workers", "stats",
     "reclaim_leases", "repair", "hold_repair_lock", "due_schedules"}
)  # fmt: skip


# Error replies of the scripts ({err = "<CODE> <message>"}) and what each stands for.
SCRIPT_ERRORS: dict[str, type[Exception]] = {
    "TOO_BROAD": ResourceExhausted,  # list_jobs: notes combined with filters matching too many
    "EXPIRED_BACKLOG": TryAgain,  # list_jobs: more expired jobs than it subtracts; repair soon
}


def script_error(error: redis.exceptions.ResponseError) -> Exception:
    """The exception a script's error reply stands for (the Redis error itself when unknown)."""
    code, _, message = str(error).partition(" ")
    kind = SCRIPT_ERRORS.get(code)
    return kind(message) if kind else error


class Store:
    """Runs the scripts against one Redis connection pool.

    `lease_duration` is how long a lease lasts for workers that set none at registration;
    `lease_grace` how long after activation a job a worker does not list is still in transit;
    `max_namespaces` how many namespaces writes may register.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        lease_duration: float = 1800.0,
        lease_grace: float = 10.0,
        max_namespaces: int = 10_000,
    ) -> None:
        self.redis = client
        self.lease_duration = lease_duration
        self.lease_grace = lease_grace
        self.max_namespaces = max_namespaces
        self._scripts = ScriptRunner(client, scripts.source)
        self._keyspaces: dict[str, Keyspace] = {}
        self._registered: set[str] = set()
        self._timings: list[JobTimings] = []

    def observe_jobs(self, timings: JobTimings) -> None:
        """Tells `timings` how long each job waited before it started and how long it ran."""
        self._timings.append(timings)

    def _started(self, namespace: str, now: float, jobs: Iterable[Dequeued]) -> None:
        for timings in self._timings:
            for job in jobs:
                timings.job_started(namespace, job.queue, max(now - job.delayed, 0.0))

    def observe_scripts(self, observer: ScriptObserver) -> None:
        """Calls `observer` after every script call (metrics, tracing)."""
        self._scripts.observers.append(observer)

    def keyspace(self, namespace: str) -> Keyspace:
        ks = self._keyspaces.get(namespace)
        if ks is None:
            ks = self._keyspaces[namespace] = Keyspace(namespace)
        return ks

    async def _run(self, name: str, namespace: str, args: Iterable[Any] = ()) -> Any:
        if namespace not in self._registered and name not in _READS:
            await self._register(namespace)
        try:
            return await self._scripts.run(name, [self.keyspace(namespace).prefix], list(args))
        except redis.exceptions.ResponseError as error:
            mapped = script_error(error)
            if mapped is error:
                raise
            raise mapped from None

    async def _register(self, namespace: str) -> None:
        """Adds the namespace to the registry before its first write, once per process, so
        every replica's upkeep finds it; beyond max_namespaces the write is refused."""
        # Marked first, so a burst of first calls sends one SADD, not one each.
        self._registered.add(namespace)
        try:
            added = await self.redis.sadd(NAMESPACES_KEY, namespace)
            if added and await self.redis.scard(NAMESPACES_KEY) > self.max_namespaces:
                await self.redis.srem(NAMESPACES_KEY, namespace)
                raise ResourceExhausted(
                    f"the broker serves at most {self.max_namespaces} namespaces"
                )
        except BaseException:
            self._registered.discard(namespace)
            raise

    async def namespaces(self) -> list[str]:
        """Every namespace any replica has served (for repair and schedule dispatch)."""
        return sorted(_text(n) for n in await self.redis.smembers(NAMESPACES_KEY))

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # Jobs

    async def enqueue(self, namespace: str, specs: Sequence[JobSpec]) -> list[int]:
        args: list[str | int] = []
        for spec in specs:
            args += spec.to_args()
        ids = await self._run("enqueue", namespace, args)
        return [int(i) for i in ids]

    async def dequeue(
        self,
        namespace: str,
        worker_id: int,
        *,
        count: int = 1,
        job_id: int | None = None,
        min_priority: int | None = None,
        queues: Sequence[str] = ("default",),
        tasks: Sequence[str] = (),
    ) -> tuple[list[Dequeued], float, float | None]:
        """Jobs handed out, Redis' clock, and when the next delayed job becomes due (if any)."""
        out = await self._run(
            "dequeue",
            namespace,
            [
                worker_id,
                count,
                "" if job_id is None else job_id,
                "" if min_priority is None else min_priority,
                dumps(list(queues)),
                dumps(list(tasks)),
                repr(self.lease_duration),
            ],
        )
        now = float(out[0])
        next_due = float(out[1]) if out[1] else None
        jobs = [_dequeued(row) for row in out[2:]]
        self._started(namespace, now, jobs)
        return jobs, now, next_due

    async def complete_jobs(self, namespace: str, completions: Sequence[Completion]) -> list[bool]:
        """Finishes or fails jobs; whether each applied."""
        args: list[Any] = []
        for c in completions:
            lease = "" if c.lease is None else c.lease
            args += [c.id, c.retries, "failed" if c.failed else "finished", c.result, lease]
        out = await self._run("complete_jobs", namespace, args)
        now = float(out[0])
        started = [float(x) for x in out[1:]]
        for timings in self._timings:
            for t in started:
                if t:
                    timings.job_ended(namespace, now - t)
        return [t != 0 for t in started]

    async def retry_job(
        self,
        namespace: str,
        job_id: int,
        retries: int,
        options: RetryOptions,
        lease: int | None = None,
    ) -> bool:
        """Minion's retry_job; with a lease, only while that attempt is still active."""
        args = [job_id, retries, options.to_json(), "" if lease is None else lease]
        return bool(await self._run("retry_job", namespace, args))

    async def remove_job(self, namespace: str, job_id: int) -> bool:
        return bool(await self._run("remove_job", namespace, [job_id]))

    async def note_job(self, namespace: str, job_id: int, merge: dict[str, str | None]) -> bool:
        """Merges notes; values are JSON text, None removes the key."""
        args: list[Any] = [job_id]
        for key, value in merge.items():
            args += [key, "null" if value is None else value]
        return bool(await self._run("note_job", namespace, args))

    async def list_jobs(
        self,
        namespace: str,
        offset: int,
        limit: int,
        *,
        before: int | None = None,
        ids: Sequence[int] = (),
        notes: Sequence[str] = (),
        queues: Sequence[str] = (),
        states: Sequence[str] = (),
        tasks: Sequence[str] = (),
    ) -> tuple[list[JobRow], int]:
        out = await self._run(
            "list_jobs",
            namespace,
            [
                offset,
                limit,
                "" if before is None else before,
                dumps(list(ids)),
                dumps(list(notes)),
                dumps(list(queues)),
                dumps(list(states)),
                dumps(list(tasks)),
            ],
        )
        now = float(out[1])
        rows = [
            JobRow(
                id=int(row[0]),
                fields=_joined_pairs(row[1]),
                notes=_joined_pairs(row[2]),
                children=sorted(int(c) for c in row[3].split(b"\x1f")) if row[3] else [],
                time=now,
            )
            for row in out[2:]
        ]
        return rows, int(out[0])

    async def get_job(self, namespace: str, job_id: int) -> JobRow | None:
        rows, _ = await self.list_jobs(namespace, 0, 1, ids=[job_id])
        return rows[0] if rows else None

    # Admin

    async def stats(self, namespace: str) -> dict[str, int | float]:
        info, values = await asyncio.gather(
            self.redis.info("server"), self._run("stats", namespace)
        )
        stats: dict[str, int | float] = dict(
            zip(STATS_FIELDS, (int(v) for v in values), strict=True)
        )
        stats["uptime"] = float(info.get("uptime_in_seconds", 0))
        return stats

    async def history(self, namespace: str) -> list[tuple[float, int, int]]:
        """24 buckets (epoch, finished_jobs, failed_jobs), oldest first."""
        out = await self._run("history", namespace)
        now = float(out[0])
        return [
            (now - (23 - i) * 3600, int(out[1 + 2 * i]), int(out[2 + 2 * i])) for i in range(24)
        ]

    async def reset(
        self, namespace: str, *, all: bool = False, locks: bool = False, batch: int = REPAIR_BATCH
    ) -> None:
        """Minion's reset, in bounded steps (each a script call deleting at most `batch` items)."""
        if all or locks:
            while await self._run("reset", namespace, ["all" if all else "locks", batch]):
                pass

    # Streams ------------------------------------------------------------------------------------

    async def subscribe(
        self, namespace: str, worker_id: int, running: Sequence[int]
    ) -> tuple[int, list[str], list[Dequeued]] | None:
        """Opens a worker's stream: None if the worker is not registered, else the stream's
        epoch, its drained inbox (JSON texts) and the jobs active under it that it is not
        running (to deliver again)."""
        args = [worker_id, dumps(list(running)), repr(self.lease_duration)]
        out = await self._run("subscribe", namespace, args)
        if not out:
            return None
        return int(out[0]), [_text(c) for c in out[1]], [_dequeued(row) for row in out[2:]]

    async def dispatch_jobs(
        self, namespace: str, subscriptions: Sequence[Subscription], budget: int
    ) -> tuple[list[list[Dequeued] | None], float, float | None]:
        """Fills the free slots of streaming workers: jobs per subscription (None for a stream
        that is no longer the worker's current one: end it), Redis' clock, and when the next
        delayed job becomes due."""
        subs = dumps([s.to_dict() for s in subscriptions])
        out = await self._run("dispatch_jobs", namespace, [subs, budget, repr(self.lease_duration)])
        jobs = [None if rows is None else [_dequeued(row) for row in rows] for rows in out[2:]]
        now = float(out[0])
        for taken in jobs:
            self._started(namespace, now, taken or ())
        return jobs, now, float(out[1]) if out[1] else None

    async def undeliver_jobs(
        self, namespace: str, worker_id: int, epoch: int | None, jobs: Sequence[Dequeued]
    ) -> int:
        """Returns jobs never sent to the worker to inactive (same attempt: lease and retries
        unchanged): from a stream unless the worker has re-subscribed since (epoch changed);
        epoch None: from a Dequeue call."""
        args: list[Any] = [worker_id, "" if epoch is None else epoch]
        for job in jobs:
            args += [job.id, job.lease]
        return int(await self._run("undeliver_jobs", namespace, args))

    async def reclaim_leases(self, namespace: str, batch: int = REPAIR_BATCH) -> tuple[int, bool]:
        """Fails up to `batch` active jobs whose lease expired ("Worker went away", retried
        while attempts remain); how many, and whether more may be due."""
        out = await self._run("reclaim_leases", namespace, [batch])
        return int(out[0]), bool(out[1])

    # End of Streams -----------------------------------------------------------------------------

    # Schedules ----------------------------------------------------------------------------------

    async def upsert_schedule(self, namespace: str, name: str, cron: str, spec: JobSpec) -> int:
        """Creates or replaces schedule `name` (cron already parsed); its id.

        Raises CronError when the cron has no match ahead of Redis' clock (nothing written).
        """
        seconds, micros = await self.redis.time()
        next_run = next_cron_time(cron, seconds + micros / 1_000_000)
        args = [name, cron, repr(next_run), spec.to_json()]
        return int(await self._run("upsert_schedule", namespace, args))

    async def delete_schedule(self, namespace: str, name: str) -> bool:
        return bool(await self._run("delete_schedule", namespace, [name]))

    async def pause_schedule(self, namespace: str, name: str) -> bool:
        return bool(await self._run("pause_schedule", namespace, [name]))

    async def resume_schedule(self, namespace: str, name: str) -> bool:
        return bool(await self._run("resume_schedule", namespace, [name]))

    async def list_schedules(
        self,
        namespace: str,
        offset: int,
        limit: int,
        *,
        before: int | None = None,
        ids: Sequence[int] = (),
        names: Sequence[str] = (),
    ) -> tuple[list[ScheduleRow], int]:
        """One page of schedules, id descending, and the total matching the filters."""
        out = await self._run(
            "list_schedules",
            namespace,
            [
                offset,
                limit,
                "" if before is None else before,
                dumps(list(ids)),
                dumps(list(names)),
            ],
        )
        rows = [ScheduleRow.from_hash(int(row[0]), _pairs(row[1])) for row in out[1:]]
        return rows, int(out[0])

    async def dispatch_schedules(self, namespace: str) -> list[Dispatched]:
        """Enqueues one job for each due, unpaused schedule (Minion's dispatch_schedules).

        Reads the due schedules with Redis' clock, computes each next run from max(next_run,
        now) -- so an overdue schedule fires once, without catch-up -- and fires them with one
        compare-and-set script: a firing another dispatcher already made is skipped.
        """
        fired: list[Dispatched] = []
        while True:
            out = await self._run("due_schedules", namespace, [DISPATCH_BATCH])
            now = float(out[0])
            args: list[str] = []
            for i in range(1, len(out), 3):
                schedule_id, cron, next_run = _text(out[i]), _text(out[i + 1]), _text(out[i + 2])
                try:
                    new_next_run = next_cron_time(cron, max(float(next_run), now))
                except CronError:
                    continue  # Validated on upsert; cannot happen short of a hand-edited key.
                args += [schedule_id, next_run, cron, repr(new_next_run)]
            rows = await self._run("fire_schedules", namespace, args) if args else []
            fired += [Dispatched(int(r[0]), _text(r[1]), int(r[2])) for r in rows]
            if len(out) // 3 < DISPATCH_BATCH or not rows:
                return fired  # All due read, or the rest is another dispatcher's.

    # End of Schedules ---------------------------------------------------------------------------

    # Workers ------------------------------------------------------------------------------------

    async def register_worker(
        self,
        namespace: str,
        worker_id: int | None,
        *,
        host: str,
        pid: int,
        status: str,
        running: Sequence[int] | None = None,
        lease_duration: float | None = None,
    ) -> Registered:
        """Registers a new worker (id None) or heartbeats one; status is JSON object text.

        Extends the leases of the worker's jobs: with `running`, only of those, and jobs it does
        not list that are older than the lease grace are handed back to inactive.
        """
        args: list[Any] = [
            "" if worker_id is None else worker_id,
            host,
            pid,
            status,
            "" if lease_duration is None else repr(float(lease_duration)),
            repr(self.lease_duration),
            repr(self.lease_grace),
            "" if running is None else "1",
            *(running or ()),
        ]
        out = await self._run("register_worker", namespace, args)
        return Registered(int(out[0]), bool(out[1]), sorted(int(j) for j in out[2:]))

    async def unregister_worker(self, namespace: str, worker_id: int) -> bool:
        return bool(await self._run("unregister_worker", namespace, [worker_id]))

    async def list_workers(
        self,
        namespace: str,
        offset: int,
        limit: int,
        *,
        before: int | None = None,
        ids: Sequence[int] = (),
    ) -> tuple[list[WorkerRow], int]:
        """One page of workers, id descending, and the total matching the filters."""
        args = [offset, limit, "" if before is None else before, dumps(list(ids))]
        out = await self._run("list_workers", namespace, args)
        rows = []
        for row in out[1:]:
            f = _pairs(row[1])
            rows.append(
                WorkerRow(
                    id=int(row[0]),
                    host=f["host"],
                    pid=int(f["pid"]),
                    started=float(f["started"]),
                    notified=float(f["notified"]),
                    status=f["status"],
                    jobs=sorted(int(j) for j in row[2]),
                )
            )
        return rows, int(out[0])

    async def broadcast(
        self, namespace: str, command: str, args: str = "[]", ids: Sequence[int] = ()
    ) -> bool:
        """Sends [command, *args] (args: JSON array text) to the listed or all workers."""
        message = dumps([command, *json.loads(args)])
        return bool(await self._run("broadcast", namespace, [message, dumps(list(ids))]))

    async def receive(self, namespace: str, worker_id: int) -> list[str]:
        """Empties a worker's inbox; the commands oldest first, each JSON array text."""
        return [_text(c) for c in await self._run("receive", namespace, [worker_id])]

    # Locks --------------------------------------------------------------------------------------

    async def acquire_lock(
        self, namespace: str, name: str, duration: float, limit: int = 1
    ) -> bool:
        """Minion's lock(); a duration <= 0 only checks whether it could be acquired."""
        args = [name, repr(float(duration)), limit]
        return bool(await self._run("acquire_lock", namespace, args))

    async def release_lock(self, namespace: str, name: str) -> bool:
        return bool(await self._run("release_lock", namespace, [name]))

    async def list_locks(
        self, namespace: str, offset: int, limit: int, *, names: Sequence[str] = ()
    ) -> tuple[list[LockRow], int]:
        """One page of live lock holders, id descending, and the total matching the filter."""
        out = await self._run("list_locks", namespace, [offset, limit, dumps(list(names))])
        rows = [LockRow(int(r[0]), _text(r[1]), float(r[2])) for r in out[1:]]
        return rows, int(out[0])

    # Repair -------------------------------------------------------------------------------------

    async def repair_batch(
        self,
        namespace: str,
        missing_after: float,
        remove_after: float,
        stuck_after: float,
        batch: int = REPAIR_BATCH,
        stream_missing_after: float | None = None,
    ) -> tuple[RepairCounts, bool]:
        """One bounded repair step; its counts and whether more is left to repair."""
        stream = missing_after if stream_missing_after is None else stream_missing_after
        args = [repr(float(t)) for t in (missing_after, remove_after, stuck_after)]
        out = await self._run("repair", namespace, [*args, batch, repr(float(stream))])
        return RepairCounts(*(int(n) for n in out[:5])), bool(out[5])

    async def repair(
        self,
        namespace: str,
        missing_after: float,
        remove_after: float,
        stuck_after: float,
        *,
        batch: int = REPAIR_BATCH,
        stream_missing_after: float | None = None,
    ) -> RepairCounts:
        """Minion's repair: bounded steps until nothing is left; the summed counts.

        Workers that opened a stream are judged by `stream_missing_after` (default: missing_after).
        """
        total = RepairCounts()
        more = True
        while more:
            counts, more = await self.repair_batch(
                namespace, missing_after, remove_after, stuck_after, batch, stream_missing_after
            )
            total += counts
        return total

    async def hold_repair_lock(self, namespace: str, token: str, ms: int) -> bool:
        """Takes or keeps the namespace's repair mutex for `ms` (0 releases it if ours)."""
        return bool(await self._run("hold_repair_lock", namespace, [token, ms]))

    # End of Workers, Locks, Repair --------------------------------------------------------------
