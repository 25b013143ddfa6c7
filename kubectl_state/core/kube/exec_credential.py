"""Exec credential plugins (a kubeconfig user's `exec:`), run as kubectl runs them.

The plugin prints an ExecCredential (client.authentication.k8s.io v1 or v1beta1) holding a
token or a client certificate, valid until its expirationTimestamp: it is run on first use,
its answer kept until it expires and the plugin run again then. Export lists from several
threads at once, so one lock makes sure one run serves them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubectl_state.core.errors import ConfigError

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


@dataclass(frozen=True)
class _Issued:
    authorization: str | None
    cert: tuple[str, str] | None
    expires: datetime | None


class ExecPlugin:
    """Credentials from an exec plugin: asked before each request, run when none are valid."""

    def __init__(self, argv: list[str], env: Mapping[str, str], *, api_version: str, where: str,
                 write_private: Callable[[bytes, str], str], static_cert: tuple[str, str] | None = None,
                 install_hint: str = "", cluster: Mapping[str, Any] | None = None) -> None:
        self._argv = argv
        self._env = dict(env)
        self._api_version = api_version
        self._where = where
        self._write_private = write_private
        self._static_cert = static_cert
        self._install_hint = install_hint
        self._cluster = cluster
        self._lock = threading.Lock()
        self._issued: _Issued | None = None

    @classmethod
    def from_kubeconfig(cls, spec: Any, directory: Path, where: str, *, write_private: Callable[[bytes, str], str],
                        server: str, static_cert: tuple[str, str] | None) -> ExecPlugin:
        if not isinstance(spec, Mapping) or not spec.get("command"):
            raise ConfigError(f"{where}: exec has no command")
        api_version = str(spec.get("apiVersion") or "")
        if api_version not in API_VERSIONS:
            raise ConfigError(f"{where}: exec apiVersion {api_version!r} is not supported "
                              f"(use {' or '.join(API_VERSIONS)})")
        command = os.path.expanduser(str(spec["command"]))
        # As kubectl: a command with a directory part is relative to the kubeconfig's directory;
        # a bare name is looked up on $PATH.
        if os.sep in command and not os.path.isabs(command):
            command = str(directory / command)
        env: dict[str, str] = {}
        for item in spec.get("env") or []:
            if not isinstance(item, Mapping) or "name" not in item:
                raise ConfigError(f"{where}: an exec env entry has no name")
            env[str(item["name"])] = str(item.get("value", ""))
        args = [str(a) for a in spec.get("args") or []]
        cluster = {"server": server} if spec.get("provideClusterInfo") else None
        return cls([command, *args], env, api_version=api_version, where=where, write_private=write_private,
                   static_cert=static_cert, install_hint=str(spec.get("installHint") or ""), cluster=cluster)

    def authorization(self) -> str | None:
        return self._current().authorization

    def client_cert(self) -> tuple[str, str] | None:
        return self._current().cert or self._static_cert

    def _current(self) -> _Issued:
        with self._lock:
            issued = self._issued
            if issued is None or (issued.expires is not None and datetime.now(UTC) >= issued.expires):
                issued = self._issued = self._run()
            return issued

    def _run(self) -> _Issued:
        request: dict[str, Any] = {"apiVersion": self._api_version, "kind": "ExecCredential",
                                   "spec": {"interactive": False}}
        if self._cluster is not None:
            request["spec"]["cluster"] = dict(self._cluster)
        env = {**os.environ, **self._env, "KUBERNETES_EXEC_INFO": json.dumps(request)}
        name = self._argv[0]
        try:
            done = subprocess.run(self._argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  check=False)
        except OSError as exc:
            hint = f"; {self._install_hint.strip()}" if self._install_hint.strip() else ""
            raise ConfigError(f"{self._where}: cannot run exec plugin {name}: {exc.strerror}{hint}") from exc
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            said = f": {lines[-1].strip()}" if lines else ""
            raise ConfigError(f"{self._where}: exec plugin {name} failed (exit status {done.returncode}){said}")
        return self._parse(done.stdout, name)

    def _parse(self, stdout: bytes, name: str) -> _Issued:
        # Messages here never quote the output: it holds the credential.
        problem = f"{self._where}: exec plugin {name} did not print a valid ExecCredential"
        try:
            answer = json.loads(stdout)
        except ValueError as exc:
            raise ConfigError(f"{problem} (not JSON)") from exc
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise ConfigError(f"{problem} (kind is not ExecCredential)")
        if answer.get("apiVersion") != self._api_version:
            raise ConfigError(f"{problem} (apiVersion is not {self._api_version})")
        status = answer.get("status")
        if not isinstance(status, dict):
            raise ConfigError(f"{problem} (no status)")
        expires = None
        if status.get("expirationTimestamp"):
            try:
                expires = datetime.fromisoformat(str(status["expirationTimestamp"]))
            except ValueError as exc:
                raise ConfigError(f"{problem} (expirationTimestamp is not RFC 3339)") from exc
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
        token = status.get("token")
        cert_data, key_data = status.get("clientCertificateData"), status.get("clientKeyData")
        if bool(cert_data) != bool(key_data):
            raise ConfigError(f"{problem} (clientCertificateData and clientKeyData come together)")
        if not token and not cert_data:
            raise ConfigError(f"{problem} (neither a token nor a client certificate)")
        cert = None
        if cert_data and key_data:
            cert = (self._write_private(str(cert_data).encode(), ".crt"),
                    self._write_private(str(key_data).encode(), ".key"))
        return _Issued(f"Bearer {token}" if token else None, cert, expires)
