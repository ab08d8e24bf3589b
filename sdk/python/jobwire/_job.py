"""The handle a task gets (`Job`) and the worker's record of a job; job processes need `Job` too."""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from jobwire.aio import AsyncClient
from jobwire.client import Client
from jobwire.types import DequeuedJob, JobInfo
from jobwire.v1 import job_service_pb2

# Deadline of the unary calls of the clients the worker builds itself (its own, job handles').
CALL_TIMEOUT = 30.0

Outcome = Literal["finished", "failed"]


def error_result(error: BaseException) -> dict[str, Any]:
    """The result stored when a task raises: the exception's last line and its traceback."""
    return {
        "error": "".join(traceback.format_exception_only(type(error), error)).strip(),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    }


class Job:
    """The job being performed, passed to the task as its first argument.

    The blocking methods (`note`, `finish`, `fail`, `retry`, `info`) suit thread and process
    tasks; async tasks should await `anote`, `afinish`, `afail`, `aretry`, `ainfo` instead.
    `killed` is set when a `kill`/`stop` command ended this job (thread tasks may poll it).
    """

    def __init__(
        self,
        job: DequeuedJob,
        client: Callable[[], Client],
        aclient: AsyncClient | None = None,
    ) -> None:
        self.id = job.id
        self.args = job.args
        self.retries = job.retries
        self.task = job.task
        self.queue = job.queue
        self.priority = job.priority
        self.attempts = job.attempts
        self.notes = job.notes
        self.parents = job.parents
        # The attempt's fencing token, presented with finish, fail and retry (None: not given).
        self.lease = job.lease or None
        self.killed = threading.Event()
        self._client = client
        self._aclient = aclient
        # True once the task finished, failed or retried this job itself.
        self.settled = False

    def __repr__(self) -> str:
        return f"Job(id={self.id}, task={self.task!r}, retries={self.retries})"

    def _async(self) -> AsyncClient:
        if self._aclient is None:
            raise RuntimeError("async job methods are only available to async tasks")
        return self._aclient

    def _settle(self, done: bool) -> bool:
        self.settled = self.settled or done
        return done

    def note(self, **merge: Any) -> bool:
        """Merge keys into the job's notes (None removes a key); False if the job is gone."""
        return self._client().note(self.id, merge)

    def finish(self, result: Any = None) -> bool:
        """Finish the job now; False when it is no longer active with these retries."""
        return self._settle(
            self._client().finish_job(self.id, self.retries, result, lease=self.lease)
        )

    def fail(self, result: Any = "Unknown error") -> bool:
        """Fail the job now (retried automatically while attempts remain)."""
        return self._settle(
            self._client().fail_job(self.id, self.retries, result, lease=self.lease)
        )

    def retry(self, **options: Any) -> bool:
        """Move the job back to inactive (`Client.retry_job`'s options)."""
        return self._settle(
            self._client().retry_job(self.id, self.retries, lease=self.lease, **options)
        )

    def info(self) -> JobInfo | None:
        """Everything the broker stores about the job."""
        return self._client().job_info(self.id)

    async def anote(self, **merge: Any) -> bool:
        """`note` for async tasks."""
        return await self._async().note(self.id, merge)

    async def afinish(self, result: Any = None) -> bool:
        """`finish` for async tasks."""
        return self._settle(
            await self._async().finish_job(self.id, self.retries, result, lease=self.lease)
        )

    async def afail(self, result: Any = "Unknown error") -> bool:
        """`fail` for async tasks."""
        return self._settle(
            await self._async().fail_job(self.id, self.retries, result, lease=self.lease)
        )

    async def aretry(self, **options: Any) -> bool:
        """`retry` for async tasks."""
        return self._settle(
            await self._async().retry_job(self.id, self.retries, lease=self.lease, **options)
        )

    async def ainfo(self) -> JobInfo | None:
        """`info` for async tasks."""
        return await self._async().job_info(self.id)


@dataclass(eq=False)
class Entry:
    """A job the broker has made active under this worker, from delivery until reported."""

    job: DequeuedJob
    handle: Job
    # "waiting": delivered but no local slot yet; "running"; "reporting": outcome not yet sent.
    state: Literal["waiting", "running", "reporting"] = "waiting"
    task: asyncio.Task[None] | None = None
    process: BaseProcess | None = None
    in_thread: bool = False  # a thread task: it cannot be stopped, only asked (`job.killed`)
    killed: str | None = None
    # The outcome to report, once the job ended.
    completion: job_service_pb2.Completion | None = None
    fallback: bool = False  # the outcome was already replaced after the broker refused it
    dropped: bool = False  # no longer this worker's (lease lost, forced stop): never reported

    @property
    def key(self) -> tuple[int, int, int]:
        """One attempt of the job: a retried job (or a new lease) is another entry."""
        return (self.job.id, self.job.retries, self.job.lease)
