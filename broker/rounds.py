"""Background work done in rounds over every namespace: repair, schedules, lease reclaim.

Each component runs ``run_once(namespace)`` for every namespace any replica has served (the
registry, read again each round, plus the broker's default namespace) and then waits its
interval. A failure in one namespace is logged and the round goes on; stopping sets a flag as
well as cancelling, so the loop ends even if a Redis call swallows the cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from broker.config import Settings
from broker.store import Store
from broker.tasks import cancel


class NamespaceRounds(ABC):
    """A component calling `run_once(namespace)` for every namespace once per `interval()`."""

    name = "rounds"  # the task's name, "jobwire-<name>"
    doing = "work"  # for the log: "<doing> of namespace <ns> failed"
    log = logging.getLogger("jobwire.rounds")

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

    @abstractmethod
    def interval(self) -> float:
        """Seconds between rounds; 0 keeps the component off."""

    @abstractmethod
    async def run_once(self, namespace: str) -> Any:
        """One namespace's share of a round."""

    async def start(self) -> None:
        if self.interval() > 0 and self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name=f"jobwire-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            await cancel(self._task)
            self._task = None

    async def _refresh(self) -> None:
        if self._fixed is None:
            with contextlib.suppress(Exception):
                known = await self.store.namespaces()
                self.namespaces = sorted({self.settings.namespace, *known})

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
                    self.log.exception("%s of namespace %s failed", self.doing, namespace)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval())
