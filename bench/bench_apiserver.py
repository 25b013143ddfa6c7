"""Throughput of the Kubernetes API test server (tests/apiserver) on a real etcd.

Creates N ConfigMaps through the API (parallel client threads), then lists them with
limit=500 pagination, and prints objects/s for each, plus one JSON line for the runner.
A reference for later ratios (export/import against this server), not a target.

    python bench/bench_apiserver.py [--objects 10000] [--threads 8] [--tls] [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `tests.apiserver` importable

from tests.apiserver.fixture import start_cluster  # noqa: E402

#: Any token: the server started here has no token file, kubectl-style clients just need one.
TOKEN = "kubectl-state-bench-token"  # noqa: S105 - not a secret: this server checks no tokens


def _ca_file(kubeconfig: str) -> str:
    """The kubeconfig's CA bundle as a file, for `requests`."""
    import base64
    import tempfile

    import yaml

    config = yaml.safe_load(Path(kubeconfig).read_text())
    ca = Path(tempfile.mkdtemp()) / "ca.crt"
    ca.write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    return str(ca)


class Client:
    """One requests.Session per thread (sessions are not meant to be shared across threads)."""

    def __init__(self, server: str, verify: bool | str) -> None:
        self.server = server
        self.verify = verify
        self._local = threading.local()

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            session = requests.Session()
            session.headers.update({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            session.verify = self.verify
            self._local.session = session
        session_: requests.Session = self._local.session
        return session_


def create_all(client: Client, namespace: str, objects: int, threads: int) -> float:
    def create(index: int) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{index:06d}", "labels": {"bench": "yes"}},
            "data": {"key": "value" * 10, "index": str(index)},
        }
        url = f"{client.server}/api/v1/namespaces/{namespace}/configmaps"
        response = client.session().post(url, json=body, timeout=60)
        if response.status_code != 201:
            raise RuntimeError(f"create {index}: HTTP {response.status_code}: {response.text[:200]}")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(objects)))
    return time.perf_counter() - started


def list_all(client: Client, namespace: str, page_size: int) -> tuple[int, int, float]:
    """(objects, pages, seconds) for a full paginated list."""
    started = time.perf_counter()
    listed, pages, token = 0, 0, ""
    while True:
        params = {"limit": str(page_size), "labelSelector": "bench=yes"}
        if token:
            params["continue"] = token
        url = f"{client.server}/api/v1/namespaces/{namespace}/configmaps"
        page = client.session().get(url, params=params, timeout=60)
        page.raise_for_status()
        data = page.json()
        listed += len(data["items"])
        pages += 1
        token = data["metadata"].get("continue", "")
        if not token:
            return listed, pages, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--page", type=int, default=500, help="list page size (limit)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS (default: plain HTTP, to time the server)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 objects")
    args = parser.parse_args(argv)
    objects = 200 if args.quick else args.objects

    with start_cluster(None, replicas=1, plain_http=not args.tls) as cluster:
        client = Client(cluster.servers[0].url, _ca_file(cluster.kubeconfig) if args.tls else False)
        namespace = "bench"
        client.session().post(
            f"{client.server}/api/v1/namespaces", json={"metadata": {"name": namespace}}, timeout=30
        ).raise_for_status()
        create_s = create_all(client, namespace, objects, args.threads)
        listed, pages, list_s = list_all(client, namespace, args.page)
    if listed != objects:
        raise SystemExit(f"listed {listed} objects, created {objects}")

    create_rate, list_rate = objects / create_s, listed / list_s
    print(
        f"create: {objects} ConfigMaps in {create_s:.2f}s = {create_rate:.0f} objects/s ({args.threads} threads)",
        file=sys.stderr,
    )
    print(
        f"list:   {listed} ConfigMaps in {pages} pages of {args.page} in {list_s:.2f}s = {list_rate:.0f} objects/s",
        file=sys.stderr,
    )
    figures = {
        "objects": objects,
        "create_objects_per_s": round(create_rate, 1),
        "list_objects_per_s": round(list_rate, 1),
        "list_pages": pages,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
