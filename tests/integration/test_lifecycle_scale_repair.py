"""kubectl_state.control_plane.scale and .repair under write load, and the refusals, on netns hosts.

One control plane for the whole module (create costs the most): h1-h3 etcd, h1-h2 API servers,
h6 the endpoint. Then, with load.py writing through the endpoint and straight to etcd:
scale 3 -> 5 members (and a third replica) -> 3, each scale run twice (the second changes
nothing); kill a member with SIGKILL and wipe its data; scale and upgrade now refuse, say why and
change nothing; repair replaces the member, twice (the second changes nothing). The load then
verifies that every acknowledged write is there, and its longest write gap is printed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.etcd.members import cluster_state
from tests.etcd_cluster import EtcdBinaryMissing
from tests.lifecycle.control_plane import role_vars
from tests.lifecycle.hosts import HostLab, HostLabUnavailable, check_available
from tests.lifecycle.runner import (
    Load,
    PlaybookRun,
    client_urls,
    endpoint_kubeconfig,
    etcd_pid,
    kill_etcd,
    run_playbook,
    write_inventory,
)

# A create and eleven playbook runs over SSH: about six and a half minutes on a 2-core machine
# (the limit leaves room for a machine busy with other work).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

THREE = {"etcd": ["h1", "h2", "h3"], "control_plane": ["h1", "h2"], "api_endpoint": ["h6"]}
FIVE = {"etcd": ["h1", "h2", "h3", "h4", "h5"], "control_plane": ["h1", "h2", "h3"], "api_endpoint": ["h6"]}
BACK_TO_THREE = {**THREE, "etcd_remove": ["h4", "h5"], "control_plane_remove": ["h3"]}


class ControlPlane:
    def __init__(self, lab: HostLab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.extra_vars = workdir / "vars.yml"
        self.extra_vars.write_text(yaml.safe_dump(role_vars(lab)))

    def inventory(self, name: str, groups: dict[str, list[str]]) -> Path:
        return write_inventory(self.lab, self.workdir / f"{name}.yml", groups)

    def run(self, playbook: str, groups: dict[str, list[str]], *, ok: bool = True) -> PlaybookRun:
        run = run_playbook(self.lab, playbook, self.inventory(playbook, groups), self.extra_vars)
        if ok:
            assert run.returncode == 0, run.output[-6000:]
        return run

    def members(self) -> dict[str, tuple[bool, bool]]:
        """name -> (is_learner, healthy) of every member, asked through every etcd host."""
        with EtcdClient(client_urls(self.lab, ["h1", "h2", "h3", "h4", "h5"]), timeout=5.0) as client:
            return {s.name: (s.is_learner, s.healthy) for s in cluster_state(client)}


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        check_available()
    except HostLabUnavailable as exc:
        pytest.skip(str(exc))
    with HostLab(6) as lab:
        try:
            made = ControlPlane(lab, tmp_path_factory.mktemp("scale"))
        except EtcdBinaryMissing as exc:
            pytest.skip(str(exc))
        created = made.run("create", THREE)
        assert "2. form the etcd cluster with h1" in " ".join(created.plan()), created.output[-3000:]
        yield made


def start_load(cp: ControlPlane, name: str) -> Load:
    kubeconfig = endpoint_kubeconfig(cp.lab, "h1", "h6", cp.workdir / "endpoint.kubeconfig")
    load = Load(cp.workdir, kubeconfig, client_urls(cp.lab, ["h1", "h2", "h3", "h4", "h5"]), name)
    load.wait_for_writes()
    return load


def assert_nothing_lost(report: dict[str, dict[str, object]], what: str) -> None:
    for path, seen in report.items():
        print(f"{what}: {path} path: {seen['acknowledged']} writes acknowledged, longest gap "
              f"{seen['longest_gap_seconds']}s")
    assert set(report) == {"api", "etcd"}
    for path, seen in report.items():
        assert seen["lost"] == 0, (path, seen)
        assert seen["failed_after_retries"] == 0, (path, seen)
        assert int(str(seen["acknowledged"])) > 0, (path, seen)


def test_scale_3_to_5_to_3_under_load_loses_no_acknowledged_write(control_plane: ControlPlane) -> None:
    cp = control_plane
    load = start_load(cp, "scale-load")
    try:
        up = cp.run("scale", FIVE)
        plan = up.plan()
        assert plan[0].startswith("1. add etcd member h4 as a learner"), plan
        assert any("start API server h3" in line for line in plan), plan
        assert cp.members() == {h: (False, True) for h in FIVE["etcd"]}
        again = cp.run("scale", FIVE)
        assert again.changed() == {}, again.output[-4000:]
        assert again.plan() == ["scale: nothing to do"]

        down = cp.run("scale", BACK_TO_THREE)
        plan = down.plan()
        # The replicas that stay follow the smaller etcd group (replaced by surge) before any
        # member goes; the removed replica leaves the endpoint before it stops; etcd members
        # leave one at a time.
        assert [line.split(". ", 1)[1].split(" by surge")[0].split(" (")[0] for line in plan] == [
            "replace API server h1", "replace API server h2",
            "remove API server h3 from the API endpoint", "stop API server h3 and wipe its files",
            "remove etcd member h4 from the cluster", "stop etcd on h4 and wipe its data",
            "remove etcd member h5 from the cluster", "stop etcd on h5 and wipe its data",
        ], plan
        assert cp.members() == {h: (False, True) for h in THREE["etcd"]}
        for host in ("h4", "h5"):
            assert not (cp.lab.workdir / "hosts" / host / "etcd").exists()
        assert not (cp.lab.workdir / "hosts" / "h3" / "kube-apiserver").exists()
        haproxy_cfg = (cp.lab.workdir / "hosts/h6/api-endpoint/haproxy.cfg").read_text()
        assert "server h3 " not in haproxy_cfg and "server h1 " in haproxy_cfg, haproxy_cfg
        again = cp.run("scale", BACK_TO_THREE)
        assert again.changed() == {}, again.output[-4000:]
    finally:
        report = load.stop()
    assert_nothing_lost(report, "scale 3 -> 5 -> 3")


def test_refusals_with_a_member_down_then_repair_under_load(control_plane: ControlPlane) -> None:
    cp = control_plane
    load = start_load(cp, "repair-load")
    try:
        kill_etcd(cp.lab, "h3")
        shutil.rmtree(cp.lab.workdir / "hosts/h3/etcd/data")
        assert cp.members()["h3"] == (False, False)

        # Removing h2 now would leave h1 alone healthy of two voters.
        refused = cp.run("scale", {**THREE, "etcd": ["h1", "h3"], "etcd_remove": ["h2"]}, ok=False)
        assert refused.returncode != 0
        assert "refusing to remove etcd member h2" in refused.output, refused.output[-3000:]
        assert "below their quorum of 2" in refused.output
        assert refused.changed() == {}, refused.recap
        refused = cp.run("upgrade", THREE, ok=False)
        assert refused.returncode != 0
        assert "refusing to upgrade the control plane: etcd member(s) h3" in refused.output, refused.output[-3000:]
        assert "are not healthy" in refused.output
        assert refused.changed() == {}, refused.recap
        assert set(cp.members()) == {"h1", "h2", "h3"}

        killed = etcd_pid(cp.lab, "h3")
        repair = cp.run("repair", THREE)
        assert [line.split(" (")[0] for line in repair.plan()] == [
            "1. remove etcd member h3 from the cluster", "2. stop etcd on h3 and wipe its data",
            "3. add etcd member h3 as a learner", "4. start etcd member h3",
            "5. promote etcd member h3 once it has caught up",
        ], repair.plan()
        assert set(repair.changed()) == {"h3"}, repair.recap
        assert cp.members() == {h: (False, True) for h in THREE["etcd"]}
        assert etcd_pid(cp.lab, "h3") != killed
        again = cp.run("repair", THREE)
        assert again.changed() == {}, again.output[-4000:]
        assert again.plan() == ["repair: nothing to do"]
    finally:
        report = load.stop()
    assert_nothing_lost(report, "kill h3, repair")
