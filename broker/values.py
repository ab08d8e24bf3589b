"""JSON values between the wire (protobuf Value/ListValue/Struct) and JSON text in Redis."""

from __future__ import annotations

import json
import math
from typing import Any

from google.protobuf import struct_pb2

# Struct numbers are doubles; whole numbers in this range go back to JSON as integers.
_MAX_EXACT = 2**53


def dumps(value: Any) -> str:
    """Compact JSON text, as stored in Redis."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if math.isfinite(number) and number.is_integer() and abs(number) <= _MAX_EXACT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return {k: _python(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_python(v) for v in value.list_value.values]
    return None


def from_value(message: struct_pb2.Value | struct_pb2.ListValue | struct_pb2.Struct) -> Any:
    """Python value of a protobuf JSON message, with whole numbers as ints.

    Walks the message directly: about three times faster than json_format.MessageToDict, and
    this runs for every job's args, notes and result.
    """
    if isinstance(message, struct_pb2.ListValue):
        return [_python(v) for v in message.values]
    if isinstance(message, struct_pb2.Struct):
        return {k: _python(v) for k, v in message.fields.items()}
    return _python(message)


def strip_nulls(value: Any) -> Any:
    """Drops null-valued keys inside nested objects (PostgreSQL's jsonb_strip_nulls)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value
