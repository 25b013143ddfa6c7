"""kubectl_state.control_plane.backup and .restore, run by real `ansible-playbook` over SSH on real hosts.

The lab of test_lifecycle_create.py (h1-h3 etcd, h1-h2 API servers, h4 HAProxy) plus h4 as the
backup host (the inventory group `backup`). A control plane is created and given objects;
backup runs twice with backup_keep=2 and a cron schedule: every file 0600, a cron entry written,
and its command, run by hand on h4, takes a third backup, retention leaving the newest two.
Then delete wipes everything, restore brings every object of the backup back from one
snapshot, the cluster serves writes, and a second restore changes nothing.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.etcd_cluster import EtcdBinaryMissing
from tests.integration.test_collection_modules import SCRIPTS, ansible_env, playbook, task_result
from tests.integration.test_lifecycle_create import KUBECTL, kubectl, wait_for_no_processes
from tests.lifecycle.control_plane import GROUPS, kubeconfig_path, role_vars
from tests.lifecycle.hosts import IP, HostLab
from tests.lifecycle.lab_fixture import lab_or_skip

# Create, two backups, the scheduled one, delete, two restores, delete: five to nine minutes on 2 busy cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
ALL_HOSTS = {"h1", "h2", "h3", "h4"}


@pytest.fixture(scope="module")
def lab() -> Iterator[HostLab]:
    yield from lab_or_skip(4)


def run_playbook(lab: HostLab, name: str, extra_vars: Path, inventory: Path, *more: str,
                 hosts: set[str] = ALL_HOSTS) -> tuple[str, dict[str, tuple[int, ...]]]:
    """Run kubectl_state.control_plane.NAME; it must pass and report on exactly `hosts`."""
    env = ansible_env()
    env.update(ANSIBLE_PIPELINING="True", ANSIBLE_FORKS="10",
               # Per run: SSH control sockets are keyed by address, which another run may reuse later.
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.workdir / "ssh-cp"))
    proc = subprocess.run(
        [str(SCRIPTS / "ansible-playbook"), "-i", str(inventory), "-e", f"@{extra_vars}", *more,
         f"kubectl_state.control_plane.{name}"],
        capture_output=True, text=True, env=env, timeout=600, check=False, cwd=lab.workdir,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(output)}
    assert set(recap) == hosts, output[-3000:]
    return output, recap


def endpoint_kubeconfig(lab: HostLab, path: Path) -> Path:
    """The kubeconfig the replica on h1 wrote, pointed at HAProxy on h4 (its SANs include h4)."""
    config = yaml.safe_load(kubeconfig_path(lab, "h1").read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://{lab.host('h4').address}:6443"
    path.write_text(yaml.safe_dump(config))
    os.chmod(path, 0o600)
    return path


def backups(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.etcd.db"))


def test_backup_wipe_restore_on_network_namespace_hosts(lab: HostLab, tmp_path: Path) -> None:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl is not installed")
    if not Path("/usr/sbin/cron").exists():
        pytest.skip("cron is not installed (Debian package cron)")
    try:
        variables = role_vars(lab)
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    backup_dir = lab.workdir / "backups"
    cron_file = lab.workdir / "cron.d" / "kubectl-state-backup"
    cron_file.parent.mkdir()
    kubeconfig = lab.workdir / "endpoint.kubeconfig"
    variables.update(
        backup_dir=str(backup_dir),
        backup_kubeconfig=str(kubeconfig),
        backup_keep=2,
        backup_schedule=True,
        backup_schedule_cron="*/15 * * * *",
        backup_cron_file=str(cron_file),
    )
    extra_vars = tmp_path / "vars.yml"
    extra_vars.write_text(yaml.safe_dump(variables))
    inventory = lab.write_inventory(tmp_path / "inventory.yml", groups={**GROUPS, "backup": ["h4"]})

    run_playbook(lab, "create", extra_vars, inventory)
    endpoint_kubeconfig(lab, kubeconfig)
    for i in range(3):
        kubectl(kubeconfig, "create", "configmap", f"before-{i}", f"--from-literal=n={i}")
    kubectl(kubeconfig, "create", "namespace", "shop")
    kubectl(kubeconfig, "-n", "shop", "create", "secret", "generic", "db", "--from-literal=password=s3cret")

    # Two backups (seconds apart: the names carry the second), then a third by the schedule; two are kept.
    for _ in range(2):
        output, recap = run_playbook(lab, "backup", extra_vars, inventory)
        # The plan first, from the core planner: the snapshot from etcd's leader, into the backup host.
        assert re.search(r'"1\. take an etcd snapshot from h[123] \(into h4\)"', output), output[-3000:]
        assert '"2. export the API objects through the API endpoint on h4 (into h4)"' in output
        assert "install the backup schedule on h4 (cron: */15 * * * *)" in output
        assert recap["h4"][2] == 0 and recap["h4"][1] > 0, recap
        # The backup changes the backup host alone.
        assert all(recap[h][1] == 0 for h in ("h1", "h2", "h3")), recap
    names = backups(backup_dir)
    assert len(names) == 2, names
    for name in names:
        stem = name.split(".", 1)[0]
        for suffix in (".etcd.db", ".etcd.db.meta.json", ".state.tar.gz"):
            mode = stat.S_IMODE((backup_dir / f"{stem}{suffix}").stat().st_mode)
            assert mode == 0o600, f"{stem}{suffix} is {mode:o}"

    # The cron entry, and its command run by hand on the backup host: one more backup.
    entry = [line for line in cron_file.read_text().splitlines() if line and not line.startswith("#")
             and "=" not in line.split()[0]]
    assert len(entry) == 1, cron_file.read_text()
    fields = entry[0].split(None, 6)
    assert fields[:5] == ["*/15", "*", "*", "*", "*"] and fields[5] == "root", entry
    before = set(backups(backup_dir))
    proc = subprocess.run([IP, "netns", "exec", lab.host("h4").netns, "/bin/sh", "-c", fields[6]],
                          capture_output=True, text=True, timeout=240, check=False)
    log = (backup_dir / "kubectl-state-backup.log").read_text() if (backup_dir / "kubectl-state-backup.log").exists() \
        else ""
    assert proc.returncode == 0, proc.stderr + log[-4000:]
    after = set(backups(backup_dir))
    assert len(after) == 2 and len(after - before) == 1, (before, after)
    # Retention deleted the first backup with its metadata and its export.
    first = sorted(before)[0].split(".", 1)[0]
    assert sorted(p.name for p in backup_dir.glob(f"{first}*")) == [], first
    assert len(list(backup_dir.glob("*.state.tar.gz"))) == 2
    latest = backup_dir / sorted(after - before)[0]

    # What the backup holds, to compare after the restore.
    kubectl(kubeconfig, "create", "configmap", "after-backup", "--from-literal=n=late")
    expected = object_names(kubeconfig)

    # Disaster: everything goes, data included.
    run_playbook(lab, "delete", extra_vars, inventory)
    assert wait_for_no_processes(lab) == {}
    assert not (lab.workdir / "hosts" / "h1" / "etcd").exists()

    restore_vars = {"restore_snapshot": str(latest)}
    restore_file = tmp_path / "restore.yml"
    restore_file.write_text(yaml.safe_dump(restore_vars))
    output, recap = run_playbook(lab, "restore", extra_vars, inventory, "-e", f"@{restore_file}")
    # The plan first, from the core planner; after the wipe no API server is there to stop.
    assert '"1. copy the snapshot to etcd member h1 (' in output, output[-3000:]
    assert "restore etcd member h3's data dir from the snapshot" in output
    assert "start the restored etcd members together: h1, h2, h3" in output
    assert "remove API server h1 from the API endpoint and stop it" not in output
    assert all(r[3] == 0 and r[2] == 0 for r in recap.values()), recap

    endpoint_kubeconfig(lab, kubeconfig)
    restored = object_names(kubeconfig)
    assert expected - {"configmap/default/after-backup"} <= restored, expected - restored
    assert "configmap/default/after-backup" not in restored  # written after the backup
    assert kubectl(kubeconfig, "-n", "shop", "get", "secret", "db", "-o", "jsonpath={.data.password}") \
        == "czNjcmV0"
    kubectl(kubeconfig, "create", "configmap", "after-restore", "--from-literal=n=new")
    assert kubectl(kubeconfig, "get", "configmap", "after-restore", "-o", "jsonpath={.data.n}") == "new"

    addresses = {h.name: h.address for h in lab.hosts}
    info = task_result(playbook(tmp_path / "etcd-info", [{"kubectl_state.control_plane.etcd_info": {
        "etcd_endpoints": [f"http://{addresses[h]}:2379" for h in GROUPS["etcd"]]}}]))
    assert info["quorum"]["voters"] == 3 and info["quorum"]["has_quorum"] is True, info["quorum"]

    _, recap = run_playbook(lab, "restore", extra_vars, inventory, "-e", f"@{restore_file}")
    assert all(r[1] == 0 for r in recap.values()), f"second restore changed something: {recap}"
    assert kubectl(kubeconfig, "get", "configmap", "after-restore", "-o", "jsonpath={.data.n}") == "new"

    run_playbook(lab, "delete", extra_vars, inventory)
    assert wait_for_no_processes(lab) == {}


def object_names(kubeconfig: Path) -> set[str]:
    """kind/namespace/name of the configmaps, secrets and namespaces the test made (and the defaults)."""
    out = kubectl(kubeconfig, "get", "configmaps,secrets,namespaces", "-A", "-o",
                  "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{'\\n'}{end}")
    return {line.lower() for line in out.splitlines() if line}
