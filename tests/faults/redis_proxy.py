"""A TCP proxy between brokers and Redis that can lose replies: for lost-reply fault tests.

It runs its own event loop in a thread. Every connection is relayed byte for byte, while the
proxy parses both directions (RESP) to pair each reply with its request. A test can then say
"lose the next reply to a request matching X": Redis executes the command, but its reply never
reaches the broker, which then either sees the connection reset (`then="reset"`, what a broken
connection looks like) or waits forever on a connection that swallows everything from then on
(`then="hold"`, a network partition). `reset_all()` resets every open connection.

    proxy = RedisProxy(redis_port).start()
    broker = procs.broker("b", proxy.url)
    proxy.lose_replies(1, match=script_call(sha_of("complete_jobs")), then="reset")
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Match = Callable[[list[bytes]], bool]
Then = Literal["reset", "hold"]
PUBSUB = {b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE"}


def command(name: str) -> Match:
    """Match requests whose command is `name` (EVALSHA, GET ...)."""
    wanted = name.upper().encode()
    return lambda args: bool(args) and args[0].upper() == wanted


def script_call(sha: str) -> Match:
    """Match EVALSHA calls of the script with this SHA1 (hex)."""
    wanted = sha.lower().encode()
    return lambda args: len(args) > 1 and args[0].upper() == b"EVALSHA" and args[1] == wanted


def any_request(args: list[bytes]) -> bool:
    """Match every request."""
    return True


# --- RESP parsing: the end of one complete value in a buffer, or None when incomplete --------


def _line_end(buf: bytes | bytearray, pos: int) -> int | None:
    end = buf.find(b"\r\n", pos)
    return None if end < 0 else end


def resp_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """Index just past the RESP2/RESP3 value starting at `pos`, or None if it is incomplete."""
    if pos >= len(buf):
        return None
    kind = buf[pos : pos + 1]
    end = _line_end(buf, pos)
    if end is None:
        return None
    head = bytes(buf[pos + 1 : end])
    after = end + 2
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return after
    if kind in (b"$", b"!", b"="):
        size = int(head)
        if size < 0:
            return after
        return after + size + 2 if len(buf) >= after + size + 2 else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        count = int(head)
        if count < 0:
            return after
        if kind in (b"%", b"|"):
            count *= 2
        for _ in range(count):
            nxt = resp_end(buf, after)
            if nxt is None:
                return None
            after = nxt
        return after
    return after  # an inline command: one line


def request_args(raw: bytes) -> list[bytes]:
    """The arguments of one complete request (a RESP array of bulk strings, or inline)."""
    if not raw.startswith(b"*"):
        return raw.strip().split()
    args = []
    end = raw.index(b"\r\n")
    pos = end + 2
    for _ in range(int(raw[1:end])):
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos + 1 : end])
        args.append(raw[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
    return args


@dataclass
class _Rule:
    remaining: int
    match: Match
    then: Then


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    requests: collections.deque[list[bytes]] = field(default_factory=collections.deque)
    pubsub: bool = False
    black_hole: bool = False


class RedisProxy:
    """Relays 127.0.0.1:<port> to Redis on 127.0.0.1:<upstream_port>; loses replies on demand."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.lost = 0  # replies swallowed so far
        self._rules: list[_Rule] = []
        self._conns: set[_Conn] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProxy:
        self._thread.start()
        server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0), timeout=10)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and end the thread."""
        if self._loop.is_closed():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self._conns):
                conn.client.transport.abort()
                conn.upstream.transport.abort()
            # The relays end on their own once their sockets are gone.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait(others, timeout=5) if others else None

        self._call(shutdown(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def lose_replies(
        self, count: int = 1, match: Match = any_request, then: Then = "reset"
    ) -> None:
        """Swallow the replies to the next `count` requests that `match` (on any connection)."""
        with self._lock:
            self._rules.append(_Rule(count, match, then))

    def clear(self) -> None:
        """Forget rules that have not fired yet."""
        with self._lock:
            self._rules.clear()

    def connections(self) -> int:
        """How many connections are open through the proxy."""
        return len(self._conns)

    def reset_all(self) -> int:
        """Reset (RST) every open connection now; returns how many there were."""

        async def reset() -> int:
            conns = list(self._conns)
            for conn in conns:
                _reset(conn)
            return len(conns)

        return self._call(reset(), timeout=10)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- relaying (on the proxy's loop) -------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        conn = _Conn(writer, up_writer)
        self._conns.add(conn)
        try:
            await asyncio.gather(
                self._requests(conn, reader), self._replies(conn, up_reader), return_exceptions=True
            )
        finally:
            self._conns.discard(conn)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _requests(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        """Client -> Redis: note each complete request (in order) before forwarding it."""
        buf = bytearray()
        try:
            while chunk := await reader.read(65536):
                buf += chunk
                pos = 0
                while (end := resp_end(buf, pos)) is not None:
                    args = request_args(bytes(buf[pos:end]))
                    if args and args[0].upper() in PUBSUB:
                        conn.pubsub = True  # replies no longer pair with requests
                    conn.requests.append(args)
                    pos = end
                del buf[:pos]
                conn.upstream.write(chunk)
                await conn.upstream.drain()
        finally:
            conn.upstream.transport.abort()

    async def _replies(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        """Redis -> client: forward each complete reply unless a rule says to lose it."""
        buf = bytearray()
        try:
            while chunk := await reader.read(65536):
                if conn.black_hole:
                    continue
                if conn.pubsub:
                    conn.client.write(chunk)
                    await conn.client.drain()
                    continue
                buf += chunk
                out = bytearray()
                pos = 0
                lose: _Rule | None = None
                while (end := resp_end(buf, pos)) is not None:
                    request = conn.requests.popleft() if conn.requests else []
                    lose = self._take_rule(request)
                    if lose is None:
                        out += buf[pos:end]
                    pos = end
                    if lose is not None:
                        break
                del buf[:pos]
                if out:
                    conn.client.write(bytes(out))
                    await conn.client.drain()
                if lose is not None:
                    self.lost += 1
                    if lose.then == "reset":
                        _reset(conn)
                        return
                    conn.black_hole = True
        finally:
            if not conn.black_hole:
                conn.client.transport.abort()

    def _take_rule(self, request: list[bytes]) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and rule.match(request):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule
        return None


def _reset(conn: _Conn) -> None:
    """Close both sides at once, the client side with a TCP RST (SO_LINGER 0)."""
    sock = conn.client.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.client.transport.abort()
    conn.upstream.transport.abort()
