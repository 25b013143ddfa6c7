"""pytest fixtures for API-level tests. Register with
`pytest_plugins = ["tests.apiserver.pytest_plugin"]` in tests/conftest.py.

- `kube_cluster` (module scope): a kubeconfig path. With $KUBECTL_STATE_TEST_KUBECONFIG
  set, that cluster, unchanged; otherwise a fresh etcd plus one test server replica,
  shared by the module's tests (each test should use namespaces of its own).
- `local_kube_cluster` (module scope): the `KubeCluster` behind `kube_cluster` (etcd
  endpoints, prefix, replicas) for etcd-level assertions; skips against a real cluster.
- `kube_cluster_factory` (function scope): `factory(replicas=2, plain_http=..., token_auth=...,
  etcd_endpoints=...)` -> KubeCluster, on the `etcd_endpoints` fixture's etcd by default;
  skips against a real cluster. Everything it started is stopped after the test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .fixture import KubeCluster, start_cluster

ENV_KUBECONFIG = "KUBECTL_STATE_TEST_KUBECONFIG"


def external_kubeconfig() -> str | None:
    path = os.environ.get(ENV_KUBECONFIG)
    return path or None


@pytest.fixture(scope="module")
def _module_kube_cluster() -> Iterator[KubeCluster | None]:
    if external_kubeconfig():
        yield None
        return
    cluster = start_cluster(None, replicas=1)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def kube_cluster(_module_kube_cluster: KubeCluster | None) -> str:
    """A kubeconfig path for API-level tests (a real cluster when $KUBECTL_STATE_TEST_KUBECONFIG is set)."""
    external = external_kubeconfig()
    if external:
        return external
    assert _module_kube_cluster is not None
    return _module_kube_cluster.kubeconfig


@pytest.fixture(scope="module")
def local_kube_cluster(_module_kube_cluster: KubeCluster | None) -> KubeCluster:
    if _module_kube_cluster is None:
        pytest.skip(f"needs the test API server's etcd; ${ENV_KUBECONFIG} names a real cluster")
    return _module_kube_cluster


@pytest.fixture
def kube_cluster_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., KubeCluster]]:
    if external_kubeconfig():
        pytest.skip(f"starts its own API server replicas; ${ENV_KUBECONFIG} names a real cluster")
    started: list[KubeCluster] = []

    def factory(replicas: int = 1, *, etcd_endpoints: list[str] | None = None, **options: Any) -> KubeCluster:
        if etcd_endpoints is None:
            etcd_endpoints = request.getfixturevalue("etcd_endpoints")
        cluster = start_cluster(etcd_endpoints, replicas=replicas, **options)
        started.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in started:
            cluster.close()
