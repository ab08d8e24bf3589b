"""Background schedule dispatch: every replica fires due schedules about once per interval.

No mutex is needed: ``Store.dispatch_schedules`` fires each due schedule through a
compare-and-set script, so however many replicas dispatch at once each firing enqueues one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from broker.config import Settings
from broker.store import Dispatched, Store
from broker.tasks import cancel

log = logging.getLogger("jobwire.scheduler")


class Scheduler:
    """Runs Minion's dispatch_schedules every ``settings.dispatch_interval`` seconds (0: off)."""

    def __init__(
        self, store: Store, settings: Settings, namespaces: Sequence[str] | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        # None: every namespace any replica has served, looked up again each round.
        self._fixed = None if namespaces is None else list(namespaces)
        self.namespaces: list[str] = self._fixed or [settings.namespace]
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.on_fired: Callable[[str, list[Dispatched]], None] | None = None  # metrics

    async def _refresh(self) -> None:
        if self._fixed is None:
            with contextlib.suppress(Exception):
                known = await self.store.namespaces()
                self.namespaces = sorted({self.settings.namespace, *known})

    async def start(self) -> None:
        if self.settings.dispatch_interval > 0 and self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="jobwire-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            # The flag ends the loop even if a cancellation is swallowed inside a Redis call.
            self._stopping.set()
            await cancel(self._task)
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self._refresh()
            for namespace in self.namespaces:
                if self._stopping.is_set():
                    return
                try:
                    await self.run_once(namespace)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatching schedules of namespace %s failed", namespace)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.dispatch_interval)

    async def run_once(self, namespace: str) -> list[Dispatched]:
        """Fires the due schedules of `namespace`; the jobs this replica enqueued."""
        fired = await self.store.dispatch_schedules(namespace)
        if self.on_fired is not None:
            self.on_fired(namespace, fired)
        for item in fired:
            log.info(
                "schedule %s (%d) enqueued job %d in %s", item.name, item.id, item.job, namespace
            )
        return fired
