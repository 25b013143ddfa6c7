"""Test hosts as Linux network namespaces, reached over SSH: what the lifecycle playbooks run on.

`HostLab(3)` makes hosts h1..h3, each a network namespace with its own address on a bridge in
the root namespace, each running its own sshd on port 22 of that address (key-only, root
allowed), and writes an Ansible inventory for them. Everything that crosses the network
between the controller and a host, or between hosts, really crosses it: the bridge, the
veths and TCP. The hosts share the filesystem, so the venv and the repository are visible
on every "host"; what keeps them apart on disk is that every path the roles use includes the
host's name (and, in tests, a per-run root directory).

Names are unique per run (a random suffix) and so is the /24 the hosts live on, so several
runs on one machine don't collide: two bridges with the same subnet would make the root
namespace route one run's traffic to the other's hosts, and Ansible's SSH control sockets
are keyed by address.

Teardown (`close()`, or leaving the `with` block) kills every process in the namespaces (what
sshd started, what the playbooks started), then deletes the namespaces, the veths, the bridge
and the temporary files, even when setup failed half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

IP = shutil.which("ip") or "/usr/sbin/ip"
SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
#: The benchmarking range (RFC 2544): never routed anywhere, so nothing leaves the machine.
NETWORK_POOL = ipaddress.ip_network("198.18.0.0/16")
READY_TIMEOUT = 20.0
FIRST_HOST_OCTET = 11


class HostLabUnavailable(RuntimeError):
    """This machine can't make network namespaces (not root, or no CAP_NET_ADMIN); tests skip."""


class HostLabError(RuntimeError):
    """Setting the hosts up failed; the message says which step and what it printed."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise HostLabError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def check_available() -> None:
    """Raise HostLabUnavailable with the reason when namespaces or sshd can't be had here."""
    if os.geteuid() != 0:
        raise HostLabUnavailable("network-namespace hosts need root (ip netns add)")
    for tool in (IP, SSHD, SSH_KEYGEN):
        if not Path(tool).exists():
            raise HostLabUnavailable(f"{tool} is not installed (Debian packages iproute2, openssh-server)")
    probe = f"ks-probe-{secrets.token_hex(3)}"
    proc = _run(IP, "netns", "add", probe, check=False)
    if proc.returncode != 0:
        raise HostLabUnavailable(f"ip netns add is not permitted here: {proc.stderr.strip()}")
    _run(IP, "netns", "del", probe, check=False)


def _executable(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


#: Held while a lab picks its network and claims it (see HostLab.up).
NETWORK_LOCK = Path(tempfile.gettempdir()) / "kubectl-state-hostlab.lock"


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = _run(IP, "-4", "-o", "addr", "show", check=False).stdout
    nets = []
    for line in out.splitlines():
        words = line.split()
        if "inet" in words:
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_interface(words[words.index("inet") + 1]).network)
    return nets


def _pick_network() -> ipaddress.IPv4Network:
    """A /24 of 198.18.0.0/16 that no interface of the root namespace is on (198.18.0.0/24 first)."""
    used = _used_networks()
    subnets = list(NETWORK_POOL.subnets(new_prefix=24))
    rest = subnets[1:]
    secrets.SystemRandom().shuffle(rest)
    for net in [subnets[0], *rest]:
        if not any(net.overlaps(u) for u in used):
            return net
    raise HostLabError("no free /24 left in 198.18.0.0/16")


@dataclass
class Host:
    """One test host: a network namespace with one address and its own sshd."""

    name: str
    netns: str
    address: str
    veth: str
    workdir: Path
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def sshd_log(self) -> Path:
        return self.workdir / "sshd.log"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host's namespace (as the host itself would)."""
        return _run(IP, "netns", "exec", self.netns, *argv, check=check)

    def pids(self) -> list[int]:
        """Every process in the host's network namespace."""
        out = _run(IP, "netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]


@dataclass
class HostLab:
    """N hosts on one bridge, each with sshd; an inventory for Ansible. A context manager."""

    count: int
    base_dir: Path | None = None
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: list[Host] = field(default_factory=list)
    network: ipaddress.IPv4Network | None = None
    workdir: Path = field(init=False)
    bridge: str = field(init=False)
    _made_netns: list[str] = field(default_factory=list, init=False)
    _made_links: list[str] = field(default_factory=list, init=False)
    _own_workdir: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.base_dir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"kslab-{self.suffix}-"))
            self._own_workdir = True
        else:
            self.workdir = Path(self.base_dir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        # Interface names are limited to 15 characters.
        self.bridge = f"ksbr{self.suffix}"

    # --- paths -------------------------------------------------------------------------------

    @property
    def private_key(self) -> Path:
        return self.workdir / "ssh" / "id_ed25519"

    @property
    def gateway(self) -> str:
        assert self.network is not None
        return str(self.network.network_address + 1)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    # --- setup -------------------------------------------------------------------------------

    def __enter__(self) -> HostLab:
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def up(self) -> HostLab:
        check_available()
        self._keys()
        # Labs come up in parallel (tests, molecule): the network is picked and claimed (the
        # bridge's address) under one lock, so two labs never pick the same free /24.
        with NETWORK_LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.network = _pick_network()
            prefix = self.network.prefixlen
            self._made_links.append(self.bridge)
            _run(IP, "link", "add", self.bridge, "type", "bridge")
            _run(IP, "addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge)
        _run(IP, "link", "set", self.bridge, "up")
        for i in range(1, self.count + 1):
            name = f"h{i}"
            host = Host(
                name=name,
                netns=f"ks-{self.suffix}-{name}",
                address=str(self.network.network_address + FIRST_HOST_OCTET - 1 + i),
                veth=f"ks{self.suffix}{name}",
                workdir=self.workdir / "sshd" / name,
            )
            host.workdir.mkdir(parents=True, exist_ok=True)
            self.hosts.append(host)
            self._made_netns.append(host.netns)
            _run(IP, "netns", "add", host.netns)
            self._made_links.append(host.veth)
            # The peer is made straight inside the namespace, so no interface named eth0 ever
            # appears (even briefly) in the root namespace.
            _run(IP, "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            _run(IP, "link", "set", host.veth, "master", self.bridge)
            _run(IP, "link", "set", host.veth, "up")
            host.run(IP, "link", "set", "lo", "up")
            host.run(IP, "addr", "add", f"{host.address}/{prefix}", "dev", "eth0")
            host.run(IP, "link", "set", "eth0", "up")
            host.run(IP, "route", "add", "default", "via", self.gateway)
        # sshd refuses to start without its privilege-separation directory (normally made by
        # the service unit, which does not run in containers).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for host in self.hosts:
            self._start_sshd(host)
        for host in self.hosts:
            self._wait_for_ssh(host)
        return self

    def _keys(self) -> None:
        ssh = self.workdir / "ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        _run(SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", f"kslab-{self.suffix}", "-f", str(self.private_key))
        _run(SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "host_ed25519_key"))
        shutil.copy(self.private_key.with_suffix(".pub"), ssh / "authorized_keys")

    def _start_sshd(self, host: Host) -> None:
        ssh = self.workdir / "ssh"
        config = host.workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {host.address}",
                    "Port 22",
                    f"HostKey {ssh / 'host_ed25519_key'}",
                    f"PidFile {host.workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    # The keys live in a temp dir whose modes sshd would otherwise reject.
                    "StrictModes no",
                    "UsePAM no",
                    "PrintMotd no",
                    # Ansible opens several sessions at once per host.
                    "MaxSessions 30",
                    "MaxStartups 30:30:60",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        log = host.sshd_log.open("ab")
        host.sshd = subprocess.Popen(
            [IP, "netns", "exec", host.netns, SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    def _wait_for_ssh(self, host: Host) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if host.sshd is not None and host.sshd.poll() is not None:
                raise HostLabError(f"sshd of {host.name} exited ({host.sshd.returncode}): {self._tail(host.sshd_log)}")
            try:
                with socket.create_connection((host.address, 22), timeout=1.0) as conn:
                    conn.settimeout(2.0)
                    if conn.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HostLabError(f"sshd of {host.name} ({host.address}) did not answer in {READY_TIMEOUT:g}s: "
                                   f"{self._tail(host.sshd_log)}")
            time.sleep(0.2)

    @staticmethod
    def _tail(path: Path, lines: int = 20) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- inventory ---------------------------------------------------------------------------

    def host_vars(self, host: Host) -> dict[str, object]:
        return {
            "ansible_host": host.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.private_key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            # The hosts share the filesystem: the venv (with kubectl_state) is there on each.
            "ansible_python_interpreter": sys.executable,
        }

    def write_inventory(
        self,
        path: Path | None = None,
        groups: Mapping[str, Iterable[str]] | None = None,
        group_vars: Mapping[str, object] | None = None,
    ) -> Path:
        """A YAML inventory of every host; `groups` maps group names to host names (h1, h2, ...)."""
        path = Path(path or self.workdir / "inventory.yml")
        children = {g: {"hosts": {name: None for name in names}} for g, names in (groups or {}).items()}
        inventory = {
            "all": {
                "hosts": {h.name: self.host_vars(h) for h in self.hosts},
                "vars": dict(group_vars or {}),
                "children": children,
            }
        }
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        return path

    # --- inspection --------------------------------------------------------------------------

    def processes(self, exclude_sshd: bool = True) -> dict[str, list[str]]:
        """{host name: command lines of the processes in its namespace}, sshd left out by default."""
        found: dict[str, list[str]] = {}
        sshd_pids = {h.sshd.pid for h in self.hosts if h.sshd is not None}
        for host in self.hosts:
            lines = []
            for pid in host.pids():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                except OSError:
                    continue
                # sshd's session processes (Ansible's persistent connections) rename themselves.
                if exclude_sshd and (pid in sshd_pids or _executable(pid) == SSHD):
                    continue
                lines.append(f"{pid} {cmd}")
            found[host.name] = lines
        return found

    # --- state for `python -m tests.lifecycle up|down` ----------------------------------------

    def state(self) -> dict[str, object]:
        """What `down` needs to tear the lab down from another process."""
        return {
            "suffix": self.suffix,
            "workdir": str(self.workdir),
            "own_workdir": self._own_workdir,
            "netns": list(self._made_netns),
            "links": list(self._made_links),
            "hosts": {h.name: h.address for h in self.hosts},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> HostLab:
        lab = cls(0, base_dir=Path(str(state["workdir"])), suffix=str(state["suffix"]))
        lab._own_workdir = bool(state["own_workdir"])
        lab._made_netns = [str(n) for n in state["netns"]]  # type: ignore[attr-defined]
        lab._made_links = [str(n) for n in state["links"]]  # type: ignore[attr-defined]
        return lab

    # --- teardown ----------------------------------------------------------------------------

    def _kill_namespace(self, netns: str, grace: float = 5.0) -> None:
        """TERM every process in the namespace, then KILL what is left after `grace` seconds."""

        def pids_of() -> list[int]:
            return [int(p) for p in _run(IP, "netns", "pids", netns, check=False).stdout.split() if p.isdigit()]

        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            pids = pids_of()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while pids_of() and time.monotonic() < deadline:
                time.sleep(0.1)

    def close(self) -> None:
        errors: list[str] = []
        for netns in self._made_netns:
            try:
                self._kill_namespace(netns)
            except Exception as exc:  # keep going: everything else must still be removed
                errors.append(f"killing processes of {netns}: {exc}")
        for host in self.hosts:
            if host.sshd is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    host.sshd.wait(timeout=5)
        for netns in self._made_netns:
            proc = _run(IP, "netns", "del", netns, check=False)
            if proc.returncode != 0 and "No such file" not in proc.stderr:
                errors.append(f"ip netns del {netns}: {proc.stderr.strip()}")
        for link in reversed(self._made_links):
            # A veth goes away with its namespace's peer; only what is left is deleted.
            if _run(IP, "link", "show", link, check=False).returncode == 0:
                proc = _run(IP, "link", "del", link, check=False)
                # The kernel removes a veth asynchronously once its peer's namespace is gone, so
                # it may vanish between the show and the del.
                if proc.returncode != 0 and "Cannot find device" not in proc.stderr:
                    errors.append(f"ip link del {link}: {proc.stderr.strip()}")
        self._made_netns.clear()
        self._made_links.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise HostLabError("; ".join(errors))

