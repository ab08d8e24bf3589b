"""Pushes jobs and remote-control commands to the workers streaming from this replica.

One loop per namespace runs the dispatch script for all of this replica's streams at once, so a
burst of enqueues costs one script call per round, not one per stream. The loop sleeps until a
script publishes that a job may be ready (``wake``), that one of our workers has a free slot
(``slots``), or until the next delayed job is due; an idle replica makes no Redis calls.

A job is taken for a stream before it is written, with a lease. Jobs still queued when a stream
closes are returned to inactive (never written, so never seen). A job whose write was under way
when the stream died, or whose dispatch reply was lost, stays active under the worker until the
worker's next heartbeat, which does not list it: then it is handed back (or, when the worker
reconnects first, delivered again). If the worker never comes back its leases expire.

A stream the dispatch script reports as no longer current (the worker subscribed again
elsewhere, or was removed by repair and re-created by a heartbeat) is ended, so that the worker
subscribes again and is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass, field

from broker.store import Dequeued, Store, Subscription
from broker.wakeups import Wakeups

log = logging.getLogger("jobwire.dispatch")

# Most jobs one dispatch call hands out; another round follows at once when it is used up.
BUDGET = 500


@dataclass
class Message:
    """One stream message: jobs taken for the worker and commands from its inbox."""

    jobs: list[Dequeued] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


class Stream:
    """One open Subscribe call."""

    def __init__(self, namespace: str, subscription: Subscription) -> None:
        self.namespace = namespace
        self.subscription = subscription
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.closed = False

    @property
    def worker(self) -> int:
        return self.subscription.worker

    def close(self) -> None:
        """Tells the stream to end (the servicer answers UNAVAILABLE: reconnect)."""
        self.closed = True
        self.queue.put_nowait(None)


class Dispatcher:
    """Owns this replica's streams and the per-namespace dispatch loops."""

    def __init__(self, store: Store, wakeups: Wakeups) -> None:
        self.store = store
        self.streams: dict[str, dict[int, Stream]] = {}
        self._signals: dict[str, asyncio.Event] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.stopping = False
        wakeups.add_listener(self._on_message)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.close_all()
        for task in [*self._loops.values(), *self._background]:
            task.cancel()
        for task in [*self._loops.values(), *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops.clear()

    def close_all(self) -> None:
        """Ends every stream (shutdown): workers reconnect to another replica."""
        self.stopping = True
        for streams in self.streams.values():
            for stream in streams.values():
                stream.close()

    async def open(
        self, namespace: str, subscription: Subscription, running: list[int]
    ) -> Stream | None:
        """Registers a stream; None when the worker is not registered."""
        old = self.streams.get(namespace, {}).get(subscription.worker)
        if old is not None:
            self._forget(old)
            old.close()
        opened = await self.store.subscribe(namespace, subscription.worker, running)
        if opened is None:
            return None
        epoch, commands, redeliver = opened
        stream = Stream(namespace, dataclasses.replace(subscription, epoch=epoch))
        if commands or redeliver:
            stream.queue.put_nowait(Message(jobs=redeliver, commands=commands))
        self.streams.setdefault(namespace, {})[subscription.worker] = stream
        self._signal(namespace)
        if namespace not in self._loops:
            self._loops[namespace] = asyncio.create_task(
                self._loop(namespace), name=f"jobwire-dispatch-{namespace}"
            )
        return stream

    async def close(self, stream: Stream) -> None:
        """Forgets a stream and returns the jobs it never wrote to inactive."""
        self._forget(stream)
        stream.closed = True
        pending: list[Dequeued] = []
        commands: list[str] = []
        while not stream.queue.empty():
            message = stream.queue.get_nowait()
            if message is not None:
                pending += message.jobs
                commands += message.commands
        if pending:
            await self.store.undeliver_jobs(
                stream.namespace, stream.worker, stream.subscription.epoch, pending
            )
        await self._return_commands(stream, commands)

    async def _return_commands(self, stream: Stream, commands: list[str]) -> None:
        """Puts commands that were never written back into the worker's inbox."""
        for text in commands:
            command, *args = json.loads(text)
            await self.store.broadcast(stream.namespace, command, json.dumps(args), [stream.worker])

    def _forget(self, stream: Stream) -> None:
        streams = self.streams.get(stream.namespace, {})
        if streams.get(stream.worker) is stream:
            del streams[stream.worker]

    def _signal(self, namespace: str) -> None:
        event = self._signals.get(namespace)
        if event is None:
            event = self._signals[namespace] = asyncio.Event()
        event.set()

    def _on_message(self, kind: str, namespace: str, payload: str) -> None:
        if not namespace:  # the subscription was re-established: anything may have changed
            for ns in self.streams:
                self._signal(ns)
            return
        streams = self.streams.get(namespace)
        if not streams:
            return
        if kind == "wake":
            self._signal(namespace)
        elif kind == "slots":
            if payload.isdigit() and int(payload) in streams:
                self._signal(namespace)
        elif kind == "inbox":
            stream = streams.get(int(payload)) if payload.isdigit() else None
            if stream is not None:
                task = asyncio.create_task(self._deliver_commands(stream))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _deliver_commands(self, stream: Stream) -> None:
        try:
            commands = await self.store.receive(stream.namespace, stream.worker)
        except Exception:
            log.exception("reading the inbox of worker %d failed", stream.worker)
            return
        if not commands:
            return
        if stream.closed:
            await self._return_commands(stream, commands)
        else:
            stream.queue.put_nowait(Message(commands=commands))

    async def _loop(self, namespace: str) -> None:
        """Dispatch rounds until the broker stops. Any failure (Redis down, a lost reply) is
        logged and the round retried with backoff: the loop itself never dies."""
        event = self._signals.setdefault(namespace, asyncio.Event())
        delay = 0.05
        while not self.stopping:
            await event.wait()
            event.clear()
            try:
                await self._round(namespace, event)
                delay = 0.05
            except Exception as error:
                log.warning("dispatch in namespace %s failed (%s); retrying in %.2fs",
                            namespace, error or type(error).__name__, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                event.set()

    async def _round(self, namespace: str, event: asyncio.Event) -> None:
        streams = [s for s in self.streams.get(namespace, {}).values() if not s.closed]
        if not streams:
            return
        per_stream, now, next_due = await self.store.dispatch_jobs(
            namespace, [s.subscription for s in streams], BUDGET
        )
        handed = 0
        for stream, jobs in zip(streams, per_stream, strict=True):
            if jobs is None:  # no longer the worker's stream: it subscribes again
                if not stream.closed:
                    log.info("worker %d: stream superseded or worker re-created; ending it",
                             stream.worker)  # fmt: skip
                    self._forget(stream)
                    stream.close()
                continue
            if not jobs:
                continue
            handed += len(jobs)
            if stream.closed:
                await self.store.undeliver_jobs(
                    namespace, stream.worker, stream.subscription.epoch, jobs
                )
            else:
                stream.queue.put_nowait(Message(jobs=jobs))
        if handed >= BUDGET:
            event.set()
        timer = self._timers.pop(namespace, None)
        if timer is not None:
            timer.cancel()
        if next_due is not None:
            wait = max(next_due - now, 0.0) + 0.0005
            self._timers[namespace] = asyncio.get_running_loop().call_later(wait, event.set)
