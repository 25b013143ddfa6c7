"""Starting and stopping API server replicas (and, for benchmarks, their etcd).

Each replica is a real process, `python -m tests.apiserver`, on a loopback port it picks
itself (`--secure-port 0`); it is ready when its kubeconfig file appears, which it writes
(atomically) only once it serves. Everything started here is stopped by `close()`, and an
atexit hook stops whatever a crashed test run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

#: Where `python -m tests.apiserver` resolves (the repository root).
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
#: What the fixtures set for the token file, so tests know the token without reading it.
TEST_TOKEN = "kubectl-state-test-admin-token"

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


class ApiServerStartError(RuntimeError):
    """A replica exited or did not become ready; the message quotes its log."""


@dataclass
class ApiServer:
    """One replica process."""

    process: subprocess.Popen[bytes]
    kubeconfig: Path
    log: Path

    @property
    def url(self) -> str:
        import yaml

        config = yaml.safe_load(self.kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 5.0) -> None:
        proc = self.process
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=grace)
        _RUNNING.pop(proc.pid, None)


def start_apiserver(
    etcd_endpoints: Sequence[str],
    workdir: Path,
    *,
    name: str = "apiserver",
    prefix: str = "/registry",
    plain_http: bool = False,
    token_file: Path | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = READY_TIMEOUT,
) -> ApiServer:
    """Start one replica and wait until it serves."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / f"{name}.kubeconfig"
    log = workdir / f"{name}.log"
    args = [
        sys.executable,
        "-m",
        "tests.apiserver",
        "--etcd-servers",
        ",".join(etcd_endpoints),
        "--etcd-prefix",
        prefix,
        "--secure-port",
        "0",
        "--write-kubeconfig",
        str(kubeconfig),
        "--cert-dir",
        str(workdir / f"{name}-certs"),
    ]
    if plain_http:
        args.append("--plain-http")
    if token_file is not None:
        args += ["--token-auth-file", str(token_file)]
    args += list(extra_args)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "wb") as log_handle:
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log_handle, stderr=subprocess.STDOUT)
    _RUNNING[proc.pid] = proc
    server = ApiServer(proc, kubeconfig, log)
    deadline = time.monotonic() + timeout
    while not kubeconfig.exists():
        if proc.poll() is not None:
            _RUNNING.pop(proc.pid, None)
            raise ApiServerStartError(f"{name} exited with status {proc.returncode}:\n{server.log_tail()}")
        if time.monotonic() > deadline:
            server.stop()
            raise ApiServerStartError(f"{name} did not become ready in {timeout:.0f}s:\n{server.log_tail()}")
        time.sleep(0.05)
    return server


@dataclass
class KubeCluster:
    """etcd endpoints plus the replicas serving them; `kubeconfig` is the first replica's."""

    etcd_endpoints: list[str]
    prefix: str
    workdir: Path
    servers: list[ApiServer] = field(default_factory=list)
    owned_etcd: object | None = None  # an EtcdCluster this object started and stops

    @property
    def kubeconfig(self) -> str:
        return str(self.servers[0].kubeconfig)

    @property
    def kubeconfigs(self) -> list[str]:
        return [str(s.kubeconfig) for s in self.servers]

    def close(self) -> None:
        errors: list[BaseException] = []
        for server in self.servers:
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
        if self.owned_etcd is not None:
            self.owned_etcd.close()  # type: ignore[attr-defined]
        shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise errors[0]

    def __enter__(self) -> KubeCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def start_cluster(
    etcd_endpoints: Sequence[str] | None = None,
    *,
    replicas: int = 1,
    prefix: str = "/registry",
    plain_http: bool = False,
    token_auth: bool = False,
    extra_args: Sequence[str] = (),
) -> KubeCluster:
    """`replicas` servers on `etcd_endpoints`, or on a fresh single-member etcd it owns."""
    owned = None
    if etcd_endpoints is None:
        from tests.etcd_cluster import EtcdCluster

        owned = EtcdCluster(1, "3.5").start()
        etcd_endpoints = owned.endpoints
    cluster = KubeCluster(
        list(etcd_endpoints), prefix, Path(tempfile.mkdtemp(prefix="kube-apiserver-test-")), owned_etcd=owned
    )
    try:
        token_file = None
        if token_auth:
            token_file = cluster.workdir / "tokens.csv"
            token_file.write_text(f'{TEST_TOKEN},admin,1000,"system:masters"\n')
        for index in range(replicas):
            cluster.servers.append(
                start_apiserver(
                    cluster.etcd_endpoints,
                    cluster.workdir,
                    name=f"apiserver-{index}",
                    prefix=prefix,
                    plain_http=plain_http,
                    token_file=token_file,
                    extra_args=extra_args,
                )
            )
    except BaseException:
        cluster.close()
        raise
    return cluster


def _stop_leftovers() -> None:
    for proc in list(_RUNNING.values()):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
    _RUNNING.clear()


atexit.register(_stop_leftovers)
