"""`jobwire worker`: run a Worker found at an import path, or list the registered workers.

`jobwire worker -m MODULE[:ATTR]` imports MODULE (the current directory is on the path) and
takes ATTR (default `worker`), which is one of:
- a `jobwire.Worker`: run as built, with its own client (so --target/--namespace do not apply);
  -q, -j, -s, -L and --mode given on the command line override its settings;
- a mapping of task names to functions: a new Worker on the command line's broker runs them;
- a function taking the command line's `Client` and returning a Worker (a factory).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobwire.cli import _args
from jobwire.cli._output import CliError, Output, listing, more_hint
from jobwire.client import Client

if TYPE_CHECKING:
    from jobwire.worker import Worker


def add_parser(
    commands: _args.Commands, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """Register `worker run` (the default) and `worker list`."""
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="run a worker (-m module[:attr]) or list workers",
        description="Run a worker (`worker -m MODULE[:ATTR]` is `worker run -m ...`) or list "
        "the registered workers (`worker list [ID]`, Minion's `minion job -w`).",
    )
    sub = worker.add_subparsers(dest="worker_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="run a Worker found at an import path until SIGINT/SIGTERM (default)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-m",
        "--module",
        required=True,
        metavar="MODULE[:ATTR]",
        help="where the Worker (or task mapping, or factory) is; ATTR defaults to 'worker'",
    )
    p.add_argument(
        "-q",
        "--queue",
        action="append",
        metavar="NAME",
        help="queue to take jobs from (repeatable; default: default)",
    )
    p.add_argument(
        "-j", "--jobs", type=_args.count, metavar="N", help="jobs performed at once (default 4)"
    )
    p.add_argument(
        "-s",
        "--spare",
        type=_args.count,
        metavar="N",
        help="extra slots for high-priority jobs (default 1)",
    )
    p.add_argument(
        "-S",
        "--spare-min-priority",
        type=int,
        metavar="N",
        help="lowest priority a spare slot takes (default 1)",
    )
    p.add_argument(
        "-L",
        "--limit",
        action="append",
        default=[],
        type=_limit,
        metavar="TASK=N",
        help="at most N running jobs of TASK (repeatable)",
    )
    p.add_argument(
        "--mode",
        choices=("stream", "poll"),
        help="have jobs pushed over a stream (default) or long-poll for them",
    )
    p.add_argument(
        "--executor",
        choices=("thread", "process"),
        help="run plain functions in threads (default) or one process per job",
    )
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.set_defaults(run=run_worker, default_timeout=None)

    p = sub.add_parser("list", parents=[common], help="list workers, or show one")
    p.add_argument("id", nargs="?", type=int, help="show this worker only")
    _args.paging(p, "workers")
    p.set_defaults(run=list_workers)
    return worker


def _limit(text: str) -> tuple[str, int]:
    task, sep, number = text.rpartition("=")
    if not sep or not task:
        raise argparse.ArgumentTypeError(f"must be TASK=N, not {text!r}")
    return task, _args.count(number)


# --- commands -------------------------------------------------------------------------------


def list_workers(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.id is not None:
        page = client.list_workers(0, 1, ids=[args.id])
        if not page.items:
            raise CliError("Worker does not exist.")
        worker = page[0]
        out.emit(
            worker,
            lambda: out.fields(
                {
                    "id": worker.id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "jobs": worker.jobs,
                    "started": worker.started,
                    "notified": worker.notified,
                    "status": worker.status,
                }
            ),
        )
        return 0
    page = client.list_workers(args.offset, args.limit)

    def human() -> None:
        out.table(
            ("ID", "HOST", "PID", "JOBS", "STARTED", "NOTIFIED"),
            ((w.id, w.host, w.pid, len(w.jobs), w.started, w.notified) for w in page),
        )
        more_hint(out, "workers", args.offset, len(page), page.total)

    out.emit(listing("workers", page.items, page.total), human)
    return 0


def run_worker(client: Client, args: argparse.Namespace, out: Output) -> int:
    """Build the Worker and run it in the foreground; returns when it has stopped."""
    from jobwire.worker import Worker  # the runtime is only needed here

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    found = load(args.module)
    if isinstance(found, Worker):
        worker = found
    elif isinstance(found, Mapping):
        worker = Worker(client)
        for name, fn in found.items():
            worker.add_task(str(name), fn)
    elif callable(found):
        worker = found(client)
        if not isinstance(worker, Worker):
            raise CliError(f"{args.module} returned {type(worker).__name__}, not a Worker")
    else:
        raise CliError(
            f"{args.module} is a {type(found).__name__}, not a Worker, a mapping of tasks or "
            "a function returning a Worker"
        )
    _configure(worker, args)
    if not worker.tasks:
        out.note(f"jobwire: warning: {args.module} registers no tasks; no job will be taken")
    out.note(
        f"jobwire: worker for {', '.join(worker.tasks) or 'no tasks'} on queues "
        f"{', '.join(worker.settings.queues)} ({worker.mode}); Ctrl-C stops it"
    )
    worker.run()
    return 0


def _configure(worker: Worker, args: argparse.Namespace) -> None:
    """Apply the command line's settings to a Worker (only the ones given)."""
    if args.queue:
        worker.settings.queues = list(args.queue)
    if args.jobs is not None:
        worker.set_concurrency(args.jobs)
    if args.spare is not None:
        worker.set_spare(args.spare)
    if args.spare_min_priority is not None:
        worker.settings.spare_min_priority = args.spare_min_priority
    if args.limit:
        worker.set_limits({**worker.settings.limits, **dict(args.limit)})
    if args.mode is not None:
        worker.mode = args.mode
    if args.executor is not None:
        worker.executor = args.executor


def load(spec: str) -> Any:
    """The object at `module[:attr]` (attr default `worker`), importing from the cwd too."""
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise CliError(f"bad import path {spec!r}: expected MODULE[:ATTR]")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CliError(f"cannot import {module_name}: {error}") from None
    found: Any = module
    for part in (attr or "worker").split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CliError(f"{module_name} has no attribute {attr or 'worker'!r}") from None
    return found
