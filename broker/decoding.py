"""Requests whose bytes cannot be decoded answer INVALID_ARGUMENT instead of UNKNOWN.

grpc turns an exception raised while decoding a request into UNKNOWN with the exception's text and
logs a traceback per call. `RejectUndecodable` stands in for the server while the generated
``add_*Servicer_to_server`` functions register their handlers: each request decoder then returns a
marker on failure, and the method answers INVALID_ARGUMENT naming the field "request" (one log
line, nothing internal in the status) before the servicer ever runs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import grpc

from broker.errors import InvalidArgument, invalid_argument_status

log = logging.getLogger("jobwire.broker")


class Undecodable:
    """Stands for a request that could not be decoded."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _decoder(decode: Callable[[bytes], Any], type_name: str) -> Callable[[bytes], Any]:
    def decoder(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception:  # DecodeError, invalid UTF-8, nesting beyond the decoder's limit...
            return Undecodable(f"not a valid {type_name}")

    return decoder


async def _reject(method: str, request: Undecodable, context: grpc.aio.ServicerContext) -> None:
    log.warning("rejected undecodable request to %s: %s", method, request.reason)
    error = InvalidArgument("request", f"cannot be decoded: {request.reason}")
    await context.abort_with_status(invalid_argument_status(error))


def _unary(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            await _reject(method, request, context)
        return await behavior(request, context)

    return unary


def _streaming(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, Undecodable):
            await _reject(method, request, context)
        async for message in behavior(request, context):
            yield message

    return streaming


def guard(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """The handler with its request decoder and unary-request behavior guarded."""
    decode = handler.request_deserializer
    if decode is None or handler.request_streaming:
        return handler
    type_name = getattr(getattr(decode, "__self__", None), "DESCRIPTOR", None)
    name = type_name.full_name if type_name is not None else "request message"
    changes: dict[str, Any] = {"request_deserializer": _decoder(decode, name)}
    if handler.unary_unary is not None:
        changes["unary_unary"] = _unary(method, handler.unary_unary)
    if handler.unary_stream is not None:
        changes["unary_stream"] = _streaming(method, handler.unary_stream)
    return handler._replace(**changes)


class _GuardedGeneric:
    """A generic handler whose method handlers come back guarded."""

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self.inner = inner

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = self.inner.service(handler_call_details)
        if handler is None:
            return None
        return guard(handler_call_details.method, handler)


class RejectUndecodable:
    """Pass instead of the server to the generated ``add_*Servicer_to_server`` functions."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self.server.add_generic_rpc_handlers([_GuardedGeneric(h) for h in handlers])

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        self.server.add_registered_method_handlers(
            service_name,
            {
                name: guard(f"/{service_name}/{name}", handler)
                for name, handler in method_handlers.items()
            },
        )
