"""Wake-ups from Redis pub/sub: waiting dequeues sleep until a script says a job may be ready.

One subscriber connection per broker listens to every namespace's ``wake`` channel. Waiters take
a generation number *before* they try to dequeue and then wait for it to change, so a wake-up
published between the try and the wait is never missed. When the subscription drops, every
waiter is woken (they re-check with one script call) and the listener reconnects with backoff;
once subscribed again it wakes everything once more, since messages published meanwhile are lost.
An idle subscription PINGs Redis, so a connection that died silently is noticed in bounded time;
`subscribed` (and `on_state`) tell health whether wake-ups are flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.client import PubSub

from broker.keyspace import channel_patterns, parse_channel
from broker.tasks import cancel

log = logging.getLogger("jobwire.wakeups")


Listener = Callable[[str, str, str], None]

PING_INTERVAL = 3.0  # seconds without traffic after which the subscription PINGs Redis
PING_TIMEOUT = 3.0  # seconds a PING (or a reconnection) may take before the connection is dead
MIN_BACKOFF = 0.1  # first pause between reconnection attempts, doubled up to MAX_BACKOFF
MAX_BACKOFF = 2.0


class Wakeups:
    """Tracks a generation per namespace and wakes the waiters of a namespace when it changes.

    Only ``wake`` messages wake dequeue waiters; every message (``wake``, ``slots``, ``inbox``)
    also goes to the listeners (the stream dispatcher), as (kind, namespace, payload).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
    ) -> None:
        self._redis = client
        self._generations: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._state_callbacks: list[Callable[[bool], None]] = []
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.subscribed = False

    def generation(self, namespace: str) -> int:
        return self._generations.get(namespace, 0)

    async def wait(self, namespace: str, generation: int, timeout: float) -> None:
        """Returns when the namespace's generation differs from `generation`, or after `timeout`."""
        if self.generation(namespace) != generation or timeout <= 0:
            return
        event = self._events.get(namespace)
        if event is None:
            event = self._events[namespace] = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def wake(self, namespace: str) -> None:
        self._generations[namespace] = self.generation(namespace) + 1
        event = self._events.pop(namespace, None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for namespace in list(self._generations.keys() | self._events.keys()):
            self.wake(namespace)
        for listener in self._listeners:
            listener("wake", "", "")

    def add_listener(self, listener: Listener) -> None:
        """Calls `listener(kind, namespace, payload)` for every message; ("wake", "", "") after a
        reconnection means anything may have changed."""
        self._listeners.append(listener)

    def _dispatch(self, channel: str, payload: str) -> None:
        namespace, kind = parse_channel(channel)
        if kind == "wake":
            self.wake(namespace)
        for listener in self._listeners:
            listener(kind, namespace, payload)

    def on_state(self, callback: Callable[[bool], None]) -> None:
        """Calls `callback(subscribed)` whenever the subscription is lost or re-established."""
        self._state_callbacks.append(callback)

    def _set_subscribed(self, subscribed: bool) -> None:
        if subscribed == self.subscribed:
            return
        self.subscribed = subscribed
        for callback in self._state_callbacks:
            callback(subscribed)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="jobwire-wakeups")
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        self.subscribed = False  # stopping: no callbacks, their owners are stopping too

    async def _listen(self) -> None:
        delay = MIN_BACKOFF
        lost = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await asyncio.wait_for(pubsub.psubscribe(*channel_patterns()), self.ping_timeout)
                self._ready.set()
                self._set_subscribed(True)
                if lost:
                    log.info("wake-up subscription re-established")
                lost = False
                self.wake_all()  # anything published while we were not listening
                delay = MIN_BACKOFF
                await self._receive(pubsub)
            except (redis.exceptions.RedisError, OSError, TimeoutError) as e:
                # Also a refused PSUBSCRIBE (NOPERM, a renamed command): retried like a loss.
                if not lost:
                    log.warning("wake-up subscription lost (%s); reconnecting",
                                e or type(e).__name__)  # fmt: skip
                lost = True
                connection: Any = pubsub.connection
                if connection is not None:  # a dead socket's close must not wait on it
                    with contextlib.suppress(Exception):
                        await connection.disconnect(nowait=True)
                self._ready.set()
                self._set_subscribed(False)
                self.wake_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: untyped

    async def _receive(self, pubsub: PubSub) -> None:
        """Dispatches messages until the connection fails. PINGs after `ping_interval` without
        traffic; raises TimeoutError when nothing (not even the PONG) arrives `ping_timeout`
        after that, so a silently dropped connection is noticed within both together."""
        last_seen = time.monotonic()
        pinged = False
        patterns = max(len(pubsub.patterns), 1)
        confirmations = 0
        while True:
            idle_limit = self.ping_interval + (self.ping_timeout if pinged else 0.0)
            remaining = last_seen + idle_limit - time.monotonic()
            if remaining <= 0:
                if pinged:
                    raise TimeoutError(f"no PONG within {self.ping_timeout:g}s")
                await asyncio.wait_for(pubsub.ping(), self.ping_timeout)
                pinged = True
                continue
            message = await pubsub.get_message(timeout=remaining)
            if message is None:
                continue
            last_seen = time.monotonic()
            pinged = False
            if message["type"] == "psubscribe":
                # A client that retries reconnects and subscribes again by itself; confirmations
                # beyond the first batch mean that happened: signal everything, as above.
                confirmations += 1
                if confirmations > patterns and confirmations % patterns == 1 % patterns:
                    log.info("wake-up subscription re-established by the Redis client")
                    self.wake_all()
            elif message["type"] == "pmessage":
                channel, data = message["channel"], message["data"]
                self._dispatch(
                    channel.decode() if isinstance(channel, bytes) else channel,
                    data.decode() if isinstance(data, bytes) else str(data),
                )
