"""The wake-up subscription as an operator sees it: a killed or refused pub/sub connection comes
back by itself, health says NOT_SERVING meanwhile, and risky Redis settings are logged at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from broker.embedded_redis import find_redis_server
from broker.wakeups import Wakeups
from jobwire import Client
from jobwire.v1 import worker_service_pb2 as wpb
from jobwire.v1 import worker_service_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(port: int, workdir: Path, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.exceptions.ConnectionError):
            if redis.Redis(port=port).ping():
                return proc
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("redis-server did not start")


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


class RedisServers:
    """redis-servers of a test's own, stopped after the test (after its brokers: request this
    fixture before make_broker)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, *extra: str, port: int = 0) -> int:
        port = port or free_port()
        self.procs[port] = start_redis(port, self.workdir, *extra)
        return port

    def stop(self, port: int) -> None:
        stop_redis(self.procs.pop(port))


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[RedisServers]:
    started = RedisServers(tmp_path)
    yield started
    for port in list(started.procs):
        started.stop(port)


def health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status: int = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        return status


def wait_for(condition: Any, timeout: float = 10) -> float:
    """Polls `condition` until true; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - start


class Stream:
    """An open Subscribe stream read in a thread; pushed jobs' ids land in a queue."""

    def __init__(self, target: str, namespace: str, worker: int) -> None:
        self.channel = grpc.insecure_channel(target)
        stub = worker_service_pb2_grpc.WorkerServiceStub(self.channel)
        self.call = stub.Subscribe(
            wpb.SubscribeRequest(namespace=namespace, worker_id=worker, concurrency=10)
        )
        self.jobs: queue.Queue[int] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for message in self.call:
                for job in message.jobs:
                    self.jobs.put(job.id)

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(5)
        self.channel.close()


class LongPoll:
    """One Dequeue with a long wait in a thread; `.result` is what it returned."""

    def __init__(self, client: Client, worker: int) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.thread = threading.Thread(target=self._run, args=(client, worker), daemon=True)
        self.thread.start()

    def _run(self, client: Client, worker: int) -> None:
        self.result = client.dequeue(worker, wait=30)
        self.done.set()


def assert_wakeups_flow(target: str, tag: str) -> None:
    """A job enqueued now reaches an open stream and a waiting long poll within 2 s."""
    with (
        Client(target, namespace=f"s{tag}") as streamed,
        Client(target, namespace=f"p{tag}") as polled,
    ):
        stream = Stream(target, f"s{tag}", streamed.register_worker())
        poll = LongPoll(polled, polled.register_worker())
        time.sleep(0.3)  # both waiting: the stream's first round and the poll's first try done
        assert stream.jobs.empty() and not poll.done.is_set()
        try:
            job = streamed.enqueue("t")
            assert stream.jobs.get(timeout=2) == job
            job = polled.enqueue("t")
            assert poll.done.wait(2)
            assert poll.result.id == job
        finally:
            stream.close()


def test_killed_pubsub_connection_resumes_wakeups(
    servers: RedisServers, make_broker: Any, namespace: str
) -> None:
    port = servers.start()
    replica = make_broker(redis_url=f"redis://127.0.0.1:{port}/0")
    admin = redis.Redis(port=port)
    with (
        Client(replica.target, namespace=namespace) as streamed,
        Client(replica.target, namespace=f"{namespace}p") as polled,
    ):
        stream = Stream(replica.target, namespace, streamed.register_worker())
        poll = LongPoll(polled, polled.register_worker())
        time.sleep(0.3)
        try:
            assert admin.client_kill_filter(_type="pubsub") >= 1
            # Enqueued at once, maybe before the broker listens again: the resubscription
            # signals every namespace, so neither waits for an unrelated wake-up.
            killed = time.monotonic()
            streamed_job = streamed.enqueue("t")
            polled_job = polled.enqueue("t")
            assert stream.jobs.get(timeout=2) == streamed_job
            assert poll.done.wait(2) and poll.result.id == polled_job
            print(f"wake-ups after CLIENT KILL: {time.monotonic() - killed:.3f}s")
        finally:
            stream.close()
    assert health(replica.target) == SERVING
    assert_wakeups_flow(replica.target, namespace)


def test_refused_subscription_is_not_serving_until_it_is_back(
    servers: RedisServers, make_broker: Any, namespace: str
) -> None:
    port = servers.start()
    admin = redis.Redis(port=port)
    # A user who may do everything but PSUBSCRIBE: Redis answers, wake-ups cannot flow.
    admin.acl_setuser(
        "jw",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-psubscribe"],
    )
    replica = make_broker(redis_url=f"redis://jw:pw@127.0.0.1:{port}/0")
    assert health(replica.target) == NOT_SERVING
    admin.acl_setuser("jw", enabled=True, commands=["+psubscribe"])
    took = wait_for(lambda: health(replica.target) == SERVING)
    print(f"SERVING {took:.3f}s after PSUBSCRIBE was allowed")
    assert_wakeups_flow(replica.target, namespace)


def test_redis_restart_flips_health_and_wakeups_come_back(
    servers: RedisServers, make_broker: Any, namespace: str
) -> None:
    port = servers.start()
    replica = make_broker(redis_url=f"redis://127.0.0.1:{port}/0")
    assert health(replica.target) == SERVING
    servers.stop(port)
    took = wait_for(lambda: health(replica.target) == NOT_SERVING)
    print(f"NOT_SERVING {took:.3f}s after redis-server stopped")
    servers.start(port=port)
    took = wait_for(lambda: health(replica.target) == SERVING)
    print(f"SERVING {took:.3f}s after redis-server restarted")
    assert replica.broker.ctx.wakeups.subscribed
    assert_wakeups_flow(replica.target, namespace)


class FreezableProxy:
    """A TCP proxy to Redis that can stop forwarding without closing anything (a silent drop)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.frozen = False
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        listen_port: int = self.server.sockets[0].getsockname()[1]
        return listen_port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if not self.frozen:
                    writer.write(data)
                    await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def is_subscribed(wakeups: Wakeups) -> bool:
    return wakeups.subscribed


async def test_silently_dead_connection_is_noticed_by_ping(servers: RedisServers) -> None:
    port = servers.start()
    proxy = FreezableProxy(port)
    client = aioredis.Redis(port=await proxy.start())
    wakeups = Wakeups(client, ping_interval=0.2, ping_timeout=0.2)
    states: list[bool] = []
    wakeups.on_state(states.append)
    try:
        await wakeups.start()
        assert wakeups.subscribed
        await asyncio.sleep(1)  # idle: PINGs answered, still subscribed
        assert states == [True]
        proxy.frozen = True  # the connection stays open but nothing comes back
        frozen = time.monotonic()
        while is_subscribed(wakeups):
            assert time.monotonic() - frozen < 2, "dead connection not noticed"
            await asyncio.sleep(0.01)
        print(f"silent drop noticed after {time.monotonic() - frozen:.3f}s")
        proxy.frozen = False  # new connections work again
        while not is_subscribed(wakeups):
            assert time.monotonic() - frozen < 5, "no resubscription"
            await asyncio.sleep(0.01)
        assert states == [True, False, True]
        generation = wakeups.generation("ns")
        publisher = aioredis.Redis(port=port)
        await publisher.publish("jobwire:{ns}:wake", "")
        await publisher.aclose()
        await wakeups.wait("ns", generation, 2)
        assert wakeups.generation("ns") != generation
    finally:
        await wakeups.stop()
        await client.aclose()
        await proxy.stop()


def test_startup_warns_about_risky_redis_settings(
    servers: RedisServers, make_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = servers.start("--maxmemory-policy", "allkeys-lru", "--appendonly", "no")
    with caplog.at_level(logging.INFO, logger="jobwire.redis"):
        replica = make_broker(redis_url=f"redis://127.0.0.1:{port}/0")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and r.name == "jobwire.redis"]  # fmt: skip
    assert any("maxmemory-policy is allkeys-lru" in w for w in warnings), warnings
    assert any("appendonly is off" in w for w in warnings), warnings
    assert not any("older than" in w for w in warnings), warnings
    assert health(replica.target) == SERVING  # advice only: the broker serves


def test_startup_without_config_command_says_so_and_starts(
    servers: RedisServers, make_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = servers.start("--rename-command", "CONFIG", "")
    with caplog.at_level(logging.INFO, logger="jobwire.redis"):
        replica = make_broker(redis_url=f"redis://127.0.0.1:{port}/0")
    records = [r for r in caplog.records if r.name == "jobwire.redis"]
    assert any(
        r.levelno == logging.INFO and "cannot read Redis setting" in r.getMessage() for r in records
    )
    assert not any(r.levelno == logging.WARNING for r in records)
    assert health(replica.target) == SERVING


@pytest.mark.parametrize("retries", [0, 3])
async def test_resubscription_wakes_waiters(servers: RedisServers, retries: int) -> None:
    """Messages published while the subscription was down are lost: a waiter is woken once it
    is back, also when the client is configured to retry commands."""
    port = servers.start()
    client = aioredis.Redis(port=port, retry=Retry(NoBackoff(), retries))
    wakeups = Wakeups(client)
    try:
        await wakeups.start()
        generation = wakeups.generation("ns")
        waiter = asyncio.create_task(wakeups.wait("ns", generation, 30))
        await asyncio.sleep(0.1)
        admin = aioredis.Redis(port=port)
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        await admin.aclose()
        await asyncio.wait_for(waiter, 2)
        assert wakeups.generation("ns") != generation
    finally:
        await wakeups.stop()
        await client.aclose()
