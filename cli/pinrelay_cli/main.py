"""The ``pinrelay`` command (``pinrelay = "pinrelay_cli.main:main"`` in pyproject.toml).

Subcommands live in ``COMMANDS`` (name -> :class:`Command`: help, ``setup(parser)``,
``run(args) -> exit status``); each module registers its own with :func:`register`.

Every failure ends the command with one line on stderr, ``pinrelay COMMAND: what went wrong``, and
its exit status: a :class:`CommandError` its own; AWS refusing or unreachable, no region, no
credentials (botocore's errors) 2, "could not run"; a mistyped option the subcommand's own usage
and 2 (argparse's). An exception no command foresaw also exits 2, never Python's 1: for reconcile,
verify, status and quality 1 is a result. A reader that stops early (``pinrelay rejected | head``)
changes nothing: the rest of the output is dropped and the command runs to its end with its own
exit status.

``pinrelay --local COMMAND`` runs the command against the stack ``make local`` runs
(:mod:`pinrelay_cli.local_profile`): no ``--stack-name`` or other flags needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple, TextIO

from pinrelay_cli.defaults import PROG
from pinrelay_cli.pinterest_access import EXIT_USAGE, CommandError, aws_problem
from pinrelay_cli.terminal import printable

EXIT_UNEXPECTED = EXIT_USAGE  # as every command's "could not run": never 1, which is a result
EXIT_INTERRUPTED = 130


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


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each subcommand's own, by name."""
    parser = argparse.ArgumentParser(prog=PROG, description="pinrelay command-line tools")
    parser.add_argument("--local", action="store_true",
                        help="run the command against the local stack `make local` runs (its .pinrelay-local.json "
                             "gives the queues, table, addresses and keys: no other flag needed)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers = {}
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.setup(sub)
        sub.set_defaults(_run=command.run)
        parsers[name] = sub
    return parser, parsers


def build_parser() -> argparse.ArgumentParser:
    return build_parsers()[0]


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments, with a mistyped option reported by its subcommand's usage (argparse would
    show the top-level one); with ``--local``, the local stack's values as the options' defaults."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--local" in argv:  # also after the subcommand (`pinrelay status 1042 --local`)
        argv = ["--local", *(arg for arg in argv if arg != "--local")]
    parser, parsers = build_parsers()
    args, unknown = parser.parse_known_args(argv)
    if args.local:
        from pinrelay_cli import local_profile

        try:
            profile = local_profile.load()
        except CommandError as problem:
            parsers[args.command].exit(problem.exit_status, f"{PROG} --local {args.command}: {printable(problem)}\n")
        if getattr(args, "stack_name", None):
            parsers[args.command].error("--local runs against the local stack: leave out --stack-name")
        profile.apply(os.environ)
        parsers[args.command].set_defaults(**profile.option_defaults())
        args, unknown = parser.parse_known_args(argv)
    if unknown:
        parsers[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


class ReaderMayLeave:
    """Standard output for the commands: when its reader stops reading (``pinrelay rejected |
    head``), what follows goes to /dev/null instead of ending the command with BrokenPipeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop_the_rest()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop_the_rest()

    def _drop_the_rest(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
        self._stream.flush()  # what was still buffered goes there too

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is not None and sys.stdout is sys.__stdout__:  # the process's own (not a test's capture)
        sys.stdout = ReaderMayLeave(sys.stdout)  # type: ignore[assignment]
    args = parse(argv)
    try:
        status = args._run(args)
    except CommandError as problem:
        status = _failed(args.command, str(problem), problem.exit_status)
    except KeyboardInterrupt:
        status = _failed(args.command, "interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - one line for what AWS said; a traceback only for a bug
        aws = aws_problem(exc)
        if aws is not None:
            status = _failed(args.command, aws, EXIT_USAGE)
        else:
            traceback.print_exc()
            status = _failed(args.command, f"stopped by an unexpected {type(exc).__name__}: the command did not run "
                                           "to its end (the traceback above is for a bug report)", EXIT_UNEXPECTED)
    sys.stdout.flush()
    return status


def _failed(command: str, reason: str, status: int) -> int:
    sys.stdout.flush()  # what the command printed comes before the reason it stopped
    print(f"{PROG} {command}: {printable(reason)}", file=sys.stderr)
    return status


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
from pinrelay_cli import reconcile_platforms  # noqa: E402
register("reconcile-stripe", reconcile_platforms.STRIPE_HELP, reconcile_platforms.setup_stripe, reconcile_platforms.run_stripe)
register("reconcile-bigcommerce", reconcile_platforms.BIGCOMMERCE_HELP, reconcile_platforms.setup_bigcommerce,
         reconcile_platforms.run_bigcommerce)
