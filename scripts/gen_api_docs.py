#!/usr/bin/env python3
"""Print docs/api.md: the gRPC API of proto/jobwire/v1 in Markdown, from the proto comments.

Compiles proto/ with grpc_tools.protoc into a descriptor set that keeps source info (comments),
then walks every file: services with their RPCs, messages with their fields, enums with their
values. scripts/generate.sh writes the output to docs/api.md, so the committed page changes with
the protos and `make check-generated` catches drift.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = "jobwire.v1"

# Field numbers of FileDescriptorProto, DescriptorProto, ... as used in SourceCodeInfo paths.
FILE_MESSAGE, FILE_ENUM, FILE_SERVICE = 4, 5, 6
MESSAGE_FIELD, MESSAGE_NESTED, MESSAGE_ENUM = 2, 3, 4
ENUM_VALUE = 2
SERVICE_METHOD = 2

FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    FDP.TYPE_DOUBLE: "double",
    FDP.TYPE_FLOAT: "float",
    FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64",
    FDP.TYPE_INT32: "int32",
    FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32",
    FDP.TYPE_BOOL: "bool",
    FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes",
    FDP.TYPE_UINT32: "uint32",
    FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64",
    FDP.TYPE_SINT32: "sint32",
    FDP.TYPE_SINT64: "sint64",
}
IDEMPOTENCY = {
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS: "no side effects",
    descriptor_pb2.MethodOptions.IDEMPOTENT: "idempotent",
}


def compile_descriptors() -> descriptor_pb2.FileDescriptorSet:
    """Run protoc over proto/jobwire/v1 and return the descriptor set, comments included."""
    protos = (PROTO_DIR / "jobwire" / "v1").glob("*.proto")
    files = sorted(str(p.relative_to(PROTO_DIR)) for p in protos)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "jobwire.binpb"
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", "--include_source_info",
             f"--descriptor_set_out={out}", *files],
            check=True,
        )
        fds = descriptor_pb2.FileDescriptorSet()
        fds.ParseFromString(out.read_bytes())
    return fds


class Comments:
    """The comments of one file, looked up by SourceCodeInfo path."""

    def __init__(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        self._by_path: dict[tuple[int, ...], str] = {}
        for loc in file.source_code_info.location:
            text = loc.leading_comments or loc.trailing_comments
            if text:
                self._by_path[tuple(loc.path)] = text

    def get(self, path: tuple[int, ...]) -> str:
        """Return the comment at path as one paragraph ('' when there is none)."""
        text = self._by_path.get(path, "")
        return " ".join(line.strip() for line in text.strip().splitlines())


def anchor(name: str) -> str:
    """Return the GitHub anchor of a '### name' heading."""
    return "".join(c for c in name.lower() if c.isalnum() or c in "-_")


def type_link(type_name: str) -> str:
    """Return a message or enum type as a Markdown link when it is ours, as code otherwise."""
    name = type_name.lstrip(".")
    if name.startswith(PACKAGE + "."):
        short = name[len(PACKAGE) + 1:]
        return f"[`{short}`](#{anchor(short)})"
    return f"`{name}`"


def field_type(field: descriptor_pb2.FieldDescriptorProto, maps: dict[str, str]) -> str:
    """Describe a field's type: scalar or linked message/enum, with repeated/optional/map."""
    if field.type_name.lstrip(".") in maps:
        return maps[field.type_name.lstrip(".")]
    base = SCALARS.get(field.type) or type_link(field.type_name)
    if base in SCALARS.values():
        base = f"`{base}`"
    if field.label == FDP.LABEL_REPEATED:
        return f"repeated {base}"
    if field.proto3_optional:
        return f"optional {base}"
    return base


def map_entries(prefix: str, message: descriptor_pb2.DescriptorProto) -> dict[str, str]:
    """Return the map-entry types nested in message, described as `map<key, value>`."""
    maps = {}
    for nested in message.nested_type:
        if nested.options.map_entry:
            key, value = nested.field
            key_t = SCALARS.get(key.type) or key.type_name
            value_t = SCALARS.get(value.type) or type_link(value.type_name)
            maps[f"{prefix}.{message.name}.{nested.name}"] = f"`map<{key_t}, {value_t}>`"
    return maps


def render_enum(name: str, enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...],
                comments: Comments) -> Iterator[str]:
    """Yield the section of one enum."""
    yield f"### {name}"
    yield ""
    yield comments.get(path) or "(no comment)"
    yield ""
    yield "| Value | Number | Description |"
    yield "|---|---|---|"
    for i, value in enumerate(enum.value):
        yield f"| `{value.name}` | {value.number} | {cell(comments.get((*path, ENUM_VALUE, i)))} |"
    yield ""


def render_message(name: str, message: descriptor_pb2.DescriptorProto, path: tuple[int, ...],
                   comments: Comments, scope: str) -> Iterator[str]:
    """Yield the section of one message, then of the messages and enums nested in it."""
    maps = map_entries(scope, message)
    yield f"### {name}"
    yield ""
    yield comments.get(path) or "(no comment)"
    yield ""
    if message.field:
        yield "| Field | Number | Type | Description |"
        yield "|---|---|---|---|"
        for i, field in enumerate(message.field):
            description = cell(comments.get((*path, MESSAGE_FIELD, i)))
            yield f"| `{field.name}` | {field.number} | {field_type(field, maps)} | {description} |"
    else:
        yield "No fields."
    yield ""
    for i, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            yield from render_message(f"{name}.{nested.name}", nested, (*path, MESSAGE_NESTED, i),
                                      comments, f"{scope}.{message.name}")
    for i, enum in enumerate(message.enum_type):
        yield from render_enum(f"{name}.{enum.name}", enum, (*path, MESSAGE_ENUM, i), comments)


def cell(text: str) -> str:
    """Escape text for a Markdown table cell."""
    return text.replace("|", "\\|")


def render_service(service: descriptor_pb2.ServiceDescriptorProto, path: tuple[int, ...],
                   comments: Comments) -> Iterator[str]:
    """Yield the section of one service: its comment and one entry per RPC."""
    yield f"### {service.name}"
    yield ""
    yield comments.get(path)
    yield ""
    for i, method in enumerate(service.method):
        request = type_link(method.input_type)
        response = type_link(method.output_type)
        if method.client_streaming:
            request = f"stream {request}"
        if method.server_streaming:
            response = f"stream {response}"
        traits = []
        if method.client_streaming or method.server_streaming:
            traits.append("streaming")
        idempotency = IDEMPOTENCY.get(method.options.idempotency_level)
        if idempotency:
            traits.append(idempotency)
        suffix = f" *({', '.join(traits)})*" if traits else ""
        yield f"- **{method.name}**({request}) → {response}{suffix}"
        yield f"  {comments.get((*path, SERVICE_METHOD, i))}"
    yield ""


def render(fds: descriptor_pb2.FileDescriptorSet) -> Iterator[str]:
    """Yield docs/api.md line by line."""
    files = [f for f in fds.file if f.package == PACKAGE]
    yield "# jobwire gRPC API reference"
    yield ""
    yield ("Generated from the comments in `proto/jobwire/v1` by `scripts/gen_api_docs.py` "
           "(`make generate`); do not edit by hand.")
    yield ""
    yield (f"Package `{PACKAGE}`. Every RPC has its own request and response message. RPCs "
           "marked *no side effects* only read and may be retried freely; streaming RPCs are "
           "server streams.")
    yield ""
    yield "## Services"
    yield ""
    for file in files:
        comments = Comments(file)
        for i, service in enumerate(file.service):
            yield from render_service(service, (FILE_SERVICE, i), comments)
    yield "## Messages"
    yield ""
    for file in files:
        comments = Comments(file)
        for i, message in enumerate(file.message_type):
            yield from render_message(message.name, message, (FILE_MESSAGE, i), comments, PACKAGE)
    yield "## Enums"
    yield ""
    for file in files:
        comments = Comments(file)
        for i, enum in enumerate(file.enum_type):
            yield from render_enum(enum.name, enum, (FILE_ENUM, i), comments)


def main() -> None:
    """Print the reference to stdout."""
    lines = list(render(compile_descriptors()))
    while lines and not lines[-1]:
        lines.pop()
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
