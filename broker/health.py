"""grpc.health.v1: SERVING while Redis answers and wake-ups are subscribed, NOT_SERVING while
either is not (a replica without wake-ups would leave streams and long polls waiting) or while
draining."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from grpc_health.v1 import health, health_pb2

from broker.store import Store
from broker.tasks import cancel

log = logging.getLogger("jobwire.health")


class HealthReporter:
    """Pings Redis every `interval` seconds and reports the result for every service.

    `subscribed` says whether the wake-up subscription is up; `changed()` re-checks at once
    (the subscription calls it when it drops or comes back)."""

    def __init__(
        self,
        store: Store,
        services: list[str],
        interval: float = 2.0,
        subscribed: Callable[[], bool] | None = None,
    ) -> None:
        self.servicer = health.aio.HealthServicer()
        self.store = store
        self.services = ["", *services]
        self.interval = interval
        self.draining = False
        self.subscribed = subscribed
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[bool]] = set()

    async def _set(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving and not self.draining
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in self.services:
            await self.servicer.set(service, status)

    async def check(self) -> bool:
        try:
            ok = await asyncio.wait_for(self.store.ping(), self.interval)
        except Exception as error:  # any failure to answer means not serving
            log.warning("redis health check failed: %s", error)
            ok = False
        if ok and self.subscribed is not None and not self.subscribed():
            ok = False  # the subscription logs its own loss and recovery
        await self._set(ok)
        return ok

    def changed(self, _subscribed: bool = False) -> None:
        """Re-check now instead of at the next interval."""
        task = asyncio.create_task(self.check(), name="jobwire-health-check")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def start(self) -> None:
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="jobwire-health")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()

    async def drain(self) -> None:
        """Reports NOT_SERVING from now on (shutdown)."""
        self.draining = True
        await self._set(False)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        for task in list(self._checks):
            await cancel(task)
