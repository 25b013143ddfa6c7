"""The test API server's process, its etcd layout, and replicas sharing one etcd.

These look behind the API (etcd keys, flags, several replicas), so they skip against a
real cluster named by $KUBECTL_STATE_TEST_KUBECONFIG.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from kubectl_state.core.etcd.client import EtcdClient
from tests.apiserver.fixture import TEST_TOKEN, KubeCluster
from tests.apiserver.testing import kubectl, kubectl_json, manifests, raw_request, unique, wait_until

ETCDCTL = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "etcdctl")


def _etcdctl(cluster: KubeCluster, *args: str) -> str:
    binary = ETCDCTL if Path(ETCDCTL).exists() else "etcdctl"
    return subprocess.run(
        [binary, "--endpoints", ",".join(cluster.etcd_endpoints), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def test_keys_at_kube_apiserver_paths_with_json_values(local_kube_cluster: KubeCluster) -> None:
    kc, ns, group = local_kube_cluster.kubeconfig, unique("layout"), f"{unique('l')}.example.com"
    kubectl(kc, "create", "ns", ns)
    kubectl(
        kc,
        "apply",
        "-f",
        "-",
        stdin=manifests(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "svc", "namespace": ns},
                "spec": {"ports": [{"port": 80}]},
            },
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc", "namespace": ns}},
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{ns}"}},
            {
                "apiVersion": "v1",
                "kind": "ReplicationController",
                "metadata": {"name": "rc", "namespace": ns},
                "spec": {
                    "selector": {"a": "b"},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "x"}]},
                    },
                },
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "ing", "namespace": ns},
                "spec": {"defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}}},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "dep", "namespace": ns},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {"containers": [{"name": "c", "image": "x"}]},
                    },
                },
            },
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"role-{ns}"}},
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"things.{group}"},
                "spec": {
                    "group": group,
                    "scope": "Namespaced",
                    "names": {"plural": "things", "kind": "Thing"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    ],
                },
            },
        ),
    )
    kubectl(kc, "wait", "--for=condition=Established", f"crd/things.{group}")
    kubectl(
        kc,
        "apply",
        "-f",
        "-",
        stdin=manifests(
            {"apiVersion": f"{group}/v1", "kind": "Thing", "metadata": {"name": "t", "namespace": ns}, "spec": {}}
        ),
    )
    keys = set(_etcdctl(local_kube_cluster, "get", "--prefix", "/registry", "--keys-only").split())
    expected = {
        f"/registry/namespaces/{ns}",
        f"/registry/services/specs/{ns}/svc",
        f"/registry/services/endpoints/{ns}/svc",
        f"/registry/minions/node-{ns}",
        f"/registry/controllers/{ns}/rc",
        f"/registry/ingress/{ns}/ing",
        f"/registry/deployments/{ns}/dep",
        f"/registry/clusterroles/role-{ns}",
        f"/registry/apiextensions.k8s.io/customresourcedefinitions/things.{group}",
        f"/registry/{group}/things/{ns}/t",
        "/registry/apiregistration.k8s.io/apiservices/v1.apps",
        "/registry/apiregistration.k8s.io/apiservices/v1beta1.metrics.k8s.io",
        f"/registry/configmaps/{ns}/kube-root-ca.crt",
        f"/registry/serviceaccounts/{ns}/default",
    }
    assert expected <= keys, expected - keys
    value = _etcdctl(local_kube_cluster, "get", f"/registry/deployments/{ns}/dep", "--print-value-only")
    stored = json.loads(value)
    assert stored["kind"] == "Deployment" and stored["apiVersion"] == "apps/v1"
    assert "resourceVersion" not in stored["metadata"]  # as kube-apiserver: the revision is the version


def test_resource_version_is_the_etcd_mod_revision(local_kube_cluster: KubeCluster) -> None:
    kc, ns = local_kube_cluster.kubeconfig, unique("rev")
    kubectl(kc, "create", "ns", ns)
    kubectl(kc, "create", "configmap", "c", "-n", ns)
    obj = kubectl_json(kc, "get", "configmap", "c", "-n", ns)
    with EtcdClient(local_kube_cluster.etcd_endpoints) as etcd:
        kv = etcd.get(f"/registry/configmaps/{ns}/c".encode())
    assert kv is not None and obj["metadata"]["resourceVersion"] == str(kv.mod_revision)


def test_etcd_prefix_flag_moves_every_key(kube_cluster_factory: Any) -> None:
    cluster = kube_cluster_factory(1, prefix="/other")
    kubectl(cluster.kubeconfig, "create", "ns", "moved")
    keys = _etcdctl(cluster, "get", "--prefix", "/", "--keys-only").split()
    assert "/other/namespaces/moved" in keys and not any(k.startswith("/registry/") for k in keys)


def test_two_replicas_on_one_etcd_serve_the_same_state(kube_cluster_factory: Any) -> None:
    cluster = kube_cluster_factory(2)
    first, second = cluster.kubeconfigs
    ns, group = unique("rep"), f"{unique('r')}.example.com"
    kubectl(first, "create", "ns", ns)
    kubectl(first, "create", "configmap", "shared", "-n", ns, "--from-literal=k=v")
    assert kubectl_json(second, "get", "configmap", "shared", "-n", ns)["data"] == {"k": "v"}
    # A CRD created through one replica serves its resources through the other.
    kubectl(
        first,
        "apply",
        "-f",
        "-",
        stdin=manifests(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": f"items.{group}"},
                "spec": {
                    "group": group,
                    "scope": "Cluster",
                    "names": {"plural": "items", "kind": "Item"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {
                                "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                            },
                        }
                    ],
                },
            }
        ),
    )
    kubectl(second, "wait", "--for=condition=Established", f"crd/items.{group}")
    kubectl(
        second,
        "apply",
        "-f",
        "-",
        stdin=manifests({"apiVersion": f"{group}/v1", "kind": "Item", "metadata": {"name": "i"}, "spec": {"count": 1}}),
    )
    assert kubectl_json(first, "get", f"items.{group}", "i")["spec"] == {"count": 1}
    # Deleting through the second removes it from the first's discovery.
    kubectl(second, "delete", "crd", f"items.{group}")
    code, _ = raw_request(first, "GET", f"/apis/{group}/v1")
    assert code == 404


def test_concurrent_updaters_through_two_replicas_lose_no_update(kube_cluster_factory: Any) -> None:
    cluster = kube_cluster_factory(2)
    ns = unique("race")
    kubectl(cluster.kubeconfig, "create", "ns", ns)
    kubectl(cluster.kubeconfig, "create", "configmap", "counter", "-n", ns, "--from-literal=n=0")
    path = f"/api/v1/namespaces/{ns}/configmaps/counter"
    updaters, rounds = 8, 5
    conflicts = [0] * updaters
    errors: list[BaseException] = []

    def updater(index: int) -> None:
        kc = cluster.kubeconfigs[index % 2]
        try:
            for round_ in range(rounds):
                while True:
                    _, obj = raw_request(kc, "GET", path)
                    obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
                    obj["data"][f"u{index}-{round_}"] = "1"
                    code, _ = raw_request(kc, "PUT", path, obj)
                    if code == 200:
                        break
                    assert code == 409, code
                    conflicts[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=updater, args=(i,)) for i in range(updaters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    final = kubectl_json(cluster.kubeconfig, "get", "configmap", "counter", "-n", ns)["data"]
    assert final["n"] == str(updaters * rounds)
    assert len(final) == updaters * rounds + 1
    assert sum(conflicts) > 0  # the race really happened and was refused, not lost


def test_cluster_ips_are_unique_across_replicas(kube_cluster_factory: Any) -> None:
    # A /28 leaves 13 addresses for Services: collisions are certain unless allocation is atomic.
    cluster = kube_cluster_factory(2, extra_args=["--service-cluster-ip-range", "10.0.0.0/28"])
    ns = unique("ips")
    kubectl(cluster.kubeconfig, "create", "ns", ns)
    results: list[tuple[int, Any]] = []

    def create(index: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"s{index}"},
            "spec": {"ports": [{"port": 80}]},
        }
        results.append(raw_request(cluster.kubeconfigs[index % 2], "POST", f"/api/v1/namespaces/{ns}/services", body))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ips = [obj["spec"]["clusterIP"] for code, obj in results if code == 201]
    assert len(ips) == 12 and len(set(ips)) == 12


def test_tls_with_generated_certificate_and_kubeconfig(kube_cluster_factory: Any) -> None:
    cluster = kube_cluster_factory(1)
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    assert config["clusters"][0]["cluster"]["server"].startswith("https://")
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(config["clusters"][0]["cluster"]["server"] + "/version", timeout=10)
    assert kubectl(cluster.kubeconfig, "get", "ns", "default", "-o", "name").stdout.strip() == "namespace/default"


def test_token_auth_file_rejects_requests_without_a_token(kube_cluster_factory: Any, tmp_path: Path) -> None:
    cluster = kube_cluster_factory(1, token_auth=True)
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    server = cluster.servers[0].url
    response = requests.get(server + "/api/v1/namespaces", verify=str(ca), timeout=10)
    assert response.status_code == 401 and response.json()["reason"] == "Unauthorized"
    response = requests.get(
        server + "/api/v1/namespaces", headers={"Authorization": "Bearer wrong"}, verify=str(ca), timeout=10
    )
    assert response.status_code == 401
    response = requests.get(
        server + "/api/v1/namespaces", headers={"Authorization": f"Bearer {TEST_TOKEN}"}, verify=str(ca), timeout=10
    )
    assert response.status_code == 200
    assert requests.get(server + "/readyz", verify=str(ca), timeout=10).text == "ok"
    # The kubeconfig it writes carries the token.
    assert (
        kubectl(cluster.kubeconfig, "get", "ns", "kube-system", "-o", "name").stdout.strip() == "namespace/kube-system"
    )


def test_plain_http_serves_without_tls(kube_cluster_factory: Any) -> None:
    cluster = kube_cluster_factory(1, plain_http=True)
    server = cluster.servers[0].url
    assert server.startswith("http://")
    assert requests.get(server + "/api/v1/namespaces/default", timeout=10).json()["metadata"]["name"] == "default"
    assert kubectl(cluster.kubeconfig, "get", "ns", "default", "-o", "name").stdout.strip() == "namespace/default"


def test_replica_restart_keeps_state_and_bootstrap_is_idempotent(
    kube_cluster_factory: Any, etcd_endpoints: list[str]
) -> None:
    first = kube_cluster_factory(1, etcd_endpoints=etcd_endpoints)
    kubectl(first.kubeconfig, "create", "ns", "kept")
    uid = kubectl_json(first.kubeconfig, "get", "ns", "default")["metadata"]["uid"]
    first.close()
    time.sleep(0.2)
    second = kube_cluster_factory(1, etcd_endpoints=etcd_endpoints)
    assert kubectl_json(second.kubeconfig, "get", "ns", "default")["metadata"]["uid"] == uid
    wait_until(lambda: kubectl(second.kubeconfig, "get", "ns", "kept", check=False).returncode == 0)
