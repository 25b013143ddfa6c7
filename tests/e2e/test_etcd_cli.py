"""`python -m kubectl_state etcd …` as a separate process: exit codes, streams, file modes, env credentials."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kubectl_state.core.etcd.client import EtcdClient
from tests.conftest import EtcdClusterFactory

pytestmark = pytest.mark.timeout(60)


def run(*argv: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env.update(environ or {})
    return subprocess.run([sys.executable, "-m", "kubectl_state", "etcd", *argv], capture_output=True, text=True,
                          env=env, timeout=50, check=False)


def test_snapshot_save_status_and_export_through_a_subprocess(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path
) -> None:
    secret = "e2e-Secret-pw"
    cluster = etcd_cluster_factory(members=1)
    with EtcdClient(cluster.endpoints) as c:
        c.put(b"/registry/a", b"k8s\x00proto")
    cluster.etcdctl("user", "add", "root", f"--new-user-password={secret}")
    cluster.etcdctl("auth", "enable")
    auth = {"ETCDCTL_ENDPOINTS": cluster.endpoints[0], "ETCDCTL_USER": "root", "ETCDCTL_PASSWORD": secret}

    snap = tmp_path / "snap.db"
    result = run("snapshot", "save", str(snap), "-v", "9", environ=auth)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Snapshot saved at {snap}")
    assert stat.S_IMODE(snap.stat().st_mode) == 0o600
    assert "snapshot streamed over grpc" in result.stderr  # the token went as gRPC metadata
    assert secret not in result.stderr

    result = run("snapshot", "status", str(snap), "-o", "yaml")
    assert result.returncode == 0, result.stderr
    assert "verifiedBy: trailer+metadata" in result.stdout

    export = tmp_path / "keys.tar.gz"
    result = run("export", str(export), "-o", "json", environ=auth)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["manifest"]["count"] == 1
    assert stat.S_IMODE(export.stat().st_mode) == 0o600

    # Nothing convertible, but the protobuf value is named, not dropped in silence.
    result = run("export", "--to-archive", str(tmp_path / "api"), environ=auth)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Converted 0 objects of 0 resources from 1 keys under /registry")
    assert "Warning: 1 keys not converted (not-convertible:protobuf): /registry/a" in result.stderr
    manifest = json.loads((tmp_path / "api" / "manifest.json").read_text())
    assert manifest["skipped"] == {"not-convertible:protobuf": {"a": 1}}

    result = run("member", "list", environ={**auth, "ETCDCTL_PASSWORD": "wrong"})
    assert result.returncode == 5
    assert result.stderr.startswith("error: etcdserver: authentication failed")

    # A stopped member: unreachable is its own exit status.
    cluster.stop_member("m1")
    result = run("snapshot", "save", str(tmp_path / "late.db"), "--command-timeout", "2", environ=auth)
    assert result.returncode == 4
    assert not (tmp_path / "late.db").exists()
    for text in (result.stdout, result.stderr):
        assert secret not in text
