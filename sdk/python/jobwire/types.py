"""Result types of the jobwire clients: plain frozen dataclasses with Minion's field names.

Timestamps are timezone-aware UTC datetimes (None when unset); durations are float seconds;
JSON values are plain Python values (dict, list, str, int, float, bool, None).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobInfo:
    """Everything the broker stores about one job (Minion's `job->info`)."""

    args: list[Any]
    attempts: int
    children: list[int]
    created: datetime | None
    delayed: datetime | None
    expires: datetime | None
    finished: datetime | None
    id: int
    lax: bool
    notes: dict[str, Any]
    parents: list[int]
    priority: int
    queue: str
    result: Any
    retried: datetime | None
    retries: int
    started: datetime | None
    state: str
    task: str
    time: datetime | None
    worker: int | None


@dataclass(frozen=True, slots=True)
class DequeuedJob:
    """A job handed to a worker; `retries` is the token for finish_job, fail_job and retry_job,
    and `lease` the fencing token of this attempt to present with them (0: none was given)."""

    id: int
    args: list[Any]
    retries: int
    task: str
    queue: str
    priority: int
    attempts: int
    notes: dict[str, Any]
    parents: list[int]
    lease: int = 0
    traceparent: str = ""  # the producer's W3C trace context, "" for none


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list call: `items`, plus `total` matching rows ignoring offset and limit."""

    items: list[T]
    total: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self.items[index]


@dataclass(frozen=True, slots=True)
class Stats:
    """Minion's statistics for a namespace; `uptime` is the Redis server's uptime in seconds."""

    active_jobs: int
    active_locks: int
    active_workers: int
    delayed_jobs: int
    enqueued_jobs: int
    failed_jobs: int
    finished_jobs: int
    inactive_jobs: int
    inactive_schedules: int
    inactive_workers: int
    schedules: int
    uptime: float
    workers: int


@dataclass(frozen=True, slots=True)
class HourlyCount:
    """Jobs that finished or failed for good within one hour starting at `epoch`."""

    epoch: datetime | None
    finished_jobs: int
    failed_jobs: int


@dataclass(frozen=True, slots=True)
class History:
    """The last 24 hours of job outcomes, oldest first."""

    daily: list[HourlyCount]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A registered worker; `jobs` are the ids of its active jobs."""

    id: int
    host: str
    pid: int
    started: datetime | None
    notified: datetime | None
    status: dict[str, Any]
    jobs: list[int]


@dataclass(frozen=True, slots=True)
class Registration:
    """The broker's answer to a registration or heartbeat (`Client.heartbeat`).

    `created` is true when the call created the worker (a new id, or one the broker had removed:
    a streaming worker should subscribe again); `lost` lists jobs given in `running` that are no
    longer active under the worker, whose outcome the broker will refuse.
    """

    id: int
    created: bool
    lost: list[int]


@dataclass(frozen=True, slots=True)
class LockInfo:
    """One live holder of a named lock."""

    id: int
    name: str
    expires: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A cron schedule; `expire` in float seconds or None; `last_job` None before a firing."""

    id: int
    args: list[Any]
    attempts: int
    created: datetime | None
    cron: str
    expire: float | None
    last_job: int | None
    last_run: datetime | None
    lax: bool
    name: str
    next_run: datetime | None
    notes: dict[str, Any]
    paused: bool
    priority: int
    queue: str
    task: str


@dataclass(frozen=True, slots=True)
class Dispatched:
    """A job enqueued by a schedule: schedule `id` and `name`, and the new `job` id."""

    id: int
    name: str
    job: int


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What one repair run changed."""

    missing_workers: int
    old_jobs: int
    expired_jobs: int
    abandoned_jobs: int
    stuck_jobs: int


@dataclass(frozen=True, slots=True)
class Guard:
    """A lock acquired by `guard()`; released on exit only while `deadline` (monotonic) is ahead."""

    name: str
    deadline: float

    @property
    def expired(self) -> bool:
        """Whether the lock's duration has passed, so releasing it could free someone else's."""
        return time.monotonic() >= self.deadline
