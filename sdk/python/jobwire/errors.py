"""The error types of the jobwire SDK, decoded from a gRPC status and its rich details.

Expected outcomes ("no job ready", "lock busy", "stale retries") are return values, not errors;
a JobwireError means the call itself failed: bad input, broker or Redis unavailable, deadline.
Each common status code has its own subclass (NotFoundError, InvalidArgumentError, ...), so
callers catch what they handle without importing grpc; other codes raise JobwireError itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "JobwireError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "from_rpc_error",
    "invalid_argument",
    "jobwire_error",
]

# google.rpc detail messages that are unpacked from the status; others stay packed in an Any.
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.BadRequest,
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
)


class JobwireError(Exception):
    """A failed jobwire call: status `code`, `reason` (the status message), decoded details.

    `field_violations` lists `(field, description)` pairs from a `google.rpc.BadRequest`;
    `details` holds every detail message of the rich status (known google.rpc types unpacked).
    """

    code: grpc.StatusCode
    reason: str
    field_violations: list[tuple[str, str]]
    details: list[Message]

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        *,
        field_violations: Iterable[tuple[str, str]] = (),
        details: Iterable[Message] = (),
    ) -> None:
        self.code = code
        self.reason = reason
        self.field_violations = list(field_violations)
        self.details = list(details)
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        text = f"{self.code.name}: {self.reason or 'no message'}"
        missing = [
            f"{field}: {description}" if description else field
            for field, description in self.field_violations
            if f"{field}: {description}" not in self.reason
        ]
        if missing:
            text += f" ({'; '.join(missing)})"
        return " ".join(text.split())

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self.code, self.reason, self.field_violations, self.details),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.name}, reason={self.reason!r}, "
            f"field_violations={self.field_violations!r})"
        )


class NotFoundError(JobwireError):
    """NOT_FOUND: the job, worker, lock or schedule named does not exist."""


class InvalidArgumentError(JobwireError):
    """INVALID_ARGUMENT: bad input, nothing changed; `field_violations` names the fields."""


class UnavailableError(JobwireError):
    """UNAVAILABLE: the broker or its Redis cannot be reached now; retrying later may work."""


class DeadlineExceededError(JobwireError, TimeoutError):
    """DEADLINE_EXCEEDED: a call or a client-side wait ran out of time; also a TimeoutError."""


class ResourceExhaustedError(JobwireError):
    """RESOURCE_EXHAUSTED: a size or rate limit was hit (say, a payload over the maximum)."""


class PermissionDeniedError(JobwireError):
    """PERMISSION_DENIED: the token is valid but may not make this call."""


class UnauthenticatedError(JobwireError):
    """UNAUTHENTICATED: no token, or one the broker does not know."""


class FailedPreconditionError(JobwireError):
    """FAILED_PRECONDITION: the call does not fit the current state (say, a worker not known)."""


# The subclass raised for each status code; codes not listed raise JobwireError itself.
_ERROR_TYPES: dict[grpc.StatusCode, type[JobwireError]] = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
}


def jobwire_error(
    code: grpc.StatusCode,
    reason: str,
    *,
    field_violations: Iterable[tuple[str, str]] = (),
    details: Iterable[Message] = (),
) -> JobwireError:
    """The error of the class for `code` (JobwireError itself for codes without a subclass)."""
    error_type = _ERROR_TYPES.get(code, JobwireError)
    return error_type(code, reason, field_violations=field_violations, details=details)


def _rebuild(
    code: grpc.StatusCode,
    reason: str,
    field_violations: list[tuple[str, str]],
    details: list[Message],
) -> JobwireError:
    return jobwire_error(code, reason, field_violations=field_violations, details=details)


def invalid_argument(field: str, description: str) -> JobwireError:
    """The error for client-side input that cannot be put on the wire, naming its field."""
    return InvalidArgumentError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"{field}: {description}",
        field_violations=[(field, description)],
        details=[
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=field, description=description
                    )
                ]
            )
        ],
    )


def from_rpc_error(error: grpc.RpcError) -> JobwireError:
    """Convert a failed call (`grpc.RpcError` or `grpc.aio.AioRpcError`) into the JobwireError
    subclass for its status code."""
    code = _call_attr(error, "code", grpc.StatusCode.UNKNOWN)
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    message = _call_attr(error, "details", None)
    if isinstance(message, str):
        reason = message
    else:  # a bare RpcError that is not a call has only its text
        reason = "" if callable(getattr(error, "details", None)) else str(error)
    details: Sequence[AnyMessage] = ()
    status = _rich_status(error)
    if status is not None:
        reason = status.message or reason
        details = status.details
    decoded = [_unpack(item) for item in details]
    violations = [
        (violation.field, violation.description)
        for message in decoded
        if isinstance(message, error_details_pb2.BadRequest)
        for violation in message.field_violations
    ]
    return jobwire_error(code, reason, field_violations=violations, details=decoded)


def _call_attr(error: grpc.RpcError, name: str, default: Any) -> Any:
    method = getattr(error, name, None)
    if not callable(method):
        return default
    try:
        return method()
    except Exception:
        return default


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status in the trailers, or None when absent or inconsistent."""
    if not callable(getattr(error, "trailing_metadata", None)):
        return None
    try:
        status = rpc_status.from_call(error)
    except Exception:  # malformed or mismatching details: fall back to code and message
        return None
    return status if isinstance(status, status_pb2.Status) else None


def _unpack(packed: AnyMessage) -> Message:
    for message_type in _DETAIL_TYPES:
        if packed.TypeName() == message_type.DESCRIPTOR.full_name:
            message = message_type()
            if packed.Unpack(message):
                return message
    return packed
