"""kubectl_state.control_plane.create with TLS between the etcd members and for their clients, on netns hosts.

A CA made here (the `cryptography` package) signs one certificate per etcd host (its address as
IP SAN, for serving clients and for the peer connections both ways) and one client certificate,
which the playbooks' own etcd clients and the API servers present. After create: etcd answers
only over https, to a client that trusts the CA and presents a client certificate (a plain-http
client and a client without a certificate are refused); the members talk to each other over
https; the API servers reach etcd over TLS (their flags, and an object written through the
endpoint is in etcd). Then delete removes it all.
"""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubectl_state.core.errors import KubectlStateError
from kubectl_state.core.etcd.client import EtcdClient
from kubectl_state.core.etcd.members import cluster_state
from kubectl_state.core.kube.client import KubeClient
from tests.etcd_cluster import EtcdBinaryMissing
from tests.lifecycle.control_plane import GROUPS, role_vars
from tests.lifecycle.hosts import HostLab
from tests.lifecycle.lab_fixture import lab_or_skip
from tests.lifecycle.runner import endpoint_kubeconfig, run_playbook, write_inventory

# A create and a delete over SSH: about two minutes on a 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def lab() -> Iterator[HostLab]:
    yield from lab_or_skip(4)


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = path.with_suffix(".key")
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return str(path.with_suffix(".crt")), str(key_path)


def _signed(name: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
            usages: list[x509.ObjectIdentifier], ips: list[str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if ips:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
    return builder.sign(ca[1] if ca else key, hashes.SHA256()), key


def make_pki(lab: HostLab, directory: Path) -> dict[str, str]:
    """A CA, a server-and-peer certificate per etcd host, and a client certificate; their paths."""
    directory.mkdir()
    ca = _signed("kubectl-state-test-etcd-ca", None, [], [])
    paths = dict(zip(("ca", "ca_key"), _write(directory / "ca", *ca), strict=True))
    both_ways = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    for host in GROUPS["etcd"]:
        _write(directory / host, *_signed(host, ca, both_ways, [lab.host(host).address]))
    paths["client"], paths["client_key"] = _write(
        directory / "client", *_signed("kube-apiserver-etcd-client", ca, [ExtendedKeyUsageOID.CLIENT_AUTH], []))
    return paths


def tls_vars(lab: HostLab, pki: Path) -> dict[str, object]:
    paths = make_pki(lab, pki)
    per_host = str(pki / "{{ inventory_hostname }}")
    return {
        **role_vars(lab),
        "etcd_cert_file": per_host + ".crt", "etcd_key_file": per_host + ".key", "etcd_trusted_ca_file": paths["ca"],
        "etcd_peer_cert_file": per_host + ".crt", "etcd_peer_key_file": per_host + ".key",
        "etcd_peer_trusted_ca_file": paths["ca"],
        "etcd_client_cert_file": paths["client"], "etcd_client_key_file": paths["client_key"],
        "kube_apiserver_etcd_cafile": paths["ca"],
        "kube_apiserver_etcd_certfile": paths["client"], "kube_apiserver_etcd_keyfile": paths["client_key"],
    }


def refused(client: EtcdClient) -> str:
    """The error of one read through `client`; fails the test when the read is answered."""
    with client:
        try:
            client.get(b"/registry/namespaces/default")
        except KubectlStateError as exc:
            return exc.message
    raise AssertionError("etcd answered a client it should have refused")


def test_create_with_tls_between_members_and_for_clients_then_delete(lab: HostLab, tmp_path: Path) -> None:
    try:
        variables = tls_vars(lab, tmp_path / "pki")
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    extra_vars = tmp_path / "vars.yml"
    extra_vars.write_text(yaml.safe_dump(variables))
    inventory = write_inventory(lab, tmp_path / "inventory.yml", GROUPS)
    ca, cert, key = (str(variables[k]) for k in ("etcd_trusted_ca_file", "etcd_client_cert_file",
                                                  "etcd_client_key_file"))
    addresses = [lab.host(h).address for h in GROUPS["etcd"]]
    https = [f"https://{a}:2379" for a in addresses]

    created = run_playbook(lab, "create", inventory, extra_vars)
    assert created.returncode == 0, created.output[-6000:]
    try:
        with EtcdClient(https, ca_file=ca, cert_file=cert, key_file=key, timeout=5.0) as client:
            members = cluster_state(client)
        assert sorted(m.name for m in members) == ["h1", "h2", "h3"]
        assert all(m.healthy and not m.is_learner for m in members), [m.to_dict() for m in members]
        for m in members:
            assert [u.split("://")[0] for u in m.member.peer_urls + m.member.client_urls] == ["https", "https"], \
                m.to_dict()

        plain = refused(EtcdClient([f"http://{a}:2379" for a in addresses], timeout=3.0))
        no_cert = refused(EtcdClient(https, ca_file=ca, timeout=3.0))
        print(f"plain http refused: {plain}\nno client certificate refused: {no_cert}")
        assert "bad certificate" in no_cert, no_cert  # the TLS handshake, not the network, refused it

        # The API servers: told to use https and the CA and client certificate ...
        for host in GROUPS["control_plane"]:
            args = (lab.workdir / "hosts" / host / "kube-apiserver" / "args").read_text().split()
            assert f"--etcd-servers={','.join(https)}" in args, args
            assert {f"--etcd-cafile={ca}", f"--etcd-certfile={cert}", f"--etcd-keyfile={key}"} <= set(args), args
        # ... and what goes in through the endpoint lands in etcd, which only TLS clients reach.
        kubeconfig = endpoint_kubeconfig(lab, "h1", "h4", tmp_path / "endpoint.kubeconfig")
        kube = KubeClient.from_kubeconfig(str(kubeconfig))
        kube.request("POST", "/api/v1/namespaces/default/configmaps",
                     body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over-tls"},
                           "data": {"via": "endpoint"}})
        with EtcdClient(https, ca_file=ca, cert_file=cert, key_file=key, timeout=5.0) as client:
            stored = client.get(b"/registry/configmaps/default/over-tls")
        assert stored is not None and b"endpoint" in stored.value
    finally:
        deleted = run_playbook(lab, "delete", inventory, extra_vars)
    assert deleted.returncode == 0, deleted.output[-6000:]
    deadline = time.monotonic() + 30
    while any(lab.processes().values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(lab.processes().values()), lab.processes()
