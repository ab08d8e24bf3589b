"""Checks request fields; each failure names the field and changes nothing (InvalidArgument).

The bounds come from broker/limits.py. Repeated fields are deduplicated here, at the edge, so no
script ever does work twice for one value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from google.protobuf import duration_pb2, struct_pb2

from broker import limits, values
from broker.errors import InvalidArgument
from broker.keyspace import NAMESPACE_PATTERN

T = TypeVar("T")


def namespace(value: str, default: str) -> str:
    if not value:
        return default
    if not NAMESPACE_PATTERN.fullmatch(value):
        raise InvalidArgument("namespace", "must be 1-64 characters of A-Z a-z 0-9 _ . -")
    return value


def unique(items: Iterable[T]) -> list[T]:
    """The items without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


def count(items: list[T], field: str, most: int) -> list[T]:
    if len(items) > most:
        raise InvalidArgument(field, f"must hold at most {most} distinct values")
    return items


def text(value: str, field: str, most: int = limits.MAX_NAME) -> str:
    """Free text stored as is (a host name, a cron expression): at most `most` characters."""
    if len(value) > most:
        raise InvalidArgument(field, f"must be at most {most} characters")
    return value


def name(value: str, field: str, *, default: str | None = None) -> str:
    """A task, queue, lock or schedule name: non-empty, printable, at most MAX_NAME characters."""
    if not value:
        if default is not None:
            return default
        raise InvalidArgument(field, "must not be empty")
    if len(value) > limits.MAX_NAME:
        raise InvalidArgument(field, f"must be at most {limits.MAX_NAME} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidArgument(field, "must not contain control characters")
    return value


def names(items: Iterable[str], field: str, most: int = limits.MAX_FILTER_VALUES) -> list[str]:
    """Distinct names, each checked like `name`, at most `most` of them."""
    distinct = count(unique(items), field, most)
    return [name(v, f"{field}[{i}]") for i, v in enumerate(distinct)]


def ready_sets(queues: list[str], tasks: list[str]) -> int:
    """How many (queue, task) ready sets a pick looks at; at most MAX_READY_SETS."""
    pairs = len(queues) * max(len(tasks), 1)
    if pairs > limits.MAX_READY_SETS:
        raise InvalidArgument(
            "tasks", f"times queues must be at most {limits.MAX_READY_SETS} (queue, task) pairs"
        )
    return pairs


def ident(value: int, field: str = "id", most: int = limits.MAX_ID) -> int:
    """A job, worker or schedule id: 1..MAX_ID (exact in JavaScript and in Lua)."""
    if not 1 <= value <= most:
        raise InvalidArgument(field, f"must be an id between 1 and {most}")
    return value


def optional_ident(message: Any, field: str, most: int = limits.MAX_ID) -> int | None:
    """An optional id field: None when unset."""
    return ident(getattr(message, field), field, most) if message.HasField(field) else None


def idents(items: Iterable[int], field: str, most: int = limits.MAX_IDS) -> list[int]:
    """Distinct ids, each checked like `ident`, at most `most` of them."""
    distinct = count(unique(items), field, most)
    for i, value in enumerate(distinct):
        ident(value, f"{field}[{i}]")
    return distinct


def seconds(
    value: duration_pb2.Duration,
    field: str,
    *,
    minimum: float = 0.0,
    maximum: float = limits.MAX_DURATION,
) -> float:
    """A Duration in seconds within [minimum, maximum] (default: 0 to MAX_DURATION)."""
    if not -999_999_999 <= value.nanos <= 999_999_999:
        raise InvalidArgument(field, "nanos must be between -999999999 and 999999999")
    total = value.seconds + value.nanos / 1e9
    if not minimum <= total <= maximum:
        raise InvalidArgument(field, f"must be between {minimum:g} and {maximum:g} seconds")
    return total


def optional_seconds(message: Any, field: str, *, label: str | None = None) -> float | None:
    """Seconds of a Duration field, or None when the field is unset."""
    if not message.HasField(field):
        return None
    return seconds(getattr(message, field), label or field)


def attempts(value: int, field: str = "attempts") -> int:
    if value < 1:
        raise InvalidArgument(field, "must be at least 1")
    return value


def bounded(value: int, field: str, most: int) -> int:
    """A count between 0 and `most`."""
    if not 0 <= value <= most:
        raise InvalidArgument(field, f"must be between 0 and {most}")
    return value


def page(offset: int, limit: int | None) -> tuple[int, int]:
    """Offset and limit of a list; deeper pages are reached with `before`."""
    bounded(offset, "offset", limits.MAX_OFFSET)
    if limit is None:
        return offset, limits.DEFAULT_LIMIT
    return offset, bounded(limit, "limit", limits.MAX_LIMIT)


def _note_key(key: str, field: str) -> None:
    # Note keys name Redis index keys and are joined with control characters in list replies.
    if not key or len(key) > limits.MAX_NAME or any(ord(c) < 32 for c in key):
        raise InvalidArgument(
            field, f"keys must be 1-{limits.MAX_NAME} characters without control characters"
        )


def _note_count(data: dict[str, Any], field: str) -> None:
    if len(data) > limits.MAX_NOTE_KEYS:
        raise InvalidArgument(field, f"must have at most {limits.MAX_NOTE_KEYS} keys")


class Payload:
    """Encodes JSON payloads to text, enforcing the broker's size limit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def text(self, data: Any, field: str, max_bytes: int | None = None) -> str:
        most = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        try:
            text = values.dumps(data)
        except ValueError:
            raise InvalidArgument(field, "must not contain NaN or Infinity") from None
        if len(text.encode()) > most:
            raise InvalidArgument(field, f"must encode to at most {most} bytes of JSON")
        return text

    def list(self, message: struct_pb2.ListValue, field: str, max_bytes: int | None = None) -> str:
        return self.text(values.from_value(message), field, max_bytes)

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
        _note_count(data, field)
        self.text(data, field)
        out: dict[str, str] = {}
        for key, value in data.items():
            _note_key(key, field)
            out[key] = values.dumps(values.strip_nulls(value))
        return out

    def merge(self, message: struct_pb2.Struct, field: str) -> dict[str, str | None]:
        """Like notes, but a null value stays None: it removes the key."""
        data = values.from_value(message)
        _note_count(data, field)
        self.text(data, field)
        out: dict[str, str | None] = {}
        for key, value in data.items():
            _note_key(key, field)
            out[key] = None if value is None else values.dumps(values.strip_nulls(value))
        return out
