"""krew-manifest.yaml keeps krew's rules, and the checker catches each kind of breakage."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.packaging.krew_rules import problems

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "krew-manifest.yaml"


def test_the_repository_manifest_keeps_krews_rules() -> None:
    # krew's index keeps it as state.yaml: the name it must match.
    assert problems(MANIFEST, published_as="state") == []


def test_the_manifest_installs_the_executable_and_the_license() -> None:
    (platform,) = yaml.safe_load(MANIFEST.read_text())["spec"]["platforms"]
    assert platform["bin"] == "kubectl-state"
    assert {f["from"] for f in platform["files"]} >= {"kubectl-state", "LICENSE"}
    assert platform["uri"].endswith("_linux_amd64.tar.gz")


def _variant(tmp_path: Path, change: Callable[[dict[str, Any]], None], name: str = "state") -> Path:
    doc = copy.deepcopy(yaml.safe_load(MANIFEST.read_text()))
    # Well-formed to start with, whatever the checkout's manifest holds, so each case breaks one rule.
    for platform in doc["spec"]["platforms"]:
        platform["sha256"] = "0" * 64
    change(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _platform(doc: dict[str, Any]) -> dict[str, Any]:
    platform: dict[str, Any] = doc["spec"]["platforms"][0]
    return platform


def test_a_sha256_that_is_not_the_archives_is_caught(tmp_path: Path) -> None:
    archive = tmp_path / "kubectl-state.tar.gz"
    archive.write_bytes(b"the archive krew would download")
    good = hashlib.sha256(archive.read_bytes()).hexdigest()

    def with_sha(value: str) -> Callable[[dict[str, Any]], None]:
        return lambda doc: _platform(doc).update(sha256=value)

    uri = _platform(yaml.safe_load(MANIFEST.read_text()))["uri"]
    assert problems(_variant(tmp_path, with_sha(good)), {uri: archive}) == []
    wrong = problems(_variant(tmp_path, with_sha("0" * 64)), {uri: archive})
    assert len(wrong) == 1 and f"is not that of {archive.name}" in wrong[0]
    for malformed in (good[:-1], good.upper(), "", good + "0"):
        found = problems(_variant(tmp_path, with_sha(malformed)))
        assert any("64 lower-case hex digits" in p for p in found), malformed


def test_overlapping_selectors_are_caught(tmp_path: Path) -> None:
    def overlapping(doc: dict[str, Any]) -> None:
        other = copy.deepcopy(_platform(doc))
        other["selector"] = {"matchExpressions": [{"key": "os", "operator": "In", "values": ["linux", "darwin"]}]}
        doc["spec"]["platforms"].append(other)

    found = problems(_variant(tmp_path, overlapping))
    assert found == ["platforms [0, 1] overlap: each matches linux/amd64"]

    def disjoint(doc: dict[str, Any]) -> None:
        other = copy.deepcopy(_platform(doc))
        other["selector"] = {"matchLabels": {"os": "darwin", "arch": "arm64"}}
        doc["spec"]["platforms"].append(other)

    assert problems(_variant(tmp_path, disjoint)) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["metadata"].update(name="other"), "must equal the file name"),
    (lambda d: d["metadata"].update(name="bad/name"), "not a safe plugin name"),
    (lambda d: d["spec"].update(version="0.1.0"), "semantic version with a leading v"),
    (lambda d: d["spec"].update(version="v0.1"), "semantic version with a leading v"),
    (lambda d: d["spec"].update(shortDescription="two\nlines"), "one non-empty line"),
    (lambda d: d["spec"].pop("description"), "description must be set"),
    (lambda d: d["spec"].pop("homepage"), "homepage must be set"),
    (lambda d: d.update(apiVersion="krew.googlecontainertools.github.com/v1alpha1"), "apiVersion must be"),
    (lambda d: _platform(d)["selector"]["matchLabels"].update(distro="debian"), "'distro' is not supported"),
    (lambda d: _platform(d).update(selector={}), "selector is missing or empty"),
    (lambda d: _platform(d).pop("bin"), "bin has to be set"),
    (lambda d: _platform(d).pop("uri"), "uri has to be set"),
    (lambda d: _platform(d).update(files=[{"from": "kubectl-state", "to": "."}]), "must install a LICENSE"),
    (lambda d: _platform(d).update(files=[]), "files must list what to install"),
    (lambda d: d["spec"].update(platforms=[]), "at least one platform"),
])
def test_each_rule_is_checked(tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str) -> None:
    found = problems(_variant(tmp_path, change))
    assert any(expected in p for p in found), found
