"""`jobwire lock list|unlock`: Minion's `minion job -L` and `-U`."""

from __future__ import annotations

import argparse

from jobwire.cli import _args
from jobwire.cli._output import CliError, Output, listing, more_hint
from jobwire.client import Client


def add_parser(
    commands: _args.Commands, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """Register `lock list` (the default) and `lock unlock`."""
    lock = commands.add_parser(
        "lock",
        parents=[common],
        help="list named locks or release one",
        description="Named locks (Minion's `minion job -L` / `-U`). Without a subcommand: list.",
    )
    sub = lock.add_subparsers(dest="lock_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("list", parents=[common], help="list live lock holders (default)")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these locks")
    _args.paging(p, "locks")
    p.set_defaults(run=list_locks, more=("names", str))
    p = sub.add_parser("unlock", parents=[common], help="release the holder expiring soonest")
    p.add_argument("name")
    p.set_defaults(run=unlock)
    return lock


def list_locks(client: Client, args: argparse.Namespace, out: Output) -> int:
    page = client.list_locks(args.offset, args.limit, names=args.names or None)

    def human() -> None:
        out.table(("ID", "NAME", "EXPIRES"), ((lk.id, lk.name, lk.expires) for lk in page))
        more_hint(out, "locks", args.offset, len(page), page.total)

    out.emit(listing("locks", page.items, page.total), human)
    return 0


def unlock(client: Client, args: argparse.Namespace, out: Output) -> int:
    if not client.unlock(args.name):
        raise CliError("Lock does not exist.")
    out.emit({"name": args.name, "unlocked": True}, lambda: None)
    return 0
