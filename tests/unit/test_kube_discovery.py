"""Discovery documents (real ones, tests/fixtures/kubernetes-discovery) into resources, and
resolving names the way kubectl does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_state.core.errors import UsageError
from kubectl_state.core.kube.discovery import ApiResource, Discovery, parse_resource_list

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes-discovery"


def load_all() -> Discovery:
    every: list[ApiResource] = []
    preferred: list[ApiResource] = []
    groups = json.loads((FIXTURES / "apis.json").read_text())["groups"]
    preferred_of = {g["name"]: g["preferredVersion"]["version"] for g in groups}
    for path in sorted(FIXTURES.glob("api*__*.json")):
        parts = path.stem.split("__")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources = parse_resource_list(json.loads(path.read_text()), group, version)
        every.extend(resources)
        if group == "" or preferred_of.get(group) == version:
            preferred.extend(resources)
    return Discovery(tuple(preferred), tuple(every))


DISCOVERY = load_all()


def test_subresources_fold_into_their_parent() -> None:
    pods = DISCOVERY.find("pods")
    assert {"status", "log", "exec", "eviction"} <= pods.subresources
    assert all("/" not in r.resource for r in DISCOVERY.all_versions)


def test_core_group_paths_and_names() -> None:
    cm = DISCOVERY.find("cm")
    assert (cm.group, cm.version, cm.resource, cm.kind, cm.namespaced) == ("", "v1", "configmaps", "ConfigMap", True)
    assert cm.qualified_name == "configmaps"
    assert cm.collection_path("kube-system") == "/api/v1/namespaces/kube-system/configmaps"
    assert cm.collection_path() == "/api/v1/configmaps"


@pytest.mark.parametrize("name", ["deploy", "deployments", "deployment", "Deployment", "deployments.apps"])
def test_names_resolve_as_kubectl_resolves_them(name: str) -> None:
    found = DISCOVERY.find(name)
    assert (found.group, found.resource) == ("apps", "deployments")
    assert found.object_path("web", "prod") == "/apis/apps/v1/namespaces/prod/deployments/web"


def test_cluster_scoped_paths_ignore_the_namespace() -> None:
    crd = DISCOVERY.find("crd")
    assert not crd.namespaced
    assert crd.collection_path("ignored") == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def test_only_the_preferred_version_of_a_group_is_kept() -> None:
    hpa = [r for r in DISCOVERY.resources if r.resource == "horizontalpodautoscalers"]
    assert [r.version for r in hpa] == ["v2"]
    assert {r.version for r in DISCOVERY.all_versions if r.resource == "horizontalpodautoscalers"} == {"v1", "v2"}


def test_a_name_several_groups_serve_means_the_core_groups_as_in_kubectl() -> None:
    assert DISCOVERY.find("events").group == ""
    assert DISCOVERY.find("pods").group == ""
    assert DISCOVERY.find("pods.metrics.k8s.io").group == "metrics.k8s.io"
    assert DISCOVERY.find("events.events.k8s.io").group == "events.k8s.io"


def test_unknown_resource_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match='does not have a resource type "nosuchthing"'):
        DISCOVERY.find("nosuchthing")
