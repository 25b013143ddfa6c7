"""Namespace mapping: parsing OLD:NEW, and rewriting every place an object names a namespace."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubectl_state.core.errors import InvalidInputError, UsageError
from kubectl_state.core.transform.namespaces import (
    check_mapping_targets,
    map_namespaces,
    parse_namespace_mapping,
)

MAPPING = {"prod": "staging", "monitoring": "monitoring-2"}

ROLE_BINDING: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "deployers", "namespace": "prod"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
    "subjects": [
        {"kind": "ServiceAccount", "name": "ci", "namespace": "prod"},
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring"},
        {"kind": "ServiceAccount", "name": "argocd", "namespace": "argocd"},
        {"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "User", "name": "system:serviceaccount:prod:legacy", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "system:serviceaccounts:monitoring", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "system:serviceaccounts", "apiGroup": "rbac.authorization.k8s.io"},
    ],
}


def test_parse_pairs_given_separately_or_comma_separated() -> None:
    assert parse_namespace_mapping(["prod:staging", "a:b,c:d"]) == {"prod": "staging", "a": "b", "c": "d"}


def test_parse_nothing_gives_an_empty_mapping() -> None:
    assert parse_namespace_mapping([]) == {}


def test_parse_accepts_a_repeated_identical_pair_and_a_swap() -> None:
    assert parse_namespace_mapping(["a:b", "a:b"]) == {"a": "b"}
    assert parse_namespace_mapping(["a:b,b:a"]) == {"a": "b", "b": "a"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["prod"], "expected OLD:NEW"),
        (["prod:"], "expected OLD:NEW"),
        ([":staging"], "expected OLD:NEW"),
        (["a:b:c"], "expected OLD:NEW"),
        (["a:b,"], "expected OLD:NEW"),
        (["Prod:staging"], "'Prod' is not a namespace name"),
        (["prod:staging_2"], "'staging_2' is not a namespace name"),
        (["prod:" + "x" * 64], "is not a namespace name"),
        (["prod:-x"], "is not a namespace name"),
        (["a:b", "a:c"], "'a' is mapped twice"),
        (["a:c", "b:c"], "'a' and 'b' are both mapped to 'c'"),
        (["a:b", "b:b"], "'a' and 'b' are both mapped to 'b'"),
    ],
)
def test_parse_refuses_malformed_or_merging_mappings(items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message) as raised:
        parse_namespace_mapping(items)
    assert raised.value.exit_status == 2


def test_a_target_that_the_archive_also_holds_unmapped_is_refused() -> None:
    with pytest.raises(UsageError, match="'a' is mapped to 'b'"):
        check_mapping_targets({"a": "b"}, {"a", "b", "c"})


@pytest.mark.parametrize(
    ("mapping", "sources"),
    [
        ({"a": "b"}, {"a", "c"}),  # b is new
        ({"a": "b", "b": "c"}, {"a", "b"}),  # b moves on too
        ({"a": "b"}, {"b"}),  # nothing from a in the archive
    ],
)
def test_targets_that_merge_nothing_are_accepted(mapping: dict[str, str], sources: set[str]) -> None:
    check_mapping_targets(mapping, sources)


def test_namespaced_object_moves() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "prod"}}
    assert map_namespaces(cm, MAPPING)["metadata"] == {"name": "settings", "namespace": "staging"}


def test_unmapped_namespace_stays() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "dev"}}
    assert map_namespaces(cm, MAPPING) == cm


def test_cluster_scoped_object_without_references_is_unchanged() -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "prod"}}
    assert map_namespaces(role, MAPPING) == role


def test_namespace_object_is_renamed_with_its_name_label() -> None:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "prod", "labels": {"kubernetes.io/metadata.name": "prod", "team": "prod"}},
    }
    assert map_namespaces(ns, MAPPING)["metadata"] == {
        "name": "staging",
        "labels": {"kubernetes.io/metadata.name": "staging", "team": "prod"},
    }


def test_role_binding_subjects_follow_their_namespaces() -> None:
    out = map_namespaces(ROLE_BINDING, MAPPING)
    assert out["metadata"]["namespace"] == "staging"
    assert out["subjects"] == [
        {"kind": "ServiceAccount", "name": "ci", "namespace": "staging"},
        {"kind": "ServiceAccount", "name": "prometheus", "namespace": "monitoring-2"},
        {"kind": "ServiceAccount", "name": "argocd", "namespace": "argocd"},
        {"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "User", "name": "system:serviceaccount:staging:legacy", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "system:serviceaccounts:monitoring-2", "apiGroup": "rbac.authorization.k8s.io"},
        {"kind": "Group", "name": "system:serviceaccounts", "apiGroup": "rbac.authorization.k8s.io"},
    ]
    assert out["roleRef"] == ROLE_BINDING["roleRef"]


def test_cluster_role_binding_subjects_follow_their_namespaces() -> None:
    crb = copy.deepcopy(ROLE_BINDING)
    crb["kind"] = "ClusterRoleBinding"
    del crb["metadata"]["namespace"]
    out = map_namespaces(crb, MAPPING)
    assert "namespace" not in out["metadata"]
    assert [s.get("namespace") for s in out["subjects"][:3]] == ["staging", "monitoring-2", "argocd"]


def test_persistent_volume_claim_ref_follows_its_claim() -> None:
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pvc-9f2c"},
        "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "namespace": "prod", "name": "data"}},
    }
    out = map_namespaces(pv, MAPPING)
    assert out["spec"]["claimRef"] == {"kind": "PersistentVolumeClaim", "namespace": "staging", "name": "data"}
    assert "namespace" not in out["metadata"]


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "policy"},
                "webhooks": [
                    {"name": "v.example.com", "clientConfig": {"service": {"namespace": "prod", "name": "w"}}}
                ],
            },
            ("webhooks", 0, "clientConfig", "service", "namespace"),
        ),
        (
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "inject"},
                "webhooks": [
                    {"name": "m.example.com", "clientConfig": {"service": {"namespace": "prod", "name": "w"}}}
                ],
            },
            ("webhooks", 0, "clientConfig", "service", "namespace"),
        ),
        (
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {"service": {"namespace": "prod", "name": "metrics-server"}},
            },
            ("spec", "service", "namespace"),
        ),
        (
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {
                    "conversion": {
                        "strategy": "Webhook",
                        "webhook": {"clientConfig": {"service": {"namespace": "prod", "name": "convert"}}},
                    }
                },
            },
            ("spec", "conversion", "webhook", "clientConfig", "service", "namespace"),
        ),
    ],
    ids=["validating-webhook", "mutating-webhook", "apiservice", "crd-conversion"],
)
def test_services_the_api_server_calls_follow_their_namespace(obj: dict[str, Any], path: tuple[Any, ...]) -> None:
    value: Any = map_namespaces(obj, MAPPING)
    for step in path:
        value = value[step]
    assert value == "staging"


def test_kind_rules_apply_only_to_their_api_group() -> None:
    lookalike = {
        "apiVersion": "example.com/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "x"},
        "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "prod"}],
    }
    assert map_namespaces(lookalike, MAPPING) == lookalike


def test_mapping_never_touches_the_input() -> None:
    before = copy.deepcopy(ROLE_BINDING)
    out = map_namespaces(ROLE_BINDING, MAPPING)
    assert before == ROLE_BINDING
    out["subjects"][0]["name"] = "changed"
    assert before == ROLE_BINDING


def test_an_object_without_a_kind_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="without a kind"):
        map_namespaces({"metadata": {"name": "a", "namespace": "prod"}}, MAPPING)
