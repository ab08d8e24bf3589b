"""The broker process: Redis connection, gRPC server, health, reflection and background upkeep."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from broker.config import Settings
from broker.dispatch import Dispatcher
from broker.drain import Drain
from broker.embedded_redis import EmbeddedRedis
from broker.health import HealthReporter
from broker.listen import EXCLUSIVE_PORT_OPTIONS, bind, check_free
from broker.scheduler import Scheduler
from broker.services.admin import AdminServicer
from broker.services.context import ServiceContext
from broker.services.jobs import JobServicer
from broker.services.locks import LockServicer
from broker.services.schedules import ScheduleServicer
from broker.services.workers import WorkerServicer
from broker.store import Store
from broker.upkeep import Repairer
from broker.wakeups import Wakeups
from jobwire.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
    lock_service_pb2,
    lock_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)

log = logging.getLogger("jobwire.broker")
DRAIN_QUIET = 0.1  # seconds without a new call after which gRPC's queue counts as empty
DRAIN_MAX = 1.0  # longest time new calls are refused before gRPC's stop moves clients away

SERVICE_NAMES = [
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
    lock_service_pb2.DESCRIPTOR.services_by_name["LockService"].full_name,
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
]


class Component(Protocol):
    """Background work with a lifecycle (repair, schedule dispatch, streams)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Broker:
    """One broker replica: `await start()` returns the bound port, `await stop()` drains."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedRedis | None = None
        self.redis: aioredis.Redis | None = None
        self.server: grpc.aio.Server | None = None
        self.components: list[Component] = []
        self.port = 0
        self.drain = Drain()

    async def _connect(self) -> aioredis.Redis:
        url = self.settings.redis_url
        if url is None:
            self.embedded = EmbeddedRedis(self.settings.data_dir)
            url = await self.embedded.start()
            log.info("embedded redis-server running at %s", url)
        # A blocking pool: a burst of calls waits for a connection instead of failing with
        # "Too many connections" (scripts share one pipelined connection anyway).
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=64, timeout=10)
        return aioredis.Redis(
            connection_pool=pool, decode_responses=False, health_check_interval=30
        )

    async def start(self) -> int:
        check_free(self.settings.listen)  # before any Redis is started or touched
        self.redis = await self._connect()
        store = Store(self.redis)
        wakeups = Wakeups(self.redis)
        await wakeups.start()
        self.dispatcher = Dispatcher(store, wakeups)
        ctx = ServiceContext(
            store=store, settings=self.settings, wakeups=wakeups, dispatcher=self.dispatcher
        )
        health = HealthReporter(store, SERVICE_NAMES)
        self.health = health
        self.ctx = ctx

        server = grpc.aio.server(
            interceptors=[self.drain],
            options=[
                *EXCLUSIVE_PORT_OPTIONS,
                ("grpc.max_receive_message_length", self.settings.max_payload_bytes * 2 + 65536),
                ("grpc.max_send_message_length", -1),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ]
        )
        job_service_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(ctx), server)
        worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(ctx), server)
        lock_service_pb2_grpc.add_LockServiceServicer_to_server(LockServicer(ctx), server)
        schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server(
            ScheduleServicer(ctx), server
        )
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(ctx), server)
        health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
        reflection.enable_server_reflection(
            [
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        self.port = bind(server, self.settings.listen)
        self.components = [wakeups, health, self.dispatcher, *self._upkeep(ctx)]
        await health.start()
        for component in self.components[3:]:
            await component.start()
        await server.start()
        self.server = server
        log.info("jobwire broker listening on %s (port %d)", self.settings.listen, self.port)
        return self.port

    def _upkeep(self, ctx: ServiceContext) -> list[Component]:
        """Background components beyond wake-ups and health (repair, schedules)."""
        # Both cover every namespace any replica has served. Repair runs on one replica at a
        # time; every replica dispatches schedules, and compare-and-set fires each one once.
        return [Repairer(ctx.store, self.settings), Scheduler(ctx.store, self.settings)]

    async def stop(self, grace: float | None = None) -> None:
        """Reports NOT_SERVING, stops accepting, lets in-flight calls finish within `grace`."""
        grace = self.settings.grace_period if grace is None else grace
        if self.server is not None:
            await self.health.drain()
            # Streams and long polls would hold the grace period open: end them first (workers
            # reconnect, pollers poll again), then let other in-flight calls finish.
            self.drain.begin()  # new calls: UNAVAILABLE
            self.dispatcher.close_all()
            self.ctx.wakeups.wake_all()
            # gRPC cancels the calls still queued when it stops: first answer new calls until
            # none arrive (at most DRAIN_MAX, or half the grace period), so that calls end OK
            # or UNAVAILABLE; gRPC's stop then sends GOAWAY and running calls finish in time.
            deadline = time.monotonic() + grace
            await self.drain.quiet(DRAIN_QUIET, time.monotonic() + min(DRAIN_MAX, grace / 2))
            log.info("drained: %d new calls answered UNAVAILABLE", self.drain.refused)
            await self.server.stop(max(0.0, deadline - time.monotonic()))
            self.server = None
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %s failed", component)
        self.components = []
        if self.redis is not None:
            await self.redis.aclose(close_connection_pool=True)
            self.redis = None
        if self.embedded is not None:
            await self.embedded.stop()
            self.embedded = None

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


async def serve(settings: Settings) -> None:
    """Runs a broker until SIGINT or SIGTERM."""
    import signal

    broker = Broker(settings)
    try:
        await broker.start()
    except BaseException:
        await broker.stop(0)  # whatever started (an embedded Redis) stops again
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down (grace %.1fs)", settings.grace_period)
    await broker.stop()
