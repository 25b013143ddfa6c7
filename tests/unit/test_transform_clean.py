"""clean_object: what an export keeps of an object, and what it drops as the source cluster's own."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_state.core.errors import InvalidInputError
from kubectl_state.core.transform.clean import clean_object, clean_object_in_place

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# A Deployment exactly as `GET /apis/apps/v1/namespaces/shop/deployments/web` returns it
# after `kubectl apply` and a few rollouts.
DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "0b7f3c56-1c1e-4b55-9a62-2f0a5d1c9e11",
        "resourceVersion": "48211",
        "generation": 3,
        "creationTimestamp": "2025-03-02T10:15:04Z",
        "labels": {"app": "web"},
        "annotations": {
            "deployment.kubernetes.io/revision": "3",
            LAST_APPLIED: '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}\n',
        },
        "finalizers": ["example.com/keep-dns"],
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": "2025-03-02T10:15:04Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            },
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "time": "2025-03-02T10:16:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:replicas": {}}},
                "subresource": "status",
            },
        ],
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    },
    "status": {
        "observedGeneration": 3,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "shop", "uid": "5e1d", "resourceVersion": "48300"},
    "spec": {
        "type": "LoadBalancer",
        "selector": {"app": "web"},
        "clusterIP": "10.43.12.7",
        "clusterIPs": ["10.43.12.7"],
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "externalTrafficPolicy": "Local",
        "healthCheckNodePort": 31544,
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}],
        "sessionAffinity": "None",
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
}

HEADLESS_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "db", "namespace": "shop", "uid": "77aa", "resourceVersion": "301"},
    "spec": {
        "clusterIP": "None",
        "clusterIPs": ["None"],
        "selector": {"app": "db"},
        "ports": [{"port": 5432, "protocol": "TCP", "targetPort": 5432}],
        "type": "ClusterIP",
    },
    "status": {"loadBalancer": {}},
}

PV: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "PersistentVolume",
    "metadata": {
        "name": "pvc-9f2c",
        "uid": "a1",
        "resourceVersion": "900",
        "annotations": {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"},
        "finalizers": ["kubernetes.io/pv-protection"],
    },
    "spec": {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Delete",
        "storageClassName": "local-path",
        "hostPath": {"path": "/var/lib/rancher/k3s/storage/pvc-9f2c", "type": "DirectoryOrCreate"},
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": "shop",
            "name": "data",
            "uid": "c0ffee00-0000-4000-8000-000000000001",
            "resourceVersion": "880",
        },
    },
    "status": {"phase": "Bound"},
}

PVC: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {
        "name": "data",
        "namespace": "shop",
        "uid": "c0ffee00-0000-4000-8000-000000000001",
        "resourceVersion": "905",
        "annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.beta.kubernetes.io/storage-provisioner": "rancher.io/local-path",
            "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path",
            "volume.kubernetes.io/selected-node": "node-1",
        },
        "finalizers": ["kubernetes.io/pvc-protection"],
    },
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "local-path",
        "volumeMode": "Filesystem",
        "volumeName": "pvc-9f2c",
    },
    "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]},
}

# A standalone pod from a pre-1.24 cluster: still mounting its legacy token secret.
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "debug", "namespace": "shop", "uid": "d1", "resourceVersion": "1200"},
    "spec": {
        "nodeName": "node-1",
        "priority": 0,
        "priorityClassName": "",
        "preemptionPolicy": "PreemptLowerPriority",
        "serviceAccountName": "builder",
        "serviceAccount": "builder",
        "containers": [
            {
                "name": "sh",
                "image": "busybox",
                "volumeMounts": [
                    {"name": "builder-token-x7k2q", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
                    {"name": "config", "mountPath": "/etc/app"},
                ],
            }
        ],
        "initContainers": [
            {
                "name": "init",
                "image": "busybox",
                "volumeMounts": [{"name": "builder-token-x7k2q", "mountPath": "/token"}],
            }
        ],
        "volumes": [
            {"name": "builder-token-x7k2q", "secret": {"secretName": "builder-token-x7k2q", "defaultMode": 420}},
            # A person's secret whose name merely resembles the pattern ("tls" is not 5 characters).
            {"name": "config", "secret": {"secretName": "builder-token-tls"}},
        ],
    },
    "status": {"phase": "Running", "podIP": "10.42.0.9"},
}

NAMESPACE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {
        "name": "shop",
        "uid": "ns1",
        "resourceVersion": "10",
        "labels": {"kubernetes.io/metadata.name": "shop"},
    },
    "spec": {"finalizers": ["kubernetes"]},
    "status": {"phase": "Active"},
}

JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "migrate", "namespace": "shop", "uid": "4c1f9a7e", "resourceVersion": "77"},
    "spec": {
        "backoffLimit": 6,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "4c1f9a7e"}},
        "template": {
            "metadata": {
                "labels": {
                    "batch.kubernetes.io/controller-uid": "4c1f9a7e",
                    "batch.kubernetes.io/job-name": "migrate",
                    "controller-uid": "4c1f9a7e",
                    "job-name": "migrate",
                }
            },
            "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "migrate:1"}]},
        },
    },
    "status": {"succeeded": 1},
}


def clean(obj: dict[str, Any], resource: str, group: str = "", **options: Any) -> dict[str, Any]:
    return clean_object(obj, resource=resource, group=group, **options)


def test_deployment_keeps_only_what_a_person_chose() -> None:
    assert clean(DEPLOYMENT, "deployments", "apps") == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "labels": {"app": "web"},
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "finalizers": ["example.com/keep-dns"],
        },
        "spec": DEPLOYMENT["spec"],
    }


@pytest.mark.parametrize(
    ("options", "status_kept", "last_applied_kept"),
    [
        ({}, False, False),
        ({"include_status": True}, True, False),
        ({"keep_last_applied": True}, False, True),
        ({"include_status": True, "keep_last_applied": True}, True, True),
    ],
)
def test_status_and_last_applied_are_kept_only_when_asked(
    options: dict[str, bool], status_kept: bool, last_applied_kept: bool
) -> None:
    out = clean(DEPLOYMENT, "deployments", "apps", **options)
    assert ("status" in out) is status_kept
    assert (LAST_APPLIED in out["metadata"]["annotations"]) is last_applied_kept


def test_annotations_map_goes_when_the_last_applied_annotation_was_its_only_entry() -> None:
    obj = {"metadata": {"name": "a", "annotations": {LAST_APPLIED: "{}"}}}
    assert clean(obj, "configmaps") == {"metadata": {"name": "a"}}


def test_an_empty_annotations_map_that_came_in_stays_as_it_was() -> None:
    obj = {"metadata": {"name": "a", "annotations": {}}}
    assert clean(obj, "configmaps") == obj


def test_owner_references_are_kept_exactly_with_their_old_uids() -> None:
    refs = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-6d4cf56db6",
            "uid": "old-rs-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    obj = {"metadata": {"name": "a", "uid": "x", "ownerReferences": refs}}
    assert clean(obj, "configmaps")["metadata"]["ownerReferences"] == refs


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"name": "web-6d4cf", "generateName": "web-"}, {"name": "web-6d4cf"}),
        ({"generateName": "web-"}, {"generateName": "web-"}),
    ],
    ids=["dropped-beside-a-name", "kept-without-a-name"],
)
def test_generate_name_is_kept_only_when_there_is_no_name(metadata: dict[str, str], expected: dict[str, str]) -> None:
    assert clean({"metadata": metadata}, "configmaps")["metadata"] == expected


def test_deletion_fields_are_dropped() -> None:
    obj = {"metadata": {"name": "a", "deletionTimestamp": "2025-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30}}
    assert clean(obj, "configmaps") == {"metadata": {"name": "a"}}


def test_service_loses_its_allocated_cluster_ips_and_health_check_port_but_keeps_node_ports() -> None:
    spec = clean(SERVICE, "services")["spec"]
    assert "clusterIP" not in spec
    assert "clusterIPs" not in spec
    assert "healthCheckNodePort" not in spec
    assert spec["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}]
    assert spec["externalTrafficPolicy"] == "Local"


def test_service_node_ports_are_dropped_when_asked() -> None:
    spec = clean(SERVICE, "services", keep_node_ports=False)["spec"]
    assert spec["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]


def test_headless_service_keeps_cluster_ip_none() -> None:
    spec = clean(HEADLESS_SERVICE, "services")["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["clusterIPs"] == ["None"]


def test_service_rules_apply_only_to_core_services() -> None:
    # A custom resource that happens to be called "services" in another group.
    obj = {"metadata": {"name": "a"}, "spec": {"clusterIP": "10.0.0.1"}}
    assert clean(obj, "services", "example.com")["spec"] == {"clusterIP": "10.0.0.1"}


def test_pod_is_unpinned_from_its_node_and_its_admission_derived_priority() -> None:
    spec = clean(POD, "pods")["spec"]
    for field in ("nodeName", "priority", "preemptionPolicy"):
        assert field not in spec
    assert spec["priorityClassName"] == ""


def test_pod_loses_its_legacy_token_volume_and_every_mount_of_it() -> None:
    spec = clean(POD, "pods")["spec"]
    assert spec["volumes"] == [{"name": "config", "secret": {"secretName": "builder-token-tls"}}]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "config", "mountPath": "/etc/app"}]
    assert "volumeMounts" not in spec["initContainers"][0]


def test_pod_keeps_the_projected_token_volume_of_current_clusters() -> None:
    projected = {
        "name": "kube-api-access-5x8zq",
        "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]},
    }
    pod = {"metadata": {"name": "p"}, "spec": {"volumes": [projected], "containers": [{"name": "c"}]}}
    assert clean(pod, "pods")["spec"]["volumes"] == [projected]


def test_pv_keeps_its_claim_ref_by_name_without_the_old_claim_uid() -> None:
    out = clean(PV, "persistentvolumes")
    assert out["spec"]["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "shop",
        "name": "data",
    }
    assert out["metadata"]["annotations"] == {"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}
    assert out["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]


def test_pvc_loses_its_bind_annotations_and_then_the_empty_map() -> None:
    out = clean(PVC, "persistentvolumeclaims")
    assert "annotations" not in out["metadata"]
    assert out["spec"]["volumeName"] == "pvc-9f2c"


def test_pvc_keeps_annotations_that_are_not_about_binding() -> None:
    pvc = copy.deepcopy(PVC)
    pvc["metadata"]["annotations"]["backup.example.com/tier"] = "gold"
    out = clean(pvc, "persistentvolumeclaims")
    assert out["metadata"]["annotations"] == {"backup.example.com/tier": "gold"}


def test_namespace_loses_the_server_set_spec_finalizers() -> None:
    assert clean(NAMESPACE, "namespaces") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "shop"}},
    }


def test_job_loses_the_selector_and_labels_generated_from_its_old_uid() -> None:
    spec = clean(JOB, "jobs", "batch")["spec"]
    assert "selector" not in spec
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/job-name": "migrate",
        "job-name": "migrate",
    }


def test_job_with_a_manual_selector_keeps_it() -> None:
    job = copy.deepcopy(JOB)
    job["spec"]["manualSelector"] = True
    job["spec"]["selector"] = {"matchLabels": {"app": "migrate"}}
    assert clean(job, "jobs", "batch")["spec"]["selector"] == {"matchLabels": {"app": "migrate"}}


def test_the_result_shares_nothing_with_the_input() -> None:
    out = clean(DEPLOYMENT, "deployments", "apps")
    out["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


@pytest.mark.parametrize("obj", [None, [], "kind: Pod"])
def test_something_that_is_not_an_object_is_refused(obj: Any) -> None:
    with pytest.raises(InvalidInputError):
        clean_object(obj, resource="pods", group="")


# -- properties ----------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# Keys the cleaner knows, so generated objects actually reach its rules.
known_keys = st.sampled_from(
    [
        "metadata",
        "spec",
        "status",
        "name",
        "generateName",
        "uid",
        "annotations",
        "labels",
        "ownerReferences",
        "clusterIP",
        "clusterIPs",
        "ports",
        "nodePort",
        "healthCheckNodePort",
        "nodeName",
        "priority",
        "volumes",
        "containers",
        "volumeMounts",
        "secret",
        "secretName",
        "claimRef",
        "finalizers",
        "selector",
        "manualSelector",
        "template",
        "serviceAccountName",
        LAST_APPLIED,
        "volume.kubernetes.io/selected-node",
        "controller-uid",
    ]
)
objects = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(known_keys | st.text(max_size=4), inner, max_size=5),
    max_leaves=30,
)
realistic = st.sampled_from([DEPLOYMENT, SERVICE, HEADLESS_SERVICE, PV, PVC, POD, NAMESPACE, JOB])
resources = st.sampled_from(
    [
        ("services", ""),
        ("pods", ""),
        ("persistentvolumes", ""),
        ("persistentvolumeclaims", ""),
        ("namespaces", ""),
        ("jobs", "batch"),
        ("deployments", "apps"),
        ("widgets", "example.com"),
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    obj=st.one_of(realistic, st.dictionaries(known_keys, objects, max_size=6)),
    resource=resources,
    include_status=st.booleans(),
    keep_last_applied=st.booleans(),
    keep_node_ports=st.booleans(),
)
def test_cleaning_is_idempotent_and_never_mutates_its_input(
    obj: dict[str, Any],
    resource: tuple[str, str],
    include_status: bool,
    keep_last_applied: bool,
    keep_node_ports: bool,
) -> None:
    before = json.dumps(obj, sort_keys=True)
    options: dict[str, Any] = {
        "resource": resource[0],
        "group": resource[1],
        "include_status": include_status,
        "keep_last_applied": keep_last_applied,
        "keep_node_ports": keep_node_ports,
    }
    once = clean_object(obj, **options)
    assert json.dumps(obj, sort_keys=True) == before
    assert clean_object(once, **options) == once


@settings(max_examples=300, deadline=None)
@given(
    obj=st.one_of(realistic, st.dictionaries(known_keys, objects, max_size=6)),
    resource=resources,
    include_status=st.booleans(),
    keep_last_applied=st.booleans(),
    keep_node_ports=st.booleans(),
)
def test_cleaning_in_place_gives_what_cleaning_a_copy_gives(
    obj: dict[str, Any],
    resource: tuple[str, str],
    include_status: bool,
    keep_last_applied: bool,
    keep_node_ports: bool,
) -> None:
    options: dict[str, Any] = {
        "resource": resource[0],
        "group": resource[1],
        "include_status": include_status,
        "keep_last_applied": keep_last_applied,
        "keep_node_ports": keep_node_ports,
    }
    expected = clean_object(obj, **options)
    mine = copy.deepcopy(obj)
    result = clean_object_in_place(mine, **options)
    assert result is mine
    assert json.dumps(result) == json.dumps(expected)  # the same keys, in the same order


def test_cleaning_in_place_edits_the_object_itself() -> None:
    mine = copy.deepcopy(DEPLOYMENT)
    clean_object_in_place(mine, resource="deployments", group="apps")
    assert "uid" not in mine["metadata"] and "status" not in mine
    assert mine == clean_object(DEPLOYMENT, resource="deployments", group="apps")


@pytest.mark.parametrize("obj", [None, [], "kind: Pod"])
def test_cleaning_in_place_refuses_what_is_not_an_object(obj: Any) -> None:
    with pytest.raises(InvalidInputError):
        clean_object_in_place(obj, resource="pods", group="")
