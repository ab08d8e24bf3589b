"""`jobwire schedule ...`: Minion's `minion schedule` as subcommands."""

from __future__ import annotations

import argparse
from typing import Any

from jobwire.cli import _args
from jobwire.cli._output import CliError, Output, listing, more_hint
from jobwire.client import Client
from jobwire.types import ScheduleInfo


def add_parser(
    commands: _args.Commands, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """Register `schedule` and its subcommands; `schedule` alone lists schedules."""
    schedule = commands.add_parser(
        "schedule",
        parents=[common],
        help="cron schedules: list, show, add, pause, resume, remove, dispatch",
        description="Manage cron schedules (Minion's `minion schedule`; UTC). Without a "
        "subcommand: `list`. Minion's flags work as the first option: NAME (show), "
        "-e NAME -c CRON -t TASK (add), -P NAME, -r NAME, -R NAME, -d.",
    )
    sub = schedule.add_subparsers(dest="schedule_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("list", parents=[common], help="list schedules, newest first (default)")
    _args.paging(p, "schedules")
    p.set_defaults(run=list_schedules)

    p = sub.add_parser("show", parents=[common], help="show one schedule")
    p.add_argument("name")
    p.set_defaults(run=show_schedule)

    p = sub.add_parser(
        "add", parents=[common], help="add or replace a schedule by name and print its id"
    )
    p.add_argument("name")
    p.add_argument("cron", nargs="?", help="cron expression, e.g. '0 3 * * *' or @daily")
    p.add_argument("task", nargs="?")
    p.add_argument(
        "-c",
        "--cron",
        dest="cron_option",
        metavar="CRON",
        help="the cron expression (instead of the positional)",
    )
    p.add_argument(
        "-t",
        "--task",
        dest="task_option",
        metavar="TASK",
        help="the task (instead of the positional)",
    )
    p.add_argument(
        "-a",
        "--args",
        type=_args.json_array,
        default=[],
        metavar="JSON",
        help="arguments of each job as a JSON array (default [])",
    )
    p.add_argument(
        "-n",
        "--notes",
        type=_args.json_object,
        metavar="JSON",
        help="notes of each job as a JSON object",
    )
    _args.job_options(p)
    p.set_defaults(run=add, more=("extra", str), extra=[])

    for name, run, text in (
        ("pause", pause, "stop a schedule from firing"),
        ("resume", resume, "let a paused schedule fire again"),
        ("remove", remove, "delete a schedule"),
    ):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("name")
        p.set_defaults(run=run)

    p = sub.add_parser("dispatch", parents=[common], help="enqueue the due schedules now")
    p.set_defaults(run=dispatch)
    return schedule


def list_schedules(client: Client, args: argparse.Namespace, out: Output) -> int:
    page = client.list_schedules(args.offset, args.limit)

    def human() -> None:
        out.table(
            ("ID", "NAME", "TASK", "CRON", "NEXT_RUN", "PAUSED", "LAST_JOB"),
            (
                (
                    s.id,
                    s.name,
                    s.task,
                    s.cron,
                    s.next_run,
                    "yes" if s.paused else "no",
                    "-" if s.last_job is None else s.last_job,
                )
                for s in page
            ),
        )
        more_hint(out, "schedules", args.offset, len(page), page.total)

    out.emit(listing("schedules", page.items, page.total), human)
    return 0


def show_schedule(client: Client, args: argparse.Namespace, out: Output) -> int:
    page = client.list_schedules(0, 1, names=[args.name])
    if not page.items:
        raise CliError("Schedule does not exist.")
    info = page[0]
    out.emit(info, lambda: out.fields(schedule_fields(info)))
    return 0


def schedule_fields(info: ScheduleInfo) -> dict[str, Any]:
    """A schedule's fields in reading order."""
    keys = (
        "id",
        "name",
        "cron",
        "task",
        "args",
        "paused",
        "next_run",
        "last_run",
        "last_job",
        "queue",
        "priority",
        "attempts",
        "expire",
        "lax",
        "notes",
        "created",
    )
    return {key: getattr(info, key) for key in keys}


def add(client: Client, args: argparse.Namespace, out: Output) -> int:
    # CRON and TASK come as positionals or as Minion's -c and -t, in any mix.
    given = [value for value in (args.cron, args.task) if value is not None] + args.extra
    cron = args.cron_option if args.cron_option is not None else _take(given)
    task = args.task_option if args.task_option is not None else _take(given)
    if given:
        raise CliError(f"unexpected argument {given[0]!r}")
    if cron is None:
        raise CliError("Cron expression is required (-c).")
    if task is None:
        raise CliError("Task is required (-t).")
    schedule_id = client.schedule(
        args.name,
        cron,
        task,
        args.args,
        attempts=args.attempts,
        expire=args.expire,
        lax=args.lax,
        notes=args.notes,
        priority=args.priority,
        queue=args.queue,
    )
    out.emit({"id": schedule_id}, lambda: out.line(str(schedule_id)))
    return 0


def _take(values: list[str]) -> str | None:
    return values.pop(0) if values else None


def pause(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _by_name(client.pause_schedule(args.name), args.name, "paused", out)


def resume(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _by_name(client.resume_schedule(args.name), args.name, "resumed", out)


def remove(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _by_name(client.unschedule(args.name), args.name, "removed", out)


def _by_name(exists: bool, name: str, verb: str, out: Output) -> int:
    if not exists:
        raise CliError("Schedule does not exist.")
    out.emit({"name": name, verb: True}, lambda: None)
    return 0


def dispatch(client: Client, args: argparse.Namespace, out: Output) -> int:
    fired = client.dispatch_schedules()
    out.emit(
        {"dispatched": fired},
        lambda: out.table(("ID", "NAME", "JOB"), ((d.id, d.name, d.job) for d in fired)),
    )
    return 0
