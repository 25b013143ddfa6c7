"""Reaching etcd members through the JSON gateway: endpoints, TLS, tokens and failover.

Requests go to the member that answered last, then to the others in order. A request that
is safe to repeat (reads, status, member list) moves on after any failure to get an
answer; a write moves on only when its connection was refused or never established,
because a write that reached a member and lost its answer may have been applied, and
sending it again elsewhere could apply it twice (a second put bumps the revision, a
repeated txn may see its own first effect).
"""

from __future__ import annotations

import enum
import json
import os
import re
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from kubectl_state.core.errors import (
    ConnectionFailed,
    EtcdError,
    InvalidInputError,
    OperationTimeout,
    warn_tls_verification_off,
)
from kubectl_state.core.etcd.grpc_snapshot import TlsConfig
from kubectl_state.core.etcd.transport import (
    GRPC_UNAVAILABLE,
    Stream,
    Unreachable,
    decode_unary,
    is_bad_token,
    stream_lost,
    unreachable,
)
from kubectl_state.core.etcd.types import JSON


class Retry(enum.Enum):
    #: Idempotent: any failure to get an answer (or a member without a leader) moves on.
    READ = "read"
    #: Moves on only when the request never left this process (see the module docstring).
    WRITE = "write"


_VERSION_RE = re.compile(r"^(\d+)\.(\d+)")


def _api_prefix_for(version: str) -> str:
    match = _VERSION_RE.match(version)
    if not match:
        return "/v3"
    major, minor = int(match.group(1)), int(match.group(2))
    if (major, minor) >= (3, 4):
        return "/v3"
    # 3.3 serves the gateway under /v3beta only; 3.2 and older under /v3alpha.
    return "/v3beta" if (major, minor) == (3, 3) else "/v3alpha"


def normalize_endpoint(endpoint: str, default_scheme: str) -> str:
    endpoint = endpoint.strip().rstrip("/")
    if not endpoint:
        raise InvalidInputError("an etcd endpoint must not be empty")
    if "://" not in endpoint:
        # etcdctl accepts bare host:port; so do we, with TLS when TLS files were given.
        endpoint = f"{default_scheme}://{endpoint}"
    scheme = endpoint.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise InvalidInputError(f"etcd endpoint {endpoint} must use http:// or https://")
    return endpoint


class Gateway:
    """The members of one cluster and how to talk to them; shared by all calls of one EtcdClient."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ca_file: str | None,
        cert_file: str | None,
        key_file: str | None,
        username: str | None,
        password: str | None,
        timeout: float,
        verify: bool,
    ) -> None:
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e.strip()]
        tls_given = any(f is not None for f in (ca_file, cert_file, key_file))
        self.endpoints: list[str] = [normalize_endpoint(e, "https" if tls_given else "http") for e in endpoints]
        if not self.endpoints:
            raise InvalidInputError("no etcd endpoints given")
        if timeout <= 0:
            raise InvalidInputError(f"the etcd timeout must be positive, not {timeout}")
        for what, path in (("CA", ca_file), ("client certificate", cert_file), ("client key", key_file)):
            if path is not None and not os.path.isfile(path):
                raise InvalidInputError(f"the etcd {what} file {path} does not exist or is not a file")
        if key_file is not None and cert_file is None:
            raise InvalidInputError("an etcd client key needs its client certificate (cert_file)")
        if (username is None) != (password is None):
            raise InvalidInputError("etcd authentication needs both a user name and a password")
        self.timeout = float(timeout)

        session = requests.Session()
        # No proxies, .netrc or REQUESTS_CA_BUNDLE from the environment: a .netrc entry would
        # replace our Authorization header, and an HTTP proxy has no business between a
        # control-plane tool and its etcd.
        session.trust_env = False
        session.verify = ca_file if (verify and ca_file) else verify
        if not verify and any(e.startswith("https://") for e in self.endpoints):
            warn_tls_verification_off(", ".join(self.endpoints), "--insecure-skip-tls-verify", stacklevel=4)
        if cert_file is not None:
            session.cert = (cert_file, key_file) if key_file is not None else cert_file
        # Watches hold a connection each for their lifetime; leave room for them.
        adapter = HTTPAdapter(pool_connections=len(self.endpoints), pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session
        #: For the snapshot's gRPC path, which must reach the members exactly as requests does.
        self.tls = TlsConfig(ca_file, cert_file, key_file, verify)

        self._username = username
        self._password = password
        self._token: str | None = None
        self._lock = threading.Lock()
        self._preferred = 0
        self._prefixes: dict[str, str] = {}

    @property
    def username(self) -> str | None:
        return self._username

    def close(self) -> None:
        self._session.close()

    def endpoint_arg(self, endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        scheme = self.endpoints[0].split("://", 1)[0]
        return normalize_endpoint(endpoint, scheme)

    def _rotation(self) -> list[str]:
        with self._lock:
            first = self._preferred
        return self.endpoints[first:] + self.endpoints[:first]

    def _prefer(self, endpoint: str) -> None:
        if endpoint in self.endpoints:
            with self._lock:
                self._preferred = self.endpoints.index(endpoint)

    def _timeouts(self, read: float | None = None) -> tuple[float, float]:
        return (self.timeout, self.timeout if read is None else read)

    def _api_prefix(self, endpoint: str) -> str:
        """/v3 for etcd 3.4 and later (both serve it; 3.4 and 3.5 also answer /v3beta), older ones below."""
        with self._lock:
            cached = self._prefixes.get(endpoint)
        if cached is not None:
            return cached
        try:
            response = self._session.get(f"{endpoint}/version", timeout=self._timeouts())
        except requests.RequestException as exc:
            raise unreachable(endpoint, exc, before_request=True) from None
        prefix = "/v3"
        try:
            payload = response.json() if response.status_code == 200 else None
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("etcdserver"), str):
            prefix = _api_prefix_for(payload["etcdserver"])
        with self._lock:
            self._prefixes[endpoint] = prefix
        return prefix

    def _headers(self, *, with_token: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = self._token
        if with_token and token is not None:
            # etcd wants the bare token, not "Bearer <token>".
            headers["Authorization"] = token
        return headers

    def _post(
        self,
        endpoint: str,
        path: str,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        with_token: bool = True,
    ) -> JSON:
        url = f"{endpoint}{self._api_prefix(endpoint)}/{path}"
        try:
            response = self._session.post(
                url,
                data=json.dumps(body),
                headers=self._headers(with_token=with_token),
                timeout=self._timeouts(timeout),
            )
        except requests.RequestException as exc:
            raise unreachable(endpoint, exc) from None
        return decode_unary(endpoint, path, response)

    def authenticate(self, endpoint: str) -> None:
        # etcd's refusal ("authentication failed, invalid user ID or password") names neither.
        data = self._post(
            endpoint, "auth/authenticate", {"name": self._username, "password": self._password}, with_token=False
        )
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise EtcdError(f"etcd at {endpoint} accepted the credentials but sent no token", endpoint=endpoint)
        with self._lock:
            self._token = token

    def token(self, endpoint: str, *, renew: bool = False) -> str | None:
        """The auth token to send to `endpoint` (None without authentication), fetched when missing."""
        if self._username is None:
            return None
        if renew or self._token is None:
            self.authenticate(endpoint)
        return self._token

    def health(self, endpoint: str, *, timeout: float | None = None) -> tuple[bool, str]:
        """GET /health of one member (no token needed; etcd serves it to anyone it lets connect)."""
        try:
            response = self._session.get(f"{endpoint}/health", timeout=self._timeouts(timeout))
        except requests.RequestException as exc:
            return False, unreachable(endpoint, exc).reason
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return False, f"HTTP {response.status_code} without a health report"
        healthy = payload.get("health") == "true"
        # 3.5 says why in "reason"; 3.4 only answers 503 with health "false".
        reason = str(payload.get("reason") or ("" if healthy else f"HTTP {response.status_code}"))
        return healthy, reason

    def _post_authenticated(self, endpoint: str, path: str, body: Mapping[str, Any], timeout: float | None) -> JSON:
        if self._username is not None and self._token is None:
            self.authenticate(endpoint)
        try:
            return self._post(endpoint, path, body, timeout=timeout)
        except EtcdError as exc:
            if self._username is None or not is_bad_token(exc):
                raise
        # etcd checks the token before it proposes anything, so the refused request was not
        # applied and sending it again with a fresh token cannot apply it twice.
        self.authenticate(endpoint)
        return self._post(endpoint, path, body, timeout=timeout)

    def call(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        retry: Retry,
        endpoint: str | None = None,
        timeout: float | None = None,
        avoid: Collection[str] = (),
    ) -> tuple[str, JSON]:
        """POST to the first member that answers; returns (endpoint, decoded body).

        `endpoint` pins the request to one member; endpoints in `avoid` are tried last.
        """
        order = [endpoint] if endpoint is not None else self._rotation()
        if avoid:
            order = [ep for ep in order if ep not in avoid] + [ep for ep in order if ep in avoid]
        failures: list[str] = []
        lost: list[Unreachable] = []
        last_error: EtcdError | None = None
        for ep in order:
            try:
                data = self._post_authenticated(ep, path, body, timeout)
            except Unreachable as exc:
                if retry is Retry.WRITE and exc.sent:
                    raise write_outcome_unknown(exc, path) from None
                failures.append(str(exc))
                lost.append(exc)
                continue
            except EtcdError as exc:
                # "no leader", "leader changed", "request timed out": another member may do better.
                if retry is Retry.READ and exc.code == GRPC_UNAVAILABLE and endpoint is None:
                    failures.append(f"{ep}: {exc.message}")
                    last_error = exc
                    continue
                raise
            self._prefer(ep)
            return ep, data
        if not lost and last_error is not None:
            raise last_error
        detail = "; ".join(failures)
        cls = OperationTimeout if lost and all(u.timed_out for u in lost) else ConnectionFailed
        if len(order) == 1:
            raise cls(
                f"etcd at {order[0]} did not answer {path}: {lost[0].reason if lost else detail}", endpoint=order[0]
            )
        raise cls(f"no etcd endpoint answered {path} ({', '.join(order)}): {detail}")

    def open_stream(self, path: str, body: Mapping[str, Any], *, endpoint: str | None = None) -> Stream:
        """Open a server stream on the first member that answers; opening one changes nothing, so any may."""
        order = [endpoint] if endpoint is not None else self._rotation()
        lost: list[Unreachable] = []
        for ep in order:
            try:
                if self._username is not None and self._token is None:
                    self.authenticate(ep)
                url = f"{ep}{self._api_prefix(ep)}/{path}"
                response = self._session.post(
                    url, data=json.dumps(body), headers=self._headers(), timeout=self._timeouts(), stream=True
                )
            except requests.RequestException as exc:
                lost.append(unreachable(ep, exc))
                continue
            except Unreachable as exc:
                lost.append(exc)
                continue
            if response.status_code != 200:
                try:
                    decode_unary(ep, path, response)
                finally:
                    response.close()
            self._prefer(ep)
            return Stream(ep, path, response)
        detail = "; ".join(str(u) for u in lost)
        cls = OperationTimeout if all(u.timed_out for u in lost) else ConnectionFailed
        raise cls(
            f"no etcd endpoint answered {path} ({', '.join(order)}): {detail}",
            endpoint=order[0] if len(order) == 1 else None,
        )

    @staticmethod
    def first_result(stream: Stream) -> JSON:
        try:
            first = stream.next_result()
        except requests.RequestException as exc:
            raise stream_lost(unreachable(stream.endpoint, exc), stream.path) from None
        if first is None:
            raise ConnectionFailed(
                f"etcd at {stream.endpoint} ended the {stream.path} stream before answering", endpoint=stream.endpoint
            )
        return first


def write_outcome_unknown(exc: Unreachable, path: str) -> ConnectionFailed:
    cls = OperationTimeout if exc.timed_out else ConnectionFailed
    return cls(
        f"lost the answer from etcd at {exc.endpoint} to {path} ({exc.reason}); the change may or may not "
        "have been applied",
        endpoint=exc.endpoint,
    )
