"""Discovery documents: the captured ones in tests/fixtures plus CRD-served groups.

The static documents are real kube-apiserver answers (see the fixtures' SOURCE.md);
custom resources are appended from the current CustomResourceDefinitions on every request.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from .registry import ResourceInfo

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubernetes-discovery"

#: What /version reports; kubectl 1.32 accepts a server within one minor version of it.
VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-kubectl-state-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, then higher numbers first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (-1, 0, 0)
    level = {"alpha": 0, "beta": 1, None: 2}[m.group(2)]
    return (level, int(m.group(1)), int(m.group(3) or 0))


class StaticDiscovery:
    """The fixture documents, loaded once."""

    def __init__(self, directory: Path = FIXTURES) -> None:
        self.api_versions: dict[str, Any] = json.loads((directory / "api.json").read_text())
        self.group_list: dict[str, Any] = json.loads((directory / "apis.json").read_text())
        #: groupVersion -> APIResourceList
        self.resource_lists: dict[str, dict[str, Any]] = {}
        for path in sorted(directory.glob("*.json")):
            if path.name in ("api.json", "apis.json"):
                continue
            doc = json.loads(path.read_text())
            self.resource_lists[doc["groupVersion"]] = doc

    def resources(self) -> list[ResourceInfo]:
        infos: list[ResourceInfo] = []
        for gv, doc in self.resource_lists.items():
            group, _, version = gv.rpartition("/")
            entries = doc["resources"]
            subresources: dict[str, set[str]] = {}
            for entry in entries:
                base, _, sub = entry["name"].partition("/")
                if sub:
                    subresources.setdefault(base, set()).add(sub)
            for entry in entries:
                if "/" in entry["name"]:
                    continue
                infos.append(
                    ResourceInfo(
                        group=group,
                        version=version,
                        resource=entry["name"],
                        kind=entry["kind"],
                        namespaced=bool(entry["namespaced"]),
                        verbs=tuple(entry.get("verbs", ())),
                        singular=entry.get("singularName") or entry["kind"].lower(),
                        short_names=tuple(entry.get("shortNames", ())),
                        categories=tuple(entry.get("categories", ())),
                        subresources=frozenset(subresources.get(entry["name"], ())),
                        discovery=entry,
                    )
                )
        return infos


def _api_resource(info: ResourceInfo) -> list[dict[str, Any]]:
    """APIResource entries (main resource and its subresources) for a custom resource."""
    main: dict[str, Any] = {
        "name": info.resource,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    entries = [main]
    if "status" in info.subresources:
        entries.append(
            {
                "name": f"{info.resource}/status",
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if "scale" in info.subresources:
        entries.append(
            {
                "name": f"{info.resource}/scale",
                "singularName": "",
                "namespaced": info.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


class Discovery:
    """Serves the discovery endpoints for the static set plus the given custom resources."""

    def __init__(self, static: StaticDiscovery) -> None:
        self.static = static

    def api(self, server_address: str) -> dict[str, Any]:
        doc = copy.deepcopy(self.static.api_versions)
        doc.setdefault("apiVersion", "v1")
        doc["serverAddressByClientCIDRs"] = [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
        return doc

    def _custom_groups(self, custom: list[ResourceInfo]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for info in custom:
            versions = groups.setdefault(info.group, [])
            if info.version not in versions:
                versions.append(info.version)
        for versions in groups.values():
            versions.sort(key=version_priority, reverse=True)
        return groups

    def _group_entry(self, name: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}

    def groups(self, custom: list[ResourceInfo]) -> dict[str, Any]:
        doc = copy.deepcopy(self.static.group_list)
        known = {g["name"]: g for g in doc["groups"]}
        for name, versions in self._custom_groups(custom).items():
            if name in known:
                # A CRD adding a version to a captured group (gateway API CRDs, say).
                listed = [v["version"] for v in known[name]["versions"]]
                merged = sorted(set(listed) | set(versions), key=version_priority, reverse=True)
                known[name].update(self._group_entry(name, merged))
            else:
                doc["groups"].append(self._group_entry(name, versions))
        return doc

    def group(self, name: str, custom: list[ResourceInfo]) -> dict[str, Any] | None:
        for entry in self.groups(custom)["groups"]:
            if entry["name"] == name:
                return {"kind": "APIGroup", "apiVersion": "v1", **entry}
        return None

    def resource_list(self, group_version: str, custom: list[ResourceInfo]) -> dict[str, Any] | None:
        static = self.static.resource_lists.get(group_version)
        doc = copy.deepcopy(static) if static else None
        extra = [info for info in custom if info.group_version == group_version]
        if doc is None:
            if not extra:
                return None
            doc = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": []}
        names = {r["name"] for r in doc["resources"]}
        for info in extra:
            for entry in _api_resource(info):
                if entry["name"] not in names:
                    doc["resources"].append(entry)
        return doc

    def group_versions(self, custom: list[ResourceInfo]) -> list[str]:
        """Every served group version, core first (the OpenAPI v3 index lists each)."""
        gvs = ["v1"]
        for group in self.groups(custom)["groups"]:
            gvs.extend(v["groupVersion"] for v in group["versions"])
        return gvs
