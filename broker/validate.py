"""Checks request fields; each failure names the field and changes nothing (InvalidArgument)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import duration_pb2, struct_pb2

from broker import values
from broker.errors import InvalidArgument
from broker.keyspace import NAMESPACE_PATTERN

MAX_NAME = 256
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def namespace(value: str, default: str) -> str:
    if not value:
        return default
    if not NAMESPACE_PATTERN.match(value):
        raise InvalidArgument("namespace", "must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def name(value: str, field: str, *, default: str | None = None) -> str:
    """A task, queue, lock or schedule name: non-empty, printable, at most 256 characters."""
    if not value:
        if default is not None:
            return default
        raise InvalidArgument(field, "must not be empty")
    if len(value) > MAX_NAME:
        raise InvalidArgument(field, f"must be at most {MAX_NAME} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidArgument(field, "must not contain control characters")
    return value


def names(items: Iterable[str], field: str) -> list[str]:
    return [name(v, f"{field}[{i}]") for i, v in enumerate(items)]


def seconds(value: duration_pb2.Duration, field: str, *, minimum: float = 0.0) -> float:
    total = value.seconds + value.nanos / 1e9
    if total < minimum:
        raise InvalidArgument(field, f"must be at least {minimum:g} seconds")
    return total


def optional_seconds(
    message: Any, field: str, *, label: str | None = None, minimum: float = 0.0
) -> float | None:
    """Seconds of a Duration field, or None when the field is unset."""
    if not message.HasField(field):
        return None
    return seconds(getattr(message, field), label or field, minimum=minimum)


def attempts(value: int, field: str = "attempts") -> int:
    if value < 1:
        raise InvalidArgument(field, "must be at least 1")
    return value


def page(offset: int, limit: int | None) -> tuple[int, int]:
    if offset < 0:
        raise InvalidArgument("offset", "must not be negative")
    if limit is None:
        return offset, DEFAULT_LIMIT
    if limit < 0 or limit > MAX_LIMIT:
        raise InvalidArgument("limit", f"must be between 0 and {MAX_LIMIT}")
    return offset, limit


def _note_key(key: str, field: str) -> None:
    # Note keys name Redis index keys and are joined with control characters in list replies.
    if not key or len(key) > MAX_NAME or any(ord(c) < 32 for c in key):
        raise InvalidArgument(field, "keys must be 1-256 characters without control characters")


class Payload:
    """Encodes JSON payloads to text, enforcing the broker's size limit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def text(self, data: Any, field: str) -> str:
        try:
            text = values.dumps(data)
        except ValueError:
            raise InvalidArgument(field, "must not contain NaN or Infinity") from None
        if len(text.encode()) > self.max_bytes:
            raise InvalidArgument(field, f"must encode to at most {self.max_bytes} bytes of JSON")
        return text

    def list(self, message: struct_pb2.ListValue, field: str) -> str:
        return self.text(values.from_value(message), field)

    def value(self, message: Any, field: str) -> str:
        """JSON text of an optional Value field (unset is null)."""
        if not message.HasField(field):
            return "null"
        return self.text(values.from_value(getattr(message, field)), field)

    def notes(self, message: struct_pb2.Struct, field: str) -> dict[str, str]:
        """Top-level keys as JSON text each; nested nulls dropped (jsonb_strip_nulls)."""
        if not message.fields:
            return {}
        data = values.from_value(message)
        self.text(data, field)
        out: dict[str, str] = {}
        for key, value in data.items():
            _note_key(key, field)
            out[key] = values.dumps(values.strip_nulls(value))
        return out

    def merge(self, message: struct_pb2.Struct, field: str) -> dict[str, str | None]:
        """Like notes, but a null value stays None: it removes the key."""
        data = values.from_value(message)
        self.text(data, field)
        out: dict[str, str | None] = {}
        for key, value in data.items():
            _note_key(key, field)
            out[key] = None if value is None else values.dumps(values.strip_nulls(value))
        return out
