"""`kubectl state migrate`: copy (or move) objects from one cluster into another, pausing
first what would fight the copy. The logic is `core.workflows.migrate`; this parses and prints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from kubectl_state.cli.commands.import_ import parse_duration, write_report_file
from kubectl_state.cli.env import Environment
from kubectl_state.cli.files import load_yaml_file
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.core.errors import ExitStatus, Interrupted, PartialFailure, UsageError

HELP = "Copy (or --move) objects from one cluster into another, pausing Cluster API clusters meanwhile."
DESCRIPTION = f"""{HELP}

The source is exported straight into the target (no archive, unless --keep PATH asks for
one): CRDs first, owners before their dependents, owner references relinked to the
target's uids. Before copying, objects that would fight the copy are paused in the source
(Cluster API Clusters: spec.paused=true), and objects carrying the annotation
clusterctl.cluster.x-k8s.io/block-move are waited for until it is gone (--timeout).

Without --move the source is unpaused at the end and the copies in the target stay paused
(unpause them when you switch over). With --move, once every selected object is in the
target, the moved objects are deleted from the source (dependents first; their finalizers
emptied), and the copies are unpaused in the target. A namespace that still holds objects
not moved, a CRD that still has instances, and with -n cluster-scoped objects the
namespaces may share, are copied but not deleted. On any failure nothing is deleted and
the source is unpaused; the report says what exists in the target.

--pause-rules FILE replaces the default rule with a YAML list of rules:
  - group: cluster.x-k8s.io     # "" for the core group
    kind: Cluster
    path: spec.paused           # dotted, or a JSON pointer (/spec/paused); maps only
    value: true                 # set to pause; unpausing restores what was there
An empty list (`[]`) pauses nothing.

Pauses are journaled (--journal, default $XDG_STATE_HOME/kubectl-state/migrations/). If a
migration is killed (SIGKILL, power loss) the source stays paused: run the same command
again; it first undoes the pauses the journal records, then migrates.

Exit status: 0 when every selected object was moved (copied, with --move also deleted
from the source) and unpaused; 1 when anything failed (the report lists it); 2 usage;
3-5 when the clusters could not be read before anything was touched; 130 interrupted
(the source is unpaused before exiting).

Examples:
  kubectl state migrate --from-context mgmt-bootstrap --to-context mgmt --move -n capi-clusters
  kubectl state migrate --from-kubeconfig a.yaml --to-kubeconfig b.yaml --dry-run
  kubectl state migrate --from-context a --to-context b -n shop --namespace-mapping shop:shop2 --report r.json"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("migrate", help=HELP, description=DESCRIPTION, parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-context", metavar="NAME", help="the source's kubeconfig context")
    parser.add_argument("--to-context", metavar="NAME", help="the target's kubeconfig context")
    parser.add_argument("--from-kubeconfig", metavar="PATH", help="the source's kubeconfig (default: --kubeconfig)")
    parser.add_argument("--to-kubeconfig", metavar="PATH", help="the target's kubeconfig (default: --kubeconfig)")
    parser.add_argument("--include-resources", metavar="LIST", action="append", default=[],
                        help="only these resources (with what they need: namespaces, CRDs)")
    parser.add_argument("--exclude-resources", metavar="LIST", action="append", default=[],
                        help="leave these resources out")
    parser.add_argument("--namespace-mapping", metavar="OLD:NEW", action="append", default=[],
                        help="move namespace OLD into NEW in the target; repeatable")
    parser.add_argument("--move", action="store_true",
                        help="delete the moved objects from the source once all are in the target")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan, what would be paused and waited for; touch nothing")
    parser.add_argument("--pause-rules", metavar="FILE", help="YAML list of pause rules (replaces the default)")
    parser.add_argument("--keep", metavar="PATH", help="also write the export to this archive, and import from it")
    parser.add_argument("--existing", choices=("fail", "skip", "update"), default="fail",
                        help="an object already in the target that differs: fail it (default), skip it (not "
                             "moved either way), or update it")
    parser.add_argument("--report", metavar="FILE", help="also write the report to FILE (JSON; YAML for .yaml)")
    parser.add_argument("--journal", metavar="FILE", help="where pauses are recorded until undone")
    parser.add_argument("--concurrency", type=int, default=8, metavar="N", help="requests at once (default: 8)")
    parser.add_argument("--timeout", default="5m", metavar="DURATION",
                        help="how long to wait for block-move annotations and CRDs (default: 5m)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress; only problems and the totals")
    parser.set_defaults(run=run)


def load_pause_rules(path: str) -> Any:
    from kubectl_state.core.workflows.migrate import parse_pause_rules  # noqa: PLC0415

    return parse_pause_rules(load_yaml_file(path, "pause rules"))


def options_from_args(args: argparse.Namespace, journal: Path | None) -> Any:
    from kubectl_state.core.transform.namespaces import parse_namespace_mapping  # noqa: PLC0415
    from kubectl_state.core.transform.selectors import parse_label_selector  # noqa: PLC0415
    from kubectl_state.core.workflows.migrate import DEFAULT_PAUSE_RULES, MigrateOptions  # noqa: PLC0415

    if args.namespace and args.all_namespaces:
        raise UsageError("-n/--namespace and -A/--all-namespaces cannot be used together")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.selector:
        parse_label_selector(args.selector)  # a typo fails here, before any request
    return MigrateOptions(
        namespaces=tuple(dict.fromkeys(args.namespace or ())),
        label_selector=args.selector,
        include_resources=tuple(args.include_resources),
        exclude_resources=tuple(args.exclude_resources),
        namespace_mapping=parse_namespace_mapping(args.namespace_mapping),
        move=args.move,
        dry_run=args.dry_run,
        pause_rules=load_pause_rules(args.pause_rules) if args.pause_rules else DEFAULT_PAUSE_RULES,
        keep=args.keep,
        existing=args.existing,
        concurrency=args.concurrency,
        timeout=parse_duration(args.timeout),
        journal=journal,
    )


def run(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.kube.client import KubeClient  # noqa: PLC0415
    from kubectl_state.core.workflows.migrate import MigrateListener, default_journal_path, migrate  # noqa: PLC0415

    if args.context and not (args.from_context and args.to_context):
        raise UsageError("migrate takes --from-context and --to-context, not --context")
    if args.keep and args.dry_run:
        raise UsageError("--keep writes an archive; --dry-run writes nothing")
    options = options_from_args(args, None)  # flags are checked before any connection
    from_kubeconfig = args.from_kubeconfig or args.kubeconfig
    to_kubeconfig = args.to_kubeconfig or args.kubeconfig
    pool = max(options.concurrency, 4)
    with KubeClient.from_kubeconfig(from_kubeconfig, args.from_context, pool_size=pool) as source, \
            KubeClient.from_kubeconfig(to_kubeconfig, args.to_context, pool_size=pool) as target:
        journal = Path(args.journal) if args.journal else default_journal_path(source.server, target.server,
                                                                               env.environ)
        options = options_from_args(args, journal)

        def phase(message: str) -> None:
            if not args.quiet:
                env.stderr.write(message + "\n")
                env.stderr.flush()

        report = migrate(source, target, options, MigrateListener(phase=phase))
    return finish(report, args, env)


def finish(report: Any, args: argparse.Namespace, env: Environment) -> int:
    doc = report.to_dict()
    if args.report:
        write_report_file(doc, args.report)
    if args.output in MACHINE_FORMATS:
        write_data(doc, args.output, env.stdout)
    else:
        print_report(report, env.stdout, quiet=args.quiet)
    for problem in report.problems:
        env.warn(problem)
    if report.interrupted:
        raise Interrupted("interrupted; the source was unpaused"
                          + (f"; {args.report} says what exists in the target and what was deleted from the source"
                             if args.report else ""))
    if report.failed:
        raise PartialFailure((report.error or "the migration did not complete")
                             + (f"; the report is in {args.report}" if args.report else ""))
    return ExitStatus.OK


def _where(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def print_report(report: Any, stream: IO[str], *, quiet: bool) -> None:
    if report.dry_run and report.plan is not None:
        from kubectl_state.cli.commands.import_ import print_plan  # noqa: PLC0415

        print_plan(report.plan, stream)
    _print_pauses(report, stream)
    _print_objects(report, stream, quiet=quiet)
    summary = report.to_dict()["summary"]
    if report.dry_run:
        stream.write(f"dry run: {summary['planned']} objects would be "
                     f"{'moved' if report.move else 'copied'}, {len(report.paused)} paused; nothing was touched\n")
        return
    deleted = f", {summary['deletedFromSource']} deleted from the source" if report.move else ""
    stream.write(f"{summary['moved']} of {summary['planned']} objects {'moved' if report.move else 'copied'}"
                 f"{deleted}, {summary['leftBehind']} left in the source, in {report.seconds:.1f}s\n")
    if report.error:
        stream.write(f"FAILED: {report.error}\n")


def _print_pauses(report: Any, stream: IO[str]) -> None:
    if report.recovered:
        stream.write("Pauses left by an interrupted migration, undone first:\n")
        for item in report.recovered:
            stream.write(f"  {item.resource.kind} {_where(item.source.namespace, item.source.name)}\n")
    verb = "would pause" if report.dry_run else "paused"
    for item in report.paused:
        state = "" if item.by_us else " (already paused: left as it is)"
        where = f" -> unpaused in the {item.unpaused_in}" if item.unpaused_in else ""
        stream.write(f"{verb} {item.resource.kind} {_where(item.source.namespace, item.source.name)} "
                     f"({item.rule.describe()}){state}{where}\n")
    for waited in report.waited:
        stream.write(f"{'would wait' if report.dry_run else 'waited'} for block-move: {waited}\n")


def _print_objects(report: Any, stream: IO[str], *, quiet: bool) -> None:
    if report.imported is not None:
        rows = [["OUTCOME", "KIND", "NAMESPACE", "NAME", "IN TARGET", "REASON"]]
        for item in report.in_target():
            if quiet and item["outcome"] in ("created", "unchanged", "updated"):
                continue
            rows.append([item["outcome"], item["kind"], item["namespace"] or "", item["name"],
                         "yes" if item["existsInTarget"] else "no", item.get("reason", "")])
        if len(rows) > 1:
            _table(rows, stream)
    if report.left_behind and not quiet:
        stream.write("Left in the source:\n")
        for left in report.left_behind:
            stream.write(f"  {left.kind} {_where(left.id.namespace, left.id.name)}: {left.reason}\n")
    if report.skipped and not quiet:
        skipped = ", ".join(f"{resource or ''}{'.' + group if group else ''} {count} ({reason})"
                            for (reason, group, resource), count in sorted(report.skipped.items()))
        stream.write(f"Not copied (derived by the cluster itself): {skipped}\n")


def _table(rows: list[list[str]], stream: IO[str]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        stream.write("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
