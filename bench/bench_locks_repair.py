"""Lock+unlock per second (through the broker over gRPC, and through the store directly) and
repair time with 100,000 finished jobs stored, none of them old and then all of them old.

    python bench/bench_locks_repair.py [--redis-url redis://127.0.0.1:6379/0] [--jobs 100000]

Without --redis-url a private redis-server is started on a free port (never 6379's data).
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "sdk" / "python")]

import redis.asyncio as aioredis  # noqa: E402

from broker.config import Settings  # noqa: E402
from broker.server import Broker  # noqa: E402
from broker.store import Completion, JobSpec, Store  # noqa: E402
from jobwire import AsyncClient  # noqa: E402

LONG = 10 * 365 * 86400.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def locks_store(store: Store, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        name = "foo" if i % 2 else "bar"
        await store.acquire_lock("bench", name, 60, 500)
        await store.release_lock("bench", name)
    return n / (time.perf_counter() - start)


async def locks_grpc(target: str, n: int) -> float:
    async with AsyncClient(target, namespace="bench") as client:
        start = time.perf_counter()
        for i in range(n):
            name = "foo" if i % 2 else "bar"
            await client.lock(name, 60, limit=500)
            await client.unlock(name)
        return n / (time.perf_counter() - start)


async def fill_finished(store: Store, namespace: str, total: int) -> None:
    wid = (await store.register_worker(namespace, None, host="bench", pid=1, status="{}")).id
    batch = 1000
    for _ in range(0, total, batch):
        await store.enqueue(namespace, [JobSpec(task="t", args="[1]") for _ in range(batch)])
        jobs, _, _ = await store.dequeue(namespace, wid, count=batch)
        await store.complete_jobs(namespace, [Completion(j.id, j.retries, False) for j in jobs])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--locks", type=int, default=5_000)
    opts = parser.parse_args()

    proc = None
    url = opts.redis_url
    if url is None:
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="jobwire-bench-")
        exe = shutil.which("redis-server") or "redis-server"
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        await asyncio.sleep(0.3)
    client = aioredis.Redis.from_url(url)
    store = Store(client)
    settings = Settings(listen="127.0.0.1:0", redis_url=url, repair_interval=0, dispatch_interval=0)
    broker = Broker(settings)
    try:
        for ns in ("bench", "bench_repair"):
            await store.reset(ns, all=True)
        port = await broker.start()
        await locks_store(store, 200)  # warm up (script load)
        print(f"lock+unlock via store: {await locks_store(store, opts.locks):,.0f}/s")
        print(f"lock+unlock via gRPC:  {await locks_grpc(f'127.0.0.1:{port}', opts.locks):,.0f}/s")

        ns = "bench_repair"
        start = time.perf_counter()
        await fill_finished(store, ns, opts.jobs)
        print(f"stored {opts.jobs:,} finished jobs in {time.perf_counter() - start:.1f} s")
        await store.register_worker(ns, 1, host="bench", pid=1, status="{}")  # heartbeat
        await store.repair("bench", LONG, LONG, LONG)  # warm up (script load)

        start = time.perf_counter()
        counts = await store.repair(ns, LONG, LONG, LONG)
        print(f"repair, none old:  {(time.perf_counter() - start) * 1000:8.2f} ms  {counts}")
        start = time.perf_counter()
        counts = await store.repair(ns, LONG, 0.001, LONG)
        print(f"repair, all old:   {(time.perf_counter() - start) * 1000:8.2f} ms  {counts}")
        start = time.perf_counter()
        counts = await store.repair(ns, LONG, 0.001, LONG)
        print(f"repair, after:     {(time.perf_counter() - start) * 1000:8.2f} ms  {counts}")
    finally:
        await broker.stop(0)
        await client.aclose()
        if proc is not None:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
