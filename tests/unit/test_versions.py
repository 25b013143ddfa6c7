"""One version, in kubectl_state.__version__, shared by every artifact that names one:
the wheel (setup.cfg reads it), galaxy.yml, krew-manifest.yaml and `kubectl state version`."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import yaml

from kubectl_state import __version__
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_takes_its_version_from_the_package() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: kubectl_state.__version__"


def test_collection_version_matches_the_package() -> None:
    galaxy = yaml.safe_load((ROOT / "ansible_collections/kubectl_state/control_plane/galaxy.yml").read_text())
    assert galaxy["version"] == __version__


def test_krew_manifest_version_matches_the_package() -> None:
    manifest = yaml.safe_load((ROOT / "krew-manifest.yaml").read_text())
    assert manifest["spec"]["version"] == f"v{__version__}"
    assert manifest["metadata"]["name"] == "state"
    # The archive it points at is the one this version's `make dist` builds.
    for platform in manifest["spec"]["platforms"]:
        assert f"/v{__version__}/kubectl-state_{__version__}_" in platform["uri"]


def test_kubectl_state_version_prints_the_package_version() -> None:
    code, out, _ = run_cli("version", "--client")
    assert (code, out) == (0, f"Client Version: v{__version__}\n")
    code, out, _ = run_cli("version", "--client", "-o", "json")
    assert json.loads(out)["clientVersion"]["version"] == __version__
