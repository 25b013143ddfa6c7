"""The real kubectl 1.32 against the test API server (or $KUBECTL_STATE_TEST_KUBECONFIG).

One server per module; every test works in namespaces of its own.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.apiserver.testing import KUBECTL, kubectl, kubectl_json, manifests, unique, wait_until

pytestmark = pytest.mark.skipif(not KUBECTL, reason="kubectl is not installed")


def _app(namespace: str) -> str:
    return manifests(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"level": "debug"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": namespace},
            "stringData": {"password": "hunter2"},
        },
    )


def _crd(group: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }


def test_kubectl_api_resources_lists_discovery(kube_cluster: str) -> None:
    out = kubectl(kube_cluster, "api-resources").stdout
    for line in ("deployments", "customresourcedefinitions", "configmaps", "namespaces", "leases"):
        assert line in out
    assert "apps/v1" in out and "Deployment" in out


def test_kubectl_create_namespace_and_apply_manifests(kube_cluster: str) -> None:
    ns = unique("kc-apply")
    assert f"namespace/{ns} created" in kubectl(kube_cluster, "create", "ns", ns).stdout
    out = kubectl(kube_cluster, "apply", "-f", "-", stdin=_app(ns)).stdout
    for created in (
        "deployment.apps/web created",
        "service/web created",
        "configmap/settings created",
        "secret/creds created",
    ):
        assert created in out
    # Applying again is a no-op (client-side apply: GET + strategic merge patch).
    again = kubectl(kube_cluster, "apply", "-f", "-", stdin=_app(ns)).stdout
    # (A Secret with stringData reports "configured" every time, on real clusters too.)
    assert "deployment.apps/web unchanged" in again and "configmap/settings unchanged" in again
    secret = kubectl_json(kube_cluster, "get", "secret", "creds", "-n", ns)
    assert secret["data"]["password"] == "aHVudGVyMg=="
    kubectl(kube_cluster, "delete", "ns", ns, "--wait=false")


def test_kubectl_applies_crd_then_waits_established_then_custom_resource(kube_cluster: str) -> None:
    ns, group = unique("kc-crd"), f"{unique('g')}.example.com"
    kubectl(kube_cluster, "create", "ns", ns)
    kubectl(kube_cluster, "apply", "-f", "-", stdin=manifests(_crd(group)))
    out = kubectl(kube_cluster, "wait", "--for=condition=Established", f"crd/gadgets.{group}", "--timeout=30s").stdout
    assert "condition met" in out
    cr = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": ns},
        "spec": {"size": 3},
    }
    assert f"gadget.{group}/g1 created" in kubectl(kube_cluster, "apply", "-f", "-", stdin=manifests(cr)).stdout
    got = kubectl_json(kube_cluster, "get", f"gadgets.{group}", "g1", "-n", ns)
    assert got["spec"] == {"size": 3} and got["metadata"]["generation"] == 1
    kubectl(kube_cluster, "delete", "crd", f"gadgets.{group}")
    kubectl(kube_cluster, "delete", "ns", ns, "--wait=false")


def test_kubectl_apply_server_side(kube_cluster: str) -> None:
    ns = unique("kc-ssa")
    kubectl(kube_cluster, "create", "ns", ns)
    out = kubectl(kube_cluster, "apply", "--server-side", "-f", "-", stdin=_app(ns)).stdout
    assert "deployment.apps/web serverside-applied" in out
    deploy = kubectl_json(kube_cluster, "get", "deploy", "web", "-n", ns, "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in deploy["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    # A second field manager changing an owned field conflicts unless forced.
    changed = _app(ns).replace("replicas: 2", "replicas: 5")
    conflict = kubectl(
        kube_cluster, "apply", "--server-side", "--field-manager=other", "-f", "-", stdin=changed, check=False
    )
    assert conflict.returncode != 0 and "conflict" in conflict.stderr.lower()
    kubectl(
        kube_cluster, "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-", stdin=changed
    )
    assert kubectl_json(kube_cluster, "get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 5
    kubectl(kube_cluster, "delete", "ns", ns, "--wait=false")


def test_kubectl_get_all_namespaces_paginates_with_chunk_size(kube_cluster: str) -> None:
    ns = unique("kc-chunk")
    kubectl(kube_cluster, "create", "ns", ns)
    for i in range(5):
        kubectl(kube_cluster, "create", "configmap", f"cm-{i}", "-n", ns, "--from-literal=i=1")
    result = kubectl(kube_cluster, "get", "configmaps", "-A", "--chunk-size=2", "-v=6")
    requests = [line for line in result.stderr.splitlines() if "GET" in line and "/configmaps" in line]
    assert len(requests) >= 3, result.stderr  # 6+ objects in pages of two
    assert sum("continue=" in line for line in requests) >= 2
    names = [line.split()[1] for line in result.stdout.splitlines()[1:] if line.split()[0] == ns]
    assert names == ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4", "kube-root-ca.crt"]
    kubectl(kube_cluster, "delete", "ns", ns, "--wait=false")


def test_kubectl_get_deployment_yaml_has_server_fields(kube_cluster: str) -> None:
    ns = unique("kc-fields")
    kubectl(kube_cluster, "create", "ns", ns)
    kubectl(kube_cluster, "apply", "-f", "-", stdin=_app(ns))
    out = kubectl(kube_cluster, "get", "deploy", "web", "-n", ns, "-o", "yaml", "--show-managed-fields").stdout
    for field in (
        "uid:",
        "resourceVersion:",
        "creationTimestamp:",
        "generation: 1",
        "managedFields:",
        "kubectl.kubernetes.io/last-applied-configuration",
    ):
        assert field in out
    kubectl(kube_cluster, "delete", "ns", ns, "--wait=false")


def test_kubectl_delete_namespace_removes_contents(kube_cluster: str) -> None:
    ns = unique("kc-delns")
    kubectl(kube_cluster, "create", "ns", ns)
    kubectl(kube_cluster, "apply", "-f", "-", stdin=_app(ns))
    kubectl(kube_cluster, "delete", "ns", ns, "--timeout=60s")
    missing = kubectl(kube_cluster, "get", "ns", ns, check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr
    leftovers = kubectl(kube_cluster, "get", "deploy,svc,cm,secret,sa", "-n", ns, "-o", "name", check=False)
    assert leftovers.stdout.strip() == ""


def test_kubectl_get_watch_streams_changes(kube_cluster: str) -> None:
    ns = unique("kc-watch")
    kubectl(kube_cluster, "create", "ns", ns)
    watcher = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            kube_cluster,
            "get",
            "configmaps",
            "-n",
            ns,
            "-w",
            "--output-watch-events",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        kubectl(kube_cluster, "create", "configmap", "watched", "-n", ns, "--from-literal=a=1")
        kubectl(kube_cluster, "patch", "configmap", "watched", "-n", ns, "-p", '{"data":{"a":"2"}}')
        kubectl(kube_cluster, "delete", "configmap", "watched", "-n", ns)
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    events = [(e["type"], e["object"]["metadata"]["name"]) for e in _json_stream(out)]
    assert ("ADDED", "kube-root-ca.crt") in events
    assert [e for e in events if e[1] == "watched"] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]
    kubectl(kube_cluster, "delete", "ns", ns, "--wait=false")


def _json_stream(text: str) -> list[dict]:
    decoder, pos, docs = json.JSONDecoder(), 0, []
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    return docs


def test_kubectl_wait_for_delete(kube_cluster: str) -> None:
    ns = unique("kc-wait")
    kubectl(kube_cluster, "create", "ns", ns)
    kubectl(kube_cluster, "create", "configmap", "doomed", "-n", ns)
    waiter = subprocess.Popen(
        [KUBECTL, "--kubeconfig", kube_cluster, "wait", "--for=delete", "configmap/doomed", "-n", ns, "--timeout=30s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    kubectl(kube_cluster, "delete", "configmap", "doomed", "-n", ns)
    out, err = waiter.communicate(timeout=40)
    assert waiter.returncode == 0, err
    assert "condition met" in out or "deleted" in out
    wait_until(lambda: kubectl(kube_cluster, "delete", "ns", ns, "--wait=false", check=False).returncode == 0)
