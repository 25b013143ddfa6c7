"""`kubectl state inspect PATH`: what an archive holds, where it came from, how old it is."""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.commands.examples import ExamplesFormatter, examples
from kubectl_state.cli.env import Environment
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.core.errors import ExitStatus

HELP = "Show an archive's source, age, size and object counts by resource and namespace."


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("inspect", help=HELP, description=HELP, parents=parents,
                                   formatter_class=ExamplesFormatter, epilog=examples(
                                       "kubectl state inspect backup.tar.gz",
                                       "kubectl state inspect -o json backup.tar.gz"))
    parser.add_argument("path", metavar="PATH", help="archive (.tar.gz) or directory")
    parser.set_defaults(run=run)


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def run(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.archive.summary import inspect  # noqa: PLC0415 (start-up cost)

    summary = inspect(args.path).to_dict()
    if args.output in MACHINE_FORMATS:
        write_data(summary, args.output, env.stdout)
        return ExitStatus.OK
    out = env.stdout
    source = summary["source"]
    out.write(f"Archive:     {summary['path']} ({summary['format']}, format {summary['formatVersion']}, "
              f"{summary['archiveBytes']} bytes)\n")
    out.write(f"Source:      {source['server']} (Kubernetes {source['kubernetesVersion']})\n")
    out.write(f"Created:     {summary['createdAt']} ({_age(summary['ageSeconds'])} ago) by "
              f"{summary['tool']['name']} {summary['tool']['version']}\n")
    out.write(f"Objects:     {summary['objects']}\n")
    encryption = summary.get("secretsEncryption")
    out.write(f"Secrets:     {'encrypted with ' + encryption['scheme'] if encryption else 'not encrypted'}\n")
    out.write("\nRESOURCE" + " " * 42 + "OBJECTS\n")
    for resource, count in sorted(summary["byResource"].items()):
        out.write(f"{resource:<50}{count}\n")
    out.write("\nNAMESPACE" + " " * 41 + "OBJECTS\n")
    for namespace, count in sorted(summary["byNamespace"].items()):
        out.write(f"{namespace:<50}{count}\n")
    out.write(f"{'(cluster-scoped)':<50}{summary['clusterScoped']}\n")
    if summary["skipped"]:
        out.write("\nSKIPPED (reason: resource count)\n")
        for reason, counts in sorted(summary["skipped"].items()):
            detail = ", ".join(f"{res} {n}" for res, n in sorted(counts.items()))
            out.write(f"{reason}: {detail}\n")
    return ExitStatus.OK
