"""`kubectl state …` through the real kubectl binary and its plugin discovery."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from kubectl_state import __version__

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="the kubectl binary is not installed")


@pytest.fixture
def plugin_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds only the console script's folder and kubectl's.

    Only `kubectl-state` is linked in, so the test proves kubectl finds the plugin by its
    file name, not that some other directory happens to be on PATH.
    """
    scripts = Path(sysconfig.get_path("scripts"))
    console_script = scripts / "kubectl-state"
    assert console_script.exists(), f"console script not installed at {console_script}"
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "kubectl-state").symlink_to(console_script)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    env["PATH"] = os.pathsep.join([str(plugin_dir), str(Path(str(KUBECTL)).resolve().parent), "/usr/bin", "/bin"])
    env["HOME"] = str(tmp_path)  # no ~/.kube/config of the machine leaks in
    return env


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KUBECTL), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_kubectl_lists_the_plugin(plugin_path: dict[str, str]) -> None:
    result = kubectl(plugin_path, "plugin", "list")
    assert "kubectl-state" in result.stdout, result.stderr


def test_kubectl_state_help_through_kubectl(plugin_path: dict[str, str]) -> None:
    result = kubectl(plugin_path, "state", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kubectl state")


def test_kubectl_state_version_through_kubectl_without_a_cluster(plugin_path: dict[str, str]) -> None:
    result = kubectl(plugin_path, "state", "version")
    assert result.returncode == 0, result.stderr
    assert f"Client Version: v{__version__}" in result.stdout
    assert "Server Version: unavailable" in result.stdout


def test_bad_flag_through_kubectl_exits_2_with_one_error_line(plugin_path: dict[str, str]) -> None:
    result = kubectl(plugin_path, "state", "version", "--nope")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "error: unknown flag: --nope"


def test_python_dash_m_is_the_same_program() -> None:
    result = subprocess.run([sys.executable, "-m", "kubectl_state", "version", "--client"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"Client Version: v{__version__}"


def test_kubectl_state_version_shows_the_server_version(plugin_path: dict[str, str], kube_cluster: str) -> None:
    expected = json.loads(kubectl(plugin_path, "version", "-o", "json", "--kubeconfig", kube_cluster).stdout)
    result = kubectl(plugin_path, "state", "version", "--kubeconfig", kube_cluster, "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["clientVersion"]["version"] == __version__
    assert doc["serverVersion"]["gitVersion"] == expected["serverVersion"]["gitVersion"]
    text = kubectl(plugin_path, "state", "version", "--kubeconfig", kube_cluster)
    assert f"Server Version: {expected['serverVersion']['gitVersion']}" in text.stdout
