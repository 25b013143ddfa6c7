"""`kubectl state export PATH`: the cluster's resources, cleaned, into an archive."""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.env import Environment
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.cli.progress import Progress
from kubectl_state.core.errors import ExitStatus, UsageError

HELP = "Export the cluster's resources, cleaned, into an archive, a directory or a YAML stream."
DESCRIPTION = f"""{HELP}

PATH ending in .tar.gz (or .tgz) writes a compressed archive, '-' writes a multi-document
YAML stream to standard output, anything else a directory. The archive appears at PATH
only once complete; an interrupted export leaves nothing there.

Examples:
  kubectl state export backup.tar.gz
  kubectl state export -n shop -n billing shop.tar.gz
  kubectl state export --secrets=encrypt --recipient age1... backup.tar.gz
  kubectl state export -l app=web - | less"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help=HELP, description=DESCRIPTION, parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH", help="archive (.tar.gz), directory, or '-' for stdout")
    parser.add_argument("--include-resources", metavar="LIST", action="append", default=[],
                        help="only these resources (resource or resource.group, short names too; "
                             "comma-separated or repeated); also brings back resources skipped by default")
    parser.add_argument("--exclude-resources", metavar="LIST", action="append", default=[],
                        help="leave these resources out")
    parser.add_argument("--include-cluster-resources", choices=("auto", "true", "false"), default="auto",
                        help="cluster-scoped objects: auto (all when exporting all namespaces, else only "
                             "those the exported objects refer to), true or false (default: auto)")
    parser.add_argument("--include-status", action="store_true", help="keep the status of objects")
    parser.add_argument("--keep-last-applied", action="store_true",
                        help="keep the kubectl.kubernetes.io/last-applied-configuration annotation")
    parser.add_argument("--secrets", choices=("include", "skip", "encrypt"), default="include",
                        help="secrets: include as they are, skip, or encrypt their data with age (--recipient)")
    parser.add_argument("--recipient", metavar="AGE_RECIPIENT", action="append", default=[],
                        help="age public key (age1...) to encrypt secrets to; repeatable")
    parser.add_argument("--concurrency", type=int, default=8, metavar="N",
                        help="collections listed at once (default: 8)")
    parser.add_argument("--page-size", type=int, default=500, metavar="N",
                        help="objects per list request (default: 500)")
    parser.add_argument("--ignore-forbidden", action="store_true",
                        help="skip resources the credentials may not list (each reported) instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing archive at PATH")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary")
    parser.set_defaults(run=run)


def options_from_args(args: argparse.Namespace) -> Any:
    from kubectl_state.core.workflows.export import ExportOptions  # noqa: PLC0415 (start-up cost)

    if args.namespace and args.all_namespaces:
        raise UsageError("-n/--namespace and -A/--all-namespaces cannot be used together")
    return ExportOptions(
        namespaces=tuple(dict.fromkeys(args.namespace or ())),
        label_selector=args.selector,
        include_resources=tuple(args.include_resources),
        exclude_resources=tuple(args.exclude_resources),
        include_cluster_resources=args.include_cluster_resources,
        include_status=args.include_status,
        keep_last_applied=args.keep_last_applied,
        secrets=args.secrets,
        concurrency=args.concurrency,
        page_size=args.page_size,
        ignore_forbidden=args.ignore_forbidden,
    )


def run(args: argparse.Namespace, env: Environment) -> int:
    # Imported here so `kubectl state --help` and completion do not pay for them.
    from kubectl_state.core.archive.manifest import Source  # noqa: PLC0415
    from kubectl_state.core.archive.stream import YamlStreamWriter  # noqa: PLC0415
    from kubectl_state.core.archive.writer import ObjectSink, open_archive_writer  # noqa: PLC0415
    from kubectl_state.core.kube.client import KubeClient  # noqa: PLC0415
    from kubectl_state.core.workflows.export import (  # noqa: PLC0415
        ExportListener,
        check_options,
        export_cluster,
        secrets_encrypter,
    )

    to_stdout = args.path == "-"
    if to_stdout and args.output in MACHINE_FORMATS:
        raise UsageError("-o json|yaml prints the summary on stdout, which '-' already uses for the objects")
    options = options_from_args(args)
    check_options(options)
    encrypter = secrets_encrypter(options.secrets, args.recipient)

    progress = Progress(env, "exporting")
    listener = ExportListener(planned=progress.set_total, objects=progress.add,
                              resource_done=lambda _: progress.group_done())
    with KubeClient.from_kubeconfig(args.kubeconfig, args.context, pool_size=max(options.concurrency, 4)) as kube:
        version = kube.server_version()
        sink: ObjectSink
        if to_stdout:
            sink = YamlStreamWriter(env.stdout, encryption=encrypter)
        else:
            source = Source(server=kube.server, kubernetes_version=version.get("gitVersion", ""),
                            context=args.context)
            sink = open_archive_writer(args.path, source=source, filters=options.filters(),
                                       overwrite=args.overwrite, encryption=encrypter)
        try:
            with sink:
                summary = export_cluster(kube, sink, options, listener)
        finally:
            progress.finish()

    report = {"path": args.path, **summary.as_dict()}
    if args.output in MACHINE_FORMATS:
        write_data(report, args.output, env.stdout)
    elif not args.quiet:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.skipped.items())) or "none"
        where = "standard output" if to_stdout else args.path
        env.stderr.write(f"exported {summary.objects} objects of {summary.resources} resources to {where} "
                         f"in {summary.seconds:.1f}s; skipped: {skipped}\n")
    for warning in summary.warnings:
        env.warn(warning)
    return ExitStatus.OK
