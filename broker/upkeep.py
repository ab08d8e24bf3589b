"""Background upkeep: periodic repair, one broker replica at a time.

Each namespace has its own mutex (``repair_lock``, SET NX PX with a random token). The holder keeps
it alive while it repairs and then for the rest of the interval, so across N replicas a namespace
is repaired about once per interval, never twice at once; it is released (only by its token) when
the broker stops. A replica that dies mid-repair loses the lock after LEASE seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence

from broker.config import Settings
from broker.rounds import NamespaceRounds
from broker.store import RepairCounts, Store

log = logging.getLogger("jobwire.upkeep")

# How long the repair mutex lives without a refresh; refreshed every LEASE / 3 while repairing.
LEASE = 30.0


class Repairer(NamespaceRounds):
    """Runs Minion's repair every ``settings.repair_interval`` seconds (0 disables it)."""

    name = "repair"
    doing = "repair"
    log = log

    def __init__(
        self,
        store: Store,
        settings: Settings,
        namespaces: Sequence[str] | None = None,
        *,
        lease: float = LEASE,
    ) -> None:
        super().__init__(store, settings, namespaces)
        self.lease = lease
        self.token = uuid.uuid4().hex
        self.on_repaired: Callable[[str, RepairCounts], None] | None = None  # metrics

    def interval(self) -> float:
        return self.settings.repair_interval

    async def stop(self) -> None:
        await super().stop()
        for namespace in self.namespaces:
            with contextlib.suppress(Exception):
                await self.store.hold_repair_lock(namespace, self.token, 0)

    async def run_once(self, namespace: str) -> RepairCounts | None:
        """Repairs `namespace` if no other replica holds its mutex; the counts, or None."""
        if not await self.store.hold_repair_lock(namespace, self.token, _ms(self.lease)):
            return None
        loop = asyncio.get_running_loop()
        started = loop.time()
        s = self.settings
        work = asyncio.create_task(
            self.store.repair(
                namespace,
                s.missing_after,
                s.remove_after,
                s.stuck_after,
                stream_missing_after=s.stream_missing_after,
            )
        )
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=self.lease / 3)
                if not work.done() and not await self.store.hold_repair_lock(
                    namespace, self.token, _ms(self.lease)
                ):
                    log.warning("lost the repair lock of namespace %s; stopping", namespace)
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    return None
            counts = work.result()
        except BaseException:
            work.cancel()
            with contextlib.suppress(Exception):
                await self.store.hold_repair_lock(namespace, self.token, 0)
            raise
        if self.on_repaired is not None:
            self.on_repaired(namespace, counts)
        if counts != RepairCounts():
            log.info("repaired namespace %s: %s", namespace, counts)
        # Keep the lock for the rest of the interval so other replicas skip this round.
        rest = s.repair_interval - (loop.time() - started)
        await self.store.hold_repair_lock(namespace, self.token, _ms(rest) if rest > 0 else 0)
        return counts


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
