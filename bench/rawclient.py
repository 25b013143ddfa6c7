"""The floor the benchmarks compare against: plain HTTP requests to the API server, with
nothing of kubectl-state in between. Shared by the export (paged GETs) and import (POSTs)
benchmarks, so both floors pay exactly the same per-request cost."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any


class RawClient:
    """The kubeconfig's server, CA and token, and one requests.Session per thread."""

    def __init__(self, kubeconfig: str, workdir: Path) -> None:
        import yaml

        config = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = str(cluster["server"]).rstrip("/")
        self.verify: bool | str = True
        if cluster.get("certificate-authority-data"):
            ca = workdir / "ca.crt"
            ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
            self.verify = str(ca)
        token = (config["users"][0].get("user") or {}).get("token")
        self.headers = {"Accept": "application/json", "Content-Type": "application/json",
                        **({"Authorization": f"Bearer {token}"} if token else {})}
        self._local = threading.local()

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, str | int] | None = None) -> Any:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
        data = json.dumps(body).encode() if body is not None else None
        response = session.request(method, self.server + path, params=params, data=data, headers=self.headers,
                                   verify=self.verify, timeout=120)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def get(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        return self.request("GET", path, params=params)
