"""HAProxy as the fixed API endpoint: one backend's servers, changed at runtime and on disk.

Two halves, both pure socket or text logic with no Ansible or CLI in them:

- `RuntimeAPI` speaks HAProxy's runtime API over its stats socket (which must be declared
  with `level admin` to accept changes): list a backend's servers with their admin state,
  add one, set its address or state, delete it.
- `plan_config`/`write_config` keep the configuration file's backend section in step. A
  server added at runtime is gone after the next restart or reload, so the file is what
  makes the endpoint's membership survive the endpoint host.

`ensure_server` puts both together for one server and one wanted state (present, drained,
absent), idempotently, with a check mode that sends nothing but reads.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from kubectl_state.core.errors import (
    ConfigError,
    ConnectionFailed,
    InvalidInputError,
    KubectlStateError,
    OperationTimeout,
    ServerError,
)

WantedState = Literal["present", "drained", "absent"]
AdminState = Literal["ready", "drain", "maint"]

#: HAProxy's srv_admin bits (include/haproxy/server-t.h): forced, inherited, configured and
#: resolution-failure maintenance; forced and inherited drain.
_ADMF_MAINT = 0x01 | 0x02 | 0x04 | 0x20
_ADMF_DRAIN = 0x08 | 0x10

#: What HAProxy accepts as a proxy or server name (cfgparse's invalid_char check), which
#: also keeps anything that could split a runtime command out of it.
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
#: Words that start a new section of haproxy.cfg (a line beginning at column 0 with one).
_SECTIONS = frozenset({
    "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist",
    "mailers", "program", "http-errors", "ring", "cache", "fcgi-app", "crt-store", "log-forward",
})
#: Default seconds to wait for the connections of a server in maintenance to end before it
#: can be deleted (HAProxy refuses to delete a server that still has some).
DEFAULT_DRAIN_WAIT = 30.0


class HAProxyError(ServerError):
    """HAProxy's runtime API answered and refused; `message` quotes HAProxy's answer."""

    def __init__(self, message: str, *, answer: str = "") -> None:
        super().__init__(message)
        self.answer = answer


def check_name(kind: str, value: str) -> str:
    if not value or not _NAME.match(value):
        raise InvalidInputError(
            f"invalid HAProxy {kind} name {value!r}: use letters, digits and '_', '.', ':', '-' only"
        )
    return value


def split_address(address: str) -> tuple[str, int]:
    """("10.0.0.5", 6443) from "10.0.0.5:6443", "[fd00::5]:6443" or "api-1.example:6443"."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise InvalidInputError(f"invalid server address {address!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise InvalidInputError(f"invalid server address {address!r}: write an IPv6 address as [ADDRESS]:PORT")
    port = int(port_text)
    if not 0 < port < 65536:
        raise InvalidInputError(f"invalid server address {address!r}: port {port} is out of range")
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise InvalidInputError(f"invalid server address {address!r}")
    return host, port


def haproxy_address(host: str, port: int) -> str:
    """The address as HAProxy reads it: IPv6 needs its `ipv6@` prefix, brackets are not understood."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"ipv6@{host}:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


@dataclass(frozen=True)
class ServerState:
    """One server of a backend as `show servers state` reports it."""

    name: str
    host: str
    port: int
    admin: AdminState
    #: srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
    operational: int
    fqdn: str | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def matches(self, host: str, port: int) -> bool:
        """Whether the server points at host:port; a host name matches what it resolves to."""
        if port != self.port:
            return False
        if host in (self.host, self.fqdn):
            return True
        try:
            ipaddress.ip_address(host)
            return False  # a literal that differs
        except ValueError:
            pass
        try:
            resolved = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
        except OSError:
            return False
        return self.host in resolved

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "address": self.address, "state": self.admin,
                "up": self.operational == 2}


def _admin_state(bits: int) -> AdminState:
    if bits & _ADMF_MAINT:
        return "maint"
    if bits & _ADMF_DRAIN:
        return "drain"
    return "ready"


def parse_servers_state(text: str, backend: str) -> list[ServerState]:
    """Servers of `backend` from the answer to `show servers state <backend>` (format 1)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "1":
        detail = lines[0].strip() if lines else "an empty answer"
        if detail.rstrip(".") in ("Can't find backend", "No such backend"):
            raise HAProxyError(f"HAProxy has no backend named {backend!r}", answer=text)
        raise HAProxyError(f"unexpected answer to 'show servers state {backend}': {detail}", answer=text)
    header: list[str] = []
    servers: list[ServerState] = []
    for line in lines[1:]:
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        values = line.split()
        row = dict(zip(header, values, strict=False))
        try:
            if row.get("be_name") != backend:
                continue
            fqdn = row.get("srv_fqdn")
            servers.append(ServerState(
                name=row["srv_name"],
                host=row["srv_addr"],
                port=int(row["srv_port"]),
                admin=_admin_state(int(row["srv_admin_state"])),
                operational=int(row["srv_op_state"]),
                fqdn=fqdn if fqdn and fqdn != "-" else None,
            ))
        except (KeyError, ValueError):
            raise HAProxyError(f"cannot read HAProxy's server state line {line!r}", answer=text) from None
    return servers


class RuntimeAPI:
    """HAProxy's runtime API on one stats socket: a UNIX socket path, or HOST:PORT for TCP.

    Each command opens its own connection, as HAProxy's non-interactive mode expects: it
    answers one command and closes.
    """

    def __init__(self, socket_path: str, *, timeout: float = 10.0) -> None:
        if not socket_path:
            raise InvalidInputError("the HAProxy stats socket is not set")
        self.socket_path = socket_path
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        path = self.socket_path
        sock: socket.socket
        if path.startswith("/") or path.startswith(".") or ":" not in path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = path
        else:
            host, port = split_address(path)
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            target = (host, port)
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError as exc:
            sock.close()
            reason = exc.strerror or str(exc)
            raise ConnectionFailed(
                f"cannot reach HAProxy's stats socket {path}: {reason} (is HAProxy running with "
                f"'stats socket {path} level admin'?)",
                endpoint=path,
            ) from None
        return sock

    def command(self, line: str) -> str:
        """Send one command and return HAProxy's whole answer."""
        if "\n" in line or ";" in line:
            raise InvalidInputError(f"refusing to send {line!r}: one runtime command at a time")
        with contextlib.closing(self._connect()) as sock:
            try:
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except TimeoutError:
                raise OperationTimeout(
                    f"HAProxy's stats socket {self.socket_path} did not answer {line.split(maxsplit=1)[0]!r} within "
                    f"{self.timeout:g}s", endpoint=self.socket_path,
                ) from None
            except OSError as exc:
                raise ConnectionFailed(
                    f"lost HAProxy's stats socket {self.socket_path}: {exc.strerror or exc}", endpoint=self.socket_path
                ) from None
        answer = b"".join(chunks).decode("utf-8", "replace")
        if answer.strip() == "Permission denied":
            raise HAProxyError(
                f"HAProxy refuses {line.split(maxsplit=1)[0]!r} on {self.socket_path}: permission denied (changes need "
                "the stats socket declared with 'level admin')", answer=answer,
            )
        return answer

    def _change(self, line: str, ok: Sequence[str] = ("",)) -> str:
        """Send a changing command; its answer must start with one of `ok` ("" : empty answer)."""
        answer = self.command(line)
        text = answer.strip()
        if any(text.startswith(expected) if expected else not text for expected in ok):
            return text
        first = text.splitlines()[0] if text else "no answer"
        raise HAProxyError(f"HAProxy refused '{line}': {first}", answer=answer)

    # --- reads ---------------------------------------------------------------------------

    def servers(self, backend: str) -> list[ServerState]:
        check_name("backend", backend)
        return parse_servers_state(self.command(f"show servers state {backend}"), backend)

    # --- changes -------------------------------------------------------------------------

    def add_server(self, backend: str, name: str, host: str, port: int, options: Sequence[str] = ()) -> None:
        """Add a server; like every server added at runtime it starts in maintenance."""
        words = " ".join(options)
        line = f"add server {check_name('backend', backend)}/{check_name('server', name)} {haproxy_address(host, port)}"
        self._change(f"{line} {words}".rstrip(), ok=("New server registered",))
        # Checks of a server added at runtime start disabled, whatever its keywords say.
        if "check" in options:
            self._change(f"enable health {backend}/{name}")
        if "agent-check" in options:
            self._change(f"enable agent {backend}/{name}")

    def set_address(self, backend: str, name: str, host: str, port: int) -> None:
        ref = f"{check_name('backend', backend)}/{check_name('server', name)}"
        self._change(f"set server {ref} addr {host} port {port}",
                     ok=("IP changed", "port changed", "no need to change"))

    def set_state(self, backend: str, name: str, state: AdminState) -> None:
        self._change(f"set server {check_name('backend', backend)}/{check_name('server', name)} state {state}")

    def shutdown_sessions(self, backend: str, name: str) -> None:
        self._change(f"shutdown sessions server {check_name('backend', backend)}/{check_name('server', name)}")

    def delete_server(self, backend: str, name: str, *, wait: float = DEFAULT_DRAIN_WAIT, poll: float = 0.5) -> None:
        """Delete a server that is in maintenance, waiting up to `wait` seconds for its connections to end."""
        line = f"del server {check_name('backend', backend)}/{check_name('server', name)}"
        deadline = time.monotonic() + wait
        while True:
            try:
                self._change(line, ok=("Server deleted",))
                return
            except HAProxyError as exc:
                if "still has" not in exc.answer or time.monotonic() >= deadline:
                    if "still has" in exc.answer:
                        raise OperationTimeout(
                            f"server {backend}/{name} still had connections after {wait:g}s, so HAProxy would not "
                            "delete it; wait longer, or close them (shutdown_sessions)", endpoint=self.socket_path,
                        ) from None
                    raise
            time.sleep(poll)


# --- the configuration file -------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChange:
    path: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def server_line(name: str, host: str, port: int, options: Sequence[str] = ()) -> str:
    """The `server` keyword line for the configuration file (no indentation)."""
    return " ".join(["server", name, haproxy_address(host, port), *options])


def _section_bounds(lines: list[str], backend: str) -> tuple[int, int]:
    """(first body line, end) of the `backend NAME` (or `listen NAME`) section."""
    start = -1
    for i, line in enumerate(lines):
        words = line.split()
        if not words or line[:1].isspace() or words[0] not in _SECTIONS:
            continue
        if start >= 0:
            return start, i
        if words[0] in ("backend", "listen") and len(words) > 1 and words[1] == backend:
            start = i + 1
    if start < 0:
        raise ConfigError(f"the HAProxy configuration has no 'backend {backend}' (or 'listen {backend}') section")
    return start, len(lines)


def config_servers(text: str, backend: str) -> dict[str, str]:
    """{server name: its line, stripped} of one backend section of a configuration."""
    lines = text.splitlines()
    start, end = _section_bounds(lines, backend)
    found: dict[str, str] = {}
    for line in lines[start:end]:
        words = line.split()
        if len(words) >= 2 and words[0] == "server":
            found[words[1]] = line.strip()
    return found


def edit_config(text: str, backend: str, name: str, line: str | None) -> str:
    """`text` with server `name` of `backend` set to `line` (None: removed).

    The server's own line is replaced in place, keeping its indentation; a new one goes
    after the section's last server (or its last non-blank line), indented like its
    neighbours. Comments and everything else stay as they are.
    """
    lines = text.splitlines(keepends=True)
    start, end = _section_bounds([ln.rstrip("\r\n") for ln in lines], backend)
    existing = [i for i in range(start, end) if lines[i].split()[:2] == ["server", name]]
    newline = "\r\n" if text.endswith("\r\n") else "\n"
    if existing:
        first = existing[0]
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        for i in reversed(existing[1:]):
            del lines[i]
        if line is None:
            del lines[first]
        else:
            lines[first] = f"{indent}{line}{newline}"
        return "".join(lines)
    if line is None:
        return text
    body = [i for i in range(start, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    servers = [i for i in body if lines[i].split()[0] == "server"]
    anchor = servers[-1] if servers else (body[-1] if body else start - 1)
    model = lines[anchor] if anchor >= start else ""
    indent = model[: len(model) - len(model.lstrip())] if model.strip() else "    "
    if anchor >= 0 and not lines[anchor].endswith(("\n", "\r")):
        lines[anchor] += newline
    lines.insert(anchor + 1, f"{indent}{line}{newline}")
    return "".join(lines)


def read_config(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the HAProxy configuration {path}: {exc.strerror}") from None


def write_config(path: str, text: str, *, validate: str | None = None) -> None:
    """Replace the configuration file atomically, keeping its mode and owner.

    `validate` is a command with `%s` for the new file (e.g. `haproxy -c -f %s`); the file
    is replaced only when it exits 0, so a bad edit never reaches the next reload.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the HAProxy configuration {path}: {exc.strerror}") from None
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, st.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):
            os.chown(temp, st.st_uid, st.st_gid)
        if validate:
            _validate(validate, temp, path)
        os.replace(temp, path)
    except OSError as exc:
        raise KubectlStateError(f"cannot write the HAProxy configuration {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _validate(command: str, candidate: str, path: str) -> None:
    if "%s" not in command:
        raise InvalidInputError(f"the validation command {command!r} needs %s where the file goes")
    argv = [word.replace("%s", candidate) for word in command.split()]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KubectlStateError(f"cannot run the validation command {argv[0]}: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().replace(candidate, path)
        raise ConfigError(f"the edited HAProxy configuration {path} does not validate, left unchanged: {detail}")


# --- one server, end to end ------------------------------------------------------------------


@dataclass
class ServerChange:
    """What ensure_server did (or, in check mode, would do)."""

    backend: str
    name: str
    before: list[ServerState]
    after: list[dict[str, object]]
    #: The runtime commands sent (or that would be sent), in order.
    commands: list[str] = field(default_factory=list)
    config: ConfigChange | None = None

    @property
    def changed(self) -> bool:
        return bool(self.commands) or (self.config is not None and self.config.changed)

    @property
    def server(self) -> dict[str, object] | None:
        return next((s for s in self.after if s["name"] == self.name), None)


def ensure_server(
    api: RuntimeAPI,
    backend: str,
    name: str,
    state: WantedState,
    *,
    address: str | None = None,
    options: Sequence[str] | None = None,
    config_file: str | None = None,
    validate: str | None = None,
    drain_wait: float = DEFAULT_DRAIN_WAIT,
    shutdown_sessions: bool = False,
    check_mode: bool = False,
) -> ServerChange:
    """Bring server `name` of `backend` to `state`, at runtime and (with `config_file`) on disk.

    present: in the backend at `address`, taking traffic. drained: in the backend at
    `address`, taking no new connections (existing ones go on). absent: not in the backend;
    it is put in maintenance first and deleted once its connections have ended (or at once
    with `shutdown_sessions`). Drain is a runtime state only: the configuration file records
    membership and address, so a drained server is back in rotation after a reload.

    `options` are the server keywords (`check`, `inter 2s` as separate words) of a server
    being added and of its configuration line; None keeps those the configuration file
    already has for it (none for a new server), so a drain does not drop them.
    """
    check_name("backend", backend)
    check_name("server", name)
    target: tuple[str, int] | None = None
    if state != "absent":
        if not address:
            raise InvalidInputError(f"server {backend}/{name} needs an address (HOST:PORT) to be {state}")
        target = split_address(address)
    for word in options or ():
        if not word or any(c.isspace() for c in word) or word in (";", "#"):
            raise InvalidInputError(f"invalid server option {word!r}")

    # The file is checked before anything changes, so a missing section fails with nothing done.
    config: ConfigChange | None = None
    if config_file:
        before_text = read_config(config_file)
        if options is None:
            kept = config_servers(before_text, backend).get(name, "").split()[3:]
            options = kept
        line = None if target is None else server_line(name, target[0], target[1], options)
        after_text = edit_config(before_text, backend, name, line)
        config = ConfigChange(config_file, before_text, after_text)

    options = tuple(options or ())
    servers = api.servers(backend)
    current = next((s for s in servers if s.name == name), None)
    wanted_admin: AdminState = "drain" if state == "drained" else "ready"
    steps = _plan(f"{backend}/{name}", current, target, wanted_admin, options=options,
                  shutdown_sessions=shutdown_sessions)
    change = ServerChange(backend, name, before=servers, after=[s.to_dict() for s in servers],
                          commands=[text for _, text in steps], config=config)
    if check_mode:
        change.after = _predicted(servers, name, target, wanted_admin)
        return change

    for kind, _ in steps:
        _apply(api, backend, name, kind, target, options, drain_wait)
    if steps:
        change.after = [s.to_dict() for s in api.servers(backend)]
    if config is not None and config.changed:
        write_config(config.path, config.after, validate=validate)
    return change


def _apply(api: RuntimeAPI, backend: str, name: str, kind: str, target: tuple[str, int] | None,  # noqa: PLR0917
           options: Sequence[str], drain_wait: float) -> None:
    if kind == "add" and target is not None:
        api.add_server(backend, name, target[0], target[1], options)
    elif kind == "addr" and target is not None:
        api.set_address(backend, name, target[0], target[1])
    elif kind == "ready":
        api.set_state(backend, name, "ready")
    elif kind == "drain":
        api.set_state(backend, name, "drain")
    elif kind == "maint":
        api.set_state(backend, name, "maint")
    elif kind == "shutdown":
        api.shutdown_sessions(backend, name)
    elif kind == "del":
        api.delete_server(backend, name, wait=drain_wait)


def _plan(ref: str, current: ServerState | None, target: tuple[str, int] | None, admin: AdminState, *,
          options: Sequence[str], shutdown_sessions: bool) -> list[tuple[str, str]]:
    """The runtime steps from `current` to the wanted state: (kind, the command as sent)."""
    steps: list[tuple[str, str]] = []
    if target is not None:
        host, port = target
        if current is None:
            steps.append(("add", f"add server {ref} {haproxy_address(host, port)} {' '.join(options)}".rstrip()))
            # Every server added at runtime starts in maintenance.
            steps.append((admin, f"set server {ref} state {admin}"))
            return steps
        if not current.matches(host, port):
            steps.append(("addr", f"set server {ref} addr {host} port {port}"))
        if current.admin != admin:
            steps.append((admin, f"set server {ref} state {admin}"))
        return steps
    if current is None:
        return steps
    if current.admin != "maint":
        # HAProxy deletes only servers in maintenance; maintenance also stops new connections.
        steps.append(("maint", f"set server {ref} state maint"))
    if shutdown_sessions:
        steps.append(("shutdown", f"shutdown sessions server {ref}"))
    steps.append(("del", f"del server {ref}"))
    return steps


def _predicted(servers: list[ServerState], name: str, target: tuple[str, int] | None,
               admin: AdminState) -> list[dict[str, object]]:
    """The server list as it would be after ensure_server, for check mode's diff."""
    rows = [s.to_dict() for s in servers if s.name != name]
    if target is None:
        return rows
    current = next((s for s in servers if s.name == name), None)
    host, port = target
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if current is not None and current.matches(host, port):
        address = current.address
    row: dict[str, object] = {"name": name, "address": address, "state": admin,
                              "up": bool(current and current.operational == 2)}
    if current is None:
        rows.append(row)
        return rows
    index = next(i for i, s in enumerate(servers) if s.name == name)
    rows.insert(index, row)
    return rows
