"""The HAProxy endpoint logic that needs no HAProxy: addresses, `show servers state`, config edits, plans."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_state.core.endpoint.haproxy import (
    HAProxyError,
    RuntimeAPI,
    config_servers,
    edit_config,
    ensure_server,
    parse_servers_state,
    split_address,
    write_config,
)
from kubectl_state.core.errors import ConfigError, ConnectionFailed, InvalidInputError

HEADER = ("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
          "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
          "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
          "srv_check_addr srv_agent_addr srv_agent_port\n")


def row(name: str, addr: str, port: int, admin: int, op: int = 2) -> str:
    return f"3 api 1 {name} {addr} {op} {admin} 1 1 0 8 2 0 6 0 0 0 - {port} - 0 0 - - 0\n"


CONFIG = """global
    stats socket /run/haproxy.sock level admin

backend api
    balance roundrobin
    # replicas
    server cp-1 10.0.0.1:6443 check

listen other
    bind :80
    server web 10.0.0.9:80
"""


def test_split_address() -> None:
    assert split_address("10.0.0.1:6443") == ("10.0.0.1", 6443)
    assert split_address("[fd00::1]:6443") == ("fd00::1", 6443)
    assert split_address("api-1.example:443") == ("api-1.example", 443)
    for bad in ("10.0.0.1", "fd00::1:6443", "host:0", "host:99999", ":80", "a b:80"):
        with pytest.raises(InvalidInputError):
            split_address(bad)


def test_parse_servers_state_reads_admin_states() -> None:
    text = HEADER + row("a", "10.0.0.1", 6443, 0) + row("b", "10.0.0.2", 6443, 8) + row("c", "10.0.0.3", 6443, 1, 0)
    servers = parse_servers_state(text, "api")
    assert [(s.name, s.address, s.admin, s.operational) for s in servers] == [
        ("a", "10.0.0.1:6443", "ready", 2), ("b", "10.0.0.2:6443", "drain", 2), ("c", "10.0.0.3:6443", "maint", 0)]
    assert parse_servers_state(HEADER + "\n", "api") == []
    with pytest.raises(HAProxyError, match="no backend named 'nope'"):
        parse_servers_state("Can't find backend.\n\n", "nope")


def test_config_edits_keep_everything_else() -> None:
    added = edit_config(CONFIG, "api", "cp-2", "server cp-2 10.0.0.2:6443 check")
    assert added == CONFIG.replace("    server cp-1 10.0.0.1:6443 check\n",
                                   "    server cp-1 10.0.0.1:6443 check\n    server cp-2 10.0.0.2:6443 check\n")
    assert config_servers(added, "api") == {"cp-1": "server cp-1 10.0.0.1:6443 check",
                                            "cp-2": "server cp-2 10.0.0.2:6443 check"}
    assert edit_config(added, "api", "cp-2", None) == CONFIG
    assert edit_config(CONFIG, "api", "cp-9", None) == CONFIG
    moved = edit_config(CONFIG, "api", "cp-1", "server cp-1 10.0.0.5:6443")
    assert "    server cp-1 10.0.0.5:6443\n" in moved and "10.0.0.1" not in moved
    # A listen section works too, and a section without servers gets its first one.
    assert config_servers(edit_config(CONFIG, "other", "web2", "server web2 10.0.0.8:80"), "other") == {
        "web": "server web 10.0.0.9:80", "web2": "server web2 10.0.0.8:80"}
    with pytest.raises(ConfigError, match="no 'backend missing'"):
        edit_config(CONFIG, "missing", "x", "server x 1.2.3.4:1")


def test_write_config_validates_before_replacing(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(CONFIG)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="does not validate"):
        write_config(str(path), "broken", validate="false %s")
    assert path.read_text() == CONFIG
    write_config(str(path), CONFIG + "\n", validate="true %s")
    assert path.read_text() == CONFIG + "\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["haproxy.cfg"]


class FakeHAProxy:
    """A stats socket answering like HAProxy 2.6 for one backend, recording the commands it got."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.servers: dict[str, list[object]] = {"cp-1": ["10.0.0.1", 6443, 0]}
        self.commands: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                line = conn.makefile().readline().strip()
                self.commands.append(line)
                conn.sendall(self.answer(line.split()).encode())

    def answer(self, words: list[str]) -> str:
        if words[:3] == ["show", "servers", "state"]:
            return HEADER + "".join(row(n, str(a), int(str(p)), int(str(s))) for n, (a, p, s) in self.servers.items())
        name = words[2].split("/")[1] if len(words) > 2 else ""
        if words[:2] == ["add", "server"]:
            host, port = words[3].rsplit(":", 1)
            self.servers[name] = [host, int(port), 1]
            return "New server registered.\n\n"
        if words[:2] == ["set", "server"] and words[3] == "state":
            self.servers[name][2] = {"ready": 0, "drain": 8, "maint": 1}[words[4]]
            return "\n"
        if words[:2] == ["del", "server"]:
            del self.servers[name]
            return "Server deleted.\n"
        return "Unknown command.\n"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeHAProxy]:
    server = FakeHAProxy(tmp_path / "s.sock")
    yield server
    server.close()


def test_ensure_server_check_mode_sends_only_reads(fake: FakeHAProxy) -> None:
    change = ensure_server(RuntimeAPI(str(fake.path)), "api", "cp-2", "present", address="10.0.0.2:6443",
                           check_mode=True)
    assert change.changed
    assert change.commands == ["add server api/cp-2 10.0.0.2:6443", "set server api/cp-2 state ready"]
    assert fake.commands == ["show servers state api"]
    assert [s["name"] for s in change.after] == ["cp-1", "cp-2"]


def test_ensure_server_is_idempotent(fake: FakeHAProxy) -> None:
    api = RuntimeAPI(str(fake.path))
    assert ensure_server(api, "api", "cp-1", "present", address="10.0.0.1:6443").changed is False
    drained = ensure_server(api, "api", "cp-1", "drained", address="10.0.0.1:6443")
    assert drained.commands == ["set server api/cp-1 state drain"]
    assert drained.server == {"name": "cp-1", "address": "10.0.0.1:6443", "state": "drain", "up": True}
    gone = ensure_server(api, "api", "cp-1", "absent")
    assert gone.commands == ["set server api/cp-1 state maint", "del server api/cp-1"]
    assert ensure_server(api, "api", "cp-1", "absent").changed is False
    assert fake.servers == {}


def test_unreachable_socket_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailed, match="cannot reach HAProxy's stats socket"):
        RuntimeAPI(str(tmp_path / "none.sock")).servers("api")
    with pytest.raises(InvalidInputError, match="invalid HAProxy server name"):
        ensure_server(RuntimeAPI(str(tmp_path / "none.sock")), "api", "a b", "absent")
    with pytest.raises(InvalidInputError, match="one runtime command at a time"):
        RuntimeAPI(str(tmp_path / "none.sock")).command("show info; shutdown")
