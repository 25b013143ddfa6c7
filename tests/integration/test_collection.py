"""The Ansible collection builds with ansible-galaxy and installs as a valid collection."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

from kubectl_state import __version__

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "ansible_collections/kubectl_state/control_plane"
SCRIPTS = Path(sysconfig.get_path("scripts"))


def galaxy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPTS / "ansible-galaxy"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_collection_builds_installs_and_is_listed(tmp_path: Path) -> None:
    built = galaxy("collection", "build", "--output-path", str(tmp_path), cwd=COLLECTION)
    assert built.returncode == 0, built.stderr
    artifact = tmp_path / f"kubectl_state-control_plane-{__version__}.tar.gz"
    assert artifact.exists()

    installed = galaxy("collection", "install", str(artifact), "-p", str(tmp_path / "collections"), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    listed = galaxy("collection", "list", "-p", str(tmp_path / "collections"), cwd=tmp_path)
    assert "kubectl_state.control_plane" in listed.stdout
    assert __version__ in listed.stdout
    runtime = tmp_path / "collections/ansible_collections/kubectl_state/control_plane/meta/runtime.yml"
    assert "requires_ansible" in runtime.read_text()
