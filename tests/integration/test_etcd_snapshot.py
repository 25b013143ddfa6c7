"""`kubectl state etcd snapshot save|status|restore` against real etcd and real etcdctl/etcdutl."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_state.cli.env import Environment
from kubectl_state.cli.main import main
from kubectl_state.core.errors import ConnectionFailed
from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.etcd.snapshot import save_snapshot
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import EtcdBinaryMissing, EtcdCluster, etcd_binary

pytestmark = pytest.mark.timeout(120)

VALUES = {
    b"/registry/configmaps/default/json": b'{"kind":"ConfigMap","data":{"a":"b"}}',
    b"/registry/secrets/default/proto": b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x00\xff\xfe",
    b"/registry/bin/\x00\x01": bytes(range(256)) * 4,
}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["etcd", *argv], Environment(stdout=out, stderr=err, environ={}))
    return code, out.getvalue(), err.getvalue()


def etcdutl_status(path: Path) -> dict[str, int]:
    result = subprocess.run([etcd_binary("3.5", "etcdutl"), "snapshot", "status", str(path), "-w", "json"],
                            capture_output=True, text=True, check=True)
    data: dict[str, int] = json.loads(result.stdout)
    return data


def fill(client: EtcdClient, extra: int = 50) -> None:
    for key, value in VALUES.items():
        client.put(key, value)
    for i in range(extra):
        client.put(f"/registry/pods/ns/p{i:03d}".encode(), os.urandom(64))


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    """One 3-member etcd 3.5 with data, shared by the tests that only read it."""
    try:
        c = EtcdCluster(3, "3.5")
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    with c:
        with EtcdClient(c.endpoints) as client:
            fill(client)
        yield c


def test_save_matches_etcdctl_snapshot_of_the_same_member(cluster: EtcdCluster, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.db", tmp_path / "etcdctl.db"
    ep = cluster.endpoints[0]
    code, out, err = cli("snapshot", "save", str(ours), "--endpoints", ep, "-o", "json")
    assert code == 0, err
    cluster.etcdctl("snapshot", "save", str(theirs), endpoint=ep)
    mine, reference = etcdutl_status(ours), etcdutl_status(theirs)
    assert (mine["revision"], mine["totalKey"]) == (reference["revision"], reference["totalKey"])
    assert mine["totalKey"] >= len(VALUES) + 50

    meta = json.loads(out)
    on_disk = json.loads(Path(f"{ours}.meta.json").read_text())
    assert on_disk == meta
    assert meta["revision"] == mine["revision"]
    assert meta["endpoint"] == ep and meta["etcdVersion"].startswith("3.5")
    assert meta["fileSize"] == ours.stat().st_size == meta["dbSize"] + 32
    for path in (ours, Path(f"{ours}.meta.json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etcdctl.db", "ours.db", "ours.db.meta.json"]

    code, out, err = cli("snapshot", "status", str(ours), "-o", "json")
    assert code == 0, err
    status = json.loads(out)
    assert status["verifiedBy"] == "trailer+metadata"
    assert (status["revision"], status["totalKeys"]) == (mine["revision"], mine["totalKey"])
    # etcdctl's own file has the trailer too, and no metadata.
    code, out, _ = cli("snapshot", "status", str(theirs))
    assert code == 0 and "ok (checked by trailer)" in out


def test_save_prefers_the_leader_and_passes_over_a_stopped_first_endpoint(
    cluster: EtcdCluster, tmp_path: Path
) -> None:
    with EtcdClient(cluster.endpoints) as c:
        statuses = [c.status(ep) for ep in cluster.endpoints]
    leader = next(s.endpoint for s in statuses if s.leader == s.member_id)
    code, out, err = cli("snapshot", "save", str(tmp_path / "a.db"), "--endpoints", ",".join(cluster.endpoints),
                         "-o", "json")
    assert code == 0, err
    assert json.loads(out)["endpoint"] == leader

    cluster.stop_member("m1")
    try:
        code, out, err = cli("snapshot", "save", str(tmp_path / "b.db"), "--endpoints", ",".join(cluster.endpoints),
                             "-o", "json")
        assert code == 0, err
        assert json.loads(out)["endpoint"] != cluster.endpoints[0]
        assert etcdutl_status(tmp_path / "b.db")["totalKey"] >= len(VALUES)
    finally:
        cluster.start_member("m1")


@pytest.mark.parametrize("damage", ["truncate", "truncate-page", "flip", "swap-meta"])
def test_truncated_or_altered_snapshot_is_refused_by_status_and_restore(
    cluster: EtcdCluster, tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "s.db"
    code, _, err = cli("snapshot", "save", str(path), "--endpoints", cluster.endpoints[1])
    assert code == 0, err
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2 + 7])
    elif damage == "truncate-page":
        # Still a whole number of pages plus 32 bytes, so it looks as if it had a trailer.
        path.write_bytes(data[:-4096])
    elif damage == "flip":
        data[len(data) // 3] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        meta_file = Path(f"{path}.meta.json")
        meta = json.loads(meta_file.read_text())
        meta["sha256"] = "0" * 64
        meta_file.write_text(json.dumps(meta))
    code, out, err = cli("snapshot", "status", str(path))
    assert code == 3, (out, err)
    assert "refusing it" in err
    target = tmp_path / "restored"
    code, out, err = cli("snapshot", "restore", str(path), "--name", "m1", "--data-dir", str(target),
                         "--initial-cluster", "m1=http://127.0.0.1:1", "--initial-advertise-peer-urls",
                         "http://127.0.0.1:1")
    assert code == 3 and "refusing it" in err
    assert not target.exists()


def test_restore_refuses_a_non_empty_data_dir(cluster: EtcdCluster, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    assert cli("snapshot", "save", str(path), "--endpoints", cluster.endpoints[0])[0] == 0
    target = tmp_path / "data"
    target.mkdir()
    (target / "member").mkdir()
    code, _, err = cli("snapshot", "restore", str(path), "--name", "m1", "--data-dir", str(target),
                       "--initial-cluster", "m1=http://127.0.0.1:1", "--initial-advertise-peer-urls",
                       "http://127.0.0.1:1")
    assert code == 6
    assert "not an empty directory" in err
    assert [p.name for p in target.iterdir()] == ["member"]


def test_restore_into_new_three_member_cluster_gives_same_keys_and_serves_writes(
    cluster: EtcdCluster, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    assert cli("snapshot", "save", str(path), "--endpoints", cluster.endpoints[0])[0] == 0
    with EtcdClient(cluster.endpoints) as c:
        source = {kv.key: kv.value for kv in c.iter_prefix(b"")}
        source_cluster_id = c.status().cluster_id

    restored = EtcdCluster(3, "3.5")
    try:
        members = [restored.reserve_member(f"r{i}") for i in (1, 2, 3)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
        tokens = set()
        for m in members:
            code, out, err = cli("snapshot", "restore", str(path), "--name", m.name, "--data-dir", m.data_dir,
                                 "--initial-cluster", initial, "--initial-advertise-peer-urls", m.peer_url,
                                 "-o", "json")
            assert code == 0, err
            result = json.loads(out)
            tokens.add(result["initialClusterToken"])
            # etcdutl 3.5.1 cannot bump revisions: the compaction advice is given instead.
            assert result["compactionNeeded"] is True
            assert f"--revision {result['revision']}" in err
            assert stat.S_IMODE(Path(m.data_dir).stat().st_mode) == 0o700
        assert len(tokens) == 1  # every member derived the same new token
        for m in members:
            restored.start_new_member(m.name, initial_cluster=initial, state="new", wait="none")
        restored.wait_healthy()

        with EtcdClient(restored.endpoints) as c:
            assert {kv.key: kv.value for kv in c.iter_prefix(b"")} == source
            assert c.status().cluster_id != source_cluster_id
            assert len(c.member_list()) == 3
            c.put(b"/after/restore", b"yes")
            assert c.get(b"/after/restore") is not None
        code, out, err = cli("compact", "--endpoints", ",".join(restored.endpoints), "--revision",
                             str(result["revision"]))
        assert code == 0, err
    finally:
        restored.close()


def test_member_dying_mid_stream_leaves_no_file(etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path) -> None:
    single = etcd_cluster_factory(members=1)
    with EtcdClient(single.endpoints) as c:
        for i in range(64):
            c.put(f"/big/{i}".encode(), os.urandom(128 * 1024))
        target = tmp_path / "s.db"

        def kill_on_first_chunk(done: int, total: int) -> None:
            if single.members[0].running:
                single.kill_member("m1")

        with pytest.raises(ConnectionFailed):
            save_snapshot(c, target, on_progress=kill_on_first_chunk)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_save_removes_its_temp_file(etcd_endpoints: list[str], tmp_path: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with EtcdClient(etcd_endpoints) as c, pytest.raises(KeyboardInterrupt):
        save_snapshot(c, tmp_path / "s.db", on_progress=interrupt)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.etcd34
def test_etcd34_snapshot_save_and_status_through_etcdutl_and_etcdctl(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path
) -> None:
    old = etcd_cluster_factory(members=1, version="3.4")
    with EtcdClient(old.endpoints) as c:
        fill(c, extra=5)
    path = tmp_path / "s34.db"
    code, out, err = cli("snapshot", "save", str(path), "--endpoints", old.endpoints[0], "-o", "json")
    assert code == 0, err
    assert json.loads(out)["etcdVersion"].startswith("3.4")
    reference = etcdutl_status(path)
    # The same revision and keys as etcdctl's own snapshot of the same 3.4 member.
    theirs = tmp_path / "etcdctl34.db"
    old.etcdctl("snapshot", "save", str(theirs), endpoint=old.endpoints[0])
    theirs_status = etcdutl_status(theirs)
    assert (reference["revision"], reference["totalKey"]) == (theirs_status["revision"], theirs_status["totalKey"])
    assert reference["totalKey"] >= len(VALUES) + 5
    code, out, err = cli("snapshot", "status", str(path), "-o", "json",
                         "--etcdutl", etcd_binary("3.5", "etcdctl"))
    assert code == 0, err
    via_etcdctl = json.loads(out)
    assert (via_etcdctl["revision"], via_etcdctl["totalKeys"]) == (reference["revision"], reference["totalKey"])


@pytest.mark.etcd34
def test_etcd34_restore_through_etcdctl_starts_a_34_member_with_the_same_keys(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path
) -> None:
    old = etcd_cluster_factory(members=1, version="3.4")
    with EtcdClient(old.endpoints) as c:
        fill(c, extra=5)
        source = {kv.key: kv.value for kv in c.iter_prefix(b"")}
    path = tmp_path / "s34.db"
    assert cli("snapshot", "save", str(path), "--endpoints", old.endpoints[0])[0] == 0

    restored = EtcdCluster(1, "3.4")
    try:
        m = restored.reserve_member("r1")
        code, out, err = cli("snapshot", "restore", str(path), "--name", "r1", "--data-dir", m.data_dir,
                             "--initial-cluster", f"r1={m.peer_url}", "--initial-advertise-peer-urls", m.peer_url,
                             "--etcdutl", etcd_binary("3.5", "etcdctl"), "-o", "json")
        assert code == 0, err
        assert json.loads(out)["compactionNeeded"] is True
        restored.start_new_member("r1", initial_cluster=f"r1={m.peer_url}", state="new", wait="healthy")
        with EtcdClient(restored.endpoints) as c:
            assert {kv.key: kv.value for kv in c.iter_prefix(b"")} == source
            assert c.status().version.startswith("3.4")
    finally:
        restored.close()


def test_save_with_keep_deletes_only_older_snapshots_this_tool_saved(cluster: EtcdCluster, tmp_path: Path) -> None:
    stranger = tmp_path / "not-ours.db"
    stranger.write_bytes(b"someone else's file")
    saved = []
    for index in range(3):
        path = tmp_path / f"etcd-{index}.db"
        code, out, err = cli("snapshot", "save", str(path), "--keep", "2",
                             "--endpoints", ",".join(cluster.endpoints), "-o", "json")
        assert code == 0, err
        saved.append(path)
    assert json.loads(out)["pruned"] == [str(saved[0])]
    assert not saved[0].exists() and not Path(f"{saved[0]}.meta.json").exists()
    assert saved[1].exists() and saved[2].exists()
    assert stranger.read_bytes() == b"someone else's file"
    code, _, err = cli("snapshot", "save", str(tmp_path / "x.db"), "--keep", "0",
                       "--endpoints", ",".join(cluster.endpoints))
    assert code == 2 and "--keep must be at least 1" in err
    assert not (tmp_path / "x.db").exists()
