"""The collection's modules as Ansible sees them: documented (ansible-doc), grouped for
module_defaults, and run by real `ansible-playbook` on localhost.

`playbook()` is the harness the module tests share: it runs the tasks with a local
connection and the venv's Python as the interpreter, the collection found through
ANSIBLE_COLLECTIONS_PATH at the repository root, each task's result registered and written
to a JSON file (so tests assert on results, not on console text).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "ansible_collections/kubectl_state/control_plane"
SCRIPTS = Path(sysconfig.get_path("scripts"))
MODULES = sorted(p.stem for p in (COLLECTION / "plugins/modules").glob("*.py") if p.stem != "__init__")


def ansible_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ETCDCTL_", "K8S_AUTH_"))}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(ROOT),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_HOME=str(Path(os.environ.get("TMPDIR", "/tmp")) / "kubectl-state-ansible-home"),
    )
    return env


@dataclass
class Run:
    returncode: int
    output: str
    results: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and len(self.results) > 0 and not any(r.get("failed") for r in self.results)


def playbook(
    workdir: Path,
    tasks: Sequence[Mapping[str, Any]],
    *,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    module_defaults: Mapping[str, Any] | None = None,
    timeout: float = 200,
) -> Run:
    """Run `tasks` on localhost; every task's result is registered, failures do not stop the play."""
    workdir.mkdir(parents=True, exist_ok=True)
    results_file = workdir / "results.json"
    results_file.unlink(missing_ok=True)
    body = []
    for i, task in enumerate(tasks):
        body.append({"name": f"task {i}", **task, "register": f"r{i}", "ignore_errors": True})
    collected = "{{ [" + ", ".join(f"r{i}" for i in range(len(tasks))) + "] | to_json }}"
    # Written even in check mode and without a diff of its own: it is the harness, not the test.
    body.append({"name": "results", "ansible.builtin.copy": {"content": collected, "dest": str(results_file)},
                 "check_mode": False, "diff": False, "no_log": True})
    play: dict[str, Any] = {"hosts": "localhost", "gather_facts": False, "tasks": body}
    if module_defaults:
        play["module_defaults"] = dict(module_defaults)
    book = workdir / "playbook.yml"
    book.write_text(yaml.safe_dump([play], sort_keys=False))
    inventory = workdir / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    argv = [str(SCRIPTS / "ansible-playbook"), "-i", str(inventory), str(book)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    if verbosity:
        argv.append("-" + "v" * verbosity)
    proc = subprocess.run(argv, capture_output=True, text=True, env=ansible_env(), timeout=timeout, check=False,
                          cwd=workdir)
    raw = results_file.read_text() if results_file.exists() else "[]"
    return Run(proc.returncode, proc.stdout + proc.stderr + raw, json.loads(raw))


def task_result(run: Run, index: int = 0) -> dict[str, Any]:
    assert index < len(run.results), run.output
    return run.results[index]


# --- the tests of this file ------------------------------------------------------------------


def test_every_module_is_documented_and_renders_with_ansible_doc() -> None:
    assert set(MODULES) >= {"etcd_info", "etcd_member", "etcd_snapshot", "api_endpoint_member", "state_export"}
    for module in MODULES:
        proc = subprocess.run([str(SCRIPTS / "ansible-doc"), f"kubectl_state.control_plane.{module}"],
                              capture_output=True, text=True, env=ansible_env(), timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "EXAMPLES:" in proc.stdout and "RETURN VALUES:" in proc.stdout, proc.stdout
        assert "etcd_endpoints" in proc.stdout  # the shared doc fragment is there
        data = subprocess.run([str(SCRIPTS / "ansible-doc"), "--json", f"kubectl_state.control_plane.{module}"],
                              capture_output=True, text=True, env=ansible_env(), timeout=120, check=True)
        doc = json.loads(data.stdout)[f"kubectl_state.control_plane.{module}"]["doc"]
        assert doc["attributes"]["check_mode"]["support"] == "full"


def test_every_module_is_in_the_action_group() -> None:
    runtime = yaml.safe_load((COLLECTION / "meta/runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["control_plane"]) == MODULES


def test_module_defaults_group_sets_the_connection_for_every_module(tmp_path: Path) -> None:
    # Unreachable on purpose: the point is that every module accepts the whole group of options
    # (a module rejecting one would fail with "Unsupported parameters") and uses the endpoint.
    defaults = {"group/kubectl_state.control_plane.control_plane": {
        "etcd_endpoints": ["http://127.0.0.1:1"], "kubeconfig": str(tmp_path / "missing-kubeconfig"),
        "context": "nowhere", "validate_certs": True, "username": "u", "password": "p-secret-123"}}
    run = playbook(tmp_path, [{"kubectl_state.control_plane.etcd_info": {}}], module_defaults=defaults)
    result = task_result(run)
    assert result["failed"] is True
    assert "127.0.0.1:1" in result["msg"]
    assert result["error"] == "ConnectionFailed"
    assert "Unsupported parameters" not in run.output
    assert "p-secret-123" not in run.output


@pytest.mark.parametrize("module", ["etcd_member", "api_endpoint_member", "etcd_snapshot"])
def test_required_options_are_enforced_by_ansible(module: str, tmp_path: Path) -> None:
    run = playbook(tmp_path, [{f"kubectl_state.control_plane.{module}": {}}])
    result = task_result(run)
    assert result["failed"] is True
    assert "missing required arguments" in result["msg"]
