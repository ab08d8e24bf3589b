"""Wake-ups from Redis pub/sub: waiting dequeues sleep until a script says a job may be ready.

One subscriber connection per broker listens to every namespace's ``wake`` channel. Waiters take
a generation number *before* they try to dequeue and then wait for it to change, so a wake-up
published between the try and the wait is never missed. When the subscription drops, every
waiter is woken (they re-check with one script call) and the listener reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions

from broker.keyspace import channel_patterns, parse_channel
from broker.tasks import cancel

log = logging.getLogger("jobwire.wakeups")


Listener = Callable[[str, str, str], None]


class Wakeups:
    """Tracks a generation per namespace and wakes the waiters of a namespace when it changes.

    Only ``wake`` messages wake dequeue waiters; every message (``wake``, ``slots``, ``inbox``)
    also goes to the listeners (the stream dispatcher), as (kind, namespace, payload).
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._generations: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

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

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="jobwire-wakeups")
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(*channel_patterns())
                self._ready.set()
                self.wake_all()  # anything published while we were not listening
                delay = 0.1
                async for message in pubsub.listen():
                    channel, data = message["channel"], message["data"]
                    self._dispatch(
                        channel.decode() if isinstance(channel, bytes) else channel,
                        data.decode() if isinstance(data, bytes) else str(data),
                    )
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
                log.warning("wake-up subscription lost (%s); reconnecting", e)
                self._ready.set()
                self.wake_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: untyped
