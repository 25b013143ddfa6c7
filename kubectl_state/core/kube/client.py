"""Talking to a Kubernetes API server: kubeconfig in, JSON over HTTPS out, typed errors back.

The kubeconfig is read by our own reader (kubeconfig.py: contexts, exec credential plugins,
token files, client certificates behave as for kubectl); the requests themselves go
through one `requests.Session`, so that lists can be paged, streamed and run concurrently
over pooled connections, and every failure becomes one of the core's errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import requests
import requests.adapters

from kubectl_state.core.errors import (
    ApiError,
    ConnectionFailed,
    OperationTimeout,
    warn_tls_verification_off,
)
from kubectl_state.core.kube.kubeconfig import KubeConfiguration, load_kubeconfig

#: (connect, read) seconds. Lists of large resources may take a while to start answering.
DEFAULT_TIMEOUT = (10.0, 120.0)
#: For informational calls such as /version.
QUICK_TIMEOUT = (5.0, 10.0)


class _ServerNameAdapter(requests.adapters.HTTPAdapter):
    """Checks the server's certificate against (and sends as SNI) the kubeconfig's
    tls-server-name instead of the host in the URL."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        self._server_name = server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self._server_name
        super().init_poolmanager(*args, **kwargs)


class KubeClient:
    """JSON requests against one API server. Thread-safe: export lists resources concurrently."""

    def __init__(self, configuration: KubeConfiguration, *, pool_size: int = 16) -> None:
        self.configuration = configuration
        self.server = configuration.server.rstrip("/")
        self._session = requests.Session()
        adapter_options: dict[str, Any] = {"pool_connections": 4, "pool_maxsize": pool_size, "max_retries": 0}
        adapter = (_ServerNameAdapter(configuration.tls_server_name, **adapter_options)
                   if configuration.tls_server_name else requests.adapters.HTTPAdapter(**adapter_options))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        # Passed with every request, not set on the session: requests lets $REQUESTS_CA_BUNDLE
        # override a session's verify, which would replace the kubeconfig's CA with the system's.
        self._verify: bool | str = configuration.verify
        if configuration.verify is False:
            warn_tls_verification_off(self.server, "insecure-skip-tls-verify in the kubeconfig")

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None, **kwargs: Any) -> KubeClient:
        return cls(load_kubeconfig(kubeconfig, context), **kwargs)

    def close(self) -> None:
        self._session.close()
        # Inline certificate data lives in temporary files until the client is done.
        self.configuration.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "kubectl-state"}
        if content_type:
            headers["Content-Type"] = content_type
        # Thread-safe: token files and exec plugins refresh under their own locks.
        authorization = self.configuration.credentials.authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """One request; the decoded JSON answer, or an ApiError carrying the server's Status."""
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            content_type = content_type or "application/json"
        url = self.server + path
        try:
            response = self._session.request(method, url, params=params, data=data, verify=self._verify,
                                             headers=self._headers(content_type), timeout=timeout,
                                             cert=self.configuration.credentials.client_cert())
        except requests.Timeout as exc:
            raise OperationTimeout(f"{self.server} did not answer {method} {path} in time",
                                   endpoint=self.server) from exc
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach {self.server}: {_root_cause(exc)}", endpoint=self.server) from exc
        if response.status_code >= 400:
            raise api_error_from_response(response)
        if not response.content:
            return {}
        try:
            decoded = response.json()
        except ValueError as exc:
            raise ApiError({"code": response.status_code, "reason": "BadResponse",
                            "message": f"{method} {path}: the server's answer is not JSON"}) from exc
        if not isinstance(decoded, dict):
            raise ApiError({"code": response.status_code, "reason": "BadResponse",
                            "message": f"{method} {path}: expected a JSON object"})
        return decoded

    def get(self, path: str, *, params: Mapping[str, str | int] | None = None,
            timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> dict[str, Any]:
        return self.request("GET", path, params=params, timeout=timeout)

    def server_version(self) -> dict[str, str]:
        """The API server's /version document (gitVersion, platform, ...)."""
        return {str(k): str(v) for k, v in self.get("/version", timeout=QUICK_TIMEOUT).items()}


def api_error_from_response(response: requests.Response) -> ApiError:
    """The Status the server sent, or one made up from the HTTP status when it sent none."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return ApiError(body)
    text = response.reason or "error"
    return ApiError({"kind": "Status", "code": response.status_code, "reason": text,
                     "message": f"HTTP {response.status_code} {text} for {response.request.method} "
                                f"{response.request.path_url.split('?')[0]}"})


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 failure, without the URL noise around it."""
    inner: BaseException = exc
    while True:
        nxt = inner.__cause__ or inner.__context__ or (inner.args[0] if inner.args and
                                                       isinstance(inner.args[0], BaseException) else None)
        if nxt is None or nxt is inner:
            break
        inner = nxt
    reason = getattr(inner, "reason", None)
    return str(reason or inner)
