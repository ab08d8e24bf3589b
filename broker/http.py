"""The broker's HTTP port: /metrics (Prometheus text), /healthz (process up), /readyz (serving).

Built on aiohttp's web server: it runs on the broker's own asyncio loop next to grpc.aio (no
thread, no second process, no ASGI server that wants to own the loop or the signals), it is small
and actively maintained, and routes are plain handlers added to one `web.Application`, so the
Connect/JSON API and the dashboard can join /metrics on this port later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from broker.metrics import Metrics

log = logging.getLogger("jobwire.http")

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def split_address(address: str) -> tuple[str | None, int]:
    """'host:port' (IPv6 in brackets) -> (host, port); an empty host means every interface."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    return host or None, int(port)


class HttpServer:
    """The HTTP port; `start()` returns the bound port, or None when an optional one is taken."""

    def __init__(
        self,
        address: str,
        *,
        optional: bool,
        ready: Callable[[], Awaitable[bool]],
        metrics: Metrics | None = None,
    ) -> None:
        self.address = address
        self.optional = optional
        self.ready = ready
        self.metrics = metrics
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        if metrics is not None:
            self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> int | None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = split_address(self.address)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            await runner.cleanup()
            reason = error.strerror or str(error)
            if not self.optional:
                raise RuntimeError(
                    f"cannot listen on JOBWIRE_HTTP_LISTEN {self.address}: {reason}"
                ) from None
            log.warning(
                "HTTP port %s unavailable (%s); running without /metrics, /healthz, /readyz"
                " (set JOBWIRE_HTTP_LISTEN to choose another address, empty to turn it off)",
                self.address,
                reason,
            )
            return None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("HTTP port listening on %s (port %d)", self.address, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if await self.ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self.metrics is not None
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": PROMETHEUS_TEXT})
