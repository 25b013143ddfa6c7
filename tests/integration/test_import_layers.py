"""The layering rule of DESIGN.md is enforced by import-linter, and the check can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sysconfig.get_path("scripts")) / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(project))
    return subprocess.run([str(LINT_IMPORTS), "--config", str(project / "setup.cfg"), "--no-cache"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "kubectl_state", copy / "kubectl_state", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", copy / "setup.cfg")
    return copy


def test_the_project_keeps_its_import_contracts(project_copy: Path) -> None:
    result = lint_imports(project_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("core/errors.py", "import kubectl_state.cli.main", "The core never imports the CLI"),
        ("core/etcd/__init__.py", "import kubectl_state.core.plan", "lower layers never import higher ones"),
        ("core/kube/__init__.py", "import kubectl_state.core.lifecycle", "lower layers never import higher ones"),
        ("core/archive/__init__.py", "import kubectl_state.core.etcd", "lower layers never import higher ones"),
    ],
)
def test_breaking_a_contract_on_purpose_fails(project_copy: Path, module: str, bad_import: str, contract: str) -> None:
    target = project_copy / "kubectl_state" / module
    target.write_text(target.read_text() + f"\n{bad_import}  # deliberately breaks a layer\n")
    result = lint_imports(project_copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert contract in result.stdout
