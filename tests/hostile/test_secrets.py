"""No secret ever shows: every command at -v 9 against a cluster holding Secrets, reached with
a bearer token, and an etcd with authentication, then every byte it printed or left behind
is searched for each secret value (plain and base64), the token and the password.

Archives with plaintext Secrets (an export without --secrets=encrypt, an etcd snapshot, a
raw etcd export) hold them by design; only their modes are checked. Everything else the
commands wrote (reports, journals, the encrypted archive, logs) must hold none.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

from tests.apiserver.fixture import REPO_ROOT, TEST_TOKEN, KubeCluster
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import EtcdCluster
from tests.helpers import create
from tests.integration.test_collection_modules import playbook

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NS = "vault"
#: kubectl's -v has no upper bound; 9 is the highest level kubectl documents.
MAX_VERBOSITY = "9"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Needles:
    """Every secret of the test, each with the forms in which it could leak."""

    def __init__(self) -> None:
        self.named: dict[str, str] = {}

    def add(self, name: str, value: str) -> str:
        self.named[name] = value
        self.named[f"{name} (base64)"] = b64(value)
        return value

    def found_in(self, text: str | bytes) -> list[str]:
        data = text.encode(errors="surrogateescape") if isinstance(text, str) else text
        return [name for name, value in self.named.items() if value.encode() in data]


def readable(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def files_under(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


class Runner:
    """Runs `kubectl state` as a child process, keeping what each command printed."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.printed: list[tuple[str, str]] = []
        self.environ = {k: v for k, v in os.environ.items() if not k.startswith(("ETCDCTL_", "KUBECONFIG"))}
        self.environ.update(PYTHONPATH=str(REPO_ROOT), XDG_STATE_HOME=str(work / "state"),
                            HOME=str(work / "home"))

    def __call__(self, *argv: str, ok: Callable[[int], bool] = lambda code: code == 0) -> str:
        result = subprocess.run([sys.executable, "-m", "kubectl_state", *argv, "-v", MAX_VERBOSITY],
                                capture_output=True, text=True, cwd=self.work, env=self.environ,
                                timeout=300, check=False)
        name = " ".join(argv[:2])
        self.printed += [(f"{name}: stdout", result.stdout), (f"{name}: stderr", result.stderr)]
        assert ok(result.returncode), f"{name} exited {result.returncode}:\n{result.stderr[-3000:]}"
        return result.stdout


def assert_private(path: Path) -> None:
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for each in paths:
        mode = stat.S_IMODE(each.lstat().st_mode)
        assert mode == (0o700 if each.is_dir() else 0o600), f"{each} has mode {mode:o}"


def seed_secrets(kubeconfig: str, needles: Needles) -> None:
    opaque = needles.add("opaque password", "opaque-" + secrets.token_hex(12))
    registry = needles.add("registry password", "registry-" + secrets.token_hex(12))
    needles.add("registry auth", f"robot:{registry}")
    dockerconfig = json.dumps({"auths": {"registry.example": {"auth": b64(f"robot:{registry}")}}})
    needles.add("dockerconfigjson", dockerconfig)
    token = needles.add("service-account token", "sa-" + secrets.token_hex(24))
    create(kubeconfig,
           {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": NS}},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": NS}, "type": "Opaque",
            "data": {"password": b64(opaque)}},
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull", "namespace": NS},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(dockerconfig)}},
           {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "builder-token", "namespace": NS,
                         "annotations": {"kubernetes.io/service-account.name": "builder"}},
            "type": "kubernetes.io/service-account-token", "data": {"token": b64(token)}},
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS},
            "data": {"mode": "production"}})


@dataclass
class World:
    cluster: KubeCluster
    #: A second cluster, for migrate to copy into.
    target: KubeCluster
    etcd: EtcdCluster
    needles: Needles
    work: Path


@pytest.fixture
def world(etcd_cluster_factory: EtcdClusterFactory, kube_cluster_factory: Callable[..., KubeCluster],
          tmp_path: Path) -> World:
    etcd = etcd_cluster_factory(members=1)
    cluster = kube_cluster_factory(etcd_endpoints=etcd.endpoints, token_auth=True)
    target = kube_cluster_factory(token_auth=True)
    needles = Needles()
    needles.add("bearer token", TEST_TOKEN)
    assert TEST_TOKEN in Path(cluster.kubeconfig).read_text(), "the kubeconfig should carry the bearer token"
    seed_secrets(cluster.kubeconfig, needles)
    work = tmp_path / "work"
    for sub in ("work", "work/state", "work/home"):
        (tmp_path / sub).mkdir()
    return World(cluster, target, etcd, needles, work)


def test_no_command_prints_or_leaves_a_secret_at_the_highest_verbosity(world: World) -> None:
    cluster, etcd, needles, work = world.cluster, world.etcd, world.needles, world.work
    kubeconfig = cluster.kubeconfig
    run = Runner(work)
    identity = pyrage.x25519.Identity.generate()
    (work / "age.key").write_text(f"{identity}\n")
    os.chmod(work / "age.key", 0o600)
    needles.add("age identity", str(identity))

    # API level. Plaintext archive first (Secrets in it by design), then an encrypted one.
    run("export", "plain", "-n", NS, "--kubeconfig", kubeconfig)
    run("export", "sealed.tar.gz", "-n", NS, "--secrets=encrypt", "--recipient", str(identity.to_public()),
        "--kubeconfig", kubeconfig)
    run("verify", "sealed.tar.gz")
    run("inspect", "sealed.tar.gz")
    run("verify", "plain")
    run("inspect", "plain")
    # Decrypts every Secret to compare it with the live one (equal here: see the next test
    # for a diff that has Secrets to show).
    run("diff", "sealed.tar.gz", "--identity", "age.key", "--kubeconfig", kubeconfig, ok=lambda code: code in (0, 1))
    run("import", "sealed.tar.gz", "--identity", "age.key", "--namespace-mapping", f"{NS}:{NS}-copy",
        "--report", "import-report.json", "--kubeconfig", kubeconfig)
    run("import", "plain", "--namespace-mapping", f"{NS}:{NS}-plain", "--dry-run=server",
        "--kubeconfig", kubeconfig)
    run("migrate", "-n", NS, "--namespace-mapping", f"{NS}:{NS}-moved", "--from-kubeconfig", kubeconfig,
        "--to-kubeconfig", world.target.kubeconfig, "--report", "migrate-report.json", "--keep", "kept.tar.gz")

    # etcd level, with authentication on: the password comes from a file, as documented.
    password = needles.add("etcd password", "etcd-" + secrets.token_hex(12))
    etcd.etcdctl("user", "add", "root", f"--new-user-password={password}")
    etcd.etcdctl("auth", "enable")
    (work / "etcd-password").write_text(password + "\n")
    auth = ("--endpoints", etcd.endpoints[0], "--user", "root", "--password-file", "etcd-password")
    run("etcd", "snapshot", "save", "etcd.db", *auth)
    run("etcd", "snapshot", "status", "etcd.db")
    run("etcd", "export", "keys.tar.gz", *auth)
    run("etcd", "member", "list", *auth)
    run("etcd", "status", *auth)
    # A wrong password: refused, and neither password is echoed back.
    wrong = needles.add("wrong etcd password", password + "-wrong")
    (work / "wrong-password").write_text(wrong + "\n")
    run("etcd", "member", "list", "--endpoints", etcd.endpoints[0], "--user", "root",
        "--password-file", "wrong-password", ok=lambda code: code != 0)

    leaks = [f"{where}: {name}" for where, text in run.printed for name in needles.found_in(text)]
    # Archives and snapshots are private, whatever they hold.
    for archive in ("plain", "sealed.tar.gz", "kept.tar.gz", "etcd.db", "keys.tar.gz"):
        assert_private(work / archive)
    by_design = {work / "plain", work / "etcd.db", work / "keys.tar.gz", work / "kept.tar.gz",
                 work / "etcd-password", work / "wrong-password", work / "age.key"}
    for path in files_under(work):
        if any(path == holder or holder in path.parents for holder in by_design):
            continue
        leaks += [f"{path.relative_to(work)}: {name}" for name in needles.found_in(readable(path))]
    for server in [*cluster.servers, *world.target.servers]:
        leaks += [f"API server log {server.log.name}: {name}" for name in needles.found_in(server.log.read_bytes())
                  if "bearer" in name or "etcd" in name]
    assert (work / "import-report.json").exists() and (work / "migrate-report.json").exists()
    assert any("journal" in path.name for path in files_under(work)), "the import left no journal to check"
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
    # The encrypted archive still holds the Secrets, only not readable.
    assert b"resources/secrets/namespaces/vault/db.yaml" in readable(work / "sealed.tar.gz")


def test_diff_never_shows_secret_values(world: World) -> None:
    run = Runner(world.work)
    run("export", "plain", "-n", NS, "--kubeconfig", world.cluster.kubeconfig)
    # Into another namespace: every Secret is missing there, so diff shows each in full.
    out = run("diff", "plain", "--namespace-mapping", f"{NS}:{NS}-diff", "--kubeconfig", world.cluster.kubeconfig,
              ok=lambda code: code == 1)
    assert "secrets/vault-diff/db" in out  # the Secret is in the diff, by name
    leaks = [f"{where}: {name}" for where, text in run.printed for name in world.needles.found_in(text)]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def test_ansible_modules_never_show_the_token_or_password_at_vvv(world: World, tmp_path: Path) -> None:
    cluster, etcd, needles, work = world.cluster, world.etcd, world.needles, world.work
    password = needles.add("etcd password", "etcd-" + secrets.token_hex(12))
    identity = pyrage.x25519.Identity.generate()
    run = playbook(tmp_path / "play", [
        {"kubectl_state.control_plane.state_export": {
            "path": str(work / "sealed.tar.gz"), "namespaces": [NS], "kubeconfig": cluster.kubeconfig,
            "secrets": "encrypt", "recipients": [str(identity.to_public())]}},
    ], verbosity=3)
    assert run.ok, run.output
    assert_private(work / "sealed.tar.gz")
    leaks = needles.found_in(run.output) + needles.found_in(readable(work / "sealed.tar.gz"))

    etcd.etcdctl("user", "add", "root", f"--new-user-password={password}")
    etcd.etcdctl("auth", "enable")
    ep = {"etcd_endpoints": etcd.endpoints, "username": "root", "password": password}
    run = playbook(tmp_path / "play", [
        {"kubectl_state.control_plane.etcd_snapshot": {**ep, "path": str(work / "etcd.db")}},
        {"kubectl_state.control_plane.etcd_info": ep},
        {"kubectl_state.control_plane.etcd_member": {**ep, "name": "no-such-member", "state": "absent"}},
    ], verbosity=3)
    assert run.ok, run.output
    assert_private(work / "etcd.db")
    leaks += needles.found_in(run.output)
    assert not leaks, f"secrets in the Ansible output: {leaks}"


def test_every_module_option_that_can_hold_a_credential_is_no_log() -> None:
    """Static check of the argument specs: Ansible hides no_log values from every output."""
    from ansible_collections.kubectl_state.control_plane.plugins.module_utils import core

    spec = core.connection_argument_spec()
    assert spec["password"].get("no_log") is True
    found = []
    modules = REPO_ROOT / "ansible_collections/kubectl_state/control_plane/plugins/modules"
    for module in sorted(modules.glob("*.py")):
        for line in module.read_text().splitlines():
            stripped = line.strip()
            name = stripped.split("=", 1)[0]
            # A choice or a flag (state_export's secrets=include|skip|encrypt) carries no credential.
            holds_value = "choices=" not in stripped and 'type="bool"' not in stripped
            credential = any(word in name for word in ("password", "token", "secret", "passphrase"))
            if "=dict(" in stripped and holds_value and credential:
                found.append((module.name, name, "no_log=True" in stripped, "no_log=False" in stripped))
    # etcd's initial cluster token only keeps clusters apart; it grants nothing, so it is shown.
    allowed_visible = {("etcd_snapshot.py", "initial_cluster_token")}
    for module_name, name, hidden, declared_visible in found:
        assert hidden or ((module_name, name) in allowed_visible and declared_visible), (module_name, name)
