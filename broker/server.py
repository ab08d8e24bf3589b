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

from broker.auth import AuthInterceptor, Authorizer, exposure_problem
from broker.config import DEFAULT_HTTP_LISTEN, Settings
from broker.decoding import RejectUndecodable
from broker.dispatch import Dispatcher
from broker.drain import Drain
from broker.embedded_redis import EmbeddedRedis
from broker.health import HealthReporter
from broker.http import HttpServer
from broker.leases import LeaseReaper
from broker.listen import EXCLUSIVE_PORT_OPTIONS, bind, check_free
from broker.metrics import Metrics
from broker.redis_checks import check_redis
from broker.scheduler import Scheduler
from broker.services.admin import AdminServicer
from broker.services.context import ServiceContext
from broker.services.jobs import JobServicer
from broker.services.locks import LockServicer
from broker.services.schedules import ScheduleServicer
from broker.services.workers import WorkerServicer
from broker.store import Store
from broker.tls import ServerTls, TlsFiles
from broker.tracing import Tracing
from broker.tracing import enabled as tracing_enabled
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


def _keepalive_options(settings: Settings) -> list[tuple[str, int]]:
    """HTTP/2 pings close connections (and their streams) whose peer went away silently, also
    while nothing is sent; client pings more often than every 10 s without calls are refused."""
    return [
        ("grpc.keepalive_time_ms", int(settings.ping_interval * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.ping_timeout * 1000)),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
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
        self.authorizer: Authorizer | None = None
        self.tls: ServerTls | None = None
        self.metrics: Metrics | None = None
        self.http: HttpServer | None = None
        self.http_port: int | None = None  # None: no HTTP port
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
        return aioredis.Redis(connection_pool=pool, decode_responses=False)

    def _security(self) -> None:
        """Load the token file and certificates; refuse to serve beyond loopback unguarded."""
        s = self.settings
        problem = exposure_problem(
            s.listen,
            tokens=s.auth_file is not None,
            client_certificates=s.tls_client_ca is not None,
            allow_insecure=False,
        )
        if problem is not None and not s.allow_insecure:
            raise RuntimeError(problem)
        if problem is not None:
            log.warning("serving %s without authentication (JOBWIRE_ALLOW_INSECURE=1)", s.listen)
        if s.auth_file is not None:
            self.authorizer = Authorizer(s.auth_file, s.namespace)
        if s.tls_cert is not None and s.tls_key is not None:
            self.tls = ServerTls(TlsFiles(s.tls_cert, s.tls_key, s.tls_client_ca))

    def reload(self) -> None:
        """SIGHUP: re-read the token file and the certificates (bad ones keep the current)."""
        if self.authorizer is not None:
            self.authorizer.reload()
        if self.tls is not None:
            self.tls.reload()

    async def start(self) -> int:
        self._security()
        check_free(self.settings.listen)  # before any Redis is started or touched
        self.redis = await self._connect()
        try:
            await check_redis(self.redis)
        except Exception as error:  # advice only: never a reason not to start
            log.info("could not check the Redis configuration: %s", error)
        store = Store(
            self.redis,
            lease_duration=self.settings.lease_duration,
            lease_grace=self.settings.lease_grace,
            max_namespaces=self.settings.max_namespaces,
        )
        wakeups = Wakeups(self.redis)
        await wakeups.start()
        self.dispatcher = Dispatcher(store, wakeups)
        ctx = ServiceContext(
            store=store, settings=self.settings, wakeups=wakeups, dispatcher=self.dispatcher
        )
        health = HealthReporter(store, SERVICE_NAMES, subscribed=lambda: wakeups.subscribed)
        wakeups.on_state(health.changed)
        self.health = health
        self.ctx = ctx
        await self._start_http(store)
        # Outermost first: the RPC span encloses what the metrics measure, and the metrics count
        # what authentication refuses.
        interceptors: list[grpc.aio.ServerInterceptor] = []
        for hooks in (Tracing() if tracing_enabled() else None, self.metrics):
            if hooks is not None:
                interceptors.append(hooks.interceptor)
                store.observe_scripts(hooks.script_called)
        if self.metrics is not None:
            store.observe_jobs(self.metrics)
        if self.authorizer is not None:
            interceptors.append(AuthInterceptor(self.authorizer))

        server = grpc.aio.server(
            interceptors=[self.drain, *interceptors],
            options=[
                *EXCLUSIVE_PORT_OPTIONS,
                ("grpc.max_receive_message_length", self.settings.max_payload_bytes * 2 + 65536),
                ("grpc.max_send_message_length", -1),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
                *_keepalive_options(self.settings),
            ],
            maximum_concurrent_rpcs=self.settings.max_concurrent_rpcs,
        )
        services: Any = RejectUndecodable(server)  # undecodable requests: INVALID_ARGUMENT
        job_service_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(ctx), services)
        worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(WorkerServicer(ctx), services)
        lock_service_pb2_grpc.add_LockServiceServicer_to_server(LockServicer(ctx), services)
        schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server(
            ScheduleServicer(ctx), services
        )
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(ctx), services)
        health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
        reflection.enable_server_reflection(
            [
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        credentials = None if self.tls is None else self.tls.credentials()
        self.port = bind(server, self.settings.listen, credentials)
        self.components = [wakeups, health, self.dispatcher, *self._upkeep(ctx)]
        await health.start()
        for component in self.components[3:]:
            await component.start()
        await server.start()
        self.server = server
        log.info("jobwire broker listening on %s (port %d)", self.settings.listen, self.port)
        return self.port

    def _upkeep(self, ctx: ServiceContext) -> list[Component]:
        """Background components beyond wake-ups and health (repair, schedules, leases)."""
        # All cover every namespace any replica has served. Repair runs on one replica at a
        # time; every replica dispatches schedules, and compare-and-set fires each one once.
        repairer = Repairer(ctx.store, self.settings)
        scheduler = Scheduler(ctx.store, self.settings)
        if self.metrics is not None:
            repairer.on_repaired = self.metrics.repair_ran
            scheduler.on_fired = self.metrics.schedules_ran
        return [repairer, scheduler, LeaseReaper(ctx.store, self.settings)]

    async def _start_http(self, store: Store) -> None:
        """The HTTP port and its metrics: JOBWIRE_HTTP_LISTEN, else the default address unless
        it is taken (then no metrics are collected either)."""
        address = self.settings.http_listen
        if address == "":
            return
        metrics = Metrics(store, self.dispatcher, self.settings.namespace)
        http = HttpServer(
            address or DEFAULT_HTTP_LISTEN,
            optional=address is None,
            ready=self.ready,
            metrics=metrics,
        )
        self.http_port = await http.start()
        if self.http_port is not None:
            self.http, self.metrics = http, metrics

    async def ready(self) -> bool:
        """Readiness, the same truth as grpc.health.v1: Redis answers and not draining."""
        return await self.health.check() and not self.health.draining

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
        if self.http is not None:
            await self.http.stop()
            self.http = None
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
    loop.add_signal_handler(signal.SIGHUP, broker.reload)
    await stop.wait()
    log.info("shutting down (grace %.1fs)", settings.grace_period)
    await broker.stop()
