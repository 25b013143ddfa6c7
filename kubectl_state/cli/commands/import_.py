"""`kubectl state import PATH`: restore an archive into the cluster, in plan order, with a report."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import IO, Any

from kubectl_state.cli.env import Environment
from kubectl_state.cli.files import load_yaml_file
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.cli.progress import Progress
from kubectl_state.core.errors import ExitStatus, PartialFailure, UsageError

HELP = "Restore an archive (or a YAML stream) into the cluster, owners first, with a report."
DESCRIPTION = f"""{HELP}

PATH is an archive directory, a .tar.gz, or '-' for a YAML stream on standard input. The
whole archive is verified before anything is written. Objects are written tier by tier
(CRDs, then namespaces, storage and priority classes, volumes, RBAC, service accounts,
secrets, config maps, limit ranges, quotas, then the rest), owners before their dependents,
in parallel inside a step. Every object ends in the report as created, updated, unchanged,
skipped or failed; the exit status is 0 only when nothing failed. The report is a table
for people, or with -o json|yaml and --report FILE a document whose JSON Schema ships as
kubectl_state/schemas/report.schema.json.

An interrupted import resumes with --resume: its journal (next to --report FILE, or under
$XDG_STATE_HOME/kubectl-state/imports/) records what was done.

Examples:
  kubectl state import backup.tar.gz
  kubectl state import --dry-run=server backup.tar.gz
  kubectl state import --namespace-mapping shop:shop-copy -n shop backup.tar.gz
  kubectl state import --existing=update --report report.json backup.tar.gz
  kubectl state export -n shop - | kubectl state --context other import -"""

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def add_source_flags(parser: argparse.ArgumentParser) -> None:
    """Flags shared by import and diff: what to read, which subset, where it lands."""
    parser.add_argument("path", metavar="PATH", help="archive directory, .tar.gz, or '-' for a YAML stream on stdin")
    parser.add_argument("--namespace-mapping", metavar="OLD:NEW", action="append", default=[],
                        help="restore namespace OLD as NEW (rewrites references too); repeatable")
    parser.add_argument("--include-resources", metavar="LIST", action="append", default=[],
                        help="only these resources (comma-separated or repeated)")
    parser.add_argument("--exclude-resources", metavar="LIST", action="append", default=[],
                        help="leave these resources out")
    parser.add_argument("--include-status", action="store_true",
                        help="also write status (through the status subresource) when the archive has it")
    parser.add_argument("--identity", metavar="FILE",
                        help="age identity file, to decrypt an archive's encrypted Secrets")
    parser.add_argument("--concurrency", type=int, default=8, metavar="N",
                        help="objects written (or read) at once (default: 8)")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("import", help=HELP, description=DESCRIPTION, parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_flags(parser)
    parser.add_argument("--dry-run", default="none", choices=("none", "client", "server"),
                        help="client: print the plan and write nothing; server: send every write with "
                             "dryRun=All and report what would happen (default: none)")
    parser.add_argument("--existing", choices=("skip", "update", "fail"), default="skip",
                        help="an object that exists and differs: skip it, update it (server-side apply), or "
                             "fail it (default: skip)")
    parser.add_argument("--force-conflicts", action="store_true",
                        help="with --existing=update, take over fields other managers own")
    parser.add_argument("--orphan-missing-owners", action="store_true",
                        help="restore objects whose owner is neither in the archive nor in the cluster, "
                             "without that owner reference (default: they fail)")
    parser.add_argument("--tiers", metavar="FILE",
                        help="YAML list of resource names giving the restore order ('*' stands for the rest)")
    parser.add_argument("--timeout", default="5m", metavar="DURATION",
                        help="how long to wait for CRDs to become Established (default: 5m)")
    parser.add_argument("--report", metavar="FILE", help="also write the report to FILE (JSON; YAML for .yaml)")
    parser.add_argument("--journal", metavar="FILE", help="journal file (default: next to --report, else under "
                                                          "$XDG_STATE_HOME/kubectl-state/imports/)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted import from its journal")
    parser.add_argument("-q", "--quiet", action="store_true", help="list only objects that failed, and the totals")
    parser.set_defaults(run=run)


def parse_duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise UsageError(f"invalid duration {text!r}: use e.g. 90s, 5m, 1h")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def options_from_args(args: argparse.Namespace, **extra: Any) -> Any:
    from kubectl_state.core.transform.namespaces import parse_namespace_mapping  # noqa: PLC0415
    from kubectl_state.core.workflows.restore.importer import ImportOptions  # noqa: PLC0415

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.namespace and args.all_namespaces:
        raise UsageError("-n/--namespace and -A/--all-namespaces cannot be used together")
    return ImportOptions(
        namespace_mapping=parse_namespace_mapping(args.namespace_mapping),
        namespaces=tuple(dict.fromkeys(args.namespace or ())),
        label_selector=args.selector,
        include_resources=tuple(args.include_resources),
        exclude_resources=tuple(args.exclude_resources),
        include_status=args.include_status,
        concurrency=args.concurrency,
        **extra,
    )


def read_source(args: argparse.Namespace, env: Environment, discovery: Any) -> Any:
    from kubectl_state.core.archive.secrets import AgeDecrypter  # noqa: PLC0415
    from kubectl_state.core.workflows.restore.source import read_archive, read_stream  # noqa: PLC0415

    if args.path == "-":
        if args.identity:
            raise UsageError("--identity is for archives; a YAML stream carries no encrypted Secrets")
        stream = getattr(env.stdin, "buffer", None)
        data = stream.read() if stream is not None else env.stdin.read().encode()
        return read_stream(data, discovery)
    decrypter = AgeDecrypter.from_identity_file(args.identity) if args.identity else None
    return read_archive(args.path, decrypter=decrypter)


def load_tiers(path: str) -> Any:
    from kubectl_state.core.plan import parse_tier_document  # noqa: PLC0415

    return parse_tier_document(load_yaml_file(path, "tier file"))


def run(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.kube.client import KubeClient  # noqa: PLC0415
    from kubectl_state.core.kube.discovery import discover  # noqa: PLC0415
    from kubectl_state.core.workflows.restore.importer import (  # noqa: PLC0415
        ImportInterrupted,
        ImportListener,
        ImportStopped,
        import_plan,
        journal_header,
        plan_import,
    )
    if args.resume and args.dry_run != "none":
        raise UsageError("--resume continues a real import; it cannot be combined with --dry-run")
    options = options_from_args(
        args, dry_run=args.dry_run, existing=args.existing, force_conflicts=args.force_conflicts,
        resume=args.resume, timeout=parse_duration(args.timeout), orphan_missing_owners=args.orphan_missing_owners,
        tiers=load_tiers(args.tiers) if args.tiers else None)
    if options.label_selector:
        from kubectl_state.core.transform.selectors import parse_label_selector  # noqa: PLC0415

        parse_label_selector(options.label_selector)
    # An archive is read and verified before the server is contacted; a stream needs the
    # server's discovery to know its resources.
    source = read_source(args, env, None) if args.path != "-" else None
    with KubeClient.from_kubeconfig(args.kubeconfig, args.context, pool_size=max(options.concurrency, 4)) as kube:
        discovery = discover(kube)
        if source is None:
            source = read_source(args, env, discovery)
        plan = plan_import(source, options, discovery)
        if options.dry_run == "client":
            if args.output in MACHINE_FORMATS:
                write_data({"kind": "ImportPlan", "archive": source.description, **plan.to_dict()}, args.output,
                           env.stdout)
            else:
                print_plan(plan, env.stdout)
            return ExitStatus.OK
        journal = journal_path(args, env, source.digest, kube.server)
        progress = Progress(env, "importing")
        listener = ImportListener(planned=lambda p: progress.set_total(len(p.steps)),
                                  step=lambda _s: progress.group_done() if progress.count else None,
                                  done=lambda _r: progress.add(1))
        try:
            report = import_plan(kube, discovery, plan, options, source=source, journal_path=journal,
                                 journal_header=journal_header(source, kube.server, options), listener=listener)
        except (ImportStopped, ImportInterrupted) as stopped:
            # What was written before the server went away (or Ctrl-C) is still worth a report.
            if args.report:
                write_report_file(stopped.report.to_dict(), args.report)
            raise
        finally:
            progress.finish()
    return finish(report, args, env)


def journal_path(args: argparse.Namespace, env: Environment, digest: str, server: str) -> Path:
    from kubectl_state.core.workflows.restore.journal import default_journal_path  # noqa: PLC0415

    if args.journal:
        return Path(args.journal)
    if args.report:
        return Path(args.report + ".journal")
    return default_journal_path(digest, server, env.environ)


def finish(report: Any, args: argparse.Namespace, env: Environment) -> int:
    """Write the report where asked; PartialFailure (exit 1) when any object failed."""
    if args.report:
        write_report_file(report.to_dict(), args.report)
    if args.output in MACHINE_FORMATS:
        write_data(report.to_dict(), args.output, env.stdout)
    else:
        print_report(report, env.stdout, quiet=args.quiet)
    for warning in report.warnings:
        env.warn(warning)
    failed = report.failed
    if failed:
        raise PartialFailure(f"{len(failed)} of {len(report.results)} objects failed"
                             + (f"; the report is in {args.report}" if args.report else ""))
    return ExitStatus.OK


def write_report_file(doc: dict[str, Any], path: str) -> None:
    import yaml  # noqa: PLC0415

    text = yaml.safe_dump(doc, sort_keys=False) if path.endswith((".yaml", ".yml")) else json.dumps(doc, indent=2)
    try:
        Path(path).write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror}") from None


def _table(rows: list[list[str]], stream: IO[str]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        stream.write("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")


def print_plan(plan: Any, stream: IO[str]) -> None:
    left = f", {plan.filtered} left out by filters" if plan.filtered else ""
    stream.write(f"Plan: {len(plan)} objects in {len(plan.steps)} steps{left}\n")
    for number, step in enumerate(plan.steps, start=1):
        level = f", level {step.level}" if step.level else ""
        stream.write(f"step {number}: {step.tier_name}{level} ({len(step.objects)} objects)\n")
        for obj in step.objects:
            where = f"{obj.id.namespace}/{obj.id.name}" if obj.id.namespace else obj.id.name
            note = f"   ({obj.moved})" if obj.moved else ""
            stream.write(f"  {obj.kind} {where}{note}\n")


def print_report(report: Any, stream: IO[str], *, quiet: bool) -> None:
    rows = [["OUTCOME", "KIND", "NAMESPACE", "NAME", "REASON"]]
    for result in report.results:
        if quiet and str(result.outcome) != "failed":
            continue
        outcome = str(result.outcome) + (" (resumed)" if result.resumed else "")
        rows.append([outcome, result.kind, result.id.namespace or "", result.id.name, result.reason])
    if len(rows) > 1:
        _table(rows, stream)
    counts = report.counts()
    dry = " (dry run: nothing was written)" if report.dry_run == "server" else ""
    summary = ", ".join(f"{count} {name}" for name, count in counts.items())
    filtered = f", {report.filtered} left out by filters" if report.filtered else ""
    stream.write(f"{len(report.results)} objects: {summary}{filtered} in {report.seconds:.1f}s{dry}\n")
