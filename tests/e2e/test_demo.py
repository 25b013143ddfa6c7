"""`make demo`'s main flow, run as `make demo` runs it: `python -m tests.demo`.

It creates a control plane on loopback "hosts" with the collection's playbooks, loads a workload,
backs it up, migrates the control plane live under a write load, verifies and cleans up. The test
reads the report the demo prints and then checks the machine: no process of the demo left, no
port of its hosts still open, its temporary directory gone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo_hosts import busy_ports
from tests.lifecycle.control_plane import REPO_ROOT

MISSING = [tool for tool in ("kubectl", "/usr/sbin/haproxy", "/usr/sbin/start-stop-daemon") if not shutil.which(tool)]
# A create, a migration and a delete under ansible-playbook: about six minutes on an idle 2-core
# machine, far more when it is busy with other work.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(bool(MISSING), reason=f"the demo needs {', '.join(MISSING)}"),
]


def demo_processes(workdir: str) -> list[str]:
    """Command lines of running processes that name the demo's work dir (its hosts' processes all do)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if workdir in cmdline:
            found.append(f"{entry.name} {cmdline}")
    return found


def test_demo_migrates_live_loses_nothing_and_leaves_nothing_behind() -> None:
    if busy_ports():
        pytest.fail(f"something else listens on the demo's loopback ports: {busy_ports()}")
    with subprocess.Popen([sys.executable, "-m", "tests.demo"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        try:
            output, _ = proc.communicate(timeout=1800)
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: the demo then deletes its control plane before it exits.
            proc.terminate()
            output, _ = proc.communicate(timeout=300)
            pytest.fail(f"the demo took more than 30 minutes:\n{output[-8000:]}")
    assert proc.returncode == 0, output[-8000:]

    workdir = re.search(r"^demo work dir: (\S+)$", output, re.M)
    assert workdir, output[:2000]
    report = output[output.index("\n==> report"):]
    totals = re.search(r"^\s+total\s+(\d+)\s+(\d+)$", report, re.M)
    assert totals, report
    # The workload: a namespace, a CRD and 2 custom resources, 2 deployments, 2 services,
    # 2 secrets, and 2 ConfigMaps (settings and the namespace's kube-root-ca.crt).
    assert int(totals[1]) == int(totals[2]) == 12, report
    paths = re.findall(r"^\s+(api|etcd)\s+path: (\d+) acknowledged, (\d+) lost, (\d+) failed after retries, "
                       r"longest write gap ([\d.]+)s$", report, re.M)
    assert {p[0] for p in paths} == {"api", "etcd"}, report
    for _, acknowledged, lost, failed, _ in paths:
        assert int(acknowledged) > 0 and int(lost) == 0 and int(failed) == 0, report
    assert re.search(r"longest write gap: [\d.]+s; lost writes: 0; every object survived: yes", report), report
    # The migration took place: the new members hold the cluster, the old ones are gone.
    listing = output[output.index("$ kubectl state etcd member list"):].split("\n==>")[0]
    members = sorted(re.findall(r"^\s+[0-9a-f]+\s+(\S+)\s+started\s+healthy", listing, re.M))
    assert members == ["new1", "new2", "new3"], listing
    assert "processes left on the old hosts: none" in output

    assert "processes of the demo still running: 0" in output
    assert demo_processes(workdir[1]) == []
    assert not Path(workdir[1]).exists()
    assert busy_ports() == []
