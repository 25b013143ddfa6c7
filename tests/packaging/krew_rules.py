"""krew's rules for a plugin manifest, as krew's own validation and the krew-index checks
state them, so a manifest that breaks one fails here before krew refuses it.

- apiVersion krew.googlecontainertools.github.com/v1alpha2, kind Plugin;
- metadata.name a safe name (letters, digits, `_`, `-`) equal to the file's name;
- spec.version a semantic version with a leading `v`;
- shortDescription present and one line; description and homepage present;
- every platform: a selector using only the `os` and `arch` labels (not empty), a uri, a
  sha256 of 64 lower-case hex digits, bin, and files (non-empty) that install a LICENSE;
- no two platforms' selectors match the same os/arch pair.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
SAFE_NAME = re.compile(r"^[\w-]+$")
SHA256 = re.compile(r"^[a-f0-9]{64}$")
# semver 2.0 with krew's leading v.
SEMVER = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
SELECTOR_KEYS = frozenset({"os", "arch"})
#: The platforms the overlap check tries every selector on (Go's GOOS/GOARCH names krew uses).
PLATFORMS = [(os_, arch) for os_ in ("linux", "darwin", "windows", "freebsd")
             for arch in ("amd64", "arm64", "386", "arm", "ppc64le", "s390x")]


def _matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against os/arch labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _selector_problems(selector: Any) -> list[str]:
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return ["selector is missing or empty"]
    keys = list((selector.get("matchLabels") or {}).keys())
    keys += [e.get("key") for e in selector.get("matchExpressions") or []]
    return [f"selector key {k!r} is not supported (only os and arch)" for k in keys if k not in SELECTOR_KEYS]


def _platform_problems(i: int, platform: Any, archives: Mapping[str, Path]) -> list[str]:
    where = f"platform {i}"
    if not isinstance(platform, dict):
        return [f"{where} is not a mapping"]
    problems = [f"{where}: {p}" for p in _selector_problems(platform.get("selector"))]
    uri, sha = platform.get("uri"), platform.get("sha256")
    if not uri:
        problems.append(f"{where}: uri has to be set")
    if not isinstance(sha, str) or not SHA256.match(sha):
        problems.append(f"{where}: sha256 {sha!r} must be 64 lower-case hex digits")
    elif uri in archives:
        actual = hashlib.sha256(archives[uri].read_bytes()).hexdigest()
        if actual != sha:
            problems.append(f"{where}: sha256 {sha} is not that of {archives[uri].name} ({actual})")
    if not platform.get("bin"):
        problems.append(f"{where}: bin has to be set")
    files = platform.get("files")
    if not files:
        problems.append(f"{where}: files must list what to install")
    elif not any(Path(str(f.get("from", ""))).name.upper().startswith("LICENSE") for f in files):
        problems.append(f"{where}: files must install a LICENSE")
    return problems


def problems(manifest_path: Path, archives: Mapping[str, Path] | None = None, *,
             published_as: str | None = None) -> list[str]:
    """Every broken rule in the manifest; empty when krew would accept it.

    `archives` maps a platform's uri to a local file whose sha256 must equal the declared one.
    `published_as` is the file name (without .yaml) the manifest gets in the krew index when
    it differs from this file's (the repository keeps it as krew-manifest.yaml).
    """
    file_name = published_as or manifest_path.stem
    doc = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        return ["the manifest is not a YAML mapping"]
    found: list[str] = []
    if doc.get("apiVersion") != API_VERSION:
        found.append(f"apiVersion must be {API_VERSION}")
    if doc.get("kind") != "Plugin":
        found.append("kind must be Plugin")
    name = (doc.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        found.append(f"metadata.name {name!r} is not a safe plugin name")
    elif name != file_name:
        found.append(f"metadata.name {name!r} must equal the file name {file_name!r}")
    spec = doc.get("spec") or {}
    version = spec.get("version")
    if not isinstance(version, str) or not SEMVER.match(version):
        found.append(f"spec.version {version!r} must be a semantic version with a leading v")
    short = spec.get("shortDescription")
    if not isinstance(short, str) or not short.strip() or "\n" in short.strip():
        found.append("shortDescription must be one non-empty line")
    for key in ("description", "homepage"):
        if not spec.get(key):
            found.append(f"{key} must be set")
    platforms = spec.get("platforms") or []
    if not platforms:
        found.append("at least one platform must be given")
    for i, platform in enumerate(platforms):
        found += _platform_problems(i, platform, archives or {})
    for os_, arch in PLATFORMS:
        labels = {"os": os_, "arch": arch}
        matching = [i for i, p in enumerate(platforms) if isinstance(p, dict) and isinstance(p.get("selector"), dict)
                    and _matches(p["selector"], labels)]
        if len(matching) > 1:
            found.append(f"platforms {matching} overlap: each matches {os_}/{arch}")
    return found
