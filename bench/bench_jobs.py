"""Job throughput and latency through a real broker (no assertions; prints a table).

Starts its own redis-server (free port, temporary directory, never 6379) and a broker, by default
in a subprocess so that the client (sync ``jobwire.Client``, its threads and the GIL) never shares
a process with the broker's event loop. Measures, each ``--repeat`` times (the median printed):

- single enqueue, sequential and from ``--threads`` threads of one client process;
- batch enqueue (``enqueue_many``) in batches of 100 and 1,000;
- dequeue + finish: ``dequeue_many(count=100)`` + ``complete_jobs`` per batch, and one job at a
  time (``dequeue`` + ``finish_job``);
- Redis commands per job from ``INFO commandstats`` deltas (all calls, inside scripts too, and
  EVALSHA calls alone);
- with ``--million``: stats and the first ``list_jobs`` page (unfiltered; by state, queue, task)
  with 1,000,000 jobs stored, filled by the enqueue script in batches of 1,000: p50/p99 of 50 calls.

    /work/venv/bin/python bench/bench_jobs.py --jobs 10000 --repeat 3 --million
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "sdk" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import redis  # noqa: E402

from bench._harness import (  # noqa: E402
    NAMESPACE,
    command_calls,
    inprocess_broker,
    redis_server,
    serve_broker,
    subprocess_broker,
)


@dataclass
class Row:
    name: str
    rates: list[float] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    evalsha: list[float] = field(default_factory=list)


def measure(r: redis.Redis, row: Row, jobs: int, work: Callable[[], None]) -> None:
    """Times `work` (which handles `jobs` jobs) and records jobs/s and Redis calls per job."""
    before = command_calls(r)
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    after = command_calls(r)
    row.rates.append(jobs / elapsed)
    # The INFO call itself is one command; leave it out.
    row.calls.append((after[0] - before[0] - 1) / jobs)
    row.evalsha.append((after[1] - before[1]) / jobs)


def fill(client: Any, jobs: int) -> None:
    for start in range(0, jobs, 1000):
        client.enqueue_many(
            [{"task": "bench", "args": [i]} for i in range(start, min(jobs, start + 1000))]
        )


def run_throughput(target: str, r: redis.Redis, jobs: int, threads: int, repeat: int) -> list[Row]:
    from jobwire import Client

    rows = {
        name: Row(name)
        for name in (
            "enqueue, sequential",
            f"enqueue, {threads} threads",
            "enqueue_many, batches of 100",
            "enqueue_many, batches of 1000",
            "dequeue_many(100) + complete_jobs",
            "dequeue + finish_job, one by one",
        )
    }
    single = min(jobs, 5000)  # one-at-a-time measurements: enough calls for a stable rate
    with Client(target, namespace=NAMESPACE) as client:
        client.stats()  # connect before timing anything
        for _ in range(repeat):
            r.flushall()

            def sequential() -> None:
                for i in range(single):
                    client.enqueue("bench", [i])

            measure(r, rows["enqueue, sequential"], single, sequential)

            def threaded() -> None:
                def loop(n: int) -> None:
                    for i in range(n):
                        client.enqueue("bench", [i])

                pool = [
                    threading.Thread(target=loop, args=(single // threads,)) for _ in range(threads)
                ]
                for t in pool:
                    t.start()
                for t in pool:
                    t.join()

            measure(r, rows[f"enqueue, {threads} threads"], single // threads * threads, threaded)

            for size in (100, 1000):
                r.flushall()
                batches = max(1, jobs // size)
                payload = [[{"task": "bench", "args": [i]} for i in range(size)]] * batches

                def batched(payload: list[list[dict[str, Any]]] = payload) -> None:
                    for batch in payload:
                        client.enqueue_many(batch)

                measure(r, rows[f"enqueue_many, batches of {size}"], batches * size, batched)

            r.flushall()
            fill(client, jobs)

            def drain_batched() -> None:
                while batch := client.dequeue_many(1, 100):
                    client.complete_jobs([(j.id, j.retries, "finished", None) for j in batch])

            measure(r, rows["dequeue_many(100) + complete_jobs"], jobs, drain_batched)

            r.flushall()
            fill(client, single)

            def drain_single() -> None:
                while job := client.dequeue(1):
                    client.finish_job(job.id, job.retries)

            measure(r, rows["dequeue + finish_job, one by one"], single, drain_single)
    return list(rows.values())


async def fill_million(redis_url: str, total: int) -> float:
    """Stores `total` inactive jobs with the enqueue script, 1,000 per call; seconds taken."""
    import redis.asyncio as aioredis

    from broker import scripts
    from broker.keyspace import Keyspace
    from broker.store import JobSpec

    r = aioredis.Redis.from_url(redis_url)
    enqueue = r.register_script(scripts.source("enqueue"))
    prefix = Keyspace(NAMESPACE).prefix
    # 10 queues x 10 tasks; the spec JSON is built once per combination.
    specs = [JobSpec(f"task{i % 10}", "[1]", queue=f"queue{i // 10}").to_args() for i in range(100)]
    batch = [arg for i in range(1000) for arg in specs[i % 100]]
    start = time.perf_counter()
    pending: set[asyncio.Task[Any]] = set()
    for _ in range(total // 1000):
        if len(pending) >= 4:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.ensure_future(enqueue(keys=[prefix], args=batch)))
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    await r.aclose()
    return elapsed


def latencies(call: Callable[[], Any], n: int = 50) -> tuple[float, float]:
    """p50 and p99 in milliseconds over n calls (after one warm-up call)."""
    call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(n - 1, round(0.99 * (n - 1)))]


def run_million(target: str, redis_url: str, r: redis.Redis, repeat: int, total: int) -> None:
    from jobwire import Client

    r.flushall()
    fill_time = asyncio.run(fill_million(redis_url, total))
    used = r.info("memory")["used_memory_human"]
    print(f"\nFilled {total:,} jobs in {fill_time:.1f} s ({total / fill_time:,.0f} jobs/s; "
          f"Redis memory {used})")  # fmt: skip
    with Client(target, namespace=NAMESPACE) as client:
        # Some jobs in other states, so a state filter has something to choose between.
        done = 0
        while done < 10_000 and (batch := client.dequeue_many(1, 100, queues=["queue0"])):
            client.complete_jobs([(j.id, j.retries, "finished", None) for j in batch])
            done += len(batch)
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("stats", client.stats),
            ("list_jobs page 1, no filter", lambda: client.list_jobs(0, 100)),
            ("list_jobs, states=[inactive]", lambda: client.list_jobs(0, 100, states=["inactive"])),
            ("list_jobs, states=[finished]", lambda: client.list_jobs(0, 100, states=["finished"])),
            ("list_jobs, queues=[queue3]", lambda: client.list_jobs(0, 100, queues=["queue3"])),
            ("list_jobs, tasks=[task7]", lambda: client.list_jobs(0, 100, tasks=["task7"])),
            ("job_info (one id)", lambda: client.job_info(total // 2)),
        ]
        print(
            f"\n{'latency, ' + format(total, ',') + ' jobs stored':<44}{'p50 ms':>10}{'p99 ms':>10}"
        )
        print("-" * 64)
        for name, call in calls:
            runs = [latencies(call) for _ in range(repeat)]
            p50 = statistics.median(x[0] for x in runs)
            p99 = statistics.median(x[1] for x in runs)
            print(f"{name:<44}{p50:>10.2f}{p99:>10.2f}")


def print_rows(rows: list[Row], repeat: int) -> None:
    print(f"\n{'throughput (median of ' + str(repeat) + ')':<40}{'jobs/s':>10}  "
          f"{'runs':<26}{'cmds/job':>9}{'evalsha/job':>12}")  # fmt: skip
    print("-" * 99)
    for row in rows:
        runs = ", ".join(f"{x:,.0f}" for x in row.rates)
        print(
            f"{row.name:<40}{statistics.median(row.rates):>10,.0f}  {runs:<26}"
            f"{statistics.median(row.calls):>9.2f}{statistics.median(row.evalsha):>12.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per batch/drain run")
    parser.add_argument("--threads", type=int, default=4, help="threads for threaded enqueue")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--million", action="store_true", help="also the 1,000,000-job latencies")
    parser.add_argument("--stored", type=int, default=1_000_000, help="jobs for --million")
    parser.add_argument(
        "--broker", choices=("subprocess", "inprocess"), default="subprocess",
        help="where the broker runs (inprocess shares this process' GIL with the client)",
    )  # fmt: skip
    parser.add_argument("--serve-broker", metavar="REDIS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_broker:
        asyncio.run(serve_broker(args.serve_broker))
        return
    start_broker = subprocess_broker if args.broker == "subprocess" else inprocess_broker
    with redis_server() as url, start_broker(url) as target:
        r = redis.Redis.from_url(url)
        version = r.info("server")["redis_version"]
        print(f"jobwire bench: broker {args.broker} at {target}, redis-server {version} at {url}, "
              f"{os.cpu_count()} CPUs, --jobs {args.jobs}, --repeat {args.repeat}")  # fmt: skip
        print_rows(run_throughput(target, r, args.jobs, args.threads, args.repeat), args.repeat)
        if args.million:
            run_million(target, url, r, args.repeat, args.stored)


if __name__ == "__main__":
    main()
