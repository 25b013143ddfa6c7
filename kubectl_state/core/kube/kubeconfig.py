"""Reading kubeconfig files as kubectl does, into the few settings one API connection needs.

Our own reader instead of the official client's loader: importing that package costs half a
second of CPU per run, which a short export pays in full. What is covered is what users'
kubeconfigs hold: $KUBECONFIG lists merged (the first file to name a cluster, user or context
wins), relative paths resolved against the file that wrote them, inline certificate data,
tokens and token files, basic auth and exec credential plugins (exec_credential.py).
"""

from __future__ import annotations

import atexit
import base64
import binascii
import contextlib
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from kubectl_state.core.errors import ConfigError
from kubectl_state.core.kube.exec_credential import ExecPlugin


class Credentials(Protocol):
    """Where a request's identity comes from; asked before every request, from any thread."""

    def authorization(self) -> str | None:
        """The Authorization header's value, or None."""

    def client_cert(self) -> tuple[str, str] | None:
        """(certificate file, key file) to present, or None."""


@dataclass(frozen=True)
class StaticCredentials:
    """A token, basic auth or a client certificate written in the kubeconfig itself."""

    header: str | None = None
    cert: tuple[str, str] | None = None

    def authorization(self) -> str | None:
        return self.header

    def client_cert(self) -> tuple[str, str] | None:
        return self.cert


class TokenFileCredentials:
    """A bearer token read from `tokenFile`, re-read when the file changes (projected
    service account tokens are rotated in place), as client-go does."""

    def __init__(self, path: str, cert: tuple[str, str] | None) -> None:
        self._path = path
        self._cert = cert
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._token = ""
        self.authorization()  # an unreadable file is a configuration error now, not mid-export

    def authorization(self) -> str | None:
        with self._lock:
            try:
                stat = os.stat(self._path)
                if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                    self._token = Path(self._path).read_text(encoding="utf-8").strip()
                    self._stamp = (stat.st_mtime_ns, stat.st_size)
            except OSError as exc:
                raise ConfigError(f"cannot read the kubeconfig's tokenFile {self._path}: {exc.strerror}") from exc
            return f"Bearer {self._token}" if self._token else None

    def client_cert(self) -> tuple[str, str] | None:
        return self._cert


class PrivateFiles:
    """Inline certificate and key data written to 0600 temporary files (requests and ssl only
    take paths), removed on close() and, as a backstop, when the process exits."""

    _live: set[str] = set()
    _live_lock = threading.Lock()

    def __init__(self) -> None:
        self._paths: list[str] = []

    def write(self, data: bytes, suffix: str) -> str:
        # mkstemp creates the file 0600 before any byte is written: never readable by others.
        fd, path = tempfile.mkstemp(prefix="kubectl-state-", suffix=suffix)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        with self._live_lock:
            self._live.add(path)
        self._paths.append(path)
        return path

    def remove(self) -> None:
        while self._paths:
            path = self._paths.pop()
            with self._live_lock:
                self._live.discard(path)
            _unlink(path)

    @classmethod
    def remove_all(cls) -> None:
        with cls._live_lock:
            paths, cls._live = list(cls._live), set()
        for path in paths:
            _unlink(path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


atexit.register(PrivateFiles.remove_all)


@dataclass
class KubeConfiguration:
    """What one connection to one API server needs, resolved from a kubeconfig context."""

    server: str
    #: True (the system's CAs), a CA bundle path, or False (insecure-skip-tls-verify).
    verify: bool | str
    credentials: Credentials
    #: The context's namespace, None when it names none.
    namespace: str | None = None
    #: tls-server-name: the name the server's certificate is checked against, and sent as SNI.
    tls_server_name: str | None = None
    context: str = ""
    files: PrivateFiles = field(default_factory=PrivateFiles)

    def close(self) -> None:
        self.files.remove()


@dataclass
class _Entry:
    """One named cluster, user or context, with the directory of the file that defined it."""

    body: Mapping[str, Any]
    directory: Path


@dataclass
class _Merged:
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str | None = None
    sources: list[str] = field(default_factory=list)


def kubeconfig_files(explicit: str | None) -> list[Path]:
    """The files to merge, in precedence order: an explicit path, else $KUBECONFIG, else ~/.kube/config."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"kubeconfig {explicit} does not exist or is not a file")
        return [path]
    listed = os.environ.get("KUBECONFIG", "")
    if listed.strip():
        # kubectl skips entries that do not exist; only the ones it can read count.
        paths = [Path(p) for p in dict.fromkeys(listed.split(os.pathsep)) if p]
        found = [p for p in paths if p.exists()]
        if not found:
            raise ConfigError(f"none of the files in $KUBECONFIG exist: {listed}")
        return found
    default = Path.home() / ".kube" / "config"
    if not default.exists():
        raise ConfigError(f"no kubeconfig: give --kubeconfig, set $KUBECONFIG or create {default}")
    return [default]


def _read(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"kubeconfig {path} is not UTF-8 text") from exc
    try:
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path} is not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"kubeconfig {path} is not a mapping (a kubeconfig is a YAML object)")
    return document


def _merge(paths: list[Path]) -> _Merged:
    merged = _Merged()
    for path in paths:
        document = _read(path)
        merged.sources.append(str(path))
        directory = path.resolve().parent
        for key, section, inner in (("clusters", merged.clusters, "cluster"), ("users", merged.users, "user"),
                                    ("contexts", merged.contexts, "context")):
            items = document.get(key) or []
            if not isinstance(items, list):
                raise ConfigError(f"kubeconfig {path}: '{key}' is not a list")
            for item in items:
                if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                    raise ConfigError(f"kubeconfig {path}: an entry of '{key}' has no name")
                body = item.get(inner) or {}
                if not isinstance(body, Mapping):
                    raise ConfigError(f"kubeconfig {path}: {inner} {item['name']!r} is not a mapping")
                section.setdefault(item["name"], _Entry(body, directory))
        current = document.get("current-context")
        if merged.current_context is None and isinstance(current, str) and current:
            merged.current_context = current
    return merged


def _path(value: Any, directory: Path) -> str:
    """A file named in a kubeconfig: relative paths are relative to that kubeconfig's directory."""
    expanded = os.path.expanduser(str(value))
    return expanded if os.path.isabs(expanded) else str(directory / expanded)


def _data(value: Any, what: str, where: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}: {what} is not valid base64") from exc


def _pem(body: Mapping[str, Any], key: str, directory: Path, files: PrivateFiles, where: str) -> str | None:
    """The path of `key` (a file) or of `key`-data written to a private temporary file."""
    if body.get(f"{key}-data"):
        return files.write(_data(body[f"{key}-data"], f"{key}-data", where), ".pem")
    if body.get(key):
        path = _path(body[key], directory)
        if not os.path.isfile(path):
            raise ConfigError(f"{where}: {key} {path} does not exist")
        return path
    return None


def load_kubeconfig(kubeconfig: str | None = None, context: str | None = None) -> KubeConfiguration:
    """The connection settings of `context` (default: the current context) in `kubeconfig`
    (default: $KUBECONFIG, then ~/.kube/config). TLS verification follows the kubeconfig."""
    merged = _merge(kubeconfig_files(kubeconfig))
    files_named = ", ".join(merged.sources)
    name = context or merged.current_context
    if not name:
        raise ConfigError(f"kubeconfig {files_named} has no current-context; pass --context")
    if name not in merged.contexts:
        raise ConfigError(f"context {name!r} is not in kubeconfig {files_named}")
    ctx = merged.contexts[name].body
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not cluster_name or cluster_name not in merged.clusters:
        raise ConfigError(f"cluster {cluster_name!r} of context {name!r} is not in kubeconfig {files_named}")
    # A context without a user is anonymous; a named user that is missing is a mistake.
    if user_name and user_name not in merged.users:
        raise ConfigError(f"user {user_name!r} of context {name!r} is not in kubeconfig {files_named}")
    files = PrivateFiles()
    try:
        cluster = merged.clusters[cluster_name]
        verify, server, tls_server_name = _cluster(cluster, f"cluster {cluster_name!r}", files)
        user = merged.users[user_name] if user_name else _Entry({}, cluster.directory)
        credentials = _credentials(user, f"user {user_name!r}", files, server)
    except BaseException:
        files.remove()
        raise
    namespace = ctx.get("namespace")
    return KubeConfiguration(server=server, verify=verify, credentials=credentials,
                             namespace=str(namespace) if namespace else None,
                             tls_server_name=tls_server_name, context=name, files=files)


def _cluster(entry: _Entry, where: str, files: PrivateFiles) -> tuple[bool | str, str, str | None]:
    body = entry.body
    server = str(body.get("server") or "")
    if not server:
        raise ConfigError(f"{where} in the kubeconfig has no server")
    insecure = bool(body.get("insecure-skip-tls-verify"))
    ca = _pem(body, "certificate-authority", entry.directory, files, where)
    if insecure and ca:
        # kubectl refuses this pair too: it is unclear which one the user meant.
        raise ConfigError(f"{where}: certificate-authority and insecure-skip-tls-verify cannot both be set")
    if "://" not in server:
        # client-go's default when the scheme is left out: https as soon as TLS is configured.
        server = ("https://" if insecure or ca else "http://") + server
    tls_server_name = body.get("tls-server-name")
    verify: bool | str = False if insecure else (ca or True)
    return verify, server.rstrip("/"), str(tls_server_name) if tls_server_name else None


def _credentials(entry: _Entry, where: str, files: PrivateFiles, server: str) -> Credentials:
    body = entry.body
    if body.get("auth-provider"):
        provider = body["auth-provider"].get("name", "?") if isinstance(body["auth-provider"], Mapping) else "?"
        raise ConfigError(f"{where} uses auth-provider {provider!r}, which is not supported (kubectl dropped it "
                          "too); use an exec credential plugin instead")
    cert_file = _pem(body, "client-certificate", entry.directory, files, where)
    key_file = _pem(body, "client-key", entry.directory, files, where)
    if bool(cert_file) != bool(key_file):
        raise ConfigError(f"{where}: a client certificate needs both client-certificate(-data) and client-key(-data)")
    cert = (cert_file, key_file) if cert_file and key_file else None
    if body.get("exec"):
        return ExecPlugin.from_kubeconfig(body["exec"], entry.directory, where, write_private=files.write,
                                          server=server, static_cert=cert)
    if body.get("token"):
        return StaticCredentials(f"Bearer {body['token']}", cert)
    if body.get("tokenFile"):
        return TokenFileCredentials(_path(body["tokenFile"], entry.directory), cert)
    if body.get("username") and body.get("password"):
        pair = f"{body['username']}:{body['password']}".encode()
        return StaticCredentials(f"Basic {base64.b64encode(pair).decode()}", cert)
    return StaticCredentials(None, cert)
