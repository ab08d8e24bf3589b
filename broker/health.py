"""grpc.health.v1: SERVING while Redis answers, NOT_SERVING while it does not or while draining."""

from __future__ import annotations

import asyncio
import logging

from grpc_health.v1 import health, health_pb2

from broker.store import Store
from broker.tasks import cancel

log = logging.getLogger("jobwire.health")


class HealthReporter:
    """Pings Redis every `interval` seconds and reports the result for every service."""

    def __init__(self, store: Store, services: list[str], interval: float = 2.0) -> None:
        self.servicer = health.aio.HealthServicer()
        self.store = store
        self.services = ["", *services]
        self.interval = interval
        self.draining = False
        self._task: asyncio.Task[None] | None = None

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
        await self._set(ok)
        return ok

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
