"""argparse set up to behave like kubectl: its flag names, its usage errors, exit status 2."""

from __future__ import annotations

import argparse
from typing import IO, Any, NoReturn

from kubectl_state.core.errors import UsageError

PROG = "kubectl state"


class KubectlArgumentParser(argparse.ArgumentParser):
    """Raises UsageError instead of printing usage and exiting, so that the one error
    mapping in `main` prints the single-line message and the usage hint."""

    def __init__(self, *args: Any, stdout: IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Where --help goes: the command's Environment, not necessarily sys.stdout.
        self.stdout = stdout

    def print_help(self, file: Any = None) -> None:
        super().print_help(file or self.stdout)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nSee '{self.prog} --help' for usage.")


def add_connection_flags(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """kubectl's flags for choosing a cluster and a scope.

    They are accepted both before and after the subcommand (`kubectl state -n x export`
    and `kubectl state export -n x`); the copies on subcommands use SUPPRESS so that an
    absent flag there does not overwrite a value given before the subcommand.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress_defaults else value

    group = parser.add_argument_group("cluster flags")
    group.add_argument("--kubeconfig", metavar="PATH", default=default(None),
                       help="path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    group.add_argument("--context", metavar="NAME", default=default(None),
                       help="the kubeconfig context to use (default: its current context)")
    group.add_argument("-n", "--namespace", metavar="NS", action="append", default=default(None),
                       help="namespace to work on; repeatable")
    group.add_argument("-A", "--all-namespaces", action="store_true", default=default(False),
                       help="work on all namespaces")
    group.add_argument("-l", "--selector", metavar="SELECTOR", default=default(None),
                       help="label selector, as kubectl's (e.g. app=web,tier!=db)")
    # `table` is the people's format kubectl users type; it is the same as text.
    group.add_argument("-o", "--output", metavar="FORMAT", choices=("text", "table", "json", "yaml"),
                       default=default("text"), help="output format: text (or table), json or yaml")
    group.add_argument("-v", "--v", dest="verbosity", metavar="LEVEL", type=int, default=default(0),
                       help="log level; 5 or more shows tracebacks of expected errors")
