"""JSON values straight to protobuf wire bytes (google.protobuf.Value, ListValue, Struct).

The pure-Python ``ListValue.extend``/``Struct.update`` cost about 7 µs for a three-element list;
every listed or dequeued job needs its args, notes and result converted. Encoding the few wire
types of struct.proto by hand and parsing them with upb's ``FromString`` is several times faster.
"""

from __future__ import annotations

import struct
from typing import Any

from google.protobuf import struct_pb2

_DOUBLE = struct.Struct("<d").pack


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: tag byte, length, payload."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def value(data: Any) -> bytes:
    """Body of a google.protobuf.Value holding `data`."""
    if data is None:
        return b"\x08\x00"  # null_value = NULL_VALUE
    if data is True:
        return b"\x20\x01"
    if data is False:
        return b"\x20\x00"
    if isinstance(data, (int, float)):
        return b"\x11" + _DOUBLE(float(data))
    if isinstance(data, str):
        return _field(0x1A, data.encode())
    if isinstance(data, dict):
        return _field(0x2A, struct_body(data))
    if isinstance(data, list):
        return _field(0x32, list_body(data))
    raise TypeError(f"not a JSON value: {type(data).__name__}")


def list_body(items: list[Any]) -> bytes:
    """Body of a google.protobuf.ListValue."""
    return b"".join(_field(0x0A, value(item)) for item in items)


def struct_body(fields: dict[str, Any]) -> bytes:
    """Body of a google.protobuf.Struct."""
    return b"".join(
        _field(0x0A, _field(0x0A, key.encode()) + _field(0x12, value(item)))
        for key, item in fields.items()
    )


def to_list(items: list[Any]) -> struct_pb2.ListValue:
    return struct_pb2.ListValue.FromString(list_body(items))


def to_struct(fields: dict[str, Any]) -> struct_pb2.Struct:
    return struct_pb2.Struct.FromString(struct_body(fields))


def to_value(data: Any) -> struct_pb2.Value:
    return struct_pb2.Value.FromString(value(data))
