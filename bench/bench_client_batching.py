"""Single `enqueue` throughput from one client process, with call coalescing off and on.

Starts its own redis-server (free port, temporary directory, never 6379) and a broker subprocess
(`python -m broker`, upkeep loops off), waits for its health check, then measures jobs/s of
`enqueue` called one job at a time: sequentially, from 16 and 64 threads of one sync Client, and
from 64 asyncio tasks of one AsyncClient, each with `coalesce=False` and `coalesce=True`. Prints
the median of `--repeat` runs (and the range).

    /work/venv/bin/python bench/bench_client_batching.py --jobs 6000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "sdk" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from jobwire import AsyncClient, Client  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(ready: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{what} did not start")
        time.sleep(0.05)


@contextlib.contextmanager
def running(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """A private redis-server and a broker subprocess on it; yields the broker's target."""
    executable = shutil.which("redis-server")
    if executable is None:
        sys.exit("redis-server is not on PATH")
    with tempfile.TemporaryDirectory(prefix="jobwire-bench-") as tmp:
        redis_port = free_port()
        redis_args = [executable, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", tmp]  # fmt: skip
        with running(redis_args) as redis_proc:
            wait_for(lambda: answers_ping(redis_port), "redis-server", redis_proc)
            target = f"127.0.0.1:{free_port()}"
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk" / "python")]),
                "JOBWIRE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "JOBWIRE_LISTEN": target,
                "JOBWIRE_REPAIR_INTERVAL": "0",
                "JOBWIRE_SCHEDULE_INTERVAL": "0",
                "JOBWIRE_LOG_LEVEL": "WARNING",
            }
            with running([sys.executable, "-m", "broker"], env) as broker_proc:
                wait_for(lambda: serving(target), "the broker", broker_proc)
                yield target


# Scenarios: each enqueues `jobs` jobs in a fresh namespace and returns the seconds it took.

_runs = 0


def namespace() -> str:
    global _runs
    _runs += 1
    return f"bench{_runs}"


def sequential(target: str, jobs: int, coalesce: bool) -> float:
    with Client(target, namespace=namespace(), coalesce=coalesce) as client:
        client.enqueue("warm")
        start = time.perf_counter()
        for i in range(jobs):
            client.enqueue("bench", [i])
        return time.perf_counter() - start


def threads(target: str, jobs: int, coalesce: bool, count: int) -> float:
    with Client(target, namespace=namespace(), coalesce=coalesce) as client:
        client.enqueue("warm")
        barrier = threading.Barrier(count + 1)

        def work(thread: int) -> None:
            barrier.wait()
            for i in range(jobs // count):
                client.enqueue("bench", [thread, i])

        workers = [threading.Thread(target=work, args=(n,)) for n in range(count)]
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        return time.perf_counter() - start


def tasks(target: str, jobs: int, coalesce: bool, count: int) -> float:
    async def main() -> float:
        async with AsyncClient(target, namespace=namespace(), coalesce=coalesce) as client:
            await client.enqueue("warm")

            async def work(task: int) -> None:
                for i in range(jobs // count):
                    await client.enqueue("bench", [task, i])

            start = time.perf_counter()
            await asyncio.gather(*(work(n) for n in range(count)))
            return time.perf_counter() - start

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=6400, help="jobs per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (median printed)")
    args = parser.parse_args()
    rows: list[tuple[str, Callable[[str, int], float]]] = [
        ("sequential", functools.partial(sequential, coalesce=True))
    ]
    for count in (16, 64):
        for coalesce in (False, True):
            name = f"{count} threads, coalesce {'on' if coalesce else 'off'}"
            rows.append((name, functools.partial(threads, coalesce=coalesce, count=count)))
    for coalesce in (False, True):
        name = f"64 asyncio tasks, coalesce {'on' if coalesce else 'off'}"
        rows.append((name, functools.partial(tasks, coalesce=coalesce, count=64)))
    with broker() as target:
        print(f"single enqueue, {args.jobs} jobs per run, median of {args.repeat} (min-max)")
        print(f"{'scenario':<34} {'jobs/s':>8}  range")
        for name, run in rows:
            rates = [args.jobs / run(target, args.jobs) for _ in range(args.repeat)]
            print(
                f"{name:<34} {statistics.median(rates):>8,.0f}  "
                f"{min(rates):,.0f}-{max(rates):,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
