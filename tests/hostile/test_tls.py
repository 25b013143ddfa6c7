"""TLS verification is on unless explicitly turned off, and off never goes unannounced:
kubeconfig `insecure-skip-tls-verify` for the API, `--insecure-skip-tls-verify` for etcd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kubectl_state.core.errors import ExitStatus
from tests.apiserver.fixture import REPO_ROOT
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import generate_tls
from tests.integration.test_collection_modules import playbook, task_result

pytestmark = pytest.mark.timeout(180)


def kubectl_state(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCDCTL_", "KUBECONFIG", "PYTHONWARNINGS"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "kubectl_state", *argv], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=120, check=False)


def rewrite_kubeconfig(source: str, target: Path, **cluster_fields: object) -> str:
    """A copy of `source` without the cluster's CA, with `cluster_fields` added."""
    doc = yaml.safe_load(Path(source).read_text())
    for cluster in doc["clusters"]:
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"].update(cluster_fields)
    target.write_text(yaml.safe_dump(doc))
    return str(target)


def test_the_kubeconfigs_ca_is_checked_by_default(kube_cluster: str, tmp_path: Path) -> None:
    result = kubectl_state("export", str(tmp_path / "ok"), "-n", "default", "--kubeconfig", kube_cluster)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower()

    # Without its CA the test server's certificate is not trusted: refused, not accepted.
    no_ca = rewrite_kubeconfig(kube_cluster, tmp_path / "no-ca.kubeconfig")
    result = kubectl_state("export", str(tmp_path / "refused"), "-n", "default", "--kubeconfig", no_ca)
    assert result.returncode == ExitStatus.UNREACHABLE, result.stderr
    assert "certificate_verify_failed" in result.stderr.lower(), result.stderr
    assert not (tmp_path / "refused").exists()


def test_insecure_skip_tls_verify_in_the_kubeconfig_prints_one_clear_warning(kube_cluster: str,
                                                                              tmp_path: Path) -> None:
    insecure = rewrite_kubeconfig(kube_cluster, tmp_path / "insecure.kubeconfig", **{"insecure-skip-tls-verify": True})
    result = kubectl_state("export", str(tmp_path / "out"), "-n", "default", "--kubeconfig", insecure)
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "TLS verification is off" in line]
    assert len(warned) == 1, result.stderr
    assert "insecure-skip-tls-verify" in warned[0]
    assert warned[0].startswith("Warning: "), warned[0]  # as kubectl prints its own, no file:line
    # urllib3's per-connection warning would repeat for every pooled connection.
    assert "InsecureRequestWarning" not in result.stderr, result.stderr


def test_etcd_insecure_skip_tls_verify_is_explicit_and_warned(etcd_cluster_factory: EtcdClusterFactory,
                                                             tmp_path: Path) -> None:
    tls = generate_tls(tmp_path / "pki")
    cluster = etcd_cluster_factory(members=1, tls=tls, client_cert_auth=False)
    endpoint = cluster.endpoints[0]

    refused = kubectl_state("etcd", "member", "list", "--endpoints", endpoint)
    assert refused.returncode == ExitStatus.UNREACHABLE, refused.stderr
    assert "certificate" in refused.stderr.lower(), refused.stderr

    trusted = kubectl_state("etcd", "member", "list", "--endpoints", endpoint, "--cacert", tls.ca_file)
    assert trusted.returncode == 0, trusted.stderr
    assert "warning" not in trusted.stderr.lower(), trusted.stderr

    insecure = kubectl_state("etcd", "member", "list", "--endpoints", endpoint, "--insecure-skip-tls-verify")
    assert insecure.returncode == 0, insecure.stderr
    warned = [line for line in insecure.stderr.splitlines() if "TLS verification is off" in line]
    assert len(warned) == 1, insecure.stderr
    assert warned[0].startswith("Warning: ") and "--insecure-skip-tls-verify" in warned[0], warned[0]
    assert "InsecureRequestWarning" not in insecure.stderr, insecure.stderr


def test_modules_with_validate_certs_off_say_so_in_ansible_warnings(etcd_cluster_factory: EtcdClusterFactory,
                                                                   tmp_path: Path) -> None:
    tls = generate_tls(tmp_path / "pki")
    endpoint = etcd_cluster_factory(members=1, tls=tls, client_cert_auth=False).endpoints[0]
    run = playbook(tmp_path / "play", [
        {"kubectl_state.control_plane.etcd_info": {"etcd_endpoints": [endpoint], "ca_cert": tls.ca_file}},
        {"kubectl_state.control_plane.etcd_info": {"etcd_endpoints": [endpoint], "validate_certs": False}},
    ])
    assert run.ok, run.output
    checked, unchecked = task_result(run, 0), task_result(run, 1)
    assert not checked.get("warnings"), checked
    assert any("TLS verification is off" in w for w in unchecked.get("warnings", [])), unchecked
