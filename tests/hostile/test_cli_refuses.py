"""The hostile archives of tests/hostile/archives.py through `kubectl state import`, `diff`,
`verify` and `inspect` against the API test server: each command exits non-zero naming the
reason, and a refused import has written nothing (the etcd revision behind the API server
is the same after it as before)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from kubectl_state.core.errors import ExitStatus
from kubectl_state.core.etcd.client import EtcdClient
from tests.apiserver.fixture import KubeCluster
from tests.helpers import run_cli
from tests.hostile.archives import CASE_IDS, CASE_PARAMS, OUTSIDE, Case, Form

pytestmark = pytest.mark.timeout(120)


def revision(cluster: KubeCluster) -> int:
    with EtcdClient(cluster.etcd_endpoints) as etcd:
        return etcd.status().revision


def assert_refused(code: int, err: str, case: Case, *, exit_status: int = ExitStatus.INVALID_INPUT) -> None:
    assert code == exit_status, err
    assert "Traceback" not in err
    assert re.search(case.reason, err), err


@pytest.mark.parametrize(("case", "form"), CASE_PARAMS, ids=CASE_IDS)
def test_import_refuses_before_writing_anything(local_kube_cluster: KubeCluster, tmp_path: Path,
                                                case: Case, form: Form) -> None:
    path = case.build(tmp_path, form)
    report = tmp_path / "report.json"
    before = revision(local_kube_cluster)

    code, _, err = run_cli("import", str(path), "--kubeconfig", local_kube_cluster.kubeconfig,
                             "--report", str(report), "--existing", "update")

    assert_refused(code, err, case)
    assert revision(local_kube_cluster) == before
    if (tmp_path / OUTSIDE).exists():
        assert (tmp_path / OUTSIDE).read_text() == "a file outside the archive\n"


@pytest.mark.parametrize(("case", "form"), CASE_PARAMS, ids=CASE_IDS)
def test_diff_refuses(local_kube_cluster: KubeCluster, tmp_path: Path, case: Case, form: Form) -> None:
    path = case.build(tmp_path, form)
    code, out, err = run_cli("diff", str(path), "--kubeconfig", local_kube_cluster.kubeconfig)
    assert_refused(code, err, case)
    assert out == ""


@pytest.mark.parametrize(("case", "form"), CASE_PARAMS, ids=CASE_IDS)
def test_verify_reports_the_named_problem(tmp_path: Path, case: Case, form: Form) -> None:
    path = case.build(tmp_path, form)
    code, out, err = run_cli("verify", str(path), "-o", "json")
    assert code == ExitStatus.INVALID_INPUT, (out, err)
    assert f'"kind": "{case.kind.value}"' in out, out


@pytest.mark.parametrize(("case", "form"), [p for p in CASE_PARAMS if p[0].structural],
                         ids=[i for i, p in zip(CASE_IDS, CASE_PARAMS, strict=True) if p[0].structural])
def test_inspect_refuses_what_is_wrong_with_the_structure(tmp_path: Path, case: Case, form: Form) -> None:
    path = case.build(tmp_path, form)
    code, out, err = run_cli("inspect", str(path))
    assert_refused(code, err, case)
    assert out == ""
    assert os.path.exists(path)
