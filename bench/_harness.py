"""What the benchmarks share: a private redis-server, a broker subprocess, Redis command counts.

The redis-server listens on a free port of 127.0.0.1 (never 6379) in a temporary directory
without persistence. The broker runs in its own process (``python bench/_harness.py REDIS_URL``
prints its port, stops on SIGTERM), so a client never shares a GIL with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "sdk" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import redis  # noqa: E402

NAMESPACE = "bench"


# Redis and broker --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server without persistence; yields its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        sys.exit("redis-server is not on PATH")
    with tempfile.TemporaryDirectory(prefix="jobwire-bench-") as tmp:
        for _ in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", tmp, "--logfile", str(Path(tmp) / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            url = f"redis://127.0.0.1:{port}/0"
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if redis.Redis.from_url(url).ping():
                        break
                except redis.ConnectionError:
                    time.sleep(0.02)
            if proc.poll() is None:
                break
        else:
            sys.exit("redis-server failed to start")
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def broker_settings(redis_url: str) -> Any:
    """The bench broker: upkeep off, quiet; other JOBWIRE_* variables apply (JOBWIRE_HTTP_LISTEN
    empty measures without metrics)."""
    from broker.config import Settings

    return Settings.from_env().replace(
        listen="127.0.0.1:0", redis_url=redis_url, repair_interval=0, dispatch_interval=0,
        log_level="WARNING",
    )  # fmt: skip


async def serve_broker(redis_url: str) -> None:
    """Child mode: run a broker, print its port, stop on SIGTERM."""
    from broker.server import Broker

    broker = Broker(broker_settings(redis_url))
    port = await broker.start()
    print(port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await broker.stop(0.5)


@dataclass(frozen=True)
class BrokerProcess:
    """A broker subprocess: its gRPC target and pid."""

    target: str
    pid: int


@contextlib.contextmanager
def broker_process(redis_url: str) -> Iterator[BrokerProcess]:
    """A broker in a subprocess (this file run as a script); stopped with SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), redis_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        sys.exit("the broker subprocess did not start")
    try:
        yield BrokerProcess(f"127.0.0.1:{int(line)}", proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@contextlib.contextmanager
def subprocess_broker(redis_url: str) -> Iterator[str]:
    with broker_process(redis_url) as broker:
        yield broker.target


@contextlib.contextmanager
def inprocess_broker(redis_url: str) -> Iterator[str]:
    """The broker on its own event loop in a thread of this process (shares the GIL)."""
    from broker.server import Broker

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    broker = Broker(broker_settings(redis_url))
    port = asyncio.run_coroutine_threadsafe(broker.start(), loop).result(30)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(broker.stop(0.5), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# Measuring ---------------------------------------------------------------------------------------


def command_calls(r: redis.Redis) -> tuple[int, int]:
    """(all calls, evalsha + eval calls) from INFO commandstats."""
    stats = r.info("commandstats")
    total = sum(int(v["calls"]) for v in stats.values())
    scripts = sum(
        int(stats.get(k, {}).get("calls", 0)) for k in ("cmdstat_evalsha", "cmdstat_eval")
    )
    return total, scripts


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat utime + stime)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    asyncio.run(serve_broker(sys.argv[1]))
