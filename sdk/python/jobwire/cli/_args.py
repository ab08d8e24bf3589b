"""Argument types and option groups shared by the `jobwire` subcommands (Minion's short flags)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TypeAlias

STATES = ("inactive", "active", "failed", "finished")
# What `add_subparsers` returns; each command module adds its parser to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def json_array(text: str) -> list[Any]:
    """`-a/--args`: a JSON array."""
    value = _json(text)
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"must be a JSON array, not {text!r}")
    return value


def json_object(text: str) -> dict[str, Any]:
    """`-n/--notes` of new jobs and schedules: a JSON object."""
    value = _json(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {text!r}")
    return value


def json_names(text: str) -> list[str]:
    """`-n/--notes` of `job list`: a JSON array of note keys (`'["progress"]'`)."""
    value = _json(text)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise argparse.ArgumentTypeError(f"must be a JSON array of strings, not {text!r}")
    return value


def count(text: str) -> int:
    """A non-negative integer (limits, offsets, attempts, concurrency)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {text!r}")
    return value


def seconds(text: str) -> float:
    """A non-negative number of seconds (delay, expire)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}")
    return value


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"invalid JSON {text!r}: {error}") from None


# Token and TLS flags: (flag, environment variable the client falls back to, help).
SECURITY_OPTIONS = (
    ("--token", "JOBWIRE_TOKEN", "bearer token sent with every call"),
    ("--tls-ca", "JOBWIRE_TLS_CA", "use TLS, trusting this PEM CA bundle"),
    ("--tls-cert", "JOBWIRE_TLS_CLIENT_CERT", "use mTLS with this PEM client certificate"),
    ("--tls-key", "JOBWIRE_TLS_CLIENT_KEY", "the client certificate's PEM key"),
    ("--tls-server-name", "JOBWIRE_TLS_SERVER_NAME", "name the server certificate must carry"),
)


def connection_options(parser: argparse.ArgumentParser) -> None:
    """`--target --namespace --timeout --token --tls-* --json`, before or after any subcommand.

    Defaults are SUPPRESSed so a subcommand never overwrites what was given before it; `main`
    fills in the environment and the defaults.
    """
    group = parser.add_argument_group("broker and output")
    group.add_argument(
        "--target",
        default=argparse.SUPPRESS,
        metavar="HOST:PORT",
        help="broker address (env JOBWIRE_TARGET, default 127.0.0.1:50051)",
    )
    group.add_argument(
        "--namespace",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="namespace (env JOBWIRE_NAMESPACE, default 'default')",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="deadline of each broker call (default 30)",
    )
    for flag, variable, help_text in SECURITY_OPTIONS:
        group.add_argument(
            flag,
            default=argparse.SUPPRESS,
            metavar=variable.removeprefix("JOBWIRE_"),
            help=f"{help_text} (env {variable})",
        )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON document instead of text",
    )


def paging(parser: argparse.ArgumentParser, what: str) -> None:
    """Minion's `-l/--limit` (100) and `-o/--offset` (0)."""
    parser.add_argument(
        "-l", "--limit", type=count, default=100, help=f"number of {what} to show (default 100)"
    )
    parser.add_argument(
        "-o", "--offset", type=count, default=0, help=f"number of {what} to skip (default 0)"
    )


def job_filters(parser: argparse.ArgumentParser) -> None:
    """`-q/--queue` and `-t/--task`, each repeatable ("any of")."""
    parser.add_argument(
        "-q",
        "--queue",
        action="append",
        metavar="NAME",
        help="only jobs in this queue (repeatable)",
    )
    parser.add_argument(
        "-t", "--task", action="append", metavar="NAME", help="only jobs of this task (repeatable)"
    )


def job_options(parser: argparse.ArgumentParser, *, retry: bool = False) -> None:
    """Options of a new job (`enqueue`, `schedule add`) or of a retried one (`retry`).

    For `retry` every option defaults to None: the job keeps its value.
    """
    keep = " (default: keep the job's)" if retry else ""
    parser.add_argument(
        "-A",
        "--attempts",
        type=count,
        default=None if retry else 1,
        help=f"times the job is attempted{keep or ' (default 1)'}",
    )
    parser.add_argument(
        "-E",
        "--expire",
        type=seconds,
        metavar="SECONDS",
        help="the job expires unless started within this many seconds",
    )
    parser.add_argument(
        "-p",
        "--priority",
        type=int,
        default=None if retry else 0,
        help=f"priority, higher first{keep or ' (default 0)'}",
    )
    parser.add_argument(
        "-q",
        "--queue",
        default=None if retry else "default",
        help=f"queue{keep or ' (default: default)'}",
    )
    if retry:
        parser.add_argument(
            "-x",
            "--lax",
            action=argparse.BooleanOptionalAction,
            help="whether failed parents still let the job run" + keep,
        )
    else:
        parser.add_argument("-x", "--lax", action="store_true", help="run even if parents failed")
