"""Owner references: relinking to new uids, and ordering owners before dependents."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubectl_state.core.errors import InvalidInputError
from kubectl_state.core.transform.owners import (
    MissingOwner,
    owner_graph,
    owner_levels,
    relink_owner_references,
)


def ref(kind: str, name: str, uid: str, api_version: str = "apps/v1", *, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": controller,
        "blockOwnerDeletion": True,
    }


# A Deployment -> ReplicaSet -> Pod chain as exported (uids recorded apart from the objects).
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
}
REPLICASET: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {
        "name": "web-6d4cf56db6",
        "namespace": "shop",
        "ownerReferences": [ref("Deployment", "web", "uid-deploy")],
    },
}
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-6d4cf56db6-x2x9k",
        "namespace": "shop",
        "ownerReferences": [ref("ReplicaSet", "web-6d4cf56db6", "uid-rs")],
    },
}
CONFIGMAP: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}


def test_owner_uid_is_replaced_by_the_new_one() -> None:
    out, missing = relink_owner_references(REPLICASET, {"uid-deploy": "new-deploy"})
    assert out["metadata"]["ownerReferences"] == [ref("Deployment", "web", "new-deploy")]
    assert missing == []


def test_missing_owner_is_reported_and_dropped_by_default() -> None:
    out, missing = relink_owner_references(POD, {"uid-deploy": "new-deploy"})
    assert "ownerReferences" not in out["metadata"]
    assert missing == [
        MissingOwner(api_version="apps/v1", kind="ReplicaSet", name="web-6d4cf56db6", uid="uid-rs", controller=True)
    ]


def test_missing_owner_is_kept_unchanged_when_asked() -> None:
    out, missing = relink_owner_references(POD, {}, drop_missing=False)
    assert out["metadata"]["ownerReferences"] == POD["metadata"]["ownerReferences"]
    assert [m.uid for m in missing] == ["uid-rs"]


def test_only_the_missing_one_of_several_owners_is_dropped() -> None:
    obj = {
        "metadata": {
            "name": "shared",
            "ownerReferences": [
                ref("Widget", "a", "uid-a", "example.com/v1", controller=False),
                ref("Widget", "b", "uid-b", "example.com/v1", controller=False),
            ],
        }
    }
    out, missing = relink_owner_references(obj, {"uid-b": "new-b"})
    assert out["metadata"]["ownerReferences"] == [ref("Widget", "b", "new-b", "example.com/v1", controller=False)]
    assert [(m.name, m.controller) for m in missing] == [("a", False)]


def test_object_without_owners_is_returned_as_is() -> None:
    out, missing = relink_owner_references(CONFIGMAP, {"x": "y"})
    assert out == CONFIGMAP
    assert missing == []


def test_relinking_never_touches_the_input() -> None:
    before = copy.deepcopy(REPLICASET)
    out, _ = relink_owner_references(REPLICASET, {"uid-deploy": "new-deploy"})
    assert before == REPLICASET
    assert out["metadata"]["ownerReferences"] is not REPLICASET["metadata"]["ownerReferences"]


def test_chain_is_ordered_owners_first_whatever_the_input_order() -> None:
    objects = [("pod", POD, "uid-pod"), ("rs", REPLICASET, "uid-rs"), ("deploy", DEPLOYMENT, "uid-deploy")]
    assert owner_graph(objects) == ["deploy", "rs", "pod"]
    assert owner_levels(objects) == [["deploy"], ["rs"], ["pod"]]


def test_independent_objects_share_a_level_in_input_order() -> None:
    objects = [
        ("cm", CONFIGMAP, "uid-cm"),
        ("pod", POD, "uid-pod"),
        ("deploy", DEPLOYMENT, "uid-deploy"),
        ("rs", REPLICASET, "uid-rs"),
    ]
    assert owner_levels(objects) == [["cm", "deploy"], ["rs"], ["pod"]]


def test_an_object_waits_for_all_of_its_owners() -> None:
    shared = {"metadata": {"name": "s", "ownerReferences": [ref("A", "a", "uid-a"), ref("B", "b", "uid-b")]}}
    a = {"metadata": {"name": "a"}}
    b = {"metadata": {"name": "b", "ownerReferences": [ref("A", "a", "uid-a")]}}
    assert owner_levels([("shared", shared, "uid-s"), ("b", b, "uid-b"), ("a", a, "uid-a")]) == [
        ["a"],
        ["b"],
        ["shared"],
    ]


def test_owners_outside_the_set_add_no_constraint() -> None:
    assert owner_levels([("pod", POD, "uid-pod")]) == [["pod"]]


def test_keys_may_be_any_hashable() -> None:
    key_rs = ("apps", "replicasets", "shop", "web-6d4cf56db6")
    key_deploy = ("apps", "deployments", "shop", "web")
    assert owner_graph([(key_rs, REPLICASET, "uid-rs"), (key_deploy, DEPLOYMENT, "uid-deploy")]) == [
        key_deploy,
        key_rs,
    ]


def test_a_cycle_is_refused_naming_its_members_in_owner_order() -> None:
    a = {"metadata": {"name": "a", "ownerReferences": [ref("C", "c", "uid-c")]}}
    b = {"metadata": {"name": "b", "ownerReferences": [ref("A", "a", "uid-a")]}}
    c = {"metadata": {"name": "c", "ownerReferences": [ref("B", "b", "uid-b")]}}
    free = {"metadata": {"name": "free"}}
    with pytest.raises(InvalidInputError) as raised:
        owner_graph([("free", free, "uid-free"), ("a", a, "uid-a"), ("b", b, "uid-b"), ("c", c, "uid-c")])
    message = str(raised.value)
    assert "cycle" in message
    # Any rotation is right; each member owns the next.
    assert any(path in message for path in ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"))
    assert "free" not in message


def test_an_object_owning_itself_is_a_cycle() -> None:
    selfish = {"metadata": {"name": "s", "ownerReferences": [ref("S", "s", "uid-s")]}}
    with pytest.raises(InvalidInputError, match="s -> s"):
        owner_graph([("s", selfish, "uid-s")])


def test_dependents_of_a_cycle_are_not_reported_as_its_members() -> None:
    a = {"metadata": {"name": "a", "ownerReferences": [ref("B", "b", "uid-b")]}}
    b = {"metadata": {"name": "b", "ownerReferences": [ref("A", "a", "uid-a")]}}
    child = {"metadata": {"name": "child", "ownerReferences": [ref("A", "a", "uid-a")]}}
    with pytest.raises(InvalidInputError) as raised:
        owner_graph([("child", child, "uid-child"), ("a", a, "uid-a"), ("b", b, "uid-b")])
    assert "child" not in str(raised.value)


def test_two_objects_with_one_uid_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="same uid uid-x: one and two"):
        owner_graph([("one", CONFIGMAP, "uid-x"), ("two", CONFIGMAP, "uid-x")])


def test_objects_without_a_recorded_uid_are_ordered_but_own_nothing() -> None:
    assert owner_graph([("rs", REPLICASET, ""), ("deploy", DEPLOYMENT, ""), ("cm", CONFIGMAP, "")]) == [
        "rs",
        "deploy",
        "cm",
    ]
