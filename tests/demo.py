"""`make demo`: a control plane made and moved live by the collection's playbooks, on loopback "hosts".

Seven "hosts", each its own 127.0.0.x address with the default ports, reached with Ansible's local
connection (no root, no SSH): HAProxy, the fixed API endpoint, on 127.0.0.10; the old control
plane on 127.0.0.11-13 (etcd 3.5 members, API servers on .11 and .12; the API server is the
project's etcd-backed test server, tests/apiserver); the new one on 127.0.0.21-23. The demo

  1. creates the old control plane (playbook kubectl_state.control_plane.create),
  2. loads a workload with the real kubectl through the endpoint,
  3. backs it up: an etcd snapshot and an API-level archive (`kubectl state`),
  4. starts a write load (tests/lifecycle/load.py) through the endpoint and straight into etcd,
  5. moves the control plane live to the new hosts (playbook migrate, or scale before it exists),
  6. stops the load and verifies every object of the workload against the archive,
  7. shows more of `kubectl state` (restore, stream copy, migrate --move) on a second cluster,
  8. prints a report: objects per kind, the time of each phase, the longest write gap, lost writes.

Every step prints the command it runs. Whatever happens, the delete playbook runs at the end,
anything of the demo still running is killed, and the temporary directory is removed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pyrage
import yaml

from tests.apiserver.fixture import start_cluster
from tests.demo_hosts import ADDRESSES, MIGRATION, NEW, OLD, Hosts, busy_ports, migration_playbook
from tests.demo_workload import COUNTED, COUNTED_IN_SHOP, CUSTOM_RESOURCES, WORKLOAD
from tests.etcd_cluster import EtcdCluster
from tests.lifecycle.runner import Load


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        scripts = sysconfig.get_path("scripts")
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise SystemExit("make demo needs kubectl on PATH")
        self.kubectl = kubectl
        # The venv's scripts folder first, so kubectl finds the `kubectl-state` plugin there.
        self.env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
        self.phases: dict[str, float] = {}

    def step(self, title: str) -> None:
        print(f"\n==> {title}", flush=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = time.monotonic() - started

    def run(self, *argv: str, stdin: str | None = None, check: bool = True, quiet: bool = False,
            shown: str | None = None) -> subprocess.CompletedProcess[str]:
        # Files of the work dir by their names: the commands read as they would be typed there.
        shown = (shown or shlex.join(argv)).replace(f"{self.workdir}/", "")
        print(f"$ {shown}", flush=True)
        result = subprocess.run(list(argv), input=stdin, env=self.env, capture_output=True, text=True,
                                timeout=300, check=False, cwd=self.workdir)
        if not quiet or result.returncode != 0:
            for line in (result.stdout + result.stderr).splitlines():
                print(f"  {line}")
        if check and result.returncode != 0:
            raise SystemExit(f"demo step failed with exit status {result.returncode}: {shown}")
        return result

    def k(self, kubeconfig: Path, *args: str, stdin: str | None = None,
          quiet: bool = False) -> subprocess.CompletedProcess[str]:
        return self.run(self.kubectl, "--kubeconfig", str(kubeconfig), *args, stdin=stdin, quiet=quiet,
                        shown=shlex.join(["kubectl", "--kubeconfig", kubeconfig.name, *args]))

    def state(self, kubeconfig: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`kubectl state ...`: kubectl wants a plugin's flags after the plugin's name."""
        return self.run(self.kubectl, "state", *args, "--kubeconfig", str(kubeconfig), check=check,
                        shown=shlex.join(["kubectl", "state", *args, "--kubeconfig", kubeconfig.name]))

    def count(self, kubeconfig: Path) -> Counter[str]:
        """Objects of the workload's kinds, by kind (kubectl's resource names)."""
        names = self.k(kubeconfig, "get", *COUNTED, "-o", "name", quiet=True).stdout.split()
        names += self.k(kubeconfig, "get", COUNTED_IN_SHOP, "-n", "shop", "-o", "name", quiet=True).stdout.split()
        return Counter(name.split("/", 1)[0] for name in names)


def etcd_urls(hosts: Sequence[str]) -> str:
    return ",".join(f"http://{ADDRESSES[h]}:2379" for h in hosts)


def load_workload(demo: Demo, kubeconfig: Path) -> None:
    demo.k(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(WORKLOAD))
    demo.k(kubeconfig, "wait", "--for=condition=Established", "crd/backups.demo.example.com", "--timeout=60s")
    demo.k(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(CUSTOM_RESOURCES))
    demo.k(kubeconfig, "get", "deploy,svc,secret,backups", "-n", "shop")


def backup(demo: Demo, kubeconfig: Path, identity_file: Path, recipient: str) -> Path:
    snapshot = demo.workdir / "etcd-snapshot.db"
    demo.run("kubectl", "state", "etcd", "snapshot", "save", str(snapshot), "--endpoints", etcd_urls(OLD["etcd"]),
             shown=f"kubectl state etcd snapshot save {snapshot.name} --endpoints {etcd_urls(OLD['etcd'])}")
    demo.run("kubectl", "state", "etcd", "snapshot", "status", str(snapshot),
             shown=f"kubectl state etcd snapshot status {snapshot.name}")
    archive = demo.workdir / "backup.tar.gz"
    demo.state(kubeconfig, "export", str(archive), "--secrets=encrypt", "--recipient", recipient)
    demo.run("kubectl", "state", "verify", str(archive), shown=f"kubectl state verify {archive.name}")
    shown = demo.run("kubectl", "state", "inspect", str(archive), shown=f"kubectl state inspect {archive.name}",
                     quiet=True)
    # Only the resources the archive holds: the listing has a row for every resource the server serves.
    print("\n".join(f"  {line}" for line in shown.stdout.splitlines() if not re.search(r"\s0$", line)))
    return archive


def more_of_the_cli(demo: Demo, stack: ExitStack, kubeconfig: Path, archive: Path, identity_file: Path) -> None:
    """Restore, a stream copy and `kubectl state migrate` into a second, empty cluster."""
    demo.step("a second, empty cluster (1 etcd member, 1 API server on 127.0.0.1, started from Python)")
    etcd = stack.enter_context(EtcdCluster(1, "3.5").start())
    target = stack.enter_context(start_cluster(etcd.endpoints, replicas=1))
    target_kubeconfig = demo.workdir / "target.kubeconfig"
    shutil.copyfile(target.kubeconfig, target_kubeconfig)
    print(f"  API server: {target.servers[0].url}")

    demo.step("restore the backup into it: the plan first, then a server-side dry run, then for real")
    restore = ["import", str(archive), "--identity", str(identity_file)]
    demo.state(target_kubeconfig, *restore, "--dry-run=client")
    demo.state(target_kubeconfig, *restore, "--dry-run=server")
    demo.state(target_kubeconfig, *restore)
    demo.state(target_kubeconfig, "diff", str(archive), "--identity", str(identity_file), "-n", "shop")
    print("  no differences (exit status 0)")

    demo.step("copy a namespace between live clusters as a stream, renaming it on the way")
    pipeline = (f"kubectl state export - -n shop --kubeconfig {kubeconfig.name} | "
                f"kubectl state import - --namespace-mapping shop:shop-copy --kubeconfig {target_kubeconfig.name}")
    # A shell pipeline on purpose: this is how a person would type it (run in the work dir).
    demo.run("bash", "-o", "pipefail", "-c", pipeline, shown=pipeline)
    demo.k(target_kubeconfig, "get", "deploy,cm,backups", "-n", "shop-copy")

    demo.step("kubectl state migrate: move the namespace into the second cluster (paused, copied, deleted here)")
    demo.run(demo.kubectl, "state", "migrate", "--from-kubeconfig", str(kubeconfig),
             "--to-kubeconfig", str(target_kubeconfig), "-n", "shop", "--namespace-mapping", "shop:shop-migrated",
             "--move", shown=f"kubectl state migrate --from-kubeconfig {kubeconfig.name} --to-kubeconfig "
                             f"{target_kubeconfig.name} -n shop --namespace-mapping shop:shop-migrated --move")
    demo.k(target_kubeconfig, "get", "deploy,secret,backups", "-n", "shop-migrated")
    demo.k(kubeconfig, "get", "namespaces")  # shop is gone from the migrated control plane


def print_report(demo: Demo, before: Counter[str], after: Counter[str], load: Mapping[str, Mapping[str, Any]],
                 playbook: str) -> None:
    print("\n==> report")
    width = max(len(name) for name in [*before, *after, *demo.phases])
    print(f"  {'objects of the workload':<{width + 2}} before  after   (live migration: playbook {playbook})")
    for kind in sorted(before | after):
        print(f"    {kind:<{width}} {before[kind]:>6} {after[kind]:>6}")
    print(f"    {'total':<{width}} {sum(before.values()):>6} {sum(after.values()):>6}")
    print("  time per phase")
    for name, seconds in demo.phases.items():
        print(f"    {name:<{width}} {seconds:>7.1f}s")
    print("  writes during the migration")
    for path, seen in sorted(load.items()):
        print(f"    {path:<4} path: {seen['acknowledged']} acknowledged, {seen['lost']} lost, "
              f"{seen['failed_after_retries']} failed after retries, "
              f"longest write gap {seen['longest_gap_seconds']}s")
    longest = max(float(seen["longest_gap_seconds"]) for seen in load.values())
    lost = sum(int(seen["lost"]) for seen in load.values())
    survived = "yes" if before == after and sum(before.values()) > 0 else "NO"
    print(f"  longest write gap: {longest}s; lost writes: {lost}; every object survived: {survived}")


def run(stack: ExitStack, demo: Demo, hosts: Hosts, state: dict[str, Any]) -> int:
    playbook = migration_playbook()
    demo.step("the \"hosts\": one loopback address each, Ansible's local connection, files under " + str(demo.workdir))
    for name, address in ADDRESSES.items():
        roles = sorted({g for groups in (OLD, NEW) for g, members in groups.items() if name in members})
        print(f"  {name:<9} {address:<11} {', '.join(roles)}")

    demo.step("create the control plane on the old hosts: HAProxy, 3 etcd 3.5 members, 2 API servers")
    with demo.phase("create"):
        hosts.playbook("create", OLD, "create")
    kubeconfig = hosts.endpoint_kubeconfig("old1")
    print(f"  endpoint kubeconfig: {kubeconfig.name} (server https://{ADDRESSES['endpoint']}:6443)")
    demo.state(kubeconfig, "version")

    demo.step("load a workload through the endpoint with kubectl: a CRD and custom resources, deployments, "
              "services, secrets")
    with demo.phase("load the workload"):
        load_workload(demo, kubeconfig)
    before = demo.count(kubeconfig)

    demo.step("backup: an etcd snapshot (streamed from the leader) and an API-level export, secrets age-encrypted")
    identity = pyrage.x25519.Identity.generate()
    identity_file = demo.workdir / "age-identity.txt"
    identity_file.write_text(f"{identity}\n")
    identity_file.chmod(0o600)
    with demo.phase("backup"):
        archive = backup(demo, kubeconfig, identity_file, str(identity.to_public()))

    demo.step("a write load: ConfigMaps through the endpoint and keys straight into etcd, every 0.1s")
    print(f"$ python -m tests.lifecycle.load --kubeconfig {kubeconfig.name} "
          f"--etcd-endpoints {etcd_urls(OLD['etcd'] + NEW['etcd'])} --interval 0.1 &")
    load = Load(demo.workdir, kubeconfig, etcd_urls(OLD["etcd"] + NEW["etcd"]).split(","))
    stack.callback(load.kill)
    load.wait_for_writes()
    print(f"  writing: {load.counts()}")

    demo.step(f"live migration to the new hosts with kubectl_state.control_plane.{playbook}: new etcd members "
              "join as learners and are promoted, new API servers join the endpoint, old ones leave, old members "
              "are removed one at a time")
    if playbook == "scale":
        print("  (the migrate playbook is not in this checkout yet; scale takes the same inventory and does the "
              "same steps, the endpoint staying on 127.0.0.10)")
    with demo.phase(f"live migration ({playbook})"):
        hosts.playbook(playbook, MIGRATION, "migrate")
    state["groups"] = NEW
    demo.run("kubectl", "state", "etcd", "member", "list", "--endpoints", etcd_urls(NEW["etcd"]),
             shown=f"kubectl state etcd member list --endpoints {etcd_urls(NEW['etcd'])}")
    old = [f"{hosts.root}/{name}/" for name in OLD["etcd"]]
    left = [cmd for cmd in hosts.processes().values() if any(prefix in cmd for prefix in old)]
    print(f"  processes left on the old hosts: {'; '.join(left) or 'none'}")

    demo.step("stop the load; it reads back every acknowledged write")
    print(f"  writes so far: {load.counts()}")
    report = load.stop()
    print("  " + "\n  ".join(yaml.safe_dump(report, sort_keys=True).splitlines()))

    demo.step("verify: every object of the backup is in the migrated control plane, unchanged (diff exits 0)")
    with demo.phase("verify"):
        kubeconfig = hosts.endpoint_kubeconfig("new1")
        demo.state(kubeconfig, "diff", str(archive), "--identity", str(identity_file))
        print("  no differences (exit status 0)")
        after = demo.count(kubeconfig)
        demo.k(kubeconfig, "get", "deploy,svc,secret,backups", "-n", "shop")

    with demo.phase("restore, copy, migrate --move"):
        more_of_the_cli(demo, stack, kubeconfig, archive, identity_file)

    print_report(demo, before, after, report, playbook)
    lost = any(r["lost"] or r["failed_after_retries"] for r in report.values())
    return 1 if lost or before != after else 0


def clean_up(demo: Demo, hosts: Hosts, state: dict[str, Any]) -> None:
    """The delete playbook on the hosts that may run something, then a kill of whatever of the demo still runs."""
    demo.step("clean up: delete the control plane, then check that nothing of the demo runs")
    logs = os.environ.get("KUBECTL_STATE_DEMO_LOGS")
    if logs:
        hosts.save_logs(Path(logs))
    try:
        hosts.playbook("delete", state["groups"], "delete")
    except (SystemExit, subprocess.SubprocessError) as exc:
        print(f"  the delete playbook failed ({exc}); killing what is left")
    if logs:
        hosts.save_logs(Path(logs))
        print(f"  logs copied to {logs}")
    for cmdline in hosts.kill_leftovers():
        print(f"  killed: {cmdline[:160]}")
    print(f"  processes of the demo still running: {len(hosts.processes())}")


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # A SIGTERM (a CI timeout, `kill`) unwinds like an error, so the clean-up still runs.
    raise SystemExit(f"stopped by signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    busy = busy_ports()
    if busy:
        raise SystemExit(f"make demo needs these loopback ports free, but something listens on: {', '.join(busy)}")
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubectl-state-demo-")))
        print(f"demo work dir: {workdir}", flush=True)
        demo = Demo(workdir)
        hosts = Hosts(workdir)
        # What runs where, for the clean-up: every host until the migration has finished.
        state: dict[str, Any] = {"groups": MIGRATION}
        stack.callback(clean_up, demo, hosts, state)
        status = run(stack, demo, hosts, state)
    print(f"\nall demo processes stopped and files removed ({time.monotonic() - started:.0f}s in all)")
    return status


if __name__ == "__main__":
    sys.exit(main())
