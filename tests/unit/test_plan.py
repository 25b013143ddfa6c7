"""The restore plan: tiers in order, owners before dependents, custom resources after their
CRD, namespaces mapped, subsets with what they need."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_state.core.errors import InvalidInputError, UsageError
from kubectl_state.core.kube.discovery import ApiResource
from kubectl_state.core.plan import (
    DEFAULT_TIERS,
    ObjectId,
    Plan,
    PlanInput,
    Selection,
    TierTable,
    build_plan,
    parse_tier_document,
    select,
)
from kubectl_state.core.transform import parse_label_selector

RESOURCES = {
    "Namespace": ("", "v1", "namespaces", False),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "PersistentVolume": ("", "v1", "persistentvolumes", False),
    "PersistentVolumeClaim": ("", "v1", "persistentvolumeclaims", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "Service": ("", "v1", "services", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "StorageClass": ("storage.k8s.io", "v1", "storageclasses", False),
    "PriorityClass": ("scheduling.k8s.io", "v1", "priorityclasses", False),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "LimitRange": ("", "v1", "limitranges", True),
    "ResourceQuota": ("", "v1", "resourcequotas", True),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
    "Widget": ("example.com", "v1", "widgets", True),
}


def item(kind: str, name: str, namespace: str | None = None, *, uid: str | None = None,
         owners: tuple[tuple[str, str, str], ...] = (), **extra: Any) -> PlanInput:
    group, version, resource, namespaced = RESOURCES[kind]
    api_version = f"{group}/{version}" if group else version
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if owners:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": k, "name": n, "uid": u} for k, n, u in owners]
    obj = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **extra}
    res = ApiResource(group=group, version=version, resource=resource, kind=kind, namespaced=namespaced)
    return PlanInput(ObjectId(group, resource, namespace, name), res, obj, uid)


def crd(group: str = "example.com", plural: str = "widgets", kind: str = "Widget") -> PlanInput:
    return item("CustomResourceDefinition", f"{plural}.{group}",
                spec={"group": group, "names": {"plural": plural, "kind": kind}, "scope": "Namespaced"})


def order(plan: Plan) -> list[str]:
    return [f"{obj.kind}/{obj.id.name}" for obj in plan.objects()]


def test_default_tiers_put_crds_and_namespaces_first_and_the_rest_last() -> None:
    inputs = [
        item("Deployment", "web", "ns"), item("ResourceQuota", "q", "ns"), item("LimitRange", "l", "ns"),
        item("ConfigMap", "c", "ns"), item("Secret", "s", "ns"), item("RoleBinding", "rb", "ns"),
        item("ClusterRoleBinding", "crb"), item("ServiceAccount", "sa", "ns"), item("Role", "r", "ns"),
        item("ClusterRole", "cr"), item("PersistentVolumeClaim", "pvc", "ns"), item("PersistentVolume", "pv"),
        item("PriorityClass", "pc"), item("StorageClass", "sc"), item("Namespace", "ns"), crd(),
    ]
    plan = build_plan(inputs)
    assert order(plan) == [
        "CustomResourceDefinition/widgets.example.com", "Namespace/ns", "StorageClass/sc", "PriorityClass/pc",
        "PersistentVolume/pv", "PersistentVolumeClaim/pvc", "ClusterRole/cr", "Role/r", "ServiceAccount/sa",
        "ClusterRoleBinding/crb", "RoleBinding/rb", "Secret/s", "ConfigMap/c", "LimitRange/l",
        "ResourceQuota/q", "Deployment/web",
    ]
    assert [step.tier_name for step in plan.steps][-1] == "(the rest)"
    assert all(len(step.objects) == 1 for step in plan.steps)


def test_objects_of_one_tier_share_a_step_to_be_written_in_parallel() -> None:
    plan = build_plan([item("ConfigMap", f"c{i}", "ns") for i in range(5)])
    assert len(plan.steps) == 1
    assert [obj.id.name for obj in plan.steps[0].objects] == ["c0", "c1", "c2", "c3", "c4"]


def test_owners_come_before_dependents_inside_a_tier() -> None:
    plan = build_plan([
        item("ReplicaSet", "rs", "ns", uid="u-rs", owners=(("Deployment", "web", "u-web"),)),
        item("Deployment", "web", "ns", uid="u-web"),
        item("Deployment", "other", "ns", uid="u-other"),
    ])
    assert [(s.tier_name, s.level, [o.id.name for o in s.objects]) for s in plan.steps] == [
        ("(the rest)", 0, ["web", "other"]),
        ("(the rest)", 1, ["rs"]),
    ]
    assert plan.objects()[-1].depends_on == [ObjectId("apps", "deployments", "ns", "web")]


def test_a_dependent_of_an_earlier_tier_moves_after_its_owner() -> None:
    plan = build_plan([
        item("ConfigMap", "owned", "ns", uid="u-cm", owners=(("Deployment", "web", "u-web"),)),
        item("ConfigMap", "owned-by-owned", "ns", owners=(("ConfigMap", "owned", "u-cm"),)),
        item("ConfigMap", "free", "ns"),
        item("Deployment", "web", "ns", uid="u-web"),
    ])
    assert order(plan) == ["ConfigMap/free", "Deployment/web", "ConfigMap/owned", "ConfigMap/owned-by-owned"]
    moved = {obj.id.name: obj.moved for obj in plan.objects()}
    assert "after deployments.apps ns/web" in moved["owned"]
    assert moved["free"] == ""


def test_owners_outside_the_archive_add_no_constraint() -> None:
    plan = build_plan([item("ConfigMap", "c", "ns", owners=(("Deployment", "gone", "u-gone"),))])
    assert order(plan) == ["ConfigMap/c"]
    assert plan.objects()[0].depends_on == []


def test_custom_resources_come_after_their_crd_whatever_the_tiers_say() -> None:
    tiers = TierTable.from_names(["widgets.example.com", "configmaps", "*"])
    plan = build_plan([item("Widget", "w", "ns"), item("ConfigMap", "c", "ns"), crd(), item("Namespace", "ns")],
                      tiers=tiers)
    assert order(plan) == ["CustomResourceDefinition/widgets.example.com", "Namespace/ns", "Widget/w",
                           "ConfigMap/c"]


def test_a_tier_file_can_order_the_rest_and_put_resources_after_it() -> None:
    tiers = parse_tier_document(["secrets", "*", "configmaps"])
    assert tiers.names == ("customresourcedefinitions.apiextensions.k8s.io", "namespaces", "secrets", "*",
                           "configmaps")
    plan = build_plan([item("ConfigMap", "c", "ns"), item("Deployment", "d", "ns"), item("Secret", "s", "ns")],
                      tiers=tiers)
    assert order(plan) == ["Secret/s", "Deployment/d", "ConfigMap/c"]
    with pytest.raises(UsageError, match="listed twice"):
        parse_tier_document(["secrets", "secrets"])
    with pytest.raises(UsageError, match="YAML list"):
        parse_tier_document({"secrets": 1})


def test_the_default_tier_table_is_one_piece_of_data() -> None:
    assert DEFAULT_TIERS[0].startswith("customresourcedefinitions") and DEFAULT_TIERS[1] == "namespaces"
    assert DEFAULT_TIERS[-1] == "*"
    assert TierTable().index("", "pods") == TierTable().rest


def test_namespace_mapping_moves_objects_and_their_namespace() -> None:
    plan = build_plan([
        item("Namespace", "prod"),
        item("ConfigMap", "c", "prod"),
        item("RoleBinding", "rb", "prod", subjects=[{"kind": "ServiceAccount", "name": "x", "namespace": "prod"}]),
    ], namespace_mapping={"prod": "staging"})
    ids = [obj.id for obj in plan.objects()]
    assert ObjectId("", "namespaces", None, "staging") in ids
    assert ObjectId("", "configmaps", "staging", "c") in ids
    binding = next(obj for obj in plan.objects() if obj.kind == "RoleBinding")
    assert binding.obj["subjects"][0]["namespace"] == "staging"
    assert binding.source.namespace == "prod"
    assert plan.objects()[0].kind == "Namespace"


def test_owner_cycles_and_duplicate_uids_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="cycle"):
        build_plan([item("ConfigMap", "a", "ns", uid="ua", owners=(("ConfigMap", "b", "ub"),)),
                    item("ConfigMap", "b", "ns", uid="ub", owners=(("ConfigMap", "a", "ua"),))])
    with pytest.raises(InvalidInputError, match="same uid"):
        build_plan([item("ConfigMap", "a", "ns", uid="u"), item("ConfigMap", "b", "ns", uid="u")])
    with pytest.raises(InvalidInputError, match="twice"):
        build_plan([item("Namespace", "a"), item("Namespace", "b")], namespace_mapping={"a": "c", "b": "c"})


def test_a_subset_brings_its_namespace_crd_volume_and_cluster_role() -> None:
    inputs = [
        item("Namespace", "shop"), item("Namespace", "other"), crd(), item("PersistentVolume", "pv-1"),
        item("ClusterRole", "reader"), item("ClusterRole", "unrelated"),
        item("Widget", "w", "shop"),
        item("PersistentVolumeClaim", "data", "shop", spec={"volumeName": "pv-1"}),
        item("RoleBinding", "rb", "shop", roleRef={"kind": "ClusterRole", "name": "reader"}),
        item("ConfigMap", "c", "other"),
    ]
    kept, left_out = select(inputs, Selection(namespaces=frozenset({"shop"})))
    assert {f"{i.obj['kind']}/{i.source.name}" for i in kept} == {
        "Namespace/shop", "CustomResourceDefinition/widgets.example.com", "PersistentVolume/pv-1",
        "ClusterRole/reader", "Widget/w", "PersistentVolumeClaim/data", "RoleBinding/rb"}
    assert left_out == 3


def test_label_selector_and_resource_filters() -> None:
    inputs = [item("ConfigMap", "a", "ns"), item("Namespace", "ns")]
    inputs[0].obj["metadata"]["labels"] = {"tier": "web"}
    kept, _ = select(inputs, Selection(selector=parse_label_selector("tier=web")))
    assert [i.source.name for i in kept] == ["a", "ns"]  # the namespace comes along
    kept, _ = select(inputs, Selection(selector=parse_label_selector("tier=web"),
                                       exclude=frozenset({("", "namespaces")})))
    assert [i.source.name for i in kept] == ["a"]
    kept, left_out = select(inputs, Selection(include=frozenset({("", "namespaces")})))
    assert ([i.source.name for i in kept], left_out) == (["ns"], 1)


def test_force_conflicts_without_update_is_refused_for_every_caller() -> None:
    import pytest

    from kubectl_state.core.errors import UsageError
    from kubectl_state.core.workflows.restore.importer import ImportOptions

    assert ImportOptions(existing="update", force_conflicts=True).force_conflicts
    with pytest.raises(UsageError, match="existing=update"):
        ImportOptions(existing="skip", force_conflicts=True)
