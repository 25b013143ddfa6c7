"""The demo's "hosts": loopback addresses run by the collection's playbooks over a local connection.

Each host is its own 127.0.0.x address, so etcd (2379/2380), the API servers (6443) and HAProxy
(6443) keep their default ports on every host; Linux answers the whole of 127.0.0.0/8 without
setup, and no step needs root. Every host's files live under the demo's temporary directory
(the roles build every path from kubectl_state_root and the host's name).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.integration.test_collection_modules import SCRIPTS, ansible_env
from tests.lifecycle.control_plane import REPO_ROOT, role_vars_at

ENDPOINT = "endpoint"
#: host name -> loopback address
ADDRESSES = {
    ENDPOINT: "127.0.0.10",
    "old1": "127.0.0.11", "old2": "127.0.0.12", "old3": "127.0.0.13",
    "new1": "127.0.0.21", "new2": "127.0.0.22", "new3": "127.0.0.23",
}
OLD = {"etcd": ["old1", "old2", "old3"], "control_plane": ["old1", "old2"], "api_endpoint": [ENDPOINT]}
NEW = {"etcd": ["new1", "new2", "new3"], "control_plane": ["new1", "new2"], "api_endpoint": [ENDPOINT]}
#: The live migration's inventory: the new hosts are the control plane, the old ones are to go.
MIGRATION = {**NEW, "etcd_remove": OLD["etcd"], "control_plane_remove": OLD["control_plane"]}
PORTS = (2379, 2380, 6443)
#: Seconds a playbook may run before it is killed (a create takes about one minute here).
PLAYBOOK_TIMEOUT = 900
PLAYBOOKS = REPO_ROOT / "ansible_collections/kubectl_state/control_plane/playbooks"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
PLAN = re.compile(r"TASK \[Show the plan\].*?\n(?:ok|changed): \[\S+\] => \n(.*?)\n\n", re.S)


def migration_playbook() -> str:
    """`migrate` once the collection has it; until then `scale`, which takes the same inventory here
    (the endpoint stays where it is, so migrate's endpoint move has nothing to do)."""
    return "migrate" if (PLAYBOOKS / "migrate.yml").is_file() else "scale"


def busy_ports() -> list[str]:
    """Every address:port the demo needs that something already listens on."""
    busy = []
    for address in ADDRESSES.values():
        for port in PORTS:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                if probe.connect_ex((address, port)) == 0:
                    busy.append(f"{address}:{port}")
    return busy


class Hosts:
    """The inventory files, the role variables and the playbook runs of one demo."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root = workdir / "hosts"
        self.extra_vars = workdir / "vars.yml"
        self.extra_vars.write_text(yaml.safe_dump(role_vars_at(list(ADDRESSES.values()), workdir)))
        self.env = ansible_env()
        self.env.update(
            ANSIBLE_FORKS="10",
            ANSIBLE_CALLBACK_RESULT_FORMAT="yaml",
            ANSIBLE_HOME=str(workdir / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
            ANSIBLE_REMOTE_TEMP=str(workdir / "ansible-remote-tmp"),
            # start-stop-daemon, which the roles supervise with, is in sbin: not on a user's PATH.
            PATH=os.pathsep.join([str(SCRIPTS), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]),
        )

    def inventory(self, name: str, groups: Mapping[str, Sequence[str]]) -> Path:
        path = self.workdir / f"{name}.inventory.yml"
        used = sorted({h for hosts in groups.values() for h in hosts}, key=list(ADDRESSES).index)
        path.write_text(yaml.safe_dump({"all": {
            "hosts": {h: {"ansible_host": ADDRESSES[h]} for h in used},
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "children": {g: {"hosts": {h: None for h in hosts}} for g, hosts in groups.items()},
        }}, sort_keys=False))
        return path

    def playbook(self, name: str, groups: Mapping[str, Sequence[str]], label: str) -> dict[str, Any]:
        """Run kubectl_state.control_plane.NAME; print the command, its plan and its recap."""
        inventory = self.inventory(label, groups)
        argv = [str(SCRIPTS / "ansible-playbook"), "-i", str(inventory), "-e", f"@{self.extra_vars}",
                f"kubectl_state.control_plane.{name}"]
        print(f"$ {shlex.join(['ansible-playbook', '-i', inventory.name, '-e', '@vars.yml', argv[-1]])}", flush=True)
        log = self.workdir / f"{label}.ansible.log"
        started = time.monotonic()
        lines = []
        # Each line with the seconds since the start, so the log shows where the time goes.
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env,
                              cwd=self.workdir) as proc, log.open("w") as out:
            assert proc.stdout is not None
            watchdog = threading.Timer(PLAYBOOK_TIMEOUT, proc.kill)
            watchdog.daemon = True
            watchdog.start()
            try:
                for line in proc.stdout:
                    lines.append(line)
                    out.write(f"[{time.monotonic() - started:7.1f}] {line}")
            finally:
                watchdog.cancel()
        seconds = time.monotonic() - started
        output = "".join(lines)
        match = PLAN.search(output)
        if match:
            for line in (yaml.safe_load(match.group(1)) or {}).get("msg") or []:
                print(f"  plan: {line}")
        recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(output)}
        for host, (ok, changed, unreachable, failed) in recap.items():
            print(f"  {host:<9} ok={ok} changed={changed} unreachable={unreachable} failed={failed}")
        print(f"  ({seconds:.1f}s)")
        if proc.returncode != 0:
            print("\n".join(f"  | {line}" for line in output.splitlines()[-60:]))
            raise SystemExit(f"demo step failed with exit status {proc.returncode}: ansible-playbook {argv[-1]}")
        return {"seconds": seconds, "recap": recap}

    def endpoint_kubeconfig(self, replica: str) -> Path:
        """The kubeconfig the replica wrote, pointed at the endpoint (HAProxy) instead."""
        written = self.root / replica / "kube-apiserver" / "admin.kubeconfig"
        config = yaml.safe_load(written.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://{ADDRESSES[ENDPOINT]}:6443"
        path = self.workdir / "endpoint.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def save_logs(self, destination: Path) -> None:
        """Copy the playbooks' logs and every host's process logs to `destination`."""
        destination.mkdir(parents=True, exist_ok=True)
        for log in [*self.workdir.glob("*.log"), *self.root.glob("*/*/*.log")]:
            name = log.name if log.parent == self.workdir else f"{log.parts[-3]}-{log.name}"
            shutil.copyfile(log, destination / name)

    def processes(self) -> dict[int, str]:
        """pid -> command line of every process still running that belongs to this demo's hosts."""
        mark = str(self.workdir)
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                pidfiles = [p for p in self.root.glob("*/*/*.pid") if p.read_text().strip() == entry.name]
            except OSError:
                continue
            if mark in cmdline or pidfiles:
                found[int(entry.name)] = cmdline
        return found

    def kill_leftovers(self) -> list[str]:
        """SIGTERM, then SIGKILL, whatever `processes` still finds; the command lines killed."""
        left = self.processes()
        for pid in left:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in left):
            time.sleep(0.2)
        for pid in left:
            _signal(pid, signal.SIGKILL)
        return list(left.values())


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
