"""Background schedule dispatch: every replica fires due schedules about once per interval.

No mutex is needed: ``Store.dispatch_schedules`` fires each due schedule through a
compare-and-set script, so however many replicas dispatch at once each firing enqueues one job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from broker.config import Settings
from broker.rounds import NamespaceRounds
from broker.store import Dispatched, Store

log = logging.getLogger("jobwire.scheduler")


class Scheduler(NamespaceRounds):
    """Runs Minion's dispatch_schedules every ``settings.dispatch_interval`` seconds (0: off)."""

    name = "scheduler"
    doing = "dispatching schedules"
    log = log

    def __init__(
        self, store: Store, settings: Settings, namespaces: Sequence[str] | None = None
    ) -> None:
        super().__init__(store, settings, namespaces)
        self.on_fired: Callable[[str, list[Dispatched]], None] | None = None  # metrics

    def interval(self) -> float:
        return self.settings.dispatch_interval

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
