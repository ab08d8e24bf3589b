"""Fixtures for fault tests: a process group per test and a cluster of real processes.

`cluster(**settings)` starts redis-server (AOF, appendfsync always) in a temp dir, two
`python -m broker` processes on free ports using it, and nginx in front of them as the gRPC
entry point; `settings` become JOBWIRE_* variables of both brokers. Everything is stopped after
the test, whatever happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Broker, Nginx, Processes, Redis


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Starts processes for one test; stops them all afterwards (also on failure)."""
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


@dataclass
class Cluster:
    """redis-server, two brokers on it and nginx in front of both."""

    procs: Processes
    redis: Redis
    brokers: list[Broker]
    nginx: Nginx
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """Where clients and workers connect: nginx."""
        return self.nginx.target

    def restart_broker(self, index: int) -> Broker:
        """A new broker process on the port of broker `index` (after it was killed)."""
        old = self.brokers[index]
        new = self.procs.broker(old.proc.name, self.redis.url, old.port, **self.settings)
        self.brokers[index] = new
        return new


@pytest.fixture
def cluster(procs: Processes) -> Callable[..., Cluster]:
    """Factory: `cluster(repair_interval=0.5, ...)` starts redis, two brokers and nginx."""

    def make(**settings: Any) -> Cluster:
        redis = procs.redis()
        brokers = [procs.broker(f"broker{i}", redis.url, **settings) for i in range(2)]
        nginx = procs.nginx(b.target for b in brokers)
        return Cluster(procs, redis, brokers, nginx, settings)

    return make
