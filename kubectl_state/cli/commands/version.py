"""`kubectl state version`: the client version, and the API server's when it answers."""

from __future__ import annotations

import argparse
import platform
from typing import Any

from kubectl_state import __version__
from kubectl_state.cli.commands.examples import ExamplesFormatter, examples
from kubectl_state.cli.env import Environment
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.core.errors import ExitStatus, KubectlStateError

HELP = "Print the client version and the version of the current context's API server."


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("version", help=HELP, description=HELP, parents=parents,
                                   formatter_class=ExamplesFormatter, epilog=examples(
                                       "kubectl state version",
                                       "kubectl state version --client -o json"))
    parser.add_argument("--client", action="store_true", help="print the client version only")
    parser.set_defaults(run=run)


def collect(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "clientVersion": {"version": __version__, "python": platform.python_version()},
    }
    if args.client:
        return result
    # Imported here: the kubernetes client costs a third of a second to import, which
    # `--client` (and every shell completion) should not pay.
    from kubectl_state.core.kube.client import KubeClient  # noqa: PLC0415

    try:
        with KubeClient.from_kubeconfig(args.kubeconfig, args.context) as kube:
            result["serverVersion"] = kube.server_version()
    except KubectlStateError as exc:
        # The client version is still worth printing; the server part says why it is missing.
        result["serverVersion"] = None
        result["serverError"] = exc.message
    return result


def run(args: argparse.Namespace, env: Environment) -> int:
    result = collect(args)
    if args.output in MACHINE_FORMATS:
        write_data(result, args.output, env.stdout)
        return ExitStatus.OK
    env.stdout.write(f"Client Version: v{__version__}\n")
    if args.client:
        return ExitStatus.OK
    server = result.get("serverVersion")
    if server:
        env.stdout.write(f"Server Version: {server.get('gitVersion', 'unknown')}\n")
    else:
        env.stdout.write(f"Server Version: unavailable ({result['serverError']})\n")
    return ExitStatus.OK
