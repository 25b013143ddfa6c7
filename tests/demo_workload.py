"""The demo's sample workload: a namespace, a CRD and custom resources, deployments, services, secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _deployment(name: str, image: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image}]}}}}


def _service(name: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": port}]}}


def _secret(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "shop"},
            "type": "Opaque", "stringData": dict(data)}


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "backups.demo.example.com"},
       "spec": {"group": "demo.example.com", "scope": "Namespaced",
                "names": {"plural": "backups", "singular": "backup", "kind": "Backup"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                  "spec": {"type": "object", "properties": {
                                      "schedule": {"type": "string"}}}}}}}]}}
WORKLOAD = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
     "data": {"currency": "EUR", "log-level": "info"}},
    _secret("db-credentials", {"password": "demo-only-not-a-real-password"}),
    _secret("api-token", {"token": "demo-only-not-a-real-token"}),
    _deployment("web", "nginx:1.27", 2),
    _deployment("cart", "registry.example.com/cart:1.4", 3),
    _service("web", 80),
    _service("cart", 8080),
    CRD,
]
CUSTOM_RESOURCES = [
    {"apiVersion": "demo.example.com/v1", "kind": "Backup", "metadata": {"name": name, "namespace": "shop"},
     "spec": {"schedule": schedule}}
    for name, schedule in (("nightly", "0 3 * * *"), ("hourly", "0 * * * *"))
]
#: What is counted before and after the migration (the kinds the workload holds).
COUNTED = ("namespace/shop", "crd/backups.demo.example.com")
COUNTED_IN_SHOP = "deployments,services,configmaps,secrets,backups"
