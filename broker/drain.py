"""Draining on shutdown without CANCELLED calls.

gRPC's core cancels (status CANCELLED) every call that has reached the server but that the
application has not picked up yet when `server.stop()` begins, and standard retry policies do
not retry CANCELLED. So the broker first drains at the application level: from `begin()` on,
every new call is answered UNAVAILABLE at once (clients retry it on another replica), and only
once no call has arrived for a short quiet spell, meaning gRPC's queue is empty, does the
server stop; calls already running then finish within the grace period. (A client that keeps
calling this replica on the same connection for the whole drain can still race gRPC's stop:
calls it sends before its GOAWAY arrives may end CANCELLED.)
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
        self.refused = 0  # calls answered UNAVAILABLE since begin()

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if not self.draining or handler is None:
            return handler
        self.refused += 1
        return _unavailable(handler)

    def begin(self) -> None:
        """From now on every new call ends UNAVAILABLE."""
        self.draining = True

    async def quiet(self, spell: float, deadline: float, checks: int = 5) -> None:
        """Wait until no call has arrived for `spell` seconds, or until `deadline` (monotonic).

        The spell is watched in `checks` steps: gRPC hands a queued call over in several event
        loop turns, so a loop that stalled (a busy machine) must not mistake calls it has not
        been handed yet for silence.
        """
        seen, since, quiet_checks = self.refused, time.monotonic(), 0
        while time.monotonic() < deadline:
            await asyncio.sleep(spell / checks)
            if self.refused != seen:
                seen, since, quiet_checks = self.refused, time.monotonic(), 0
                continue
            quiet_checks += 1
            if quiet_checks >= checks and time.monotonic() - since >= spell:
                return


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
