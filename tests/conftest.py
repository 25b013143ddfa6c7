"""Shared pytest fixtures.

etcd: `etcd_cluster_factory` starts real clusters (closed at teardown, even on failure);
`etcd_endpoints` is one fresh etcd 3.5 member. Whatever etcd processes the session started
and still run at its end are killed (see tests/etcd_cluster.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.etcd_cluster import EtcdBinaryMissing, EtcdCluster, kill_leftover_processes

# The Kubernetes API test server's fixtures: kube_cluster, local_kube_cluster, kube_cluster_factory.
pytest_plugins = ["tests.apiserver.pytest_plugin"]

EtcdClusterFactory = Callable[..., EtcdCluster]


@pytest.fixture
def etcd_cluster_factory() -> Iterator[EtcdClusterFactory]:
    """`factory(members=1, version="3.5", **options)` -> a started EtcdCluster.

    A version that is not installed skips the test. Options are EtcdCluster's (tls=,
    client_cert_auth=, extra_args=).
    """
    clusters: list[EtcdCluster] = []

    def factory(members: int = 1, version: str = "3.5", **options: object) -> EtcdCluster:
        try:
            cluster = EtcdCluster(members, version, **options)  # type: ignore[arg-type]
        except EtcdBinaryMissing as exc:
            pytest.skip(str(exc))
        clusters.append(cluster)
        return cluster.start()

    try:
        yield factory
    finally:
        errors = []
        for cluster in clusters:
            try:
                cluster.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def etcd_endpoints(etcd_cluster_factory: EtcdClusterFactory) -> list[str]:
    """Client URLs of a fresh single-member etcd 3.5."""
    return etcd_cluster_factory(members=1, version="3.5").endpoints


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    killed = kill_leftover_processes()
    if killed:
        session.config.stash.setdefault(_LEFTOVERS, []).extend(killed)


_LEFTOVERS = pytest.StashKey[list[int]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    killed = terminalreporter.config.stash.get(_LEFTOVERS, [])
    if killed:
        terminalreporter.write_line(f"killed {len(killed)} etcd process(es) left running by tests: {killed}", red=True)
