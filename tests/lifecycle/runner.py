"""Running the lifecycle playbooks against a HostLab from tests: inventories, runs, recaps, load.

What the lifecycle integration tests share: `ansible-playbook` over SSH with the recap parsed,
inventories for other topologies of the same lab, a kubeconfig that goes through the endpoint,
the write load (load.py) as a separate process, and a member killed the hard way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.integration.test_collection_modules import SCRIPTS, ansible_env

from .control_plane import REPO_ROOT, kubeconfig_path
from .hosts import HostLab

RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str
    #: host -> (ok, changed, unreachable, failed)
    recap: dict[str, tuple[int, ...]]

    def changed(self) -> dict[str, int]:
        return {host: r[1] for host, r in self.recap.items() if r[1]}

    def plan(self) -> list[str]:
        """The plan lines the playbook showed (the debug output of 'Show the plan')."""
        match = re.search(r"TASK \[Show the plan\].*?\n(?:ok|changed): \[\S+\] => \n(.*?)\n\n", self.output, re.S)
        if not match:
            return []
        shown = yaml.safe_load(match.group(1))
        return list(shown.get("msg") or [])


def run_playbook(lab: HostLab, name: str, inventory: Path, extra_vars: Path, *, check: bool = False,
                 timeout: float = 900) -> PlaybookRun:
    env = ansible_env()
    env.update(
        ANSIBLE_PIPELINING="True",
        ANSIBLE_FORKS="10",
        # The plan is shown as YAML, so a test can read it back.
        ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(lab.workdir / "ssh-cp"),
    )
    argv = [str(SCRIPTS / "ansible-playbook"), "-i", str(inventory), "-e", f"@{extra_vars}",
            f"kubectl_state.control_plane.{name}"]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False,
                          cwd=lab.workdir)
    output = proc.stdout + proc.stderr
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(output)}
    return PlaybookRun(proc.returncode, output, recap)


def write_inventory(lab: HostLab, path: Path, groups: Mapping[str, Sequence[str]]) -> Path:
    return lab.write_inventory(path, groups={g: list(h) for g, h in groups.items()})


def endpoint_kubeconfig(lab: HostLab, replica: str, endpoint: str, path: Path) -> Path:
    """The kubeconfig replica `replica` wrote, pointed at the endpoint host instead."""
    config = yaml.safe_load(kubeconfig_path(lab, replica).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://{lab.host(endpoint).address}:6443"
    path.write_text(yaml.safe_dump(config))
    os.chmod(path, 0o600)
    return path


def client_urls(lab: HostLab, hosts: Sequence[str]) -> list[str]:
    return [f"http://{lab.host(h).address}:2379" for h in hosts]


class Load:
    """tests/lifecycle/load.py as a separate process: writes through the endpoint and to etcd."""

    def __init__(self, workdir: Path, kubeconfig: Path, etcd_endpoints: Sequence[str], name: str = "load") -> None:
        self.progress = workdir / f"{name}.progress.json"
        self.output = workdir / f"{name}.json"
        self.log = workdir / f"{name}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.lifecycle.load", "--kubeconfig", str(kubeconfig),
                 "--etcd-endpoints", ",".join(etcd_endpoints), "--interval", "0.1",
                 "--progress", str(self.progress), "--output", str(self.output)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )

    def counts(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.progress.read_text()))
        except (OSError, ValueError):
            return {}

    def wait_for_writes(self, count: int = 20, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.counts()
            if seen and all(p["acknowledged"] >= count for p in seen.values()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"the load did not get going: {self.counts()}\n{self.log.read_text()[-2000:]}")

    def stop(self, timeout: float = 180.0) -> dict[str, Any]:
        """Stop it, let it verify every acknowledged write, and return its report."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the load did not finish verifying: {self.log.read_text()[-2000:]}") from None
        assert self.output.exists(), self.log.read_text()[-2000:]
        report: dict[str, Any] = json.loads(self.output.read_text())
        return report

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def etcd_pid(lab: HostLab, host: str) -> int:
    return int((lab.workdir / "hosts" / host / "etcd" / "etcd.pid").read_text().strip())


def kill_etcd(lab: HostLab, host: str) -> None:
    """SIGKILL the member's etcd (a crash: nothing is flushed or handed over) and wait until it is gone."""
    pid = etcd_pid(lab, host)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
