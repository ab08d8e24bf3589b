"""The process executor: the job process' entry point (importable by name) and its verdict."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from jobwire._channel import ChannelSettings
from jobwire._job import CALL_TIMEOUT, Job, Outcome, error_result
from jobwire.client import Client
from jobwire.types import DequeuedJob


def terminated(exit_code: int, signal_number: int) -> str:
    """Minion's result for a job whose process ended without reporting."""
    return f"Job terminated unexpectedly (exit code: {exit_code}, signal: {signal_number})"


def new_process(
    mp_context: Literal["forkserver", "spawn"],
    fn: Callable[..., Any],
    job: DequeuedJob,
    settings: ChannelSettings,
    namespace: str,
) -> tuple[BaseProcess, Connection, Connection]:
    """An unstarted process running `fn` for `job`, and the (receiver, sender) of its answer.

    The process connects to the broker as `settings` say (the worker's own target, token, TLS).
    """
    context = (
        multiprocessing.get_context("spawn")
        if mp_context == "spawn"
        else multiprocessing.get_context("forkserver")
    )
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_process_main,
        args=(fn, job, settings, namespace, sender),
        name=f"jobwire-job-{job.id}",
    )
    return process, receiver, sender


def _process_main(
    fn: Callable[..., Any],
    job: DequeuedJob,
    settings: ChannelSettings,
    namespace: str,
    sender: Connection,
) -> None:
    """Entry point of a job process: run the task, send (outcome, result, settled), exit 0.

    INT and TERM keep their default action and USR1/USR2 are ignored, as in Minion's job
    processes, so `kill` ends the process and the parent reports it terminated.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    clients: list[Client] = []

    def client() -> Client:
        if not clients:
            # The worker's token and TLS settings (they travel in the pickled arguments).
            clients.append(Client.from_settings(settings, namespace, timeout=CALL_TIMEOUT))
        return clients[0]

    handle = Job(job, client)
    message: tuple[Outcome, Any, bool]
    try:
        message = ("finished", fn(handle, *job.args), handle.settled)
    except Exception as error:
        message = ("failed", error_result(error), handle.settled)
    try:
        try:
            sender.send(message)
        except Exception as error:  # e.g. a result that cannot be pickled
            sender.send(("failed", error_result(error), handle.settled))
    finally:
        sender.close()
        for c in clients:
            c.close()


def wait_for_process(process: BaseProcess, receiver: Connection) -> tuple[Outcome, Any, bool]:
    """Blocks until the job process answered and exited; its answer, or Minion's verdict."""
    message: tuple[Outcome, Any, bool] | None = None
    try:
        multiprocessing.connection.wait([receiver, process.sentinel])
        if receiver.poll():
            with contextlib.suppress(EOFError, OSError):
                message = receiver.recv()
    finally:
        receiver.close()
    process.join()
    code = process.exitcode or 0
    if message is not None:
        return message
    if code == 0:
        return "finished", None, False
    exit_code, signal_number = (0, -code) if code < 0 else (code, 0)
    return "failed", terminated(exit_code, signal_number), False
