"""Binding the gRPC port exclusively, with one clear error when another process holds it.

gRPC sets SO_REUSEPORT by default, so a second broker on the same port would start and the
kernel would split clients between two brokers (and two data stores) without a word. The server
is built with `grpc.so_reuseport` off, and `check_free` tests the address before anything starts,
because gRPC's own bind failure is a RuntimeError plus a log line from its core.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

# Server options that make the bind exclusive.
EXCLUSIVE_PORT_OPTIONS = [("grpc.so_reuseport", 0)]


class ListenError(RuntimeError):
    """The broker cannot listen on its address (one line, naming it)."""


def split_address(listen: str) -> tuple[str, int] | None:
    """`host:port` or `[v6]:port` as (host, port); None for forms gRPC resolves itself."""
    if listen.startswith("unix:") or ":" not in listen:
        return None
    host, _, port_text = listen.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        return None
    return host.strip("[]"), port


def check_free(listen: str) -> None:
    """Raise ListenError if another socket listens on `listen` (port 0 is always free).

    Binds each resolved address once with SO_REUSEADDR (as gRPC does, so TIME_WAIT from an
    earlier broker is no obstacle) and without SO_REUSEPORT, then lets it go. Errors other than
    "address in use" are left to gRPC, which may still bind another resolved address.
    """
    address = split_address(listen)
    if address is None or address[1] == 0:
        return
    host, port = address
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise ListenError(f"cannot listen on {listen}: {error.strerror}") from None
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise ListenError(
                        f"cannot listen on {listen}: address already in use "
                        "(is another broker running?)"
                    ) from None


def bind(server: Any, listen: str, credentials: Any = None) -> int:
    """Add the port `listen` to `server` (TLS with `credentials`, else plaintext); return the
    bound port or raise ListenError."""
    try:
        if credentials is None:
            port: int = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, credentials)
    except RuntimeError:  # gRPC >= 1.5x raises instead of returning 0
        port = 0
    if port == 0:
        raise ListenError(f"cannot listen on {listen}")
    return port
