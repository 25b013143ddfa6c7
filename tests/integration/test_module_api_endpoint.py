"""api_endpoint_member run by real `ansible-playbook` against a real HAProxy fronting the API test server."""

from __future__ import annotations

import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import yaml

from kubectl_state.core.endpoint.haproxy import RuntimeAPI, config_servers
from tests.etcd_cluster import free_ports
from tests.integration.test_collection_modules import playbook, task_result

pytestmark = pytest.mark.timeout(180)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BACKEND = "apiservers"


@dataclass
class HAProxy:
    config: Path
    socket: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([HAPROXY, "-db", "-f", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not start (exit status {self.process.poll()})")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.socket.unlink(missing_ok=True)

    def servers(self) -> list[tuple[str, str, str]]:
        return [(s.name, s.address, s.admin) for s in RuntimeAPI(str(self.socket)).servers(BACKEND)]


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HAProxy]:
    if not Path(HAPROXY).exists():
        pytest.skip("HAProxy is not installed (Debian package haproxy)")
    port, dead = free_ports(2)
    sock = tmp_path / "admin.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""global
    stats socket {sock} mode 600 level admin

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend api
    bind 127.0.0.1:{port}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    # a replica that is gone: the endpoint must not depend on it
    server old 127.0.0.1:{dead}
""")
    proxy = HAProxy(config, sock, port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def api_address(kubeconfig: str) -> str:
    server = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"]
    url = urlparse(server)
    return f"{url.hostname}:{url.port}"


def test_api_endpoint_member_present_drained_absent_idempotent_check_mode_and_config(
    haproxy: HAProxy, kube_cluster: str, tmp_path: Path
) -> None:
    address = api_address(kube_cluster)
    if not address.startswith("127."):
        pytest.skip("the API server is not on this host")
    base = {"backend": BACKEND, "name": "cp-1", "address": address, "socket": str(haproxy.socket),
            "config_file": str(haproxy.config), "validate": f"{HAPROXY} -c -f %s"}

    def task(**extra: object) -> dict[str, object]:
        return {"kubectl_state.control_plane.api_endpoint_member": {**base, **extra}}

    servers, text = haproxy.servers(), haproxy.config.read_text()
    run = playbook(tmp_path, [task()], check=True, diff=True)
    assert run.ok, run.output
    result = task_result(run)
    assert result["changed"] is True
    assert result["commands"][0] == f"add server {BACKEND}/cp-1 {address}"
    assert f"+cp-1 {address} ready" in run.output
    assert f"+    server cp-1 {address}" in run.output
    assert haproxy.servers() == servers
    assert haproxy.config.read_text() == text

    run = playbook(tmp_path, [task(), task()], diff=True)
    assert run.ok, run.output
    assert [task_result(run, i)["changed"] for i in range(2)] == [True, False]
    assert ("cp-1", address, "ready") in haproxy.servers()
    assert config_servers(haproxy.config.read_text(), BACKEND)["cp-1"] == f"server cp-1 {address}"
    # Traffic through the endpoint reaches the API server (the dead replica is taken out of
    # rotation by taking it out of the backend).
    run = playbook(tmp_path, [{"kubectl_state.control_plane.api_endpoint_member": {
        "backend": BACKEND, "name": "old", "state": "absent", "socket": str(haproxy.socket),
        "config_file": str(haproxy.config)}}])
    assert run.ok and task_result(run)["changed"] is True, run.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answer = requests.get(f"https://127.0.0.1:{haproxy.port}/version", verify=False, timeout=10)  # noqa: S501
    assert answer.status_code in (200, 401, 403)

    # The configuration file kept the change: a restarted HAProxy has the same backend.
    haproxy.stop()
    haproxy.start()
    assert haproxy.servers() == [("cp-1", address, "ready")]

    run = playbook(tmp_path, [task(state="drained")], check=True)
    assert run.ok and task_result(run)["changed"] is True, run.output
    assert haproxy.servers() == [("cp-1", address, "ready")]
    run = playbook(tmp_path, [task(state="drained"), task(state="drained")])
    assert run.ok, run.output
    assert [task_result(run, i)["changed"] for i in range(2)] == [True, False]
    assert haproxy.servers() == [("cp-1", address, "drain")]

    gone = {"backend": BACKEND, "name": "cp-1", "state": "absent", "socket": str(haproxy.socket),
            "config_file": str(haproxy.config), "shutdown_sessions": True}
    run = playbook(tmp_path, [{"kubectl_state.control_plane.api_endpoint_member": gone}], check=True, diff=True)
    assert run.ok and task_result(run)["changed"] is True, run.output
    assert haproxy.servers() == [("cp-1", address, "drain")]
    run = playbook(tmp_path, [{"kubectl_state.control_plane.api_endpoint_member": gone}] * 2)
    assert run.ok, run.output
    assert [task_result(run, i)["changed"] for i in range(2)] == [True, False]
    assert haproxy.servers() == []
    assert "cp-1" not in config_servers(haproxy.config.read_text(), BACKEND)


def test_api_endpoint_member_failures_are_plain_messages(haproxy: HAProxy, tmp_path: Path) -> None:
    run = playbook(tmp_path, [
        {"kubectl_state.control_plane.api_endpoint_member": {
            "backend": "nope", "name": "x", "address": "127.0.0.1:1", "socket": str(haproxy.socket)}},
        {"kubectl_state.control_plane.api_endpoint_member": {
            "backend": BACKEND, "name": "x", "address": "127.0.0.1:1", "socket": str(tmp_path / "no.sock")}},
        {"kubectl_state.control_plane.api_endpoint_member": {
            "backend": "other", "name": "x", "address": "127.0.0.1:1", "socket": str(haproxy.socket),
            "config_file": str(haproxy.config)}},
        {"kubectl_state.control_plane.api_endpoint_member": {
            "backend": BACKEND, "name": "x", "address": "localhost", "socket": str(haproxy.socket)}},
    ])
    messages = [task_result(run, i)["msg"] for i in range(4)]
    assert messages[0] == "HAProxy has no backend named 'nope'"
    assert messages[1].startswith(f"cannot reach HAProxy's stats socket {tmp_path / 'no.sock'}")
    assert "has no 'backend other'" in messages[2]
    assert "expected HOST:PORT" in messages[3]
    assert "Traceback" not in run.output
    assert haproxy.servers() == [("old", haproxy.servers()[0][1], "ready")]
