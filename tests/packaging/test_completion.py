"""Shell completion: the candidates the parser yields, as kubectl's plugin completion and the
bash script `kubectl state completion bash` receive them, through the real kubectl and bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubectl_state.cli.completion import Directive, complete
from kubectl_state.cli.main import build_parser
from tests.helpers import run_cli


def words(*typed: str, environ: dict[str, str] | None = None) -> tuple[list[str], Directive]:
    result = complete(build_parser(), list(typed), environ or {})
    return [c.split("\t", 1)[0] for c in result.candidates], result.directive


def test_commands_flags_and_choices_come_from_the_parser() -> None:
    names, directive = words("")
    assert {"export", "import", "etcd", "verify", "version", "completion"} <= set(names)
    assert "__complete" not in names and directive == Directive.NO_FILE_COMP
    assert words("ex") == (["export"], Directive.NO_FILE_COMP)
    assert words("etcd", "snapshot", "s")[0] == ["save", "status"]
    assert words("export", "--secrets", "")[0] == ["include", "skip", "encrypt"]
    assert words("import", "--dry-run=s")[0] == ["--dry-run=server"]
    assert words("-o", "y")[0] == ["yaml"]
    assert "--include-resources" in words("export", "--inc")[0]
    assert "--peer-urls" in words("etcd", "member", "add", "--p")[0]


def test_values_are_skipped_when_walking_the_line() -> None:
    # `etcd` after -n is the namespace's value, not the etcd command.
    assert "snapshot" not in words("-n", "etcd", "")[0]
    assert "export" in words("-n", "etcd", "")[0]
    # --endpoints takes a value: `member` there is not a command either.
    assert words("etcd", "status", "--endpoints", "member", "")[1] == Directive.DEFAULT


def test_paths_are_left_to_the_shell() -> None:
    assert words("verify", "") == ([], Directive.DEFAULT)
    assert words("etcd", "snapshot", "status", "--etcdutl", "")[1] == Directive.DEFAULT
    # A free-form value: nothing offered, and no file names either.
    assert words("export", "--concurrency", "") == ([], Directive.NO_FILE_COMP)


def test_context_names_come_from_the_kubeconfig(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump({"contexts": [{"name": "prod", "context": {}},
                                                   {"name": "staging", "context": {}}]}))
    assert words("--context", "", environ={"KUBECONFIG": str(config)})[0] == ["prod", "staging"]
    assert words("--kubeconfig", str(config), "export", "--context", "st")[0] == ["staging"]
    assert words("--context", "", environ={"KUBECONFIG": str(tmp_path / "missing")})[0] == []


def test_the_hidden_command_answers_in_kubectls_format() -> None:
    code, out, _ = run_cli("__complete", "--", "etcd", "mem")
    assert code == 0
    assert out.splitlines() == ["member\tList, add, promote and remove etcd members, keeping quorum.", ":4"]


def _plugin_path(tmp_path: Path) -> str:
    """A PATH where kubectl finds `kubectl-state` and `kubectl_complete-state` from this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, entry in (("kubectl-state", "kubectl_state.cli.main:main"),
                        ("kubectl_complete-state", "kubectl_state.cli.completion:main_complete")):
        module, function = entry.split(":")
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n")
        script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_completes_the_plugin_through_kubectl_complete_state(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _plugin_path(tmp_path), "HOME": str(tmp_path), "KUBECONFIG": ""}
    done = subprocess.run(["kubectl", "__complete", "state", "etcd", "snapshot", "re"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("restore\t") and lines[-1] == f":{int(Directive.NO_FILE_COMP)}"
    done = subprocess.run(["kubectl", "__complete", "state", "import", "--existing", ""], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines()[:-1] == ["skip", "update", "fail"]


def test_the_bash_script_fills_compreply(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _plugin_path(tmp_path)}
    script = """
source <(kubectl-state completion bash)
complete -p kubectl-state
COMP_WORDS=(kubectl-state etcd member r); COMP_CWORD=3
_kubectl_state_complete
printf 'reply:%s\\n' "${COMPREPLY[@]}"
COMP_WORDS=(kubectl-state -o ''); COMP_CWORD=2
_kubectl_state_complete
printf 'reply:%s\\n' "${COMPREPLY[@]}"
"""
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "_kubectl_state_complete kubectl-state" in done.stdout
    replies = [line.removeprefix("reply:") for line in done.stdout.splitlines() if line.startswith("reply:")]
    assert replies == ["remove", "text", "table", "json", "yaml"]


def test_the_zsh_script_is_printed() -> None:
    code, out, _ = run_cli("completion", "zsh")
    assert code == 0 and out.startswith("#compdef kubectl-state\n")
    assert "kubectl-state __complete --" in out
    if shutil.which("zsh"):  # Debian's zsh is not among the test machine's packages; syntax-check when present
        subprocess.run(["zsh", "-n"], input=out, text=True, check=True, timeout=30)
