"""Plugin start-up: `kubectl state version --client` against `kubectl version --client`.

kubectl runs the plugin for every invocation (and for shell completion), so its start-up
cost is what users feel most often. The baseline is kubectl's own equivalent command.
"""

from __future__ import annotations

import os
import shutil
import sysconfig
from contextlib import ExitStack
from pathlib import Path

from bench.harness import Case


def cases(stack: ExitStack, workdir: Path, quick: bool) -> list[Case]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("bench cli_startup needs kubectl on PATH")
    scripts = sysconfig.get_path("scripts")
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]), "HOME": str(workdir)}
    env.pop("KUBECONFIG", None)
    return [
        Case("cli_startup", "version-client", [kubectl, "state", "version", "--client"],
             baseline=[kubectl, "version", "--client"], baseline_name="kubectl version --client",
             repeat=1 if quick else 7, env=env),
    ]
