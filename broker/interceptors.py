"""The shape the broker's server interceptors share (tracing, metrics, auth): each method's
handler is wrapped once, on the method's first call, and that wrapper serves every later call,
so nothing is built per call."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

import grpc


class PerMethodInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Calls `wrap(method, handler)` once per method and caches the result."""

    def __init__(self) -> None:
        self._handlers: dict[str, Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method: str = details.method
        wrapped = self._handlers.get(method)
        if wrapped is None:
            wrapped = self._handlers[method] = self.wrap(method, handler)
        return wrapped

    @abstractmethod
    def wrap(self, method: str, handler: Any) -> Any:
        """The handler that serves `method` (`handler` itself to leave it as it is)."""
