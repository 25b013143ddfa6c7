"""etcd_info, etcd_member and etcd_snapshot run by real `ansible-playbook` against real etcd clusters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_state.core.etcd.client import EtcdClient
from tests.conftest import EtcdClusterFactory
from tests.integration.test_collection_modules import playbook, task_result

pytestmark = pytest.mark.timeout(240)


def members(endpoints: list[str]) -> list[tuple[str, str, bool, tuple[str, ...]]]:
    with EtcdClient(endpoints) as c:
        return sorted((f"{m.id:x}", m.name, m.is_learner, tuple(m.peer_urls)) for m in c.member_list())


def revision(endpoints: list[str]) -> int:
    with EtcdClient(endpoints) as c:
        return c.status().revision


def test_etcd_info_reports_members_leader_health_and_quorum(etcd_cluster_factory: EtcdClusterFactory,
                                                            tmp_path: Path) -> None:
    cluster = etcd_cluster_factory(members=3)
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_info": {"etcd_endpoints": cluster.endpoints}}])
    assert run.ok, run.output
    info = task_result(run)
    assert info["changed"] is False
    assert sorted(m["name"] for m in info["members"]) == ["m1", "m2", "m3"]
    assert all(m["healthy"] and m["version"] and m["db_size"] > 0 for m in info["members"])
    assert info["leader"]["name"] in {"m1", "m2", "m3"}
    assert info["quorum"] == {"voters": 3, "healthy_voters": 3, "learners": 0, "quorum": 2, "fault_tolerance": 1,
                              "has_quorum": True}
    assert info["alarms"] == []


def test_etcd_member_add_promote_remove_idempotent_with_check_mode_and_diff(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path
) -> None:
    cluster = etcd_cluster_factory(members=3)
    endpoints = cluster.endpoints
    new = cluster.reserve_member("m4")
    task = {"name": "m4", "peer_urls": [new.peer_url]}
    defaults = {"group/kubectl_state.control_plane.control_plane": {"etcd_endpoints": endpoints}}

    # Check mode: says it would add, shows the new member in the diff, changes nothing.
    before, rev = members(endpoints), revision(endpoints)
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": task}], check=True, diff=True,
                   module_defaults=defaults)
    assert run.ok, run.output
    result = task_result(run)
    assert result["changed"] is True and result["action"] == "added"
    assert "+(unstarted) (new) learner " + new.peer_url in run.output
    assert members(endpoints) == before
    assert revision(endpoints) == rev

    # For real, twice: the second run finds the unstarted learner by its peer URL.
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": task}] * 2, diff=True,
                   module_defaults=defaults)
    assert run.ok, run.output
    first, second = task_result(run, 0), task_result(run, 1)
    assert first["changed"] is True and first["action"] == "added"
    assert first["initial_cluster_state"] == "existing"
    assert f"m4={new.peer_url}" in first["initial_cluster"]
    assert second["changed"] is False and second["action"] == "none"
    # A rerun after a failure between adding and starting still gets the start flags.
    assert second["initial_cluster"] == first["initial_cluster"]
    assert next(m for m in members(endpoints) if m[3] == (new.peer_url,))[2] is True  # a learner

    # Started, it is promoted by the next run with promote=auto; once only.
    cluster.start_new_member("m4", initial_cluster=second["initial_cluster"])
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": task}] * 2, module_defaults=defaults)
    assert run.ok, run.output
    assert task_result(run, 0)["action"] == "promoted"
    assert "initial_cluster" not in task_result(run, 0)  # started: nothing left to template
    assert task_result(run, 1)["changed"] is False
    assert task_result(run, 1)["member"]["is_learner"] is False

    # Removal: check mode first (nothing happens), then twice for real.
    before = members(endpoints)
    gone = {"name": "m4", "state": "absent"}
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": gone}], check=True, diff=True,
                   module_defaults=defaults)
    assert run.ok, run.output
    assert task_result(run)["action"] == "removed"
    assert members(endpoints) == before
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": gone}] * 2, module_defaults=defaults)
    assert run.ok, run.output
    assert task_result(run, 0)["changed"] is True
    assert task_result(run, 1)["changed"] is False
    assert sorted(m[1] for m in members(endpoints)) == ["m1", "m2", "m3"]
    cluster.stop_member("m4")


def test_removing_a_member_with_another_down_fails_with_the_quorum_reason(
    etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path
) -> None:
    cluster = etcd_cluster_factory(members=3)
    before = members(cluster.endpoints)
    cluster.stop_member("m3")
    live = cluster.endpoints[:2]
    for check in (True, False):
        run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": {
            "name": "m1", "state": "absent", "etcd_endpoints": live, "settle_timeout": 2}}], check=check)
        assert not run.ok
        result = task_result(run)
        assert result["failed"] is True
        assert result["msg"].startswith("refusing to remove etcd member m1")
        assert "below their quorum of 2" in result["msg"]
        assert result["error"] == "UnsafeOperationError"
        assert result["exit_status"] == 6
        assert "Traceback" not in run.output
    assert members(live) == before


def test_password_never_appears_in_output_even_at_vvv(etcd_cluster_factory: EtcdClusterFactory,
                                                      tmp_path: Path) -> None:
    cluster = etcd_cluster_factory(members=1)
    secret = "pw-Zq81-never-shown"
    cluster.etcdctl("user", "add", f"root:{secret}")
    cluster.etcdctl("auth", "enable")
    ep = {"etcd_endpoints": cluster.endpoints, "username": "root"}
    # Right password: it travels all the way to etcd and the module answers normally, so every
    # place it could leak (arguments, invocation, results, -vvv logs) is exercised.
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_info": {**ep, "password": secret}}], verbosity=3)
    assert run.ok, run.output
    assert task_result(run)["members"][0]["name"] == "m1"
    assert secret not in run.output
    # Wrong password: etcd refuses, the failure is a plain message without either password.
    wrong = secret + "-wrong"
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_member": {
        **ep, "password": wrong, "name": "m1", "state": "absent"}}], verbosity=3)
    assert not run.ok
    assert "authentication failed" in task_result(run)["msg"]
    assert secret not in run.output and wrong not in run.output


def test_etcd_snapshot_save_keep_and_restore(etcd_cluster_factory: EtcdClusterFactory, tmp_path: Path) -> None:
    cluster = etcd_cluster_factory(members=1)
    with EtcdClient(cluster.endpoints) as c:
        c.put(b"/registry/k", b"v")
    backups = tmp_path / "backups"
    backups.mkdir()
    ep = {"etcd_endpoints": cluster.endpoints}

    def save(name: str, **extra: object) -> dict[str, object]:
        return {"kubectl_state.control_plane.etcd_snapshot": {"path": str(backups / name), **ep, **extra}}

    run = playbook(tmp_path, [save("a.db")], check=True)
    assert run.ok, run.output
    assert task_result(run)["changed"] is True
    assert list(backups.iterdir()) == []

    run = playbook(tmp_path, [save("a.db"), save("a.db"), save("b.db"), save("c.db", keep=2)], diff=True)
    assert run.ok, run.output
    results = [task_result(run, i) for i in range(4)]
    assert [r["changed"] for r in results] == [True, False, True, True]
    assert results[0]["snapshot"]["revision"] >= 2
    assert results[3]["pruned"] == [str(backups / "a.db")]
    assert sorted(p.name for p in backups.iterdir()) == ["b.db", "b.db.meta.json", "c.db", "c.db.meta.json"]
    # keep again, nothing more to prune
    run = playbook(tmp_path, [save("c.db", keep=2)])
    assert run.ok and task_result(run)["changed"] is False, run.output

    data_dir = tmp_path / "restored"
    restore = {"kubectl_state.control_plane.etcd_snapshot": {
        "state": "restored", "path": str(backups / "c.db"), "name": "r1", "data_dir": str(data_dir),
        "initial_cluster": "r1=http://127.0.0.1:2380", "initial_advertise_peer_urls": ["http://127.0.0.1:2380"]}}
    run = playbook(tmp_path, [restore], check=True)
    assert run.ok and task_result(run)["changed"] is True, run.output
    assert not data_dir.exists()
    run = playbook(tmp_path, [restore, restore])
    assert run.ok, run.output
    assert task_result(run, 0)["changed"] is True
    assert task_result(run, 0)["restore"]["name"] == "r1"
    assert task_result(run, 1)["changed"] is False
    assert (data_dir / "member" / "snap" / "db").is_file()

    # Another snapshot into the same, non-empty data dir: refused, unless force (which moves it aside).
    other = json.loads(json.dumps(restore))
    other["kubectl_state.control_plane.etcd_snapshot"]["path"] = str(backups / "b.db")
    run = playbook(tmp_path, [other])
    assert not run.ok
    assert "refusing to restore into" in task_result(run)["msg"]
    other["kubectl_state.control_plane.etcd_snapshot"]["force"] = True
    run = playbook(tmp_path, [other])
    assert run.ok, run.output
    moved = Path(task_result(run)["moved_to"])
    assert (moved / "member" / "snap" / "db").is_file()
    assert (data_dir / "member" / "snap" / "db").is_file()
