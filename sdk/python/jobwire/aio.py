"""The asyncio jobwire client: the same methods as Client, awaited, over a grpc.aio channel."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from jobwire import _requests as rq
from jobwire import _tracing, batching
from jobwire._channel import ChannelSettings
from jobwire.errors import from_rpc_error
from jobwire.types import (
    DequeuedJob,
    Dispatched,
    Guard,
    History,
    JobInfo,
    LockInfo,
    Page,
    Registration,
    RepairReport,
    ScheduleInfo,
    Stats,
    WorkerInfo,
)

if TYPE_CHECKING:
    from jobwire.client import Client

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """An asyncio client of one jobwire broker namespace, bound to the event loop it first runs in.

    The channel is opened on the first call, so a client may be created outside a running loop.
    Every call raises a `jobwire.JobwireError` (the subclass for its status code) on failure.
    `timeout` is the per-call deadline in seconds, 30 by default (None: no deadline); a
    dequeue's `wait` is added to it.
    `token` is sent as `authorization: Bearer <token>`; TLS is on with `tls=True` (system
    roots) or any TLS file: `tls_ca` (PEM bundle to trust), `tls_cert`/`tls_key` (client
    certificate, for mTLS), and `tls_server_name` overrides the name the server's certificate
    must carry. Unset, they come from JOBWIRE_TOKEN, JOBWIRE_TLS_CA, JOBWIRE_TLS_CLIENT_CERT,
    JOBWIRE_TLS_CLIENT_KEY and JOBWIRE_TLS_SERVER_NAME. Pass `channel` to use a channel you
    built yourself; the client then leaves closing it to you, and the clients a Worker makes
    from this one use the options above, not that channel. Channels the SDK opens accept
    messages up to 64 MiB (`grpc.max_receive_message_length`); give yours the same limit.
    `coalesce` (default True) sends concurrent enqueue and finish/fail calls together as batch
    RPCs (see `jobwire.batching`); False sends one RPC per call.
    """

    def __init__(
        self,
        target: str = rq.DEFAULT_TARGET,
        *,
        namespace: str = rq.DEFAULT_NAMESPACE,
        timeout: float | None = rq.DEFAULT_TIMEOUT,
        channel: grpc.aio.Channel | None = None,
        coalesce: bool = True,
        token: str | None = None,
        tls: bool = False,
        tls_ca: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_server_name: str | None = None,
    ) -> None:
        self.target = target
        self.channel_settings = ChannelSettings.resolve(
            target,
            token=token,
            tls=tls,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_server_name=tls_server_name,
        )
        self.namespace = rq.namespace(namespace)
        self.timeout = timeout
        self._owns_channel = channel is None
        self._channel = channel
        self._stubs = None if channel is None else rq.Stubs(channel)
        self._enqueues: batching.AsyncCoalescer[int] | None = None
        self._completions: batching.AsyncCoalescer[bool] | None = None
        if coalesce:
            run = batching.async_runner(lambda: self._stubs)
            self._enqueues = batching.AsyncCoalescer(run, batching.merge_enqueues)
            self._completions = batching.AsyncCoalescer(run, batching.merge_completions)

    @classmethod
    def from_env(cls, *, timeout: float | None = rq.DEFAULT_TIMEOUT) -> AsyncClient:
        """A client for `JOBWIRE_TARGET` and `JOBWIRE_NAMESPACE` (defaults when unset), with the
        token and TLS settings of the environment."""
        return cls(
            os.environ.get("JOBWIRE_TARGET") or rq.DEFAULT_TARGET,
            namespace=os.environ.get("JOBWIRE_NAMESPACE") or rq.DEFAULT_NAMESPACE,
            timeout=timeout,
        )

    def sync_client(self, *, timeout: float | None = rq.DEFAULT_TIMEOUT) -> Client:
        """A blocking Client of the same broker and namespace, with the same token and TLS."""
        from jobwire.client import Client

        return Client.from_settings(self.channel_settings, self.namespace, timeout=timeout)

    @classmethod
    def from_settings(
        cls,
        settings: ChannelSettings,
        namespace: str,
        *,
        timeout: float | None = rq.DEFAULT_TIMEOUT,
    ) -> AsyncClient:
        """A client connecting as `settings` say (see `channel_settings`)."""
        return cls(
            settings.target,
            namespace=namespace,
            timeout=timeout,
            token=settings.token,
            tls=settings.tls,
            tls_ca=settings.tls_ca,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            tls_server_name=settings.tls_server_name,
        )

    async def close(self) -> None:
        """Close the channel (unless it was passed in)."""
        if self._owns_channel and self._channel is not None:
            channel, self._channel, self._stubs = self._channel, None, None
            await channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient({self.target!r}, namespace={self.namespace!r})"

    async def _call(self, call: rq.Call[T]) -> T:
        if call.request is None:
            return call.parse(None)
        if self._stubs is None:  # first call: open the channel in the running loop
            self._channel = self.channel_settings.aio_channel()
            self._stubs = rq.Stubs(self._channel)
        method = self._stubs.method(call)
        try:
            response = await method(
                call.request, timeout=call.deadline(self.timeout), metadata=_tracing.metadata()
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return call.parse(response)

    # --- jobs -------------------------------------------------------------------------------

    async def enqueue(
        self,
        task: str,
        args: Sequence[Any] = (),
        *,
        attempts: int = 1,
        delay: float = 0,
        expire: float | None = None,
        lax: bool = False,
        notes: Mapping[str, Any] | None = None,
        parents: Iterable[int] = (),
        priority: int = 0,
        queue: str = "default",
    ) -> int:
        """Add an inactive job and return its id; delay and expire are seconds.

        Concurrent calls go to the broker together (see `coalesce`). An error other than
        INVALID_ARGUMENT (say UNAVAILABLE or DEADLINE_EXCEEDED) may come after the job was added,
        so it is never retried automatically; retrying may add the job twice.
        """
        call = rq.enqueue(
            self.namespace,
            task,
            args,
            attempts=attempts,
            delay=delay,
            expire=expire,
            lax=lax,
            notes=notes,
            parents=parents,
            priority=priority,
            queue=queue,
        )
        # The first call opens the channel; a traced enqueue goes alone.
        if self._enqueues is None or self._stubs is None or _tracing.metadata():
            return await self._call(call)
        return await self._enqueues.call(call, self.timeout)

    async def enqueue_many(self, jobs: Iterable[Mapping[str, Any]]) -> list[int]:
        """Add several jobs (dicts of enqueue's arguments) atomically; ids in the same order."""
        return await self._call(rq.enqueue_many(self.namespace, jobs))

    async def dequeue(
        self,
        worker_id: int,
        wait: float = 0.0,
        *,
        id: int | None = None,
        min_priority: int | None = None,
        queues: Iterable[str] = ("default",),
        tasks: Iterable[str] | None = None,
    ) -> DequeuedJob | None:
        """Take the best ready job, waiting up to `wait` seconds; None when none is ready.

        `tasks=None` takes any task; an empty `tasks` or `queues` list matches nothing.
        """
        jobs = await self._call(
            rq.dequeue(
                self.namespace,
                worker_id,
                1,
                wait,
                id=id,
                min_priority=min_priority,
                queues=queues,
                tasks=tasks,
            )
        )
        return jobs[0] if jobs else None

    async def dequeue_many(
        self,
        worker_id: int,
        count: int,
        wait: float = 0.0,
        *,
        id: int | None = None,
        min_priority: int | None = None,
        queues: Iterable[str] = ("default",),
        tasks: Iterable[str] | None = None,
    ) -> list[DequeuedJob]:
        """Take up to `count` ready jobs in one call (best first), waiting up to `wait` for one."""
        return await self._call(
            rq.dequeue(
                self.namespace,
                worker_id,
                count,
                wait,
                id=id,
                min_priority=min_priority,
                queues=queues,
                tasks=tasks,
            )
        )

    async def finish_job(
        self, id: int, retries: int, result: Any = None, *, lease: int | None = None
    ) -> bool:
        """Finish an active job; False when it is not active or `retries` is stale."""
        call = rq.finish_job(self.namespace, id, retries, result, lease)
        if self._completions is None or self._stubs is None:
            return await self._call(call)
        return await self._completions.call(call, self.timeout)

    async def fail_job(
        self, id: int, retries: int, result: Any = None, *, lease: int | None = None
    ) -> bool:
        """Fail an active job (retried automatically while attempts remain); False when stale."""
        call = rq.fail_job(self.namespace, id, retries, result, lease)
        if self._completions is None or self._stubs is None:
            return await self._call(call)
        return await self._completions.call(call, self.timeout)

    async def complete_jobs(self, completions: Iterable[tuple[Any, ...]]) -> list[bool]:
        """Finish or fail several jobs: `(id, retries, "finished" | "failed", result[, lease])`
        each; one flag per completion, False where the broker did not apply it."""
        return await self._call(rq.complete_jobs(self.namespace, completions))

    async def retry_job(
        self,
        id: int,
        retries: int,
        *,
        attempts: int | None = None,
        delay: float = 0,
        expire: float | None = None,
        lax: bool | None = None,
        parents: Iterable[int] | None = None,
        priority: int | None = None,
        queue: str | None = None,
        lease: int | None = None,
    ) -> bool:
        """Move a job back to inactive whatever its state; None options keep the job's values.

        With `lease` (DequeuedJob.lease) the job must also still be active under that lease."""
        return await self._call(
            rq.retry_job(
                self.namespace,
                id,
                retries,
                attempts=attempts,
                delay=delay,
                expire=expire,
                lax=lax,
                parents=parents,
                priority=priority,
                queue=queue,
                lease=lease,
            )
        )

    async def remove_job(self, id: int) -> bool:
        """Delete a job that is not active."""
        return await self._call(rq.remove_job(self.namespace, id))

    async def note(self, id: int, merge: Mapping[str, Any]) -> bool:
        """Merge top-level keys into a job's notes (None removes a key); False if no such job."""
        return await self._call(rq.note(self.namespace, id, merge))

    async def job_info(self, id: int) -> JobInfo | None:
        """One job, or None when it does not exist (or is inactive and expired)."""
        return await self._call(rq.job_info(self.namespace, id))

    async def list_jobs(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        before: int | None = None,
        ids: Iterable[int] | None = None,
        notes: Iterable[str] | None = None,
        queues: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
    ) -> Page[JobInfo]:
        """One page of jobs, newest first; each filter list means "any of"."""
        return await self._call(
            rq.list_jobs(
                self.namespace,
                offset,
                limit,
                before=before,
                ids=ids,
                notes=notes,
                queues=queues,
                states=states,
                tasks=tasks,
            )
        )

    async def jobs(
        self,
        *,
        before: int | None = None,
        ids: Iterable[int] | None = None,
        notes: Iterable[str] | None = None,
        queues: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        tasks: Iterable[str] | None = None,
        fetch: int = 100,
    ) -> AsyncIterator[JobInfo]:
        """Every matching job, newest first, fetched `fetch` at a time (Minion's Iterator)."""
        call = rq.list_jobs(
            self.namespace,
            0,
            fetch,
            before=before,
            ids=ids,
            notes=notes,
            queues=queues,
            states=states,
            tasks=tasks,
        )
        while page := await self._call(call):
            for job in page:
                yield job
            call = rq.before(call, page[-1].id)

    async def result(
        self, id: int, *, interval: float = 0.5, timeout: float | None = None
    ) -> JobInfo:
        """Poll until the job finished or failed and return its info.

        Raises NotFoundError when there is no such job (or it is removed while waiting), and
        DeadlineExceededError (a TimeoutError) when `timeout` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = await self.job_info(id)
            if info is None:
                raise rq.job_not_found(id)
            if info.state in rq.DONE_STATES:
                return info
            pause = interval
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise rq.result_timeout(id, timeout or 0.0)
                pause = min(pause, remaining)
            await asyncio.sleep(pause)

    # --- admin ------------------------------------------------------------------------------

    async def stats(self) -> Stats:
        """Minion's statistics for this namespace."""
        return await self._call(rq.stats(self.namespace))

    async def history(self) -> History:
        """Finished and failed jobs per hour over the last 24 hours."""
        return await self._call(rq.history(self.namespace))

    async def repair(self) -> RepairReport:
        """Run Minion's repair now (the broker also runs it periodically)."""
        return await self._call(rq.repair(self.namespace))

    async def reset(self, *, all: bool = False, locks: bool = False) -> None:
        """Delete everything (`all`, ids restart at 1) or only the locks."""
        await self._call(rq.reset(self.namespace, all=all, locks=locks))

    # --- workers ----------------------------------------------------------------------------

    async def register_worker(
        self,
        id: int | None = None,
        *,
        status: Mapping[str, Any] | None = None,
        host: str | None = None,
        pid: int | None = None,
        running: Iterable[int] | None = None,
        lease_duration: float | None = None,
    ) -> int:
        """Register a worker or heartbeat `id`; host and pid default to this process.

        `running` (all the jobs the worker runs) and `lease_duration` (seconds) are as in
        `heartbeat`, which also returns the rest of the broker's answer."""
        return await self._call(
            rq.register_worker(
                self.namespace,
                id,
                status=status,
                host=host,
                pid=pid,
                running=running,
                lease_duration=lease_duration,
            )
        )

    async def heartbeat(
        self,
        id: int | None = None,
        *,
        status: Mapping[str, Any] | None = None,
        host: str | None = None,
        pid: int | None = None,
        running: Iterable[int] | None = None,
        lease_duration: float | None = None,
    ) -> Registration:
        """`register_worker` returning the broker's whole answer (id, created, lost).

        `running` lists every job the worker runs (waiting, running, not yet reported): their
        leases are extended and the broker hands back the other jobs active under the worker
        once they are older than its grace. `lease_duration` (seconds) is how long leases of
        this worker last without a heartbeat; None keeps the previous value."""
        return await self._call(
            rq.heartbeat(
                self.namespace,
                id,
                status=status,
                host=host,
                pid=pid,
                running=running,
                lease_duration=lease_duration,
            )
        )

    async def unregister_worker(self, id: int) -> None:
        """Remove a worker; its active jobs are left for repair."""
        await self._call(rq.unregister_worker(self.namespace, id))

    async def list_workers(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        before: int | None = None,
        ids: Iterable[int] | None = None,
    ) -> Page[WorkerInfo]:
        """One page of workers, newest first."""
        return await self._call(
            rq.list_workers(self.namespace, offset, limit, before=before, ids=ids)
        )

    async def broadcast(
        self, command: str, args: Sequence[Any] = (), ids: Iterable[int] = ()
    ) -> bool:
        """Send `[command, *args]` to the listed workers (all when empty); True if any got it."""
        return await self._call(rq.broadcast(self.namespace, command, args, ids))

    async def receive(self, worker_id: int) -> list[list[Any]]:
        """Take a worker's inbox: its commands in the order they were sent."""
        return await self._call(rq.receive(self.namespace, worker_id))

    # --- locks ------------------------------------------------------------------------------

    async def lock(self, name: str, duration: float, *, limit: int = 1) -> bool:
        """Hold `name` for `duration` seconds if fewer than `limit` live holders exist.

        A duration <= 0 only checks whether the lock could be acquired.
        """
        return await self._call(rq.lock(self.namespace, name, duration, limit=limit))

    async def unlock(self, name: str) -> bool:
        """Release the holder of `name` that expires soonest."""
        return await self._call(rq.unlock(self.namespace, name))

    async def is_locked(self, name: str) -> bool:
        """Whether `name` has at least one live holder."""
        return not await self.lock(name, 0)

    @asynccontextmanager
    async def guard(
        self, name: str, duration: float, *, limit: int = 1
    ) -> AsyncIterator[Guard | None]:
        """Hold a lock for a block: yields a Guard, or None when the lock is busy.

        On exit the lock is released only if its duration has not passed yet, so an expired
        guard never frees a lock someone else acquired since.
        """
        deadline = time.monotonic() + duration
        if not await self.lock(name, duration, limit=limit):
            yield None
            return
        guard = Guard(name=name, deadline=deadline)
        try:
            yield guard
        finally:
            if not guard.expired:
                await self.unlock(name)

    async def list_locks(
        self, offset: int = 0, limit: int = 100, *, names: Iterable[str] | None = None
    ) -> Page[LockInfo]:
        """One page of live lock holders, newest first."""
        return await self._call(rq.list_locks(self.namespace, offset, limit, names=names))

    # --- schedules --------------------------------------------------------------------------

    async def schedule(
        self,
        name: str,
        cron: str,
        task: str,
        args: Sequence[Any] = (),
        *,
        attempts: int = 1,
        expire: float | None = None,
        lax: bool = False,
        notes: Mapping[str, Any] | None = None,
        priority: int = 0,
        queue: str = "default",
    ) -> int:
        """Create or replace the schedule `name` (UTC cron); returns its id."""
        return await self._call(
            rq.schedule(
                self.namespace,
                name,
                cron,
                task,
                args,
                attempts=attempts,
                expire=expire,
                lax=lax,
                notes=notes,
                priority=priority,
                queue=queue,
            )
        )

    async def unschedule(self, name: str) -> bool:
        """Delete a schedule; False when no schedule has that name."""
        return await self._call(rq.unschedule(self.namespace, name))

    async def pause_schedule(self, name: str) -> bool:
        """Stop a schedule from firing; False when no schedule has that name."""
        return await self._call(rq.pause_schedule(self.namespace, name))

    async def resume_schedule(self, name: str) -> bool:
        """Let a paused schedule fire again; False when no schedule has that name."""
        return await self._call(rq.resume_schedule(self.namespace, name))

    async def list_schedules(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        before: int | None = None,
        ids: Iterable[int] | None = None,
        names: Iterable[str] | None = None,
    ) -> Page[ScheduleInfo]:
        """One page of schedules, newest first."""
        return await self._call(
            rq.list_schedules(self.namespace, offset, limit, before=before, ids=ids, names=names)
        )

    async def dispatch_schedules(self) -> list[Dispatched]:
        """Enqueue one job per due schedule now; empty when another dispatcher is running."""
        return await self._call(rq.dispatch_schedules(self.namespace))
