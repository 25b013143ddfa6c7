"""`kubectl state etcd …`: the etcd level, snapshots, raw keys and membership.

This module holds the group, the connection flags every etcd command shares (named as
etcdctl names them) and small output helpers; each family of commands lives in its own
module (etcd_members, etcd_snapshot, etcd_keys) and stays thin: flags, one core call, output.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kubectl_state.cli.commands.examples import ExamplesFormatter, examples
from kubectl_state.cli.env import Environment
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.core.errors import ExitStatus, InvalidInputError, UsageError

HELP = "Work on etcd directly: snapshots, raw keys, members, health and maintenance."

#: etcdctl's default when neither --endpoints nor ETCDCTL_ENDPOINTS says otherwise.
DEFAULT_ENDPOINT = "http://127.0.0.1:2379"

Runner = Callable[[argparse.Namespace, Environment], int]


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    from kubectl_state.cli.commands import etcd_keys, etcd_members, etcd_snapshot  # noqa: PLC0415

    parser = subparsers.add_parser("etcd", help=HELP, description=HELP, parents=parents,
                                   formatter_class=ExamplesFormatter, epilog=examples(
                                       "kubectl state etcd snapshot save etcd.db --endpoints https://10.0.0.11:2379",
                                       "kubectl state etcd member list --endpoints https://10.0.0.11:2379"))
    parser.set_defaults(run=_group_help(parser))
    sub = parser.add_subparsers(title="etcd commands", metavar="<command>", dest="etcd_command",
                                parser_class=_same_class(parser))
    leaf_parents = [*parents, connection_parent()]
    etcd_snapshot.register(sub, parents, leaf_parents)
    etcd_keys.register(sub, leaf_parents)
    etcd_members.register(sub, parents, leaf_parents)


def _group_help(parser: argparse.ArgumentParser) -> Runner:
    def run(args: argparse.Namespace, env: Environment) -> int:
        parser.print_help()
        return ExitStatus.OK

    return run


def group(sub: Any, name: str, help_text: str, parents: list[argparse.ArgumentParser],
          epilog: str | None = None) -> Any:
    """A command with subcommands of its own (`etcd snapshot`, `etcd member`, `etcd alarm`)."""
    parser = sub.add_parser(name, help=help_text, description=help_text, parents=parents,
                            formatter_class=ExamplesFormatter, epilog=epilog)
    parser.set_defaults(run=_group_help(parser))
    return parser.add_subparsers(title=f"{name} commands", metavar="<command>", dest=f"etcd_{name}_command",
                                 parser_class=_same_class(parser))


def _same_class(parser: argparse.ArgumentParser) -> Any:
    # argparse would use the bare class for nested subcommands, losing the Environment's
    # stdout that --help must go to.
    cls: Any = type(parser)
    return functools.partial(cls, stdout=getattr(parser, "stdout", None))


def connection_parent() -> argparse.ArgumentParser:
    """etcdctl's connection flags; unset ones fall back to etcdctl's ETCDCTL_* variables."""
    parent = argparse.ArgumentParser(add_help=False)
    g = parent.add_argument_group("etcd connection flags (etcdctl's names; ETCDCTL_* variables as defaults)")
    g.add_argument("--endpoints", metavar="URLS",
                   help=f"comma-separated client URLs (default: $ETCDCTL_ENDPOINTS, then {DEFAULT_ENDPOINT})")
    g.add_argument("--cacert", metavar="FILE", help="CA bundle to verify the members' certificates")
    g.add_argument("--cert", metavar="FILE", help="client certificate")
    g.add_argument("--key", metavar="FILE", help="client certificate's key")
    g.add_argument("--user", metavar="NAME",
                   help="user name for etcd authentication; the password comes from --password-file or "
                        "$ETCDCTL_PASSWORD (etcdctl's NAME:PASSWORD form is accepted but shows the password to "
                        "anyone who can list processes)")
    g.add_argument("--password-file", metavar="FILE", help="file whose first line is the password of --user")
    g.add_argument("--insecure-skip-tls-verify", action="store_true", default=None,
                   help="do not verify the members' certificates (testing only)")
    g.add_argument("--command-timeout", metavar="SECONDS", type=float, default=None,
                   help="how long to wait for a member to answer one request (default: 10)")
    return parent


def make_client(args: argparse.Namespace, env: Environment) -> Any:
    """An EtcdClient from the flags, then the ETCDCTL_* variables."""
    from kubectl_state.core.etcd.client import EtcdClient  # noqa: PLC0415

    environ = env.environ

    def pick(flag: str, variable: str) -> str | None:
        value = getattr(args, flag, None)
        if value is None:
            value = environ.get(variable) or None
        return str(value) if value is not None else None

    endpoints_text = pick("endpoints", "ETCDCTL_ENDPOINTS") or DEFAULT_ENDPOINT
    endpoints = [e.strip() for e in endpoints_text.split(",") if e.strip()]
    username, password = credentials(args, env)
    insecure = getattr(args, "insecure_skip_tls_verify", None)
    if insecure is None:
        insecure = environ.get("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "").lower() in ("1", "true", "yes")
    timeout = getattr(args, "command_timeout", None) or 10.0
    if timeout <= 0:
        raise UsageError("--command-timeout must be positive")
    env.log(6, f"etcd endpoints: {', '.join(endpoints)}; user: {username or '(none)'}")
    return EtcdClient(
        endpoints,
        ca_file=pick("cacert", "ETCDCTL_CACERT"),
        cert_file=pick("cert", "ETCDCTL_CERT"),
        key_file=pick("key", "ETCDCTL_KEY"),
        username=username,
        password=password,
        timeout=timeout,
        verify=not insecure,
    )


def credentials(args: argparse.Namespace, env: Environment) -> tuple[str | None, str | None]:
    """(user, password) from --user, --password-file and $ETCDCTL_USER/$ETCDCTL_PASSWORD.

    The password is never echoed, logged or put in an error message.
    """
    user = getattr(args, "user", None) or env.environ.get("ETCDCTL_USER") or None
    password_file = getattr(args, "password_file", None)
    if user is None:
        if password_file:
            raise UsageError("--password-file needs --user")
        return None, None
    password: str | None = None
    if ":" in user:
        user, password = user.split(":", 1)
    if password_file:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read the password file {password_file}: {exc.strerror}") from None
        lines = text.splitlines()
        password = lines[0] if lines else ""
    if password is None:
        password = env.environ.get("ETCDCTL_PASSWORD")
    if password is None:
        raise UsageError(f"etcd user {user} needs a password: give --password-file FILE or set ETCDCTL_PASSWORD")
    return user, password


# --- output -------------------------------------------------------------------------------------


def machine(args: argparse.Namespace) -> str | None:
    fmt = getattr(args, "output", "text")
    return fmt if fmt in MACHINE_FORMATS else None


def emit(args: argparse.Namespace, env: Environment, data: Any, text: Callable[[], object]) -> None:
    """`data` as JSON/YAML when -o asks for it, else whatever `text` prints for people."""
    fmt = machine(args)
    if fmt is not None:
        write_data(data, fmt, env.stdout)
    else:
        text()


def table(env: Environment, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A kubectl-style table: upper-case header, columns padded to the widest cell."""
    cells = [[str(c) for c in header], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        env.stdout.write("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover
