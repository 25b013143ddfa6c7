"""`kubectl state etcd export|import`: raw keys under a prefix, byte-exact."""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.commands.etcd import emit, make_client
from kubectl_state.cli.commands.examples import ExamplesFormatter, examples
from kubectl_state.cli.env import Environment
from kubectl_state.cli.progress import Progress
from kubectl_state.core.errors import ExitStatus, UsageError


def register(sub: Any, leaf: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", parents=leaf, help="export every key under a prefix, at one revision",
        description="Export every key under --prefix as of one revision, values byte-exact, into a new "
                    "directory or a .tar.gz (manifest.json + keys.jsonl; files 0600). With --to-archive, the "
                    "Kubernetes objects among them become an API-level archive instead.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd export keys.tar.gz --prefix /registry --endpoints http://127.0.0.1:2379",
            "kubectl state etcd export --to-archive -n shop shop.tar.gz"),
    )
    p.add_argument("path", metavar="PATH", help="a new directory, or a file ending in .tar.gz")
    p.add_argument("--prefix", default="/registry", help="key prefix to export (default: /registry)")
    g = p.add_argument_group(
        "API-level archive (--to-archive)",
        "Convert the JSON objects kube-apiserver stored under --prefix into an archive for `kubectl state "
        "import` (-n keeps those namespaces, their Namespace objects and the CRDs of their custom resources). "
        "Protobuf and encrypted values cannot be converted: they are counted and named, never dropped silently.")
    g.add_argument("--to-archive", action="store_true",
                   help="write an API-level archive (directory or .tar.gz) instead of raw keys")
    g.add_argument("--include-resources", metavar="LIST", action="append", default=[],
                   help="only these resources (resource or resource.group; comma-separated or repeated); also "
                        "brings back resources skipped by default")
    g.add_argument("--include-status", action="store_true", help="keep the status of objects")
    g.add_argument("--keep-last-applied", action="store_true",
                   help="keep the kubectl.kubernetes.io/last-applied-configuration annotation")
    g.add_argument("--overwrite", action="store_true", help="replace an existing archive at PATH")
    p.set_defaults(run=run_export)

    p = sub.add_parser(
        "import", parents=leaf, help="write an export's keys into etcd",
        description="Verify an export completely, then write its keys in transactions of at most 128 keys. "
                    "Existing keys are refused (nothing is written) unless --overwrite.",
        formatter_class=ExamplesFormatter, epilog=examples(
            "kubectl state etcd import keys.tar.gz --endpoints http://127.0.0.1:2379",
            "kubectl state etcd import keys.tar.gz --prefix-rewrite /registry:/kubernetes.io"),
    )
    p.add_argument("path", metavar="PATH", help="an export directory or .tar.gz")
    p.add_argument("--overwrite", action="store_true", help="replace keys that already exist")
    p.add_argument("--prefix-rewrite", metavar="OLD:NEW",
                   help="write keys under NEW instead of OLD (e.g. /registry:/kubernetes.io)")
    p.set_defaults(run=run_import)


def run_export(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.keys_archive import export_keys  # noqa: PLC0415

    if args.to_archive:
        return run_to_archive(args, env)
    archive_flags = (("-n/--namespace", getattr(args, "namespace", None)),
                     ("--include-resources", args.include_resources), ("--include-status", args.include_status),
                     ("--keep-last-applied", args.keep_last_applied), ("--overwrite", args.overwrite))
    for flag, given in archive_flags:
        if given:
            raise UsageError(f"{flag} applies to --to-archive only; a raw export keeps every key under --prefix")
    progress = Progress(env, "Exporting", unit="keys")
    with make_client(args, env) as client:
        try:
            result = export_keys(client, args.path, prefix=args.prefix.encode(), on_progress=progress.add)
        finally:
            progress.finish()
    m = result.manifest
    emit(args, env, {"path": result.path, "manifest": m}, lambda: env.stdout.write(
        f"Exported {m['count']} keys under {args.prefix} at revision {m['revision']} "
        f"({m['valueBytes']} value bytes) to {result.path}\n"))
    return ExitStatus.OK


def run_to_archive(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.archive.manifest import Source  # noqa: PLC0415
    from kubectl_state.core.archive.writer import open_archive_writer  # noqa: PLC0415
    from kubectl_state.core.workflows.etcd_to_archive import (  # noqa: PLC0415
        EtcdArchiveOptions,
        check_options,
        etcd_to_archive,
    )

    if args.path == "-":
        raise UsageError("--to-archive writes an archive (a directory or .tar.gz), not standard output")
    options = EtcdArchiveOptions(prefix=args.prefix.rstrip("/") or args.prefix,
                                 namespaces=tuple(dict.fromkeys(getattr(args, "namespace", None) or ())),
                                 resources=tuple(args.include_resources), include_status=args.include_status,
                                 keep_last_applied=args.keep_last_applied)
    check_options(options)
    progress = Progress(env, "Converting", unit="keys")
    with make_client(args, env) as client:
        status = client.status()
        revision = client.range(options.prefix.encode() + b"/", prefix=True, count_only=True).revision
        # The archive's source is the etcd cluster: no API server was asked, so its version is unknown.
        source = Source(server=f"etcd:{status.endpoint}", kubernetes_version="unknown (read from etcd)",
                        cluster_id=f"etcd-{status.cluster_id:x}")
        try:
            with open_archive_writer(args.path, source=source, filters=options.filters(revision),
                                     overwrite=args.overwrite) as sink:
                summary = etcd_to_archive(client, sink, options, revision=revision, on_progress=progress.add)
        finally:
            progress.finish()

    def text() -> None:
        skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.skipped.items())) or "none"
        env.stdout.write(f"Converted {summary.objects} objects of {summary.resources} resources from "
                         f"{summary.keys} keys under {options.prefix} at revision {summary.revision} to "
                         f"{args.path}; skipped: {skipped}\n")

    emit(args, env, {"path": args.path, **summary.as_dict()}, text)
    for reason, keys in sorted(summary.not_convertible.items()):
        count = summary.skipped.get(reason, 0)
        more = f" and {count - len(keys)} more" if count > len(keys) else ""
        env.warn(f"{count} keys not converted ({reason}): {', '.join(keys)}{more}")
    return ExitStatus.OK


def run_import(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.keys_archive import import_keys, parse_rewrite  # noqa: PLC0415

    rewrite = parse_rewrite(args.prefix_rewrite) if args.prefix_rewrite else None
    progress = Progress(env, "Importing", unit="keys")
    with make_client(args, env) as client:
        try:
            result = import_keys(client, args.path, overwrite=args.overwrite, rewrite=rewrite,
                                 on_progress=progress.add)
        finally:
            progress.finish()

    def text() -> None:
        env.stdout.write(f"Imported {result.written} keys from {result.path} in {result.transactions} "
                         f"transactions (etcd revision now {result.revision}).\n")
        if result.leases_dropped:
            env.warn(f"{result.leases_dropped} keys had a lease in the source cluster; they were written "
                     "without one and will not expire")

    emit(args, env, result.to_dict(), text)
    return ExitStatus.OK
