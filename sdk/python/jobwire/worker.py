"""The jobwire worker runtime: Minion's worker on top of the Subscribe stream (or long polling).

    from jobwire import Client, Worker

    worker = Worker(Client("127.0.0.1:50051"), queues=("default",), concurrency=4)

    @worker.task("add")
    def add(job, a, b):
        job.note(progress="50%")
        return a + b

    worker.run()

How a job is performed:
- `async def` tasks run on the worker's event loop; plain functions run in a thread pool
  (`executor="thread"`, size concurrency + spare) or in a new process per job
  (`executor="process"`, multiprocessing "forkserver" or "spawn": the function must be importable).
- The return value is the result (`finished`); an exception fails the job with
  `{"error": "ValueError: boom", "traceback": "Traceback (most recent call last): ..."}`; a job
  process that dies without answering fails it with Minion's
  `"Job terminated unexpectedly (exit code: N, signal: S)"`. A task that finished, failed or
  retried its job itself (`job.finish()` ...) keeps that outcome: no second report is sent.
- Results go to the broker in `CompleteJobs` calls of at most 3 MiB, each with the attempt's lease;
  until the broker answers, the job counts as running, so a reconnect never gets it delivered
  again. A result larger than that on its own fails the job with
  `{"error": "result too large: N bytes (limit M)"}`. Only transient errors (UNAVAILABLE,
  DEADLINE_EXCEEDED, ABORTED, CANCELLED, RESOURCE_EXHAUSTED other than "message too large") are
  retried, with backoff; a call the broker refuses is split and each outcome sent alone, a refused
  outcome is replaced once by an error result, then given up (WARNING). An outcome the broker does
  not apply (the job was retried, failed by repair, or its lease lost) is logged at WARNING.

Leases: every job is delivered with a lease (a fencing token). Each heartbeat lists all the jobs
the worker holds (waiting, running, not yet reported) and sets `lease_duration`; the broker
extends those leases and hands back the jobs it made active under the worker that were lost on
the way. Jobs it answers as `lost` are stopped (a process is SIGKILLed, an async task cancelled, a
thread task has `job.killed` set) and forgotten without a report, which would be refused. When a
heartbeat re-created the worker (the broker had removed it), it subscribes again.

Stopping: SIGINT/SIGTERM (or `stop()`) stops taking jobs, gives back those not started, waits
for the running ones, reports them and unregisters. A worker that never reached the broker exits
at once; one whose broker stays away while it stops gives up reporting after the longest backoff
(the broker fails those jobs as "Worker went away" once their leases expire). A second signal
(or SIGQUIT, or `stop(force=True)`) forces the stop: job processes are SIGKILLed and async tasks
cancelled, both failed with `"Job terminated unexpectedly (exit code: 0, signal: 9)"`; a thread
cannot be stopped, so its job is not reported at all and the broker fails it as "Worker went
away" (lease expiry, or repair after the worker unregistered) and retries it while attempts
remain. Thread tasks run in daemon threads, so they end with the process. A third signal
abandons everything at once, as cancelling `run_async` does.

Remote commands (`client.broadcast`): `jobs N`, `spare N`, `kill SIGNAL JOB_ID`, `stop JOB_ID`,
plus `@worker.command(name)`. `kill` sends the signal to a job process; thread and async tasks
cannot be signalled: INT, TERM and KILL fail the job at once (as if its process had been killed)
after cancelling an async task or setting `job.killed` for a thread task (which keeps running
until it returns, its outcome ignored); USR1 and USR2 are ignored for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import grpc

from jobwire import _requests as rq
from jobwire import _tracing, convert
from jobwire._commands import BUILTIN_COMMANDS, count
from jobwire._commands import SIGNALS as SIGNALS
from jobwire._job import CALL_TIMEOUT, Entry, Job
from jobwire._job import Outcome as Outcome
from jobwire._job import error_result as error_result
from jobwire._process import new_process, wait_for_process
from jobwire._process import terminated as terminated
from jobwire.aio import AsyncClient
from jobwire.client import Client
from jobwire.convert import InvalidValue
from jobwire.errors import JobwireError, from_rpc_error
from jobwire.types import DequeuedJob, Registration
from jobwire.v1 import worker_service_pb2, worker_service_pb2_grpc

__all__ = ["Job", "Worker"]

log = logging.getLogger("jobwire.worker")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# Reconnect and resend backoff: 0.05 s doubling up to 5 s, reset after a success.
BACKOFF_MIN = 0.05
BACKOFF_MAX = 5.0
# Signals that end a thread or async task (it cannot receive a real one).
_ENDING = frozenset({"INT", "TERM", "KILL"})
# Codes after which the same call may succeed later (CANCELLED: from a channel being closed);
# RESOURCE_EXHAUSTED too unless it says the message was too large. Every other code means the
# request itself is refused, and sending it again would fail forever.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
    }
)
# Most bytes of completions in one CompleteJobs request, well below the 4 MiB a broker accepts
# by default; a single completion larger than this is replaced by an error result.
MAX_REPORT_BYTES = 3 * 1024 * 1024
# Most completions in one CompleteJobs request.
MAX_REPORT_COUNT = 1000
# Shortest default lease: a few missed heartbeats must not cost a job its lease.
MIN_LEASE_DURATION = 30.0


def transient(error: JobwireError) -> bool:
    """Whether sending the same request again may succeed (the broker is away or busy)."""
    if error.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "larger than max" not in error.reason  # gRPC's words for an oversized message
    return error.code in _TRANSIENT


@dataclass
class _Settings:
    """What the worker tells the broker (status and subscription); commands change it."""

    queues: list[str]
    concurrency: int
    spare: int
    spare_min_priority: int
    min_priority: int | None
    limits: dict[str, int] = field(default_factory=dict)


class Worker:
    """Performs jobs of the registered tasks; Minion's worker with jobs pushed by the broker.

    `client` is a `Client` or an `AsyncClient`. The runtime is asyncio: given a `Client`, it opens
    its own AsyncClient (same target, namespace, token and TLS); given an `AsyncClient`, it uses
    it and opens a blocking `Client` like it for thread tasks' job handles.

    `mode="stream"` subscribes and has jobs and commands pushed; `mode="poll"` long-polls
    `Dequeue` (`poll_wait` seconds) and reads the inbox between polls. `spare` extra slots take
    only jobs with priority >= `spare_min_priority`; `limits` caps running jobs per task.

    Every heartbeat lists the jobs the worker holds, which extends their leases for
    `lease_duration` seconds (default: six heartbeats, at least 30 s); a job whose lease the
    broker reports lost is stopped and forgotten, since its outcome would be refused.
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        queues: Iterable[str] = ("default",),
        concurrency: int = 4,
        *,
        heartbeat_interval: float = 5.0,
        lease_duration: float | None = None,
        spare: int = 1,
        spare_min_priority: int = 1,
        limits: Mapping[str, int] | None = None,
        min_priority: int | None = None,
        mode: Literal["stream", "poll"] = "stream",
        executor: Literal["thread", "process"] = "thread",
        mp_context: Literal["forkserver", "spawn"] = "forkserver",
        poll_wait: float = 5.0,
        stream_timeout: float = 45.0,
    ) -> None:
        if mode not in ("stream", "poll"):
            raise ValueError(f"mode must be 'stream' or 'poll', not {mode!r}")
        if executor not in ("thread", "process"):
            raise ValueError(f"executor must be 'thread' or 'process', not {executor!r}")
        if isinstance(queues, str):
            raise TypeError("queues must be a list of names, not a string")
        self.client = client
        self.mode = mode
        self.executor = executor
        self.mp_context = mp_context
        self.heartbeat_interval = heartbeat_interval
        self.lease_duration = (
            max(6 * heartbeat_interval, MIN_LEASE_DURATION)
            if lease_duration is None
            else float(lease_duration)
        )
        self.poll_wait = poll_wait
        self.stream_timeout = stream_timeout
        self.settings = _Settings(
            queues=list(queues),
            concurrency=count(concurrency, "concurrency"),
            spare=count(spare, "spare"),
            spare_min_priority=int(spare_min_priority),
            min_priority=min_priority,
            limits={task: count(n, f"limits[{task}]") for task, n in (limits or {}).items()},
        )
        self.id: int | None = None
        self.performed = 0
        # Set once the worker is registered and its first subscription (or poll) is under way.
        self.ready = threading.Event()
        self._tasks: dict[str, Callable[..., Any]] = {}
        self._commands: dict[str, Callable[..., Any]] = dict(BUILTIN_COMMANDS)
        self._entries: dict[tuple[int, int, int], Entry] = {}
        self._outbox: list[Entry] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aclient: AsyncClient | None = None
        self._sync: Client | None = None
        self._sync_lock = threading.Lock()
        self._stopping = False
        self._force = False
        self._aborted = False
        self._main: asyncio.Task[Any] | None = None
        # Jobs whose thread a forced stop could not end: never given back while it may run.
        self._unstoppable: set[int] = set()
        self._stop_requested = False

    def __repr__(self) -> str:
        return f"Worker(id={self.id}, queues={self.settings.queues!r}, mode={self.mode!r})"

    # --- registration of tasks and commands -------------------------------------------------

    def task(self, name: str) -> Callable[[F], F]:
        """Decorator registering `fn(job, *args)` as the task `name`; returns fn unchanged."""

        def register(fn: F) -> F:
            self.add_task(name, fn)
            return fn

        return register

    def add_task(self, name: str, fn: Callable[..., Any]) -> None:
        """Register `fn(job, *args)` (plain or `async def`) as the task `name`."""
        if self._loop is not None:
            raise RuntimeError("register tasks before the worker runs")
        self._tasks[name] = fn

    def command(self, name: str) -> Callable[[F], F]:
        """Decorator registering a remote command `fn(worker, *args)` (plain or async)."""

        def register(fn: F) -> F:
            self.add_command(name, fn)
            return fn

        return register

    def add_command(self, name: str, fn: Callable[..., Any]) -> None:
        """Register or replace the remote command `name`; it runs on the worker's event loop."""
        self._commands[name] = fn

    @property
    def tasks(self) -> list[str]:
        """Names of the registered tasks, which are the only tasks this worker takes."""
        return sorted(self._tasks)

    # --- state ------------------------------------------------------------------------------

    @property
    def running(self) -> list[int]:
        """Ids of the jobs active under this worker: waiting, running or not yet reported."""
        return sorted({entry.job.id for entry in self._entries.values()})

    def status(self) -> dict[str, Any]:
        """The status sent with every heartbeat (Minion's keys, plus `type` and `running`)."""
        s = self.settings
        status: dict[str, Any] = {
            "type": "Python",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": list(s.queues),
            "jobs": s.concurrency,
            "spare": s.spare,
            "spare_min_priority": s.spare_min_priority,
            "limits": dict(s.limits),
            "tasks": self.tasks,
            "running": len(self._entries),
            "performed": self.performed,
            "heartbeat_interval": self.heartbeat_interval,
            "mode": self.mode,
            "executor": self.executor,
        }
        if s.min_priority is not None:
            status["min_priority"] = s.min_priority
        return status

    def set_concurrency(self, concurrency: int) -> None:
        """Change how many jobs run at once (0 pauses); applies at once (the `jobs` command).

        Like `set_spare` and `set_limits`, safe to call from any thread while the worker runs.
        """
        self.settings.concurrency = count(concurrency, "concurrency")
        self._reconfigured()

    def set_spare(self, spare: int) -> None:
        """Change the number of spare slots for high-priority jobs (the `spare` command)."""
        self.settings.spare = count(spare, "spare")
        self._reconfigured()

    def set_limits(self, limits: Mapping[str, int]) -> None:
        """Replace the per-task limits; applies at once."""
        self.settings.limits = {task: count(n, f"limits[{task}]") for task, n in limits.items()}
        self._reconfigured()

    def kill(self, signal_name: str, job_id: int) -> bool:
        """Send INT|TERM|KILL|USR1|USR2 to a running job (see the module docs); False if unknown."""
        entry = next(
            (e for e in self._entries.values() if e.job.id == job_id and e.state == "running"),
            None,
        )
        if entry is None or signal_name not in SIGNALS:
            return False
        if entry.process is not None:
            if entry.process.exitcode is None and entry.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry.process.pid, SIGNALS[signal_name])
            return True
        if entry.process is None and signal_name in _ENDING and entry.task is not None:
            entry.killed = signal_name
            entry.handle.killed.set()
            entry.task.cancel()
            return True
        log.info("job %d: %s cannot be delivered to a %s task; ignored", job_id, signal_name,
                 "thread" if entry.process is None else "process")  # fmt: skip
        return False

    # --- running ----------------------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGINT/SIGTERM (then finish the running jobs and unregister); blocks.

        A second SIGINT/SIGTERM, or SIGQUIT, stops the running jobs instead of waiting (see the
        module docs); a third abandons everything at once. Signals can only be handled on the
        main thread: in another thread, `stop()` ends the worker.
        """
        asyncio.run(self.run_async())

    def stop(self, *, force: bool = False) -> None:
        """Stop taking jobs, finish (or with `force`, kill) the running ones, unregister, return.

        Safe to call from any thread or from a task; `run`/`run_async` return when done.
        """
        loop = self._loop
        if loop is None:
            self._stop_requested = True
            self._force = self._force or force
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._request_stop(force)
        else:
            loop.call_soon_threadsafe(self._request_stop, force)

    async def run_async(self, *, handle_signals: bool | None = None) -> None:
        """`run` on the caller's event loop. Signal handlers are installed when `handle_signals`
        is true, or when None and this is the main thread; use `stop()` otherwise.

        Cancelling this coroutine is an abrupt stop: running jobs are abandoned to repair.
        """
        if not self._tasks:
            raise RuntimeError("register at least one task before running the worker")
        if self._loop is not None:
            raise RuntimeError("the worker is already running")
        loop = self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._aborted = False
        self._wake = asyncio.Event()
        self._reconfigure = asyncio.Event()
        self._progress = asyncio.Event()
        self._outbox_ready = asyncio.Event()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        if handle_signals is None:
            handle_signals = threading.current_thread() is threading.main_thread()
        installed = self._install_signals(loop) if handle_signals else []
        aclient, owns_aclient = self._make_async_client()
        self._aclient = aclient
        loops: list[asyncio.Task[None]] = []
        try:
            self.id = await self._register_until_done()
            if self.id is None:
                return
            receive = self._stream_loop() if self.mode == "stream" else self._poll_loop()
            loops = [
                self._supervised(receive, "receive"),
                self._supervised(self._heartbeat_loop(), "heartbeat"),
                self._supervised(self._report_loop(), "report"),
            ]
            await self._stop.wait()
            await self._shutdown(loops)
        except asyncio.CancelledError:
            if not self._aborted:
                raise
        finally:
            for task in [*loops, *self._background]:
                task.cancel()
            for entry in self._entries.values():
                self._abandon(entry)
            await asyncio.gather(*loops, *self._background, return_exceptions=True)
            for sig in installed:
                loop.remove_signal_handler(sig)
            if owns_aclient:
                await aclient.close()
            if self._sync is not None and self._sync is not self.client:
                self._sync.close()
                self._sync = None
            self._loop = None
            self.ready.clear()

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        """Graceful stop: no new jobs, give back unstarted ones, wait, flush, unregister."""
        receive = loops[0]
        receive.cancel()
        await asyncio.gather(receive, return_exceptions=True)
        if self._force:
            self._kill_all()
        await self._hand_back_waiting()
        while any(entry.state != "waiting" for entry in self._entries.values()):
            self._progress.clear()
            await self._progress.wait()
        await self._hand_back_orphans()
        assert self.id is not None
        try:
            await self._async().unregister_worker(self.id)
        except JobwireError as error:
            log.warning("worker %d: unregister failed: %s", self.id, error)

    def _request_stop(self, force: bool) -> None:
        if self._stopping and force and not self._force:
            self._force = True
            self._kill_all()
        self._force = self._force or force
        self._stopping = True
        self._stop.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        def on_signal(sig: int) -> None:
            if self._force and self._main is not None:
                log.warning("worker %s: %s again; abandoning the running jobs to the broker",
                            self.id, signal.Signals(sig).name)  # fmt: skip
                self._aborted = True
                self._main.cancel()
                return
            force = sig == signal.SIGQUIT or self._stopping
            log.info("worker %s: %s, %s", self.id, signal.Signals(sig).name,
                     "killing running jobs" if force else "finishing running jobs")  # fmt: skip
            self._request_stop(force)

        installed: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        return installed

    def _supervised(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        """A background loop; if it crashes (a bug), the worker logs it and stops."""

        async def guard() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s: %s loop crashed; stopping", self.id, name)
                self._request_stop(False)

        return asyncio.ensure_future(guard())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        """Run a fire-and-forget coroutine, keeping a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- clients ----------------------------------------------------------------------------

    def _make_async_client(self) -> tuple[AsyncClient, bool]:
        if isinstance(self.client, AsyncClient):
            return self.client, False
        timeout = self.client.timeout if self.client.timeout is not None else CALL_TIMEOUT
        return self.client.async_client(timeout=timeout), True

    def _async(self) -> AsyncClient:
        assert self._aclient is not None
        return self._aclient

    def _sync_client(self) -> Client:
        """The blocking client of job handles (created on first use, from any thread)."""
        if isinstance(self.client, Client):
            return self.client
        with self._sync_lock:
            if self._sync is None:
                self._sync = self.client.sync_client(timeout=CALL_TIMEOUT)
            return self._sync

    def _subscribe_stub(self) -> worker_service_pb2_grpc.WorkerServiceStub:
        # AsyncClient opens its channel on its first call (the registration came first).
        channel = self._async()._channel
        assert channel is not None
        stub: Any = worker_service_pb2_grpc.WorkerServiceStub
        return stub(channel)  # type: ignore[no-any-return]

    # --- registration and heartbeats --------------------------------------------------------

    async def _register_until_done(self) -> int | None:
        """Register, retrying transient failures with backoff (the broker may be restarting);
        None when the worker is told to stop first (nothing registered, nothing to undo)."""
        backoff = BACKOFF_MIN
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                attempt = asyncio.ensure_future(self._register())
                await asyncio.wait({attempt, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not attempt.done():
                    attempt.cancel()
                    await asyncio.gather(attempt, return_exceptions=True)
                    return None
                error = attempt.exception()
                if error is None:
                    return attempt.result().id
                if not isinstance(error, JobwireError) or not transient(error):
                    raise error
                log.warning("worker: cannot register (%s); retrying in %.2fs", error, backoff)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stop), backoff)
                if stop.done():
                    return None
                backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            stop.cancel()

    async def _register(self) -> Registration:
        """RegisterWorker with the status, the jobs held and the lease duration."""
        return await self._async().heartbeat(
            self.id,
            status=self.status(),
            running=self.running,
            lease_duration=self.lease_duration,
        )

    async def _heartbeat(self) -> None:
        """Heartbeat; resubscribe when the broker had removed us, stop the jobs it says we lost."""
        held = set(self._entries)
        try:
            registration = await self._register()
        except JobwireError as error:
            log.warning("worker %s: heartbeat failed: %s", self.id, error)
            return
        if registration.lost:
            self._lost(registration.lost, held)
        if registration.created and self.mode == "stream":
            log.warning("worker %s: the broker had removed this worker; subscribing again",
                        self.id)  # fmt: skip
            self._reconfigure.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._heartbeat()

    def _reconfigured(self) -> None:
        """Concurrency, spare or limits changed: resubscribe, maybe start jobs (on the loop)."""
        loop = self._loop
        if loop is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            loop.call_soon_threadsafe(self._reconfigured_here, True)
            return
        self._reconfigured_here(False)

    def _reconfigured_here(self, heartbeat: bool) -> None:
        if heartbeat:  # commands heartbeat after they ran; direct calls heartbeat here
            self._spawn(self._heartbeat())
        self._reconfigure.set()
        self._wake.set()
        self._dispatch()

    # --- receiving jobs: stream -------------------------------------------------------------

    def _subscribe_request(self) -> worker_service_pb2.SubscribeRequest:
        s = self.settings
        assert self.id is not None
        request = worker_service_pb2.SubscribeRequest(
            namespace=self._async().namespace,
            worker_id=self.id,
            queues=s.queues,
            tasks=self.tasks,
            concurrency=s.concurrency,
            running=self.running,
            limits=s.limits,
            spare=s.spare,
            spare_min_priority=s.spare_min_priority,
        )
        if s.min_priority is not None:
            request.min_priority = s.min_priority
        return request

    async def _stream_loop(self) -> None:
        """Subscribe, handle messages, and reconnect with backoff when the stream ends."""
        backoff = BACKOFF_MIN
        while True:
            self._reconfigure.clear()
            call = self._subscribe_stub().Subscribe(self._subscribe_request())
            changed = asyncio.ensure_future(self._reconfigure.wait())
            why = "ended"
            try:
                await call.initial_metadata()
                self.ready.set()
                while True:
                    read = asyncio.ensure_future(call.read())
                    done, _ = await asyncio.wait(
                        {read, changed},
                        timeout=self.stream_timeout,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if read not in done:
                        read.cancel()
                        why = "reconfigured" if changed.done() else "silent"
                        break
                    message = read.result()
                    if message is grpc.aio.EOF:
                        break
                    backoff = BACKOFF_MIN
                    self._on_message(message)
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
                why = f"{error.code.name}: {error.reason}"
                if error.code == grpc.StatusCode.FAILED_PRECONDITION:
                    await self._heartbeat()  # registers the worker again under its id
            finally:
                changed.cancel()
                call.cancel()
            if why == "reconfigured":
                backoff = BACKOFF_MIN
                continue
            log.info("worker %s: stream %s; reconnecting in %.2fs", self.id, why, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _on_message(self, message: worker_service_pb2.SubscribeResponse) -> None:
        for job in message.jobs:
            self._deliver(convert.dequeued_job(job))
        self._dispatch()
        ran = False
        for command in message.commands:
            ran = self._run_command(convert.from_list_value(command)) or ran
        if ran:
            self._spawn(self._heartbeat())

    # --- receiving jobs: long polling -------------------------------------------------------

    def _wanted(self) -> tuple[int, int | None, list[str]]:
        """How many jobs to ask for, the minimum priority, and the tasks allowed by limits."""
        s = self.settings
        used = len(self._entries)
        min_priority = s.min_priority
        if used < s.concurrency:
            count = s.concurrency - used
        elif used < s.concurrency + s.spare:
            count = s.concurrency + s.spare - used
            if min_priority is None or min_priority < s.spare_min_priority:
                min_priority = s.spare_min_priority
        else:
            return 0, None, []
        counts = self._task_counts(all_states=True)
        tasks = []
        for task in self.tasks:
            limit = s.limits.get(task)
            if limit is None:
                tasks.append(task)
            elif counts.get(task, 0) < limit:
                tasks.append(task)
                count = min(count, limit - counts.get(task, 0))
        return count, min_priority, tasks

    async def _poll_loop(self) -> None:
        """Read the inbox, then long-poll Dequeue for as many jobs as there are free slots."""
        backoff = BACKOFF_MIN
        assert self.id is not None
        self.ready.set()
        while True:
            try:
                commands = await self._async().receive(self.id)
                if any([self._run_command(command) for command in commands]):
                    self._spawn(self._heartbeat())
                count, min_priority, tasks = self._wanted()
                if count == 0 or not tasks:
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), min(self.poll_wait, 1.0))
                    continue
                jobs = await self._async().dequeue_many(
                    self.id,
                    count,
                    self.poll_wait,
                    min_priority=min_priority,
                    queues=self.settings.queues,
                    tasks=tasks,
                )
                backoff = BACKOFF_MIN
            except JobwireError as error:
                log.warning("worker %s: poll failed (%s); retrying in %.2fs", self.id, error,
                            backoff)  # fmt: skip
                if error.code == grpc.StatusCode.FAILED_PRECONDITION:
                    await self._heartbeat()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            for job in jobs:
                self._deliver(job)
            self._dispatch()

    # --- commands ---------------------------------------------------------------------------

    def _run_command(self, command: list[Any]) -> bool:
        """Run one `[name, *args]` command; False when unknown or malformed."""
        if not command or not isinstance(command[0], str):
            log.warning("worker %s: malformed command %r ignored", self.id, command)
            return False
        name, args = command[0], command[1:]
        fn = self._commands.get(name)
        if fn is None:
            log.info("worker %s: unknown command %r ignored", self.id, name)
            return False
        try:
            outcome = fn(self, *args)
            if inspect.isawaitable(outcome):
                self._spawn(self._await_command(name, outcome))
        except Exception:
            log.exception("worker %s: command %r failed", self.id, name)
        return True

    async def _await_command(self, name: str, outcome: Awaitable[Any]) -> None:
        try:
            await outcome
        except Exception:
            log.exception("worker %s: command %r failed", self.id, name)

    # --- performing jobs --------------------------------------------------------------------

    def _deliver(self, job: DequeuedJob) -> None:
        entry = Entry(job, Job(job, self._sync_client, self._aclient))
        if entry.key in self._entries:
            log.debug("worker %s: job %d delivered again; ignored", self.id, job.id)
            return
        if self._stopping:  # arrived on a stream that was closing: give it back at once
            self._spawn(self._give_back(job))
            return
        self._entries[entry.key] = entry

    def _task_counts(self, *, all_states: bool = False) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self._entries.values():
            if all_states or entry.state != "waiting":
                counts[entry.job.task] = counts.get(entry.job.task, 0) + 1
        return counts

    def _dispatch(self) -> None:
        """Start the waiting jobs that fit the local slots, best first."""
        if self._stopping:
            return
        waiting = [e for e in self._entries.values() if e.state == "waiting"]
        if not waiting:
            return
        s = self.settings
        used = len(self._entries) - len(waiting)
        counts = self._task_counts()
        for entry in sorted(waiting, key=lambda e: (-e.job.priority, e.job.id)):
            job = entry.job
            if used >= s.concurrency + s.spare:
                break
            if used >= s.concurrency and job.priority < s.spare_min_priority:
                continue
            limit = s.limits.get(job.task)
            if limit is not None and counts.get(job.task, 0) >= limit:
                continue
            used += 1
            counts[job.task] = counts.get(job.task, 0) + 1
            entry.state = "running"
            entry.task = asyncio.ensure_future(self._perform(entry))

    async def _perform(self, entry: Entry) -> None:
        job, handle = entry.job, entry.handle
        span = _tracing.start_job(job)
        fn = self._tasks.get(job.task)
        outcome: Outcome = "finished"
        result: Any = None
        try:
            if fn is None:
                outcome, result = "failed", f'Task "{job.task}" not registered'
            elif inspect.iscoroutinefunction(fn):
                result = await fn(handle, *job.args)
            elif self.executor == "process":
                outcome, result, settled = await self._perform_in_process(entry, fn)
                handle.settled = handle.settled or settled
            else:
                entry.in_thread = True
                outcome, result = await self._perform_in_thread(fn, handle, job.args)
        except asyncio.CancelledError:
            if entry.killed is None:
                raise
            outcome, result = "failed", terminated(0, SIGNALS[entry.killed])
        except Exception as error:
            outcome, result = "failed", error_result(error)
        _tracing.end_job(span, outcome, result)
        self._complete(entry, outcome, result)

    async def _perform_in_thread(
        self, fn: Callable[..., Any], handle: Job, args: list[Any]
    ) -> tuple[Outcome, Any]:
        def call() -> tuple[Outcome, Any]:
            try:
                return "finished", fn(handle, *args)
            except Exception as error:
                return "failed", error_result(error)

        return await _in_thread(f"jobwire-job-{handle.id}", call)

    async def _perform_in_process(
        self, entry: Entry, fn: Callable[..., Any]
    ) -> tuple[Outcome, Any, bool]:
        """Run the task in a new process; wait for its answer and its exit in a thread."""
        aclient = self._async()
        process, receiver, sender = new_process(
            self.mp_context, fn, entry.job, aclient.channel_settings, aclient.namespace
        )
        name = f"jobwire-job-{entry.job.id}"
        try:
            await _in_thread(name, process.start)
            sender.close()
            entry.process = process
            await self._note_pid(entry.job.id, process.pid)
            return await _in_thread(name, wait_for_process, process, receiver)
        finally:
            entry.process = None
            with contextlib.suppress(ValueError):  # still running only after an abrupt exit
                process.close()

    async def _note_pid(self, job_id: int, pid: int | None) -> None:
        """Minion 12 notes the job process' pid as `minion_pid`."""
        try:
            await self._async().note(job_id, {"minion_pid": pid})
        except JobwireError as error:
            log.debug("job %d: cannot note minion_pid: %s", job_id, error)

    def _kill_all(self) -> None:
        """Forced stop: kill job processes, cancel async tasks; thread tasks cannot be stopped,
        so their jobs are left to the broker (not reported) and end with the worker process."""
        for entry in list(self._entries.values()):
            if entry.state != "running":
                continue
            if entry.in_thread:
                log.warning("job %d: its thread cannot be stopped; left unreported (the broker "
                            "fails it as \"Worker went away\" and retries it)",
                            entry.job.id)  # fmt: skip
                self._drop(entry)
                self._unstoppable.add(entry.job.id)
            else:
                self.kill("KILL", entry.job.id)

    def _drop(self, entry: Entry) -> None:
        """Forget a job without reporting it: ask it to stop and free its slot."""
        entry.dropped = True
        entry.handle.killed.set()
        if entry.process is not None:
            if entry.process.exitcode is None and entry.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(entry.process.pid, signal.SIGKILL)
        elif entry.task is not None and not entry.in_thread:
            entry.task.cancel()
        with contextlib.suppress(ValueError):
            self._outbox.remove(entry)
        self._forget(entry)

    def _lost(self, ids: Iterable[int], held: set[tuple[int, int, int]]) -> None:
        """The broker says these jobs are no longer ours: stop them; their outcome is refused.

        Only entries `held` when the heartbeat was sent count: a later delivery of the same job
        is a new attempt."""
        for job_id in ids:
            for entry in [e for e in self._entries.values() if e.job.id == job_id]:
                if entry.key in held and not entry.dropped:
                    log.warning("job %d: lease lost (the broker no longer has it active under "
                                "worker %s); stopping it, outcome not reported", job_id,
                                self.id)  # fmt: skip
                    self._drop(entry)

    def _abandon(self, entry: Entry) -> None:
        """Abrupt exit: stop what can be stopped; the broker's repair deals with the job."""
        if entry.task is not None:
            entry.task.cancel()
        process = entry.process
        if process is not None and process.exitcode is None and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)

    # --- reporting outcomes -----------------------------------------------------------------

    def _complete(self, entry: Entry, outcome: Outcome, result: Any) -> None:
        """Queue the job's outcome for the broker (unless the task already settled the job)."""
        if entry.dropped:
            return
        entry.state = "reporting"
        if entry.handle.settled:
            self._reported(entry)
            return
        try:
            self._set_outcome(entry, outcome, result)
        except InvalidValue as error:
            outcome, result = "failed", {
                "error": f"the result of task {entry.job.task!r} is not JSON: "
                         f"{error.field}: {error.description}"}  # fmt: skip
            self._set_outcome(entry, outcome, result)
        size = _size(entry)
        if size > MAX_REPORT_BYTES:
            outcome, result = "failed", {
                "error": f"result too large: {size} bytes (limit {MAX_REPORT_BYTES})"}  # fmt: skip
            self._set_outcome(entry, outcome, result)
        job = entry.job
        fields = {"task": job.task, "job_id": job.id, "attempt": job.retries + 1}
        if outcome == "failed":
            summary = result.get("error", result) if isinstance(result, dict) else result
            log.warning("job %d (%s, attempt %d) failed: %s", job.id, job.task,
                        job.retries + 1, summary, extra={**fields, "error": summary})  # fmt: skip
        else:
            log.debug("job %d (%s) finished", job.id, job.task, extra=fields)
        self._outbox.append(entry)
        self._outbox_ready.set()

    def _set_outcome(self, entry: Entry, outcome: Outcome, result: Any) -> None:
        job = entry.job
        entry.completion = rq.completion(
            0, (job.id, job.retries, outcome, result, job.lease or None)
        )

    def _reported(self, entry: Entry) -> None:
        """The broker has the outcome (or refused it for good): the slot is free."""
        self.performed += 1
        self._forget(entry)

    def _forget(self, entry: Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        self._progress.set()
        self._wake.set()
        self._dispatch()

    async def _report_loop(self) -> None:
        """Send the queued outcomes in CompleteJobs calls of at most MAX_REPORT_BYTES each.

        Transient failures are retried with backoff, the outcomes kept (the jobs count as
        running, so a reconnect does not get them delivered again). While stopping, the worker
        gives up once the broker stayed away through the longest backoff (at once when forced):
        the broker then fails those jobs as "Worker went away".
        """
        backoff = BACKOFF_MIN
        while True:
            await self._outbox_ready.wait()
            await asyncio.sleep(0)  # let outcomes of the same moment join the batch
            try:
                await self._send(_batch(self._outbox))
            except JobwireError as error:
                if self._stopping and (self._force or backoff >= BACKOFF_MAX):
                    self._give_up_reports(error)
                    continue
                log.warning("worker %s: cannot report %d outcomes (%s); retrying in %.2fs",
                            self.id, len(self._outbox), error, backoff)  # fmt: skip
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_MIN
            if not self._outbox:
                self._outbox_ready.clear()

    def _give_up_reports(self, error: JobwireError) -> None:
        log.warning("worker %s: stopping; %d outcomes not reported (%s): jobs %s", self.id,
                    len(self._outbox), error, [e.job.id for e in self._outbox])  # fmt: skip
        for entry in list(self._outbox):
            entry.dropped = True
            self._outbox.remove(entry)
            self._forget(entry)
        self._outbox_ready.clear()

    async def _send(self, batch: list[Entry]) -> None:
        """Report `batch` in one CompleteJobs call; each entry leaves the outbox once the broker
        answered for it. A refused call is split and each outcome sent alone; a lone refused
        outcome is replaced by an error result once, then given up. Transient errors propagate,
        leaving the unsent entries in the outbox."""
        completions = [entry.completion for entry in batch if entry.completion is not None]
        try:
            aclient = self._async()
            applied = await aclient._call(rq.complete_jobs(aclient.namespace, completions))
        except JobwireError as error:
            if transient(error):
                raise
            if len(batch) > 1:
                log.info("worker %s: %d outcomes refused together (%s); sending each alone",
                         self.id, len(batch), error)  # fmt: skip
                for entry in batch:
                    await self._send([entry])
                return
            entry = batch[0]
            if entry.fallback:
                log.warning("job %d: the broker refused its outcome (%s); given up", entry.job.id,
                            error)  # fmt: skip
                self._sent(entry)
                return
            entry.fallback = True
            refused = f"the broker refused the result: {error.code.name}: {error.reason}"
            self._set_outcome(entry, "failed", {"error": refused})
            await self._send([entry])
            return
        for entry, done in zip(batch, applied, strict=False):
            if not done:
                log.warning("job %d: outcome refused by the broker: the job is no longer active "
                            "under this attempt (retries %d, lease %d): it was retried, failed "
                            "by repair, or its lease was lost", entry.job.id, entry.job.retries,
                            entry.job.lease)  # fmt: skip
            self._sent(entry)

    def _sent(self, entry: Entry) -> None:
        with contextlib.suppress(ValueError):
            self._outbox.remove(entry)
        if not entry.dropped:
            self._reported(entry)

    # --- giving jobs back on stop -----------------------------------------------------------

    async def _hand_back_waiting(self) -> None:
        """Jobs delivered but never started go back to inactive for another worker."""
        for entry in [e for e in self._entries.values() if e.state == "waiting"]:
            await self._give_back(entry.job)
            self._entries.pop(entry.key, None)

    async def _hand_back_orphans(self) -> None:
        """Jobs the broker made active under us that never arrived (written to a stream that
        was closing) go back to inactive, so they neither wait for repair nor fail. Jobs whose
        thread is still running after a forced stop are not ours to give back."""
        assert self.id is not None
        try:
            workers = await self._async().list_workers(ids=[self.id])
        except JobwireError as error:
            log.warning("worker %d: cannot list own jobs on stop: %s", self.id, error)
            return
        for worker in workers:
            for job_id in worker.jobs:
                if job_id in self._unstoppable:
                    continue
                try:
                    info = await self._async().job_info(job_id)
                except JobwireError as error:
                    log.warning("job %d: cannot read it on stop: %s", job_id, error)
                    continue
                if info is not None and info.state == "active" and info.worker == self.id:
                    await self._give_back_id(job_id, info.retries, None)

    async def _give_back(self, job: DequeuedJob) -> None:
        await self._give_back_id(job.id, job.retries, job.lease or None)

    async def _give_back_id(self, job_id: int, retries: int, lease: int | None) -> None:
        try:
            if await self._async().retry_job(job_id, retries, lease=lease):
                log.info("worker %s: job %d given back (not started)", self.id, job_id)
        except JobwireError as error:
            log.warning("job %d: cannot give it back: %s", job_id, error)


def _in_thread(name: str, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """`fn(*args)` in a new daemon thread, as a future of the running loop.

    Daemon threads, unlike a thread pool's, never hold the process at exit: a thread task that
    ignores `job.killed` cannot keep a worker that was told to stop from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def main() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(*args), None)
        except BaseException as error:
            outcome = (None, error)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=main, name=name, daemon=True).start()
    return future


def _size(entry: Entry) -> int:
    """Bytes the entry's completion takes in a CompleteJobs request (field tag and length)."""
    assert entry.completion is not None
    return entry.completion.ByteSize() + 6


def _batch(outbox: list[Entry]) -> list[Entry]:
    """The oldest outcomes that fit one CompleteJobs request (at least one)."""
    batch: list[Entry] = []
    size = 0
    for entry in outbox:
        size += _size(entry)
        if batch and (size > MAX_REPORT_BYTES or len(batch) >= MAX_REPORT_COUNT):
            break
        batch.append(entry)
    return batch
