"""The `jobwire` command: Minion's `minion job` / `minion worker` / `minion schedule` for a broker.

    jobwire broker [flags]                          serve (`python -m broker`)
    jobwire health                                  exit 0 if the broker is SERVING (probes)
    jobwire worker [run] -m MODULE[:ATTR] [-q Q] [-j N] [--mode stream|poll]
    jobwire worker list [ID]
    jobwire job [list] [-q Q] [-t TASK] [-S STATE] [-n JSON] [-l N] [-o N] [--before ID]
    jobwire job show|retry|remove ID;  jobwire job enqueue TASK [-a JSON] [-n JSON] ...
    jobwire job retry-failed|remove-failed [-q Q] [-t TASK];  jobwire job stats|history
    jobwire job broadcast COMMAND [-a JSON] [IDS...]
    jobwire lock [list] [NAMES...];  jobwire lock unlock NAME
    jobwire schedule [list]|show NAME|add NAME CRON TASK|pause NAME|resume NAME|remove NAME|dispatch

Minion's own flags also work as the first option of a command (`jobwire job -e add -a '[2,3]'`,
`jobwire job 23`, `jobwire job -s`, `jobwire schedule -P nightly`). Every command takes
`--target` (JOBWIRE_TARGET), `--namespace` (JOBWIRE_NAMESPACE), `--timeout`, `--json`, and
`--token` (JOBWIRE_TOKEN), `--tls-ca` (JOBWIRE_TLS_CA), `--tls-cert`/`--tls-key` (a client
certificate for mTLS) and `--tls-server-name`. `jobwire health` exits 0 when the broker serves.
Expected failures print one line (`jobwire: Job does not exist.`) and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc

from jobwire.cli import _args, health, jobs, locks, schedules, workers
from jobwire.cli._output import CliError, Output
from jobwire.client import Client
from jobwire.errors import JobwireError

__all__ = ["main"]

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT = 30.0

# Connection options that take a value, and those that do not (see `_args.connection_options`).
_GLOBAL_VALUES = frozenset(
    {"--target", "--namespace", "--timeout", *(flag for flag, _, _ in _args.SECURITY_OPTIONS)}
)
_GLOBAL_FLAGS = frozenset({"--json"})
_HELP = frozenset({"-h", "--help"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `jobwire` command; returns the exit code (console script `jobwire`)."""
    words = list(sys.argv[1:] if argv is None else argv)
    at = _next_word(words, 0)
    if at < len(words) and words[at] == "broker":  # the broker parses its own flags
        from broker.__main__ import main as broker_main

        return broker_main(words[at + 1 :])
    parser = build_parser()
    args = _parse(parser, _minion_aliases(words, at))
    out = Output(getattr(args, "json", False))
    target = getattr(args, "target", None) or os.environ.get("JOBWIRE_TARGET") or DEFAULT_TARGET
    namespace = (
        getattr(args, "namespace", None) or os.environ.get("JOBWIRE_NAMESPACE") or DEFAULT_NAMESPACE
    )
    timeout = getattr(args, "timeout", getattr(args, "default_timeout", DEFAULT_TIMEOUT))
    try:
        with Client(
            target,
            namespace=namespace,
            timeout=timeout,
            token=getattr(args, "token", None),
            tls_ca=getattr(args, "tls_ca", None),
            tls_cert=getattr(args, "tls_cert", None),
            tls_key=getattr(args, "tls_key", None),
            tls_server_name=getattr(args, "tls_server_name", None),
        ) as client:
            return int(args.run(client, args, out))
    except ValueError as error:  # e.g. a client certificate without its key
        return _fail(str(error))
    except CliError as error:
        return _fail(str(error))
    except JobwireError as error:
        return _fail(describe(error, target))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `jobwire job list | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 1


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; connection options are accepted at every level."""
    common = argparse.ArgumentParser(add_help=False)
    _args.connection_options(common)
    parser = argparse.ArgumentParser(
        prog="jobwire",
        parents=[common],
        description="Talk to a jobwire broker, Minion style: jobs, workers, locks, schedules.",
        epilog="Run `jobwire COMMAND -h` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    broker = commands.add_parser(
        "broker", add_help=False, help="run a broker (`jobwire broker --help` for its flags)"
    )
    broker.add_argument("flags", nargs=argparse.REMAINDER)
    health.add_parser(commands, common)
    workers.add_parser(commands, common)
    jobs.add_parser(commands, common)
    locks.add_parser(commands, common)
    schedules.add_parser(commands, common)
    return parser


def _parse(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    """parse_args, except that a command's trailing list (`more`) also takes words given after
    its options: `broadcast jobs -a '[1]' 23 24`, `schedule add NAME -t TASK CRON`.

    (argparse gives optional positionals their defaults as soon as an option follows the
    required ones, and calls any later positional unrecognized.)
    """
    args, extra = parser.parse_known_args(words)
    if extra:
        more = getattr(args, "more", None)
        if more is None or any(word.startswith("-") for word in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        dest, kind = more
        try:
            values = [kind(word) for word in extra]
        except ValueError:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, dest, [*(getattr(args, dest) or []), *values])
    return args


def describe(error: JobwireError, target: str) -> str:
    """The one line for a failed call; a broker that cannot be reached says so plainly."""
    reason = error.reason.lower()
    if (
        error.code is grpc.StatusCode.UNAVAILABLE
        and "redis" not in reason
        and "broker" not in reason
    ):
        return f"cannot reach broker at {target} (UNAVAILABLE)"
    return str(error)


def _fail(message: str) -> int:
    print(f"jobwire: {message}", file=sys.stderr)
    return 1


# --- Minion's flags --------------------------------------------------------------------------
# `minion job -e add`, `minion job 23`, `minion schedule -P name` ...: the first option (or
# argument) of a command picks its subcommand; anything else means the listing.

_SUBCOMMANDS = {
    "job": frozenset(
        {
            "list",
            "show",
            "enqueue",
            "retry",
            "remove",
            "retry-failed",
            "remove-failed",
            "stats",
            "history",
            "broadcast",
        }
    ),
    "worker": frozenset({"run", "list"}),
    "lock": frozenset({"list", "unlock"}),
    "schedule": frozenset({"list", "show", "add", "pause", "resume", "remove", "dispatch"}),
}
_FLAGS = {
    "job": {
        "-e": ["enqueue"],
        "--enqueue": ["enqueue"],
        "-s": ["stats"],
        "--stats": ["stats"],
        "-H": ["history"],
        "--history": ["history"],
        "-R": ["retry"],
        "--retry": ["retry"],
        "--remove": ["remove"],
        "--retry-failed": ["retry-failed"],
        "--remove-failed": ["remove-failed"],
        "-b": ["broadcast"],
        "--broadcast": ["broadcast"],
        # these leave `job` for another command
        "-w": ["worker", "list"],
        "--workers": ["worker", "list"],
        "-L": ["lock", "list"],
        "--locks": ["lock", "list"],
        "-U": ["lock", "unlock"],
        "--unlock": ["lock", "unlock"],
    },
    "worker": {},
    "lock": {"-L": ["list"], "--locks": ["list"], "-U": ["unlock"], "--unlock": ["unlock"]},
    "schedule": {
        "-e": ["add"],
        "--enqueue": ["add"],
        "-P": ["pause"],
        "--pause": ["pause"],
        "-r": ["resume"],
        "--resume": ["resume"],
        "-R": ["remove"],
        "--remove": ["remove"],
        "-d": ["dispatch"],
        "--dispatch": ["dispatch"],
    },
}
# What a bare argument means (`job 23` shows job 23), and what no subcommand means.
_ARGUMENT = {"job": "show", "worker": "run", "lock": "list", "schedule": "show"}
_DEFAULT = {"job": "list", "worker": "run", "lock": "list", "schedule": "list"}


def _minion_aliases(words: list[str], at: int) -> list[str]:
    """Rewrite Minion-style invocations into explicit subcommands; others pass unchanged."""
    if at >= len(words) or words[at] not in _SUBCOMMANDS:
        return words
    command = words[at]
    first = _next_word(words, at + 1)
    token = words[first] if first < len(words) else None
    before, after = words[:first], words[first:]
    if token is None:
        return [*before, _DEFAULT[command]]
    if token in _HELP or token in _SUBCOMMANDS[command]:
        return words
    aliases = _FLAGS[command]
    if token in aliases:
        replacement = aliases[token]
        if len(replacement) == 2:  # another command: `job -w` is `worker list`
            return [*words[:at], *replacement, *words[at + 1 : first], *after[1:]]
        return [*before, *replacement, *after[1:]]
    if token.startswith("-"):
        return [*before, _DEFAULT[command], *after]
    return [*before, _ARGUMENT[command], *after]


def _next_word(words: Sequence[str], start: int) -> int:
    """Index of the first word from `start` on that is not a connection option or its value."""
    i = start
    while i < len(words):
        word = words[i]
        if word in _GLOBAL_VALUES:
            i += 2
        elif word in _GLOBAL_FLAGS or word.partition("=")[0] in _GLOBAL_VALUES:
            i += 1
        else:
            break
    return i
