"""What `make dist` builds works where it is installed, away from this checkout:

- the krew archive, unpacked into a folder on PATH in a clean environment (no virtualenv,
  no Python packages: only /usr/bin, so /usr/bin/kubectl), runs `kubectl state` end to end;
- the wheel, pip-installed into a fresh virtualenv, gives a working `kubectl state`;
- the collection tarball installs with ansible-galaxy and its modules run, on that
  virtualenv's Python, against a real etcd.

The artifacts are built once for the module, with the same commands as `make dist`, into a
temporary folder (the checkout's krew-manifest.yaml is not touched). Skipped only when a
build tool is not installed; the `test` extra installs them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kubectl_state import __version__
from kubectl_state.core.etcd.client import EtcdClient
from tests.packaging.krew_rules import problems


def _installed(distribution: str) -> bool:
    # By distribution, not import name: the checkout's build/ folder would pass for `import build`.
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


for _tool in ("pyinstaller", "build"):
    if not _installed(_tool):
        pytest.skip(f"{_tool} is not installed (the `test` extra has it)", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(sysconfig.get_path("scripts"))
#: The only PATH of the clean environment: the system's, with /usr/bin/kubectl.
SYSTEM_PATH = "/usr/bin:/bin"


@dataclass(frozen=True)
class Dist:
    folder: Path
    wheel: Path
    collection: Path
    krew_archive: Path
    krew_manifest: Path


def _run(args: Sequence[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    folder = tmp_path_factory.mktemp("dist")
    _run([SCRIPTS / "pyproject-build", "--wheel", "--outdir", folder, ROOT])
    _run([SCRIPTS / "ansible-galaxy", "collection", "build", "--output-path", folder,
          ROOT / "ansible_collections/kubectl_state/control_plane"])
    # PyInstaller's work folder is the one `make dist` uses: its cache makes a rebuild quicker.
    archive = Path(_run([sys.executable, ROOT / "packaging/build_krew.py", "--dist", folder,
                         "--work", ROOT / "build/krew"]).stdout.strip().splitlines()[-1])
    (wheel,) = folder.glob(f"kubectl_state-{__version__}-py3-none-any.whl")
    return Dist(folder, wheel, folder / f"kubectl_state-control_plane-{__version__}.tar.gz", archive,
                folder / "state.yaml")


def clean_env(home: Path, *path: Path) -> dict[str, str]:
    """What `env -i PATH=...:/usr/bin:/bin HOME=...` leaves."""
    return {"PATH": os.pathsep.join([*map(str, path), SYSTEM_PATH]), "HOME": str(home)}


def test_the_krew_manifest_dist_writes_matches_its_archive(dist: Dist) -> None:
    manifest = yaml.safe_load(dist.krew_manifest.read_text())
    (platform,) = manifest["spec"]["platforms"]
    assert manifest["spec"]["version"] == f"v{__version__}"
    assert platform["uri"].endswith("/" + dist.krew_archive.name)
    assert problems(dist.krew_manifest, {platform["uri"]: dist.krew_archive}) == []
    with tarfile.open(dist.krew_archive) as tar:
        names = set(tar.getnames())
    # Every file the manifest installs is in the archive.
    assert {f["from"] for f in platform["files"]} <= names
    assert platform["bin"] in names


def test_the_krew_archive_runs_with_no_python_packages(dist: Dist, kube_cluster: str, etcd_endpoints: list[str],
                                                       tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    with tarfile.open(dist.krew_archive) as tar:
        tar.extractall(plugin, filter="data")
    (plugin / "kubectl_complete-state").symlink_to("kubectl-state")  # as the README tells krew users
    env = clean_env(tmp_path, plugin)

    def state(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(["kubectl", "state", *args], env=env, cwd=tmp_path, timeout=300)

    version = state("version", "--kubeconfig", kube_cluster).stdout
    assert f"Client Version: v{__version__}" in version
    assert "Server Version: v1." in version, version
    state("export", "--kubeconfig", kube_cluster, "-A", "backup.tar.gz")
    assert "OK" in state("verify", "backup.tar.gz").stdout
    assert "namespaces" in state("inspect", "backup.tar.gz").stdout
    # etcd snapshots: the API client (save) and etcdutl (status), which only the archive brings.
    with EtcdClient(etcd_endpoints) as etcd:
        revision = etcd.put(b"/kubectl-state-test/key", b"value")
    state("etcd", "snapshot", "save", "etcd.db", "--endpoints", ",".join(etcd_endpoints))
    status = json.loads(state("etcd", "snapshot", "status", "-o", "json", "etcd.db").stdout)
    assert status["revision"] == revision and status["totalKeys"] > 0
    # kubectl's plugin completion finds kubectl_complete-state beside the plugin.
    completed = _run(["kubectl", "__complete", "state", "ex"], env=env, cwd=tmp_path, timeout=120).stdout
    assert completed.splitlines()[0].startswith("export\t")


@pytest.fixture(scope="module")
def wheel_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the built wheel (and its dependencies) installed by pip."""
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin/python", "-m", "pip", "install", "--quiet", dist.wheel])
    return venv


def test_the_wheel_installs_a_working_kubectl_state(wheel_venv: Path, kube_cluster: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path, wheel_venv / "bin")
    installed = _run([wheel_venv / "bin/python", "-c", "import kubectl_state; print(kubectl_state.__file__)"],
                     env=env, cwd=tmp_path).stdout
    assert installed.startswith(str(wheel_venv)), installed  # not this checkout
    version = _run(["kubectl", "state", "version", "--kubeconfig", kube_cluster], env=env, cwd=tmp_path).stdout
    assert f"Client Version: v{__version__}" in version and "Server Version: v1." in version
    _run(["kubectl", "state", "export", "--kubeconfig", kube_cluster, "-A", "backup"], env=env, cwd=tmp_path)
    # verify reads the manifest's JSON Schema: the package data is in the wheel.
    assert "OK" in _run(["kubectl", "state", "verify", "backup"], env=env, cwd=tmp_path).stdout
    completed = _run(["kubectl_complete-state", "etcd", "snap"], env=env, cwd=tmp_path).stdout
    assert completed.splitlines()[0].startswith("snapshot\t")


def test_the_collection_installs_and_its_modules_run(dist: Dist, wheel_venv: Path, etcd_endpoints: list[str],
                                                     tmp_path: Path) -> None:
    collections = tmp_path / "collections"
    _run([SCRIPTS / "ansible-galaxy", "collection", "install", dist.collection, "-p", collections], cwd=tmp_path)
    assert (collections / "ansible_collections/kubectl_state/control_plane/MANIFEST.json").is_file()
    env = {
        "PATH": os.pathsep.join([str(SCRIPTS), SYSTEM_PATH]), "HOME": str(tmp_path),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        # The modules import kubectl_state: the wheel's, not this checkout's.
        "ANSIBLE_PYTHON_INTERPRETER": str(wheel_venv / "bin/python"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False", "ANSIBLE_NOCOLOR": "1",
    }
    done = _run([SCRIPTS / "ansible", "localhost", "-m", "kubectl_state.control_plane.etcd_info",
                 "-a", json.dumps({"etcd_endpoints": etcd_endpoints})], env=env, cwd=tmp_path, timeout=300)
    result = json.loads(done.stdout.split("=>", 1)[1])
    assert result["changed"] is False
    assert result["quorum"]["has_quorum"] is True and result["quorum"]["voters"] == 1
    assert [m["healthy"] for m in result["members"]] == [True]
