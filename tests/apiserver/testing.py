"""Small helpers for API-level tests: real kubectl and the Python client, both driven by a
kubeconfig only (so the same tests run against a real cluster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client, config, dynamic

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def kubectl(
    kubeconfig: str, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def kubectl_json(kubeconfig: str, *args: str) -> Any:
    return json.loads(kubectl(kubeconfig, *args, "-o", "json").stdout)


def manifests(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def api_client(kubeconfig: str) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)
    return api


def dynamic_client(kubeconfig: str) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api_client(kubeconfig))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy (a real cluster does some things asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def raw_request(
    kubeconfig: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    params: list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    """One request as the kubeconfig's user, without client-side typing: (status, decoded JSON body).

    Credentials come from the kubernetes client's kubeconfig loader, so tokens, client
    certificates and CA bundles work as they do for kubectl.
    """
    import requests

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg, persist_config=False)
    headers = {"Accept": "application/json", "Content-Type": content_type}
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if auth:
        headers["Authorization"] = auth if auth.lower().startswith("bearer ") else f"Bearer {auth}"
    cert: tuple[str, str] | str | None = None
    if cfg.cert_file:
        cert = (cfg.cert_file, cfg.key_file) if cfg.key_file else cfg.cert_file
    data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    response = requests.request(
        method,
        cfg.host + path,
        params=params,
        data=data,
        headers=headers,
        verify=cfg.ssl_ca_cert if cfg.verify_ssl and cfg.ssl_ca_cert else cfg.verify_ssl,
        cert=cert,
        timeout=30,
    )
    try:
        decoded = response.json() if response.content else None
    except ValueError:
        decoded = response.text
    return response.status_code, decoded
