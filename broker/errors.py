"""One place that maps failures to gRPC statuses.

Expected "nothing to do" answers (no job ready, lock busy, stale retries) are response fields,
never errors. Bad input is INVALID_ARGUMENT with a google.rpc.BadRequest naming the field; Redis
being unreachable, or answering that it cannot serve now (LOADING, READONLY, BUSY, OOM ...), is
UNAVAILABLE with a RetryInfo; a request that would cost Redis more than a script may spend is
RESOURCE_EXHAUSTED; anything else is INTERNAL without internals leaking out.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import redis.exceptions
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger("jobwire.broker")

T = TypeVar("T")


class InvalidArgument(Exception):
    """A request field is malformed; nothing was changed."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


class ResourceExhausted(Exception):
    """A bound on shared resources, or on the work one request may make Redis do, would be
    exceeded; nothing was changed."""


class TryAgain(Exception):
    """The request cannot be answered now but will be soon (e.g. once repair has run)."""


def invalid_argument_status(error: InvalidArgument) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=error.field, description=error.description
                )
            ]
        )
    )
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=str(error), details=[detail])
    )


# Error replies with which Redis says "not now" rather than "never": loading after a restart, a
# replica promoted or not yet, a script running too long, out of memory, a cluster resharding.
_TRANSIENT_REPLIES = ("LOADING", "READONLY", "BUSY", "OOM", "MASTERDOWN", "TRYAGAIN",
                      "CLUSTERDOWN", "NOREPLICAS", "UNBLOCKED")  # fmt: skip


def transient_redis_error(error: BaseException) -> str | None:
    """Why a Redis error means "try again" (a short reason), or None when it does not."""
    if isinstance(error, redis.exceptions.BusyLoadingError):
        return "Redis is loading"
    if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return "Redis is unreachable"
    if isinstance(error, redis.exceptions.ResponseError):
        word = str(error).split(" ", 1)[0].upper()
        if word in _TRANSIENT_REPLIES:
            return f"Redis answered {word}"
    return None


def unavailable_status(reason: str, retry_after: float = 1.0) -> grpc.Status:
    """UNAVAILABLE with a google.rpc.RetryInfo, so clients know to retry and when."""
    detail = any_pb2.Any()
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromNanoseconds(int(retry_after * 1e9))
    detail.Pack(retry)
    return rpc_status.to_status(
        status_pb2.Status(
            code=code_pb2.UNAVAILABLE, message=f"{reason}; try again", details=[detail]
        )
    )


async def abort_for(error: BaseException, context: grpc.aio.ServicerContext) -> None:
    """Ends the call with the status that `error` stands for."""
    if isinstance(error, InvalidArgument):
        await context.abort_with_status(invalid_argument_status(error))
    if isinstance(error, ResourceExhausted):
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))
    if isinstance(error, TryAgain):
        await context.abort_with_status(unavailable_status(str(error)))
    reason = transient_redis_error(error)
    if reason is not None:
        log.warning("%s: %s", reason, error)
        await context.abort_with_status(unavailable_status(reason))
    log.exception("internal error", exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _is_abort(error: BaseException) -> bool:
    # context.abort() raises AbortError, which must propagate untouched; a second abort of a
    # call that already ended (a stream closing while the broker shuts down) raises
    # UsageError("Abort already called!"): the call is over, nothing is left to report.
    return isinstance(error, (grpc.aio.AbortError, grpc.aio.UsageError))


def rpc(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wraps a unary servicer method so every failure becomes the right status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            return await method(self, request, context)
        except Exception as error:
            if _is_abort(error):
                raise
            await abort_for(error, context)
            raise  # unreachable: abort raises

    return wrapper


def stream_rpc(
    method: Callable[..., AsyncIterator[T]],
) -> Callable[..., AsyncIterator[T]]:
    """Wraps a server-streaming servicer method like `rpc`."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[T]:
        try:
            async for message in method(self, request, context):
                yield message
        except Exception as error:
            if _is_abort(error):
                raise
            await abort_for(error, context)

    return wrapper
