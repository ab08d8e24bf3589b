"""`jobwire job ...`: Minion's `minion job` as subcommands (list, show, enqueue, retry, ...)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from jobwire.cli import _args
from jobwire.cli._output import CliError, Output, listing, more_hint
from jobwire.client import Client
from jobwire.types import JobInfo

# Failed jobs handled between two progress lines of retry-failed and remove-failed.
PROGRESS_EVERY = 100


def add_parser(
    commands: _args.Commands, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """Register `job` and its subcommands; `job` alone lists jobs (see `cli._minion_aliases`)."""
    job = commands.add_parser(
        "job",
        parents=[common],
        help="list, show, enqueue, retry and remove jobs; stats, history, broadcast",
        description="Manage jobs (Minion's `minion job`). Without a subcommand: `list`. "
        "Minion's flags work as the first option: -e TASK (enqueue), ID (show), -R ID, "
        "--remove ID, --retry-failed, --remove-failed, -s, -H, -b CMD, -w, -L, -U NAME.",
    )
    sub = job.add_subparsers(dest="job_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("list", parents=[common], help="list jobs, newest first (default)")
    _args.job_filters(p)
    p.add_argument(
        "-S",
        "--state",
        action="append",
        choices=_args.STATES,
        help="only jobs in this state (repeatable)",
    )
    p.add_argument(
        "-n",
        "--notes",
        type=_args.json_names,
        metavar="JSON",
        help="only jobs with one of these note keys, e.g. '[\"progress\"]'",
    )
    p.add_argument("--before", type=int, metavar="ID", help="only jobs with a smaller id")
    _args.paging(p, "jobs")
    p.set_defaults(run=list_jobs)

    p = sub.add_parser("show", parents=[common], help="show everything about one job")
    p.add_argument("id", type=int)
    p.set_defaults(run=show_job)

    p = sub.add_parser("enqueue", parents=[common], help="enqueue a job and print its id")
    p.add_argument("task")
    p.add_argument(
        "-a",
        "--args",
        type=_args.json_array,
        default=[],
        metavar="JSON",
        help="arguments as a JSON array (default [])",
    )
    p.add_argument(
        "-n", "--notes", type=_args.json_object, metavar="JSON", help="notes as a JSON object"
    )
    p.add_argument(
        "-d",
        "--delay",
        type=_args.seconds,
        default=0,
        metavar="SECONDS",
        help="delay the job by this many seconds",
    )
    p.add_argument(
        "-P",
        "--parent",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="a job this one waits for (repeatable)",
    )
    _args.job_options(p)
    p.set_defaults(run=enqueue)

    p = sub.add_parser(
        "retry",
        parents=[common],
        help="move a job back to inactive, in any state; options change it",
    )
    p.add_argument("id", type=int)
    p.add_argument(
        "-d",
        "--delay",
        type=_args.seconds,
        default=0,
        metavar="SECONDS",
        help="delay the retried job by this many seconds",
    )
    p.add_argument(
        "-P",
        "--parent",
        type=int,
        action="append",
        metavar="ID",
        help="replace the job's parents (repeatable)",
    )
    _args.job_options(p, retry=True)
    p.set_defaults(run=retry)

    p = sub.add_parser("remove", parents=[common], help="remove a job that is not active")
    p.add_argument("id", type=int)
    p.set_defaults(run=remove)

    for name, verb in (("retry-failed", "retry"), ("remove-failed", "remove")):
        p = sub.add_parser(name, parents=[common], help=f"{verb} every failed job")
        _args.job_filters(p)
        p.set_defaults(run=retry_failed if verb == "retry" else remove_failed)

    p = sub.add_parser("stats", parents=[common], help="show the namespace's statistics")
    p.set_defaults(run=stats)
    p = sub.add_parser(
        "history", parents=[common], help="finished and failed jobs per hour, last 24 hours"
    )
    p.set_defaults(run=history)

    p = sub.add_parser(
        "broadcast",
        parents=[common],
        help="send a remote-control command to workers (all when no ids)",
    )
    p.add_argument("command", help="e.g. jobs, spare, kill, stop")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="worker ids")
    p.add_argument(
        "-a",
        "--args",
        type=_args.json_array,
        default=[],
        metavar="JSON",
        help="the command's arguments as a JSON array",
    )
    p.set_defaults(run=broadcast, more=("ids", int))
    return job


# --- commands -------------------------------------------------------------------------------


def list_jobs(client: Client, args: argparse.Namespace, out: Output) -> int:
    page = client.list_jobs(
        args.offset,
        args.limit,
        before=args.before,
        notes=args.notes,
        queues=args.queue,
        states=args.state,
        tasks=args.task,
    )

    def human() -> None:
        out.table(
            ("ID", "STATE", "QUEUE", "TASK", "PRIORITY", "CREATED"),
            ((j.id, j.state, j.queue, j.task, j.priority, j.created) for j in page),
        )
        more_hint(out, "jobs", args.offset, len(page), page.total)

    out.emit(listing("jobs", page.items, page.total), human)
    return 0


def show_job(client: Client, args: argparse.Namespace, out: Output) -> int:
    info = _job(client, args.id)
    out.emit(info, lambda: out.fields(job_fields(info)))
    return 0


def job_fields(info: JobInfo) -> dict[str, Any]:
    """A job's fields in reading order: identity, payload, relations, then timestamps."""
    keys = (
        "id",
        "task",
        "state",
        "queue",
        "priority",
        "attempts",
        "retries",
        "args",
        "notes",
        "result",
        "parents",
        "children",
        "lax",
        "worker",
        "created",
        "delayed",
        "started",
        "retried",
        "finished",
        "expires",
        "time",
    )
    return {key: getattr(info, key) for key in keys}


def enqueue(client: Client, args: argparse.Namespace, out: Output) -> int:
    job_id = client.enqueue(
        args.task,
        args.args,
        attempts=args.attempts,
        delay=args.delay,
        expire=args.expire,
        lax=args.lax,
        notes=args.notes,
        parents=args.parent,
        priority=args.priority,
        queue=args.queue,
    )
    out.emit({"id": job_id}, lambda: out.line(str(job_id)))
    return 0


def retry(client: Client, args: argparse.Namespace, out: Output) -> int:
    info = _job(client, args.id)
    retried = client.retry_job(
        info.id,
        info.retries,
        attempts=args.attempts,
        delay=args.delay,
        expire=args.expire,
        lax=args.lax,
        parents=args.parent,
        priority=args.priority,
        queue=args.queue,
    )
    if not retried:  # the job changed under us (Minion's wording for a failed retry)
        raise CliError("Job is active.")
    out.emit({"id": info.id, "retried": True}, lambda: None)
    return 0


def remove(client: Client, args: argparse.Namespace, out: Output) -> int:
    if not client.remove_job(args.id):
        info = _job(client, args.id)
        raise CliError("Job is active." if info.state == "active" else "Job was not removed.")
    out.emit({"id": args.id, "removed": True}, lambda: None)
    return 0


def retry_failed(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _each_failed(
        client, args, out, "retried", lambda job: client.retry_job(job.id, job.retries)
    )


def remove_failed(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _each_failed(client, args, out, "removed", lambda job: client.remove_job(job.id))


def _each_failed(
    client: Client,
    args: argparse.Namespace,
    out: Output,
    verb: str,
    action: Callable[[JobInfo], bool],
) -> int:
    """Apply `action` to every failed job (newest first), with a progress line every 100.

    Jobs that changed meanwhile (retried or removed by someone else) are counted as skipped.
    """
    filters: dict[str, Any] = {"queues": args.queue, "states": ["failed"], "tasks": args.task}
    total = client.list_jobs(0, 1, **filters).total
    done = skipped = 0
    jobs: Iterator[JobInfo] = client.jobs(**filters)
    for seen, job in enumerate(jobs, 1):
        if action(job):
            done += 1
        else:
            skipped += 1
        if seen % PROGRESS_EVERY == 0:
            out.note(f"{verb} {done} of {max(total, seen)} failed jobs...")
    report = {verb: done, "skipped": skipped}
    extra = f" ({skipped} had changed and were skipped)" if skipped else ""
    out.emit(report, lambda: out.line(f"{verb.capitalize()} {done} failed jobs.{extra}"))
    return 0


def stats(client: Client, args: argparse.Namespace, out: Output) -> int:
    result = client.stats()
    out.emit(result, lambda: out.fields(dataclasses.asdict(result)))
    return 0


def history(client: Client, args: argparse.Namespace, out: Output) -> int:
    result = client.history()
    out.emit(
        result,
        lambda: out.table(
            ("HOUR", "FINISHED", "FAILED"),
            ((h.epoch, h.finished_jobs, h.failed_jobs) for h in result.daily),
        ),
    )
    return 0


def broadcast(client: Client, args: argparse.Namespace, out: Output) -> int:
    sent = client.broadcast(args.command, args.args, args.ids)
    if not sent and not out.json_mode:
        raise CliError("No worker received the command.")
    out.emit({"command": args.command, "sent": sent}, lambda: None)
    return 0 if sent else 1


def _job(client: Client, job_id: int) -> JobInfo:
    info = client.job_info(job_id)
    if info is None:
        raise CliError("Job does not exist.")
    return info
