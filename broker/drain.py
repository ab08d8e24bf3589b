"""Draining on shutdown without CANCELLED calls.

gRPC's core cancels (status CANCELLED) every call that has reached the server but that the
application has not picked up yet when `server.stop()` begins, and standard retry policies do
not retry CANCELLED. So the broker first drains at the application level: from `begin()` on,
every new call is answered UNAVAILABLE at once (clients retry it on another replica), and only
once no call has arrived for a short quiet spell, meaning gRPC's queue is empty, does the
server stop; calls already running then finish within the grace period.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

SHUTTING_DOWN = "broker is shutting down; try again (another replica)"


class Drain(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Server interceptor: passes calls through until `begin()`, then answers UNAVAILABLE."""

    def __init__(self) -> None:
        self.draining = False
        self._last_call = 0.0

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if not self.draining or handler is None:
            return handler
        self._last_call = time.monotonic()
        return _unavailable(handler)

    def begin(self) -> None:
        """From now on every new call ends UNAVAILABLE."""
        self.draining = True
        self._last_call = time.monotonic()

    async def quiet(self, spell: float, deadline: float) -> None:
        """Wait until no call has arrived for `spell` seconds, or until `deadline` (monotonic)."""
        while time.monotonic() < deadline:
            idle = time.monotonic() - self._last_call
            if idle >= spell:
                return
            await asyncio.sleep(min(spell - idle, max(0.0, deadline - time.monotonic())))


async def _reject(request: Any, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN)


def _unavailable(handler: Any) -> Any:
    """A handler of the same shape as `handler` that aborts with UNAVAILABLE."""
    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_reject, **codecs)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_reject, **codecs)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_reject, **codecs)
    return grpc.stream_stream_rpc_method_handler(_reject, **codecs)
