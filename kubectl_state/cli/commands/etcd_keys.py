"""`kubectl state etcd export|import`: raw keys under a prefix, byte-exact."""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.commands.etcd import emit, make_client
from kubectl_state.cli.env import Environment
from kubectl_state.cli.progress import Progress
from kubectl_state.core.errors import ExitStatus


def register(sub: Any, leaf: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", parents=leaf, help="export every key under a prefix, at one revision",
        description="Export every key under --prefix as of one revision, values byte-exact, into a new "
                    "directory or a .tar.gz (manifest.json + keys.jsonl; files 0600).",
    )
    p.add_argument("path", metavar="PATH", help="a new directory, or a file ending in .tar.gz")
    p.add_argument("--prefix", default="/registry", help="key prefix to export (default: /registry)")
    p.set_defaults(run=run_export)

    p = sub.add_parser(
        "import", parents=leaf, help="write an export's keys into etcd",
        description="Verify an export completely, then write its keys in transactions of at most 128 keys. "
                    "Existing keys are refused (nothing is written) unless --overwrite.",
    )
    p.add_argument("path", metavar="PATH", help="an export directory or .tar.gz")
    p.add_argument("--overwrite", action="store_true", help="replace keys that already exist")
    p.add_argument("--prefix-rewrite", metavar="OLD:NEW",
                   help="write keys under NEW instead of OLD (e.g. /registry:/kubernetes.io)")
    p.set_defaults(run=run_import)


def run_export(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.etcd.keys_archive import export_keys  # noqa: PLC0415

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
