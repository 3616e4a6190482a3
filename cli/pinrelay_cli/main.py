"""The ``pinrelay`` command (``pinrelay = "pinrelay_cli.main:main"`` in pyproject.toml).

Subcommands live in ``COMMANDS`` (name -> :class:`Command`: help, ``setup(parser)``,
``run(args) -> exit status``); each module registers its own with :func:`register`. An exception
no command foresaw exits 2, "could not run", never Python's 1: for reconcile, verify and quality 1
is a result.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from typing import NamedTuple

from pinrelay_cli.defaults import PROG

EXIT_UNEXPECTED = 2  # as every command's "could not run": never 1, which is a result


class Command(NamedTuple):
    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, setup: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> None:
    if name in COMMANDS:
        raise ValueError(f"subcommand {name!r} is already registered")
    COMMANDS[name] = Command(help, setup, run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="pinrelay command-line tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.setup(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: Python's own exit status, 1, means a result (e.g. "missing")
        traceback.print_exc()
        print(f"{PROG} {args.command}: stopped by an unexpected {type(exc).__name__}: the command did not run to its "
              "end (the traceback above is for a bug report)", file=sys.stderr)
        return EXIT_UNEXPECTED


# the commands, in the order `pinrelay --help` lists them
from pinrelay_cli import import_offline, keys, ops  # noqa: E402  (after register(), which registers them below)

register("import-offline", import_offline.HELP, import_offline.setup, import_offline.run)
register("redrive", ops.REDRIVE_HELP, ops.setup_redrive, ops.run_redrive)
register("rejected", ops.REJECTED_HELP, ops.setup_rejected, ops.run_rejected)
register("uncertain", ops.UNCERTAIN_HELP, ops.setup_uncertain, ops.run_uncertain)
register("new-api-key", keys.HELP, keys.setup, keys.run)
from pinrelay_cli import reconcile  # noqa: E402
register("reconcile", reconcile.HELP, reconcile.setup, reconcile.run)
from pinrelay_cli import verify  # noqa: E402
register("verify", verify.HELP, verify.setup, verify.run)
from pinrelay_cli import quality  # noqa: E402
register("quality", quality.HELP, quality.setup, quality.run)
from pinrelay_cli import account_map  # noqa: E402
register("account-map", account_map.HELP, account_map.setup, account_map.run)
from pinrelay_cli import status  # noqa: E402
register("status", status.HELP, status.setup, status.run)
