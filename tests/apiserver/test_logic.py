"""Unit tests of the test server's pure logic: patches, selectors, field sets, protobuf."""

from __future__ import annotations

import pytest

from tests.apiserver import managed, patch, protobuf, selectors
from tests.apiserver.registry import ResourceInfo
from tests.apiserver.status import ApiStatusError


def test_json_merge_patch_deletes_with_null_and_replaces_lists() -> None:
    assert patch.json_merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "l": [1]}, {"a": None, "b": {"c": 5}, "l": [2]}) == {
        "b": {"c": 5, "d": 3},
        "l": [2],
    }


def test_json_patch_operations_and_failed_test() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "move", "from": "/b/c", "path": "/d"},
        {"op": "replace", "path": "/a/0", "value": 0},
    ]
    assert patch.json_patch(doc, ops) == {"a": [0, 2, 3], "b": {}, "d": 1}
    with pytest.raises(ApiStatusError):
        patch.json_patch(doc, [{"op": "test", "path": "/b/c", "value": 9}])


def test_strategic_merge_patch_merge_keys_and_directives() -> None:
    live = {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}], "finalizers": ["x"]}
    smp = {
        "containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}],
        "$setElementOrder/containers": [{"name": "b"}],
        "finalizers": ["y"],
    }
    assert patch.strategic_merge_patch(live, smp) == {
        "containers": [{"name": "b", "image": "2"}],
        "finalizers": ["x", "y"],
    }


def test_label_selector_parsing_and_matching() -> None:
    reqs = selectors.parse_label_selector("app in (web, api),tier!=db,!legacy,env")
    obj = {"metadata": {"labels": {"app": "web", "env": "prod"}}}
    assert selectors.labels_match(reqs, obj)
    assert not selectors.labels_match(reqs, {"metadata": {"labels": {"app": "web", "env": "x", "legacy": "1"}}})
    with pytest.raises(ApiStatusError):
        selectors.parse_label_selector("a in (b")


def test_field_selector_refuses_unknown_fields() -> None:
    assert selectors.parse_field_selector("type=Opaque", "Secret")
    with pytest.raises(ApiStatusError) as info:
        selectors.parse_field_selector("type=Opaque", "ConfigMap")
    assert info.value.code == 400


def test_server_side_apply_ownership_conflict_and_removal() -> None:
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "1"}}
    obj = managed.server_side_apply(None, cfg, "one", "v1", "t", force=False)
    with pytest.raises(ApiStatusError) as info:
        managed.server_side_apply(obj, {**cfg, "data": {"a": "2"}}, "two", "v1", "t", force=False)
    assert info.value.code == 409
    same = managed.server_side_apply(obj, {**cfg, "data": {"a": "1"}}, "two", "v1", "t", force=False)
    assert {m["manager"] for m in same["metadata"]["managedFields"]} == {"one", "two"}
    shrunk = managed.server_side_apply(same, {**cfg, "data": {}}, "one", "v1", "t", force=False)
    assert shrunk["data"] == {"a": "1"}  # b was one's alone; a is still two's


def test_protobuf_configmap_envelope_decodes() -> None:
    body = (
        b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x1c\n\x12\n\x02c1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
        b'\x12\x06\n\x01a\x12\x01b\x1a\x00"\x00'
    )
    assert protobuf.decode(body) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c1"},
        "data": {"a": "b"},
    }


def test_special_etcd_key_prefixes() -> None:
    def key(group: str, resource: str, namespaced: bool = True) -> bytes:
        info = ResourceInfo(group, "v1", resource, "K", namespaced, ("create", "list"))
        return info.key("/registry", "ns", "n")

    assert key("", "services") == b"/registry/services/specs/ns/n"
    assert key("", "endpoints") == b"/registry/services/endpoints/ns/n"
    assert key("", "nodes", False) == b"/registry/minions/n"
    assert key("", "replicationcontrollers") == b"/registry/controllers/ns/n"
    assert key("networking.k8s.io", "ingresses") == b"/registry/ingress/ns/n"
    assert key("apps", "deployments") == b"/registry/deployments/ns/n"
    assert key("example.com", "widgets") == b"/registry/example.com/widgets/ns/n"
    assert key("apiregistration.k8s.io", "apiservices", False) == b"/registry/apiregistration.k8s.io/apiservices/n"
