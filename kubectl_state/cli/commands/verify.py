"""`kubectl state verify PATH`: is this archive complete and untouched?"""

from __future__ import annotations

import argparse
from typing import Any

from kubectl_state.cli.env import Environment
from kubectl_state.cli.output import MACHINE_FORMATS, write_data
from kubectl_state.core.errors import ArchiveError, ExitStatus

HELP = "Check an archive: its manifest schema, every checksum and every path."
DESCRIPTION = f"""{HELP}

Exit status 0 only when everything holds; otherwise every problem found is listed (not just
the first) and the exit status is {int(ExitStatus.INVALID_INPUT)}.

Examples:
  kubectl state verify backup.tar.gz
  kubectl state verify -o json ./backup-dir"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("verify", help=HELP, description=DESCRIPTION, parents=parents,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", metavar="PATH", help="archive (.tar.gz) or directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, env: Environment) -> int:
    from kubectl_state.core.archive.verify import verify  # noqa: PLC0415 (start-up cost)

    report = verify(args.path)
    if args.output in MACHINE_FORMATS:
        write_data(report.to_dict(), args.output, env.stdout)
    elif report.ok:
        env.stdout.write(f"{args.path}: OK, {report.objects_ok} objects verified\n")
    else:
        for problem in report.problems:
            env.stdout.write(f"{problem.kind.value}: {problem}\n")
    if not report.ok:
        raise ArchiveError(f"{args.path} failed verification: {len(report.problems)} problem(s), "
                           f"{report.objects_ok} of {report.objects_listed} objects intact")
    return ExitStatus.OK
