"""One version, in kubectl_state.__version__, shared by every artifact that names one."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubectl_state import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_collection_version_matches_the_package() -> None:
    galaxy = yaml.safe_load((ROOT / "ansible_collections/kubectl_state/control_plane/galaxy.yml").read_text())
    assert galaxy["version"] == __version__


def test_krew_manifest_version_matches_the_package() -> None:
    manifest = yaml.safe_load((ROOT / "krew-manifest.yaml").read_text())
    assert manifest["spec"]["version"] == f"v{__version__}"
    assert manifest["metadata"]["name"] == "state"
