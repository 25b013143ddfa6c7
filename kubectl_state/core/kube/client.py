"""Connecting to a Kubernetes API server from a kubeconfig, and translating its failures.

Every API call in the core goes through a client made here, so that kubeconfig problems,
unreachable servers and API `Status` failures all surface as the core's own errors.
"""

from __future__ import annotations

import json
import os
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from kubectl_state.core.errors import ApiError, ConfigError, ConnectionFailed, KubectlStateError

#: (connect, read) seconds for short informational calls such as /version.
QUICK_TIMEOUT = (5.0, 10.0)


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """An API client for `context` of `kubeconfig` (both default as kubectl's do).

    `kubeconfig=None` honours $KUBECONFIG and then ~/.kube/config, like kubectl.
    TLS verification follows the kubeconfig; it is never turned off here.
    """
    if kubeconfig is not None and not os.path.isfile(kubeconfig):
        raise ConfigError(f"kubeconfig {kubeconfig} does not exist or is not a file")
    configuration = k8s.Configuration()
    try:
        kube_config.load_kube_config(
            config_file=kubeconfig,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except ConfigException as exc:
        raise ConfigError(f"cannot use kubeconfig: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {exc.filename or kubeconfig}: {exc.strerror}") from exc
    # Fail fast instead of urllib3's silent retries: callers decide about retrying.
    configuration.retries = False
    return k8s.ApiClient(configuration)


def server_url(api: k8s.ApiClient) -> str:
    return str(api.configuration.host)


def translate_api_exception(exc: BaseException, *, server: str | None = None) -> KubectlStateError:
    """Map an exception from the kubernetes client to the core's error hierarchy."""
    if isinstance(exc, k8s.ApiException):
        status: dict[str, Any]
        try:
            body = json.loads(exc.body) if exc.body else {}
            status = body if isinstance(body, dict) and body.get("kind") == "Status" else {}
        except (TypeError, ValueError):
            status = {}
        if not status:
            status = {"code": exc.status, "reason": exc.reason or "", "message": f"HTTP {exc.status} {exc.reason}"}
        return ApiError(status)
    if isinstance(exc, urllib3.exceptions.HTTPError):
        where = server or "the API server"
        reason = getattr(exc, "reason", None) or exc
        return ConnectionFailed(f"cannot reach {where}: {reason}", endpoint=server)
    if isinstance(exc, KubectlStateError):
        return exc
    raise exc


def server_version(api: k8s.ApiClient) -> dict[str, str]:
    """The API server's /version document (gitVersion, platform, ...)."""
    try:
        info = k8s.VersionApi(api).get_code(_request_timeout=QUICK_TIMEOUT)
    except (k8s.ApiException, urllib3.exceptions.HTTPError) as exc:
        raise translate_api_exception(exc, server=server_url(api)) from exc
    raw = api.sanitize_for_serialization(info)
    return {str(k): str(v) for k, v in raw.items()}
