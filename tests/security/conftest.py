"""Fixtures of the security tests: a fresh CA per test and `python -m broker` children."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.security.helpers import BrokerProcess, Pki, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh CA with a server certificate (`server.crt`/`.key`) and a client one."""
    made = make_pki(tmp_path / "pki")
    made.issue("server", server=True)
    made.issue("client", server=False, cn="worker-1")
    return made


@pytest.fixture
def broker_process(
    tmp_path: Path, redis_server: str
) -> Iterator[Callable[[dict[str, str]], BrokerProcess]]:
    """Factory: a `python -m broker` child on the session Redis (stopped after the test)."""
    started: list[BrokerProcess] = []

    def make(env: dict[str, str]) -> BrokerProcess:
        process = BrokerProcess(
            {"JOBWIRE_REDIS_URL": redis_server, **env}, tmp_path / f"broker{len(started)}.log"
        )
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()
