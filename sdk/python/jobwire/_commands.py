"""Built-in remote commands (jobs, spare, kill, stop): plain Worker functions, like custom ones."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobwire.worker import Worker

# Signals `kill` may send (Minion's list).
SIGNALS = {
    "INT": signal.SIGINT,
    "TERM": signal.SIGTERM,
    "KILL": signal.SIGKILL,
    "USR1": signal.SIGUSR1,
    "USR2": signal.SIGUSR2,
}
_DIGITS = re.compile(r"[0-9]+")


def count(value: object, name: str) -> int:
    """A non-negative int; digit strings are accepted (command arguments arrive as JSON)."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"{name} must be a non-negative integer, not {value!r}")


def _jobs_command(worker: Worker, *args: Any) -> None:
    """`jobs N`: change concurrency (0 pauses; spare slots stay)."""
    worker.set_concurrency(count(args[0] if args else None, "jobs"))


def _spare_command(worker: Worker, *args: Any) -> None:
    """`spare N`: change the spare slots."""
    worker.set_spare(count(args[0] if args else None, "spare"))


def _kill_command(worker: Worker, *args: Any) -> None:
    """`kill SIGNAL JOB_ID`: signal a job this worker runs; ignored otherwise."""
    if len(args) < 2 or args[0] not in SIGNALS:
        raise ValueError(f"kill needs INT|TERM|KILL|USR1|USR2 and a job id, not {list(args)!r}")
    worker.kill(args[0], count(args[1], "job id"))


def _stop_command(worker: Worker, *args: Any) -> None:
    """`stop JOB_ID`: `kill KILL JOB_ID`."""
    _kill_command(worker, "KILL", *args)


# The commands every worker has; `Worker.add_command` may add more or replace these.
BUILTIN_COMMANDS: Mapping[str, Callable[..., Any]] = {
    "jobs": _jobs_command,
    "spare": _spare_command,
    "kill": _kill_command,
    "stop": _stop_command,
}
