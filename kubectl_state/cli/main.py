"""Entry point of `kubectl state`: builds the parser, runs a command, maps errors to exit codes.

This is the one place where exceptions become messages and exit statuses; commands raise
the core's errors and never call sys.exit themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import IO, cast

from kubectl_state import __version__
from kubectl_state.cli.commands import completion, diff, etcd, export, import_, inspect, migrate, verify, version
from kubectl_state.cli.env import Environment
from kubectl_state.cli.parser import PROG, KubectlArgumentParser, add_connection_flags
from kubectl_state.core.errors import ExitStatus, KubectlStateError, UsageError

DESCRIPTION = (
    "Back up, restore, migrate and pivot a Kubernetes control plane's state:\n"
    "portable API resources, raw etcd keys and etcd snapshots."
)

COMMANDS = (completion, diff, etcd, export, import_, inspect, migrate, verify, version)

#: -v at or above this level prints the traceback of expected errors too.
TRACEBACK_VERBOSITY = 5


def build_parser(stdout: IO[str] | None = None) -> KubectlArgumentParser:
    # A partial stands in for the class so every subcommand parser writes --help to `stdout`.
    parser_class = cast(type[KubectlArgumentParser], functools.partial(KubectlArgumentParser, stdout=stdout))
    parser = parser_class(
        prog=PROG,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n"
               "  kubectl state export backup.tar.gz --secrets=encrypt --recipient age1...\n"
               "  kubectl state import backup.tar.gz --dry-run=server\n"
               "  kubectl state etcd snapshot save etcd.db --endpoints https://10.0.0.1:2379\n\n"
               "Use 'kubectl state <command> --help' for more about a command.",
    )
    add_connection_flags(parser, suppress_defaults=False)
    common = parser_class(add_help=False)
    add_connection_flags(common, suppress_defaults=True)
    subparsers = parser.add_subparsers(title="commands", metavar="<command>", dest="command",
                                       parser_class=parser_class)
    for command in COMMANDS:
        command.register(subparsers, [common])
    return parser


def parse_args(parser: KubectlArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse like kubectl: an unknown flag is named alone, with the command's own help hint."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        word = "flag" if extras[0].startswith("-") else "argument"
        where = f"{PROG} {args.command}" if args.command else PROG
        raise UsageError(f"unknown {word}: {extras[0]}\nSee '{where} --help' for usage.")
    return args


def _verbosity_from_argv(argv: Sequence[str]) -> int:
    """-v as given, for errors raised while parsing (before args exist)."""
    for i, arg in enumerate(argv):
        value = None
        if arg in ("-v", "--v") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(("--v=", "-v=")):
            value = arg.split("=", 1)[1]
        if value is not None and value.isdigit():
            return int(value)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (kill, timeout, systemd, Ansible's async) handled as Ctrl-C is: the command's
    cleanup runs (temporary files go, migrate unpauses the source, reports are written)
    instead of the process vanishing mid-write. Only in the main thread, where Python lets
    a handler be set; a caller that embeds main() elsewhere keeps its own handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = env or Environment()
    env.verbosity = _verbosity_from_argv(argv)
    try:
        parser = build_parser(env.stdout)
        try:
            args = parse_args(parser, argv)
        except SystemExit as exc:  # --help has been printed
            return int(exc.code or 0)
        env.verbosity = args.verbosity
        if args.command is None:
            parser.print_help()
            return ExitStatus.OK
        env.log(6, f"kubectl-state {__version__}: {args.command}")
        with warnings.catch_warnings(), _sigterm_as_interrupt():
            # The core warns through `warnings` (it has no stderr of its own); a person
            # reads them as kubectl prints its own: `Warning: ...`, no file and line.
            warnings.showwarning = lambda message, *_rest, **_kw: env.warn(str(message))
            return int(args.run(args, env))
    except KubectlStateError as exc:
        if env.verbosity >= TRACEBACK_VERBOSITY:
            traceback.print_exc(file=env.stderr)
        env.stderr.write(f"error: {exc.message}\n")
        return int(exc.exit_status)
    except KeyboardInterrupt:
        env.stderr.write("error: interrupted\n")
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        # `kubectl state export - | head`: the reader left; that is not our failure.
        return int(ExitStatus.OK)


if __name__ == "__main__":
    sys.exit(main())
