"""The worst requests per RPC against a big store, timed by Redis itself (no assertions).

Starts its own redis-server (free port, temporary directory, never 6379) and fills one namespace
through the scripts the broker runs: ``--jobs`` jobs over 10 queues x 100 tasks, a fifth with a
note key, a thousand that expire at once (hidden, awaiting repair), then moves most of them on
(dequeue + finish / fail per queue and task): about 40% finished, 10% failed, 10% active, 40%
inactive. Plus a parent with 10,000 children and a child with 1,000 finished parents.

Then runs each worst request of every RPC a few times, each one script call as its RPC makes it
(through ``broker.store.Store``), with ``slowlog-log-slower-than 0``, and prints the script time
Redis measured (SLOWLOG, microseconds, EVALSHA only): p50 and worst per request, and the worst
overall against the 50 ms limit. Reset and repair run in bounded steps; each step is one script.
Times depend on the machine's load; the Redis commands a script ran (INFO commandstats, per
script call) do not, so they are printed too.

    .venv/bin/python bench/bench_worst_case.py --jobs 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "sdk" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from bench._harness import NAMESPACE, command_calls, redis_server  # noqa: E402
from broker import scripts  # noqa: E402
from broker.errors import ResourceExhausted  # noqa: E402
from broker.keyspace import Keyspace  # noqa: E402
from broker.pipeline import ScriptRunner  # noqa: E402
from broker.store import REPAIR_BATCH, Completion, JobSpec, Store  # noqa: E402

QUEUES = [f"queue{i}" for i in range(10)]
TASKS = [f"task{i}" for i in range(100)]
NOTES = [f"n{i}" for i in range(5)]
LIMIT_MS = 50.0
LONG = 10.0**9


def spec_for(i: int) -> JobSpec:
    notes = {NOTES[(i // 5) % 5]: "1"} if i % 5 == 0 else {}
    return JobSpec(
        TASKS[(i // 10) % 100],
        "[1]",
        queue=QUEUES[i % 10],
        notes=notes,
        expire=1.0 if i % 1000 == 999 else None,
    )


async def fill(store: Store, total: int) -> float:
    """Enqueues `total` jobs in batches of 1,000, four scripts in flight; seconds taken."""
    start = time.perf_counter()
    cache: dict[tuple[int, int, int, bool], JobSpec] = {}

    def spec(i: int) -> JobSpec:
        key = (i % 10, (i // 10) % 100, -1 if i % 5 else (i // 5) % 5, i % 1000 == 999)
        if key not in cache:
            cache[key] = spec_for(i)
        return cache[key]

    pending: set[asyncio.Task[Any]] = set()
    for first in range(0, total, 1000):
        if len(pending) >= 4:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        batch = [spec(i) for i in range(first, min(total, first + 1000))]
        pending.add(asyncio.ensure_future(store.enqueue(NAMESPACE, batch)))
    await asyncio.gather(*pending)
    return time.perf_counter() - start


async def spread(store: Store, worker: int, total: int) -> float:
    """Per (queue, task): dequeues 60% of its jobs, finishes 40%, fails 10%, keeps 10% active."""
    start = time.perf_counter()
    per_pair = total // (len(QUEUES) * len(TASKS))
    take = per_pair * 6 // 10

    async def one(queue: str, task: str) -> None:
        jobs, _, _ = await store.dequeue(
            NAMESPACE, worker, count=take, queues=[queue], tasks=[task]
        )
        finished, failed = jobs[: per_pair * 4 // 10], jobs[per_pair * 4 // 10 : take * 5 // 6]
        done = [Completion(j.id, j.retries, False) for j in finished]
        done += [Completion(j.id, j.retries, True, '"boom"') for j in failed]
        for i in range(0, len(done), 1000):
            await store.complete_jobs(NAMESPACE, done[i : i + 1000])

    pairs = [(q, t) for q in QUEUES for t in TASKS]
    for i in range(0, len(pairs), 4):
        await asyncio.gather(*(one(q, t) for q, t in pairs[i : i + 4]))
    return time.perf_counter() - start


async def dependencies(store: Store, worker: int) -> tuple[int, int]:
    """A parent with 10,000 children, and a child of 1,000 finished parents; their ids."""
    (parent,) = await store.enqueue(NAMESPACE, [JobSpec("parent", queue="family")])
    for _ in range(10):
        await store.enqueue(NAMESPACE, [JobSpec("kid", queue="kids", parents=[parent])] * 1000)
    parents = await store.enqueue(NAMESPACE, [JobSpec("dep", queue="deps")] * 1000)
    jobs, _, _ = await store.dequeue(NAMESPACE, worker, count=1000, queues=["deps"])
    await store.complete_jobs(NAMESPACE, [Completion(j.id, j.retries, False) for j in jobs])
    (child,) = await store.enqueue(NAMESPACE, [JobSpec("child", queue="depchild", parents=parents)])
    return parent, child


class Timer:
    """Runs requests one script at a time with SLOWLOG recording every command, and reads back
    each script's time (the newest EVALSHA entry: Redis logs it after the commands it ran) and
    the commands it ran (INFO commandstats)."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.rows: list[tuple[str, int, float, float, str]] = []
        self.ms: list[float] = []
        self.commands: list[int] = []
        r.config_set("slowlog-log-slower-than", 0)
        r.config_set("slowlog-max-len", 1024)

    async def step(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Runs one request (one script call) and notes its script time and commands."""
        self.r.slowlog_reset()
        before = command_calls(self.r)[0]
        result = await call()
        after = command_calls(self.r)[0]
        for entry in self.r.slowlog_get(1024):  # newest first
            command = entry["command"]
            command = command.decode() if isinstance(command, bytes) else command
            if command.upper().startswith("EVALSHA"):
                self.ms.append(entry["duration"] / 1000)
                break
        self.commands.append(after - before - 2)  # less the INFO before and the EVALSHA
        return result

    async def run(
        self, name: str, call: Callable[[], Awaitable[Any]], times: int = 5, note: str = ""
    ) -> None:
        await call()  # warm-up: script load
        for _ in range(times):
            await self.step(call)
        self.record(name, note)

    def record(self, name: str, note: str = "") -> None:
        ms, commands = self.ms, self.commands
        self.ms, self.commands = [], []
        if ms:
            self.rows.append((name, len(ms), statistics.median(ms), max(ms), note))
        p50, worst = (statistics.median(ms), max(ms)) if ms else (0.0, 0.0)
        most = max(commands) if commands else 0
        print(f"  {name:<62}{len(ms):>6}{p50:>9.2f}{worst:>9.2f}{most:>9}  {note}", flush=True)


def listing(store: Store, offset: int, limit: int = 1000, **filters: Any) -> Callable[[], Any]:
    async def call() -> str:
        try:
            rows, total = await store.list_jobs(NAMESPACE, offset, limit, **filters)
        except ResourceExhausted as error:
            return f"RESOURCE_EXHAUSTED: {error}"
        return f"{len(rows)} rows, total {total:,}"

    return call


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs to store")
    parser.add_argument("--times", type=int, default=5, help="runs of each request")
    args = parser.parse_args()
    total = args.jobs

    with redis_server() as url:
        sync = redis.Redis.from_url(url)
        client = aioredis.Redis.from_url(url)
        store = Store(client)
        worker = (await store.register_worker(NAMESPACE, None, host="b", pid=1, status="{}")).id
        took = await fill(store, total)
        print(f"Filled {total:,} jobs in {took:.1f} s", flush=True)
        took = await spread(store, worker, total)
        parent, child = await dependencies(store, worker)
        await asyncio.sleep(1.0)  # the expiring jobs expire: hidden until repair
        stats = await store.stats(NAMESPACE)
        memory = sync.info("memory")["used_memory_human"]
        print(f"Spread over states in {took:.1f} s; memory {memory}; "
              f"inactive {stats['inactive_jobs']:,} active {stats['active_jobs']:,} "
              f"failed {stats['failed_jobs']:,} finished {stats['finished_jobs']:,}")  # fmt: skip

        timer = Timer(sync)
        t = args.times
        many_queues = QUEUES + [f"none{i}" for i in range(990)]
        many_tasks = TASKS + [f"none{i}" for i in range(900)]
        states = ["inactive", "active", "failed", "finished"]
        print(f"\n  {'request (script time measured by Redis, ms)':<62}{'calls':>6}"
              f"{'p50':>9}{'worst':>9}{'cmds':>9}  answer (cmds: most Redis commands one "
              "script ran)")  # fmt: skip
        print("  " + "-" * 113)
        lists: list[tuple[str, Callable[[], Any]]] = [
            ("ListJobs no filter, offset 0", listing(store, 0)),
            ("ListJobs no filter, offset 900k", listing(store, total * 9 // 10)),
            ("ListJobs states=[finished], offset 300k", listing(store, total * 3 // 10,
                                                                 states=["finished"])),
            ("ListJobs states=all 4, offset 500k", listing(store, total // 2, states=states)),
            ("ListJobs queues=1000 values, offset 50k", listing(
                store, total // 20, queues=many_queues)),
            ("ListJobs tasks=1000 values, offset 500k", listing(
                store, total // 2, tasks=many_tasks)),
            ("ListJobs states=[failed] queues=[queue3], offset 0", listing(
                store, 0, states=["failed"], queues=["queue3"])),
            ("ListJobs states=[inactive] queues=[queue3], offset 30k", listing(
                store, total * 3 // 100, states=["inactive"], queues=["queue3"])),
            ("ListJobs states=[failed] queues=10 real, offset 50k", listing(
                store, total // 20, states=["failed"], queues=QUEUES)),
            ("ListJobs states=[inactive,failed] tasks=1000 values, offset 100k", listing(
                store, total // 10, states=["inactive", "failed"], tasks=many_tasks)),
            ("ListJobs queues=[queue3] tasks=[task7], offset 500", listing(
                store, 500, limit=100, queues=["queue3"], tasks=["task7"])),
            ("ListJobs queues=1000 x tasks=1000 values, offset 500k", listing(
                store, total // 2, queues=many_queues, tasks=many_tasks)),
            ("ListJobs 4 states x 1000 queues x 1000 tasks, offset 500k", listing(
                store, total // 2, states=states, queues=many_queues, tasks=many_tasks)),
            ("ListJobs 4 states x 1000 queues x 1000 tasks + before, off 100k", listing(
                store, total // 10, before=total // 2, states=states, queues=many_queues,
                tasks=many_tasks)),
            ("ListJobs notes=[n1], offset 100k", listing(store, total // 10, notes=["n1"])),
            ("ListJobs notes=5 keys + queues=[queue3] tasks=[task7]", listing(
                store, 0, notes=NOTES, queues=["queue3"], tasks=["task7"])),
            ("ListJobs notes=[n1] + states=[inactive] (refused)", listing(
                store, 0, notes=["n1"], states=["inactive"])),
            ("ListJobs notes=5 keys alone (refused)", listing(store, 0, notes=NOTES)),
            ("ListJobs ids=1000 values + states=[finished]", listing(
                store, 0, ids=list(range(1, total, total // 1000)), states=["finished"])),
        ]
        for name, call in lists:
            answer = await call()
            await timer.run(name, call, t, answer)

        async def get_parent() -> str:
            row = await store.get_job(NAMESPACE, parent)
            return f"{len(row.children) if row else 0:,} children"

        await timer.run("GetJob of a job with 10,000 children", get_parent, t, await get_parent())
        await timer.run("Stats", lambda: store.stats(NAMESPACE), t)
        await timer.run("History", lambda: store.history(NAMESPACE), t)

        async def dequeue(count: int) -> str:
            tasks = TASKS + [f"x{i}" for i in range(100)]
            jobs, _, _ = await store.dequeue(
                NAMESPACE, worker, count=count, queues=QUEUES, tasks=tasks
            )
            return f"{len(jobs)} jobs"

        await timer.run("Dequeue 200 tasks x 10 queues, count 1", lambda: dequeue(1), t)
        await timer.run("Dequeue 200 tasks x 10 queues, count 100", lambda: dequeue(100), t)

        async def dequeue_child() -> str:
            jobs, _, _ = await store.dequeue(NAMESPACE, worker, queues=["depchild"])
            return f"{len(jobs)} jobs"

        answer = await timer.step(dequeue_child)
        timer.record("Dequeue a child of 1,000 parents (first and only pick)", answer)

        async def repair_steps(remove_after: float, steps: int) -> str:
            counts = []
            for _ in range(steps):
                c, more = await timer.step(
                    lambda: store.repair_batch(NAMESPACE, LONG, remove_after, LONG)
                )
                counts.append(c)
                if not more:
                    break
            old = sum(x.old_jobs for x in counts)
            expired = sum(x.expired_jobs for x in counts)
            return f"{len(counts)} steps, {old:,} old, {expired:,} expired deleted"

        answer = await repair_steps(LONG, 1000)
        timer.record("Repair (1,000 expired jobs), per step", answer)
        answer = await repair_steps(0, 50)
        timer.record("Repair (remove_after 0: old finished jobs), per step", answer)

        # Reset as Store.reset runs it, one bounded step (one script call) at a time.
        runner = ScriptRunner(client, scripts.source)
        prefix = Keyspace(NAMESPACE).prefix
        start, steps = time.perf_counter(), 0
        while await timer.step(lambda: runner.run("reset", [prefix], ["all", REPAIR_BATCH])):
            steps += 1
        took = time.perf_counter() - start
        timer.record("Reset all, per step", f"{steps + 1} steps, {took:.1f} s")

        worst = max(timer.rows, key=lambda row: row[3])
        verdict = "within" if worst[3] <= LIMIT_MS else "OVER"
        print(f"\nWorst script: {worst[3]:.2f} ms ({worst[0]}), {verdict} the {LIMIT_MS:.0f} ms "
              f"limit at {total:,} jobs")  # fmt: skip
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
