"""`kubectl state diff PATH`: what importing the archive would change in the cluster.

Exit statuses follow `kubectl diff` (and GNU diff): 0 when nothing differs, 1 when
something does, above 1 when the diff could not be made. An error keeps its own status
when that is above 1 (3 bad archive, 4 unreachable, 5 refused by the server, 2 usage);
the generic ERROR status (1) would read as "differs", so it becomes DIFF_ERROR (2). An
object that could not be read (forbidden, type not served) makes the whole diff an error
(status 5) after the rest is shown, since "no difference" cannot be promised then.
"""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.commands.import_ import add_source_flags, options_from_args, read_source
from kubectl_state.cli.env import Environment
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.core.errors import ExitStatus, KubectlStateError

HELP = "Show what importing an archive would change in the cluster (exit 1 when something differs)."
DESCRIPTION = f"""{HELP}

Each object of the archive (after -n/-l/resource filters and --namespace-mapping) is compared
with the live object, both cleaned as export cleans, and shown as a unified diff; objects
missing from the cluster diff against /dev/null. Nothing is written.

Exit status: 0 no differences, 1 differences found, >1 the diff could not be made.

Examples:
  kubectl state diff backup.tar.gz
  kubectl state diff -n shop --namespace-mapping shop:staging backup.tar.gz"""

#: `kubectl diff` exits >1 on errors; 2 is what diff(1) uses for trouble.
DIFF_ERROR = 2


class DiffFailed(KubectlStateError):
    """An error of the diff itself, with a status above 1."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.exit_status = status  # type: ignore[assignment]


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("diff", help=HELP, description=DESCRIPTION, parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Environment) -> int:
    try:
        return _run(args, env)
    except DiffFailed:
        raise
    except KubectlStateError as exc:
        status = int(exc.exit_status)
        raise DiffFailed(exc.message, status if status > 1 else DIFF_ERROR) from exc


def _run(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.kube.client import KubeClient  # noqa: PLC0415
    from kubectl_state.core.kube.discovery import discover  # noqa: PLC0415
    from kubectl_state.core.workflows.restore.diff import DiffState, diff_plan  # noqa: PLC0415
    from kubectl_state.core.workflows.restore.importer import plan_import  # noqa: PLC0415

    options = options_from_args(args)
    source = read_source(args, env, None) if args.path != "-" else None
    with KubeClient.from_kubeconfig(args.kubeconfig, args.context, pool_size=max(options.concurrency, 4)) as kube:
        discovery = discover(kube)
        if source is None:
            source = read_source(args, env, discovery)
        plan = plan_import(source, options, discovery)
        diffs = diff_plan(kube, discovery, plan, include_status=options.include_status,
                          concurrency=options.concurrency)
    if args.output in MACHINE_FORMATS:
        write_data({"kind": "ImportDiff", "archive": source.description,
                    "objects": [d.to_dict() for d in diffs if d.state is not DiffState.SAME]}, args.output, env.stdout)
    else:
        for found in diffs:
            if found.text:
                env.stdout.write(found.text)
    errors = [d for d in diffs if d.state is DiffState.ERROR]
    for found in errors:
        env.stderr.write(f"error: {found.id}: {found.error}\n")
    if errors:
        raise DiffFailed(f"{len(errors)} of {len(diffs)} objects could not be compared", ExitStatus.SERVER_ERROR)
    return ExitStatus.ERROR if any(d.state is not DiffState.SAME for d in diffs) else ExitStatus.OK
