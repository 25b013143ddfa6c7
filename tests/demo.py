"""`make demo`: a local control plane on real processes, then what kubectl-state does with it.

It starts a 3-member etcd 3.5 cluster with two API server replicas on it (the project's
API test server, see tests/apiserver), loads a small workload with the real kubectl, and
runs `kubectl state` through kubectl's plugin mechanism against it. Every step prints the
command it runs, so the output reads as a walkthrough. All processes and files are removed
at the end, whatever happens.

Each step needs only what has landed; steps of features still to come say so and are skipped.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pyrage
import yaml

from tests.apiserver.fixture import KubeCluster, start_cluster
from tests.etcd_cluster import EtcdCluster

WORKLOAD = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"},
     "data": {"currency": "EUR", "log-level": "info"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": "shop"},
     "type": "Opaque", "stringData": {"password": "demo-only-not-a-real-password"}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": "backups.demo.example.com"},
     "spec": {"group": "demo.example.com", "scope": "Namespaced",
              "names": {"plural": "backups", "singular": "backup", "kind": "Backup"},
              "versions": [{"name": "v1", "served": True, "storage": True,
                            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                "spec": {"type": "object", "properties": {"schedule": {"type": "string"}}}}}}}]}},
]
CUSTOM_RESOURCE = {"apiVersion": "demo.example.com/v1", "kind": "Backup",
                   "metadata": {"name": "nightly", "namespace": "shop"}, "spec": {"schedule": "0 3 * * *"}}


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

    def step(self, title: str) -> None:
        print(f"\n==> {title}", flush=True)

    def run(self, *argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        shown = " ".join(shlex.quote(a) for a in argv)
        print(f"$ {shown}", flush=True)
        result = subprocess.run(list(argv), input=stdin, env=self.env, capture_output=True, text=True,
                                timeout=300, check=False)
        for line in (result.stdout + result.stderr).splitlines():
            print(f"  {line}")
        if check and result.returncode != 0:
            raise SystemExit(f"demo step failed with exit status {result.returncode}: {shown}")
        return result

    def k(self, kubeconfig: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(self.kubectl, "--kubeconfig", kubeconfig, *args, stdin=stdin)

    def state(self, kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`kubectl state ...`: kubectl wants a plugin's flags after the plugin's name."""
        return self.run(self.kubectl, "state", *args, "--kubeconfig", kubeconfig, check=check)


def start_control_plane(stack: ExitStack, demo: Demo, name: str, members: int, replicas: int) -> KubeCluster:
    demo.step(f"control plane {name!r}: {members}-member etcd 3.5 and {replicas} API server replica(s)")
    etcd = stack.enter_context(EtcdCluster(members, "3.5").start())
    print(f"  etcd endpoints: {', '.join(etcd.endpoints)}")
    cluster = stack.enter_context(start_cluster(etcd.endpoints, replicas=replicas))
    for server in cluster.servers:
        print(f"  API server: {server.url}")
    return cluster


def main() -> int:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubectl-state-demo-")))
        demo = Demo(workdir)
        source = start_control_plane(stack, demo, "source", members=3, replicas=2)
        kubeconfig = source.kubeconfig

        demo.step("load a workload with kubectl")
        demo.k(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(WORKLOAD))
        demo.k(kubeconfig, "wait", "--for=condition=Established", "crd/backups.demo.example.com", "--timeout=60s")
        demo.k(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(CUSTOM_RESOURCE))
        demo.k(kubeconfig, "get", "deploy,svc,cm,backups", "-n", "shop")

        demo.step("the second replica serves the same state (both read the same etcd)")
        demo.k(source.kubeconfigs[-1], "get", "backups", "-n", "shop")

        demo.step("kubectl state, found by kubectl on PATH")
        demo.state(kubeconfig, "version")

        demo.step("etcd level: a snapshot of the source's etcd, streamed from its leader, checked and described")
        snapshot = workdir / "source-etcd.db"
        demo.run("kubectl", "state", "etcd", "snapshot", "save", str(snapshot),
                 "--endpoints", ",".join(source.etcd_endpoints))
        demo.run("kubectl", "state", "etcd", "snapshot", "status", str(snapshot))
        demo.run("kubectl", "state", "etcd", "member", "list", "--endpoints", ",".join(source.etcd_endpoints))

        demo.step("API level: every resource, cleaned, into an archive; secret values encrypted with age")
        identity = pyrage.x25519.Identity.generate()
        identity_file = workdir / "age-identity.txt"
        identity_file.write_text(f"{identity}\n")
        identity_file.chmod(0o600)
        archive = workdir / "source-backup.tar.gz"
        demo.state(kubeconfig, "export", str(archive), "--secrets=encrypt", "--recipient", str(identity.to_public()))
        demo.run("kubectl", "state", "verify", str(archive))
        demo.run("kubectl", "state", "inspect", str(archive))

        target = start_control_plane(stack, demo, "target", members=1, replicas=1)
        demo.step("restore into the empty target: the plan first, then a server-side dry run, then for real")
        restore = ["import", str(archive), "--identity", str(identity_file)]
        demo.state(target.kubeconfig, *restore, "--dry-run=client")
        demo.state(target.kubeconfig, *restore, "--dry-run=server")
        demo.state(target.kubeconfig, *restore)
        demo.state(target.kubeconfig, "diff", str(archive), "--identity", str(identity_file))
        demo.k(target.kubeconfig, "get", "deploy,svc,cm,secret,backups", "-n", "shop")

        demo.step("copy a namespace between live clusters as a stream, renaming it on the way")
        # A shell pipeline on purpose: this is how a person would type it.
        copy = subprocess.run(  # noqa: S602
            f"{demo.kubectl} state export - -n shop --kubeconfig {shlex.quote(kubeconfig)} | "
            f"{demo.kubectl} state import - --namespace-mapping shop:shop-copy "
            f"--kubeconfig {shlex.quote(target.kubeconfig)}",
            shell=True, env=demo.env, capture_output=True, text=True, timeout=300, check=False)
        for line in (copy.stdout + copy.stderr).splitlines():
            print(f"  {line}")
        if copy.returncode != 0:
            raise SystemExit(f"demo step failed with exit status {copy.returncode}: export | import")
        demo.k(target.kubeconfig, "get", "deploy,cm,backups", "-n", "shop-copy")

        demo.step("migration: move the namespace into the target (paused, copied, deleted from the source)")
        demo.run(demo.kubectl, "state", "migrate", "--from-kubeconfig", kubeconfig,
                 "--to-kubeconfig", target.kubeconfig, "-n", "shop",
                 "--namespace-mapping", "shop:shop-migrated", "--move")
        demo.k(target.kubeconfig, "get", "deploy,cm,secret,backups", "-n", "shop-migrated")
        demo.k(kubeconfig, "get", "namespaces")  # shop is gone from the source

        demo.step("what comes next")
        print("  the lifecycle playbooks beyond create/delete (scale, repair, upgrade, live host migration)")
        print("  arrive with their issues; this demo grows with them.")
    print("\nall demo processes stopped and files removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
