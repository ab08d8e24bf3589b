"""Background lease reclaim: fails the active jobs whose lease ran out.

Every activation (Dequeue or stream dispatch) gives the job a lease that the worker's heartbeats
extend (RegisterWorker). A worker that died, hangs, or cannot reach the broker stops extending
them; about once per ``settings.lease_check_interval`` every replica fails the expired ones with
Minion's "Worker went away" (retried while attempts remain). Each call is bounded and costs what
expired, so running it on every replica is cheap, and the script makes it idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from broker.config import Settings
from broker.store import Store
from broker.tasks import cancel

log = logging.getLogger("jobwire.leases")

# Most jobs one reclaim call fails; the next call follows at once while calls come back full.
BATCH = 500


class LeaseReaper:
    """Reclaims expired leases in every namespace any replica has served."""

    def __init__(
        self, store: Store, settings: Settings, namespaces: Sequence[str] | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self._fixed = None if namespaces is None else list(namespaces)
        self.namespaces: list[str] = self._fixed or [settings.namespace]
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        if self.settings.lease_check_interval > 0 and self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="jobwire-leases")

    async def stop(self) -> None:
        if self._task is not None:
            # The flag ends the loop even if a cancellation is swallowed inside a Redis call.
            self._stopping.set()
            await cancel(self._task)
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            if self._fixed is None:
                with contextlib.suppress(Exception):
                    known = await self.store.namespaces()
                    self.namespaces = sorted({self.settings.namespace, *known})
            for namespace in self.namespaces:
                if self._stopping.is_set():
                    return
                try:
                    await self.run_once(namespace)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("reclaiming leases in namespace %s failed: %s", namespace, error)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.lease_check_interval)

    async def run_once(self, namespace: str) -> int:
        """Fails every job of `namespace` whose lease has expired; how many."""
        total = 0
        more = True
        while more:
            failed, more = await self.store.reclaim_leases(namespace, BATCH)
            total += failed
        if total:
            log.warning("namespace %s: %d jobs lost their lease (worker went away)", namespace,
                        total)  # fmt: skip
        return total
