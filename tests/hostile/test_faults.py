"""Faults in the middle of work: the API server dies during an import, an etcd member dies
during a snapshot, the disk fills during a snapshot. (The API server dying during an export
and a full disk during an export are in tests/integration/test_export_faults.py.)

Each time: a non-zero exit with a one-line `error:` message, no file at the final name that
could pass for a complete one, no temporary leftovers, and for an import a journal from
which `--resume` finishes the job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kubectl_state.core.etcd.client import EtcdClient
from tests.apiserver.fixture import REPO_ROOT, KubeCluster, start_apiserver
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import EtcdCluster
from tests.integration.test_export_faults import NAMESPACE, assert_one_line_error, seed

pytestmark = pytest.mark.slow

#: Each value is 1 MiB (etcd takes requests up to 1.5 MiB); 48 of them make a snapshot that
#: takes long enough to stream that a member can be killed half-way through it.
VALUE_BYTES = 1024 * 1024


def kubectl_state(*argv: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCDCTL_", "KUBECONFIG"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.Popen([sys.executable, "-m", "kubectl_state", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)


def finish(proc: subprocess.Popen[str], timeout: float = 180.0) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command did not exit within {timeout:.0f}s:\n{err}")
    return proc.returncode, out, err


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}:\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"{what} did not happen within {timeout:.0f}s")


def temp_siblings(final: Path) -> list[Path]:
    return sorted(final.parent.glob(f".{final.name}.*"))


def configmaps_in(cluster: KubeCluster, namespace: str) -> int:
    with EtcdClient(cluster.etcd_endpoints) as etcd:
        return etcd.range(f"{cluster.prefix}/configmaps/{namespace}/".encode(), prefix=True, count_only=True).count


# --- the API server dies during an import ---------------------------------------------------


#: How long an import may go on once its server is gone: its retries for the object in hand.
GIVE_UP_WITHIN = 60.0


@pytest.mark.timeout(600)
def test_api_server_killed_mid_import_fails_clearly_and_resume_finishes(
    kube_cluster_factory: Callable[..., KubeCluster], tmp_path: Path
) -> None:
    cluster = kube_cluster_factory()
    seed(cluster, 1500, random_kib=0)
    archive = tmp_path / "backup.tar.gz"
    code, _, err = finish(kubectl_state("export", str(archive), "-n", NAMESPACE, "-q",
                                        "--kubeconfig", cluster.kubeconfig))
    assert code == 0, err
    journal = tmp_path / "import.journal"
    restore = ("import", str(archive), "-n", NAMESPACE, "--namespace-mapping", f"{NAMESPACE}:restored",
               "--concurrency", "1", "--journal", str(journal), "--report", str(tmp_path / "report.json"), "-q")

    proc = kubectl_state(*restore, "--kubeconfig", cluster.kubeconfig)
    # Under way: the journal holds a few hundred finished objects.
    wait_for(proc, lambda: journal.exists() and journal.stat().st_size > 20_000, "the import got under way")
    cluster.servers[0].process.kill()
    code, _, err = finish(proc, timeout=GIVE_UP_WITHIN)

    assert code not in (0, 130), err
    line = assert_one_line_error(err)
    assert urlsplit(cluster.servers[0].url).netloc in line, line
    # The server makes kube-root-ca.crt in each namespace, so compare with the source's count.
    everything = configmaps_in(cluster, NAMESPACE)
    assert 0 < configmaps_in(cluster, "restored") < everything
    # The report still says what was written before the server went away.
    partial = json.loads((tmp_path / "report.json").read_text())
    assert 0 < partial["summary"]["created"] == len(partial["objects"]) < everything + 1

    # The same server address again (the journal is for that server), new process.
    port = str(urlsplit(cluster.servers[0].url).port)
    cluster.servers.append(start_apiserver(cluster.etcd_endpoints, cluster.workdir, name="apiserver-again",
                                           extra_args=["--secure-port", port]))
    code, _, err = finish(kubectl_state(*restore, "--resume", "--kubeconfig", str(cluster.servers[-1].kubeconfig)),
                          timeout=400)

    assert code == 0, err
    assert configmaps_in(cluster, "restored") == everything


# --- an etcd member dies during a snapshot --------------------------------------------------


def fill(cluster: EtcdCluster, megabytes: int) -> None:
    with EtcdClient(cluster.endpoints) as etcd:
        for index in range(megabytes):
            etcd.put(f"/registry/blobs/{index:04d}".encode(), os.urandom(VALUE_BYTES))


def leader_name(cluster: EtcdCluster) -> str:
    with EtcdClient(cluster.endpoints) as etcd:
        leader = etcd.status().leader
        return next(m.name for m in etcd.member_list() if m.id == leader)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("endpoints", ["all", "leader-only"])
def test_etcd_member_killed_mid_snapshot_leaves_no_partial_file(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path, endpoints: str
) -> None:
    cluster = etcd_cluster_factory(members=3)
    fill(cluster, 48)
    leader = leader_name(cluster)
    chosen = cluster.endpoints if endpoints == "all" else [cluster.member(leader).client_url]
    final = tmp_path / "etcd.db"

    # The leader is streamed from first.
    proc = kubectl_state("etcd", "snapshot", "save", str(final), "--endpoints", ",".join(chosen))
    wait_for(proc, lambda: any(p.stat().st_size > 4 * VALUE_BYTES for p in temp_siblings(final) if p.exists()),
             "the snapshot stream got under way")
    cluster.kill_member(leader)
    code, out, err = finish(proc)

    assert temp_siblings(final) == [], "temporary files were left behind"
    if endpoints == "leader-only":
        assert code != 0, out
        line = assert_one_line_error(err)
        assert cluster.member(leader).client_url in line, line
        assert not final.exists() and not Path(f"{final}.json").exists()
        return
    # With other endpoints to go to, the tool may finish from one of them; then the file is whole.
    if code == 0:
        status = finish(kubectl_state("etcd", "snapshot", "status", str(final), "-o", "json"))
        assert status[0] == 0, status[2]
        assert '"verifiedBy": "trailer+metadata"' in status[1], status[1]
    else:
        assert_one_line_error(err)
        assert not final.exists()


# --- the disk fills during a snapshot -------------------------------------------------------


@pytest.mark.timeout(300)
def test_full_disk_during_etcd_snapshot_save_fails_and_leaves_the_disk_empty(
    etcd_cluster_factory: EtcdClusterFactory, small_disk: Callable[[str], Path]
) -> None:
    cluster = etcd_cluster_factory(members=1)
    fill(cluster, 4)  # a database of over 4 MiB against 1 MiB of space
    disk = small_disk("1m")
    final = disk / "etcd.db"

    code, _, err = finish(kubectl_state("etcd", "snapshot", "save", str(final), "--endpoints", cluster.endpoints[0]))

    assert code != 0
    line = assert_one_line_error(err)
    assert "No space left on device" in line, line
    assert sorted(p.name for p in disk.iterdir()) == []
