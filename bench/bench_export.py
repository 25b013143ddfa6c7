"""Export: `kubectl state export` of a seeded cluster against two baselines (issue 4).

The cluster is the Kubernetes API test server (HTTPS, one replica) on a single-member etcd
of its own, seeded with N objects: ConfigMaps, Secrets, Deployments and Services spread
over 50 namespaces. One object of each kind is created through the API; the rest are
copies of what the server stored for it (new name, namespace, uid, cluster IP), written
straight into etcd at the server's key layout in transactions of 128 puts, because
creating 100,000 objects through the API would take far longer than exporting them.

Cases per size (quick: 2,000; full: 10,000 and 100,000):
- vs-kubectl: what kube-backup does, `kubectl get <r> -A -o json` for each resource
  `kubectl api-resources --verbs=list -o name` names, one after the other, each into a
  file. Target: wall ratio <= 0.25.
- vs-raw-lists: the floor, this file's `raw-lists` mode: the same discovery and the same
  paged lists (the export's skip table, concurrency and page size) over HTTPS, each page
  decoded only to find its continue token, then dropped. Target: wall ratio <= 1.5.
Full run only:
- rss-100k-vs-10k: the export at 100,000 objects against the export at 10,000, so "peak MB"
  is the peak at 100,000, "base MB" the peak at 10,000 and "RSS ratio" the growth.
  Targets: peak <= 250 MB, RSS ratio <= 1.5.

    python -m bench [--quick] export
    python bench/bench_export.py raw-lists --kubeconfig K [--concurrency 8] [--page-size 500]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script (raw-lists): make `bench`, `tests` importable

from bench.harness import Case  # noqa: E402
from bench.rawclient import RawClient  # noqa: E402

QUICK_SIZES = (2_000,)
FULL_SIZES = (10_000, 100_000)
NAMESPACES = 50
CONCURRENCY = 8
PAGE_SIZE = 500
#: etcd refuses a transaction of more than --max-txn-ops (default 128) operations.
TXN_OPS = 128
SEED_THREADS = 4

#: (resource, name prefix, share of every 20 objects): 40% ConfigMaps, 25% Secrets,
#: 20% Deployments, 15% Services.
MIX = (("configmaps", "settings", 8), ("secrets", "credentials", 5), ("deployments", "web", 4),
       ("services", "svc", 3))
#: etcd key part of each resource (kube-apiserver keeps Services under services/specs).
KEY_RESOURCE = {"configmaps": "configmaps", "secrets": "secrets", "deployments": "deployments",
                "services": "services/specs"}
API_PATH = {"configmaps": "/api/v1", "secrets": "/api/v1", "services": "/api/v1", "deployments": "/apis/apps/v1"}
#: Seeded Services get addresses from here on, clear of what the server allocates itself.
FIRST_SEEDED_IP = IPv4Address("10.100.0.0")

KUBE_BACKUP_SCRIPT = """\
set -eu
kubeconfig="$1"; out="$2"
mkdir -p "$out"
for resource in $(kubectl --kubeconfig "$kubeconfig" api-resources --verbs=list -o name); do
    kubectl --kubeconfig "$kubeconfig" get "$resource" -A -o json > "$out/$resource.json"
done
"""


def _label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _namespace(index: int) -> str:
    return f"team-{index % NAMESPACES:02d}"


def _kind_of(index: int) -> tuple[str, str]:
    slot = index % 20
    for resource, prefix, share in MIX:
        if slot < share:
            return resource, prefix
        slot -= share
    raise AssertionError("MIX covers 20 slots")


def _object_name(index: int) -> str:
    return f"{_kind_of(index)[1]}-{index:06d}"


def _body(resource: str, index: int) -> dict[str, Any]:
    """What a user would create: the first object of each kind goes through the API, and
    its stored form is the template of the rest."""
    name, namespace = _object_name(index), _namespace(index)
    labels = {"app": name, "team": namespace, "app.kubernetes.io/part-of": "shop"}
    meta = {"name": name, "namespace": namespace, "labels": labels,
            "annotations": {"owner": f"platform@{namespace}.example.com"}}
    if resource == "configmaps":
        props = "\n".join(f"feature.{flag}.enabled=true" for flag in ("search", "cart", "billing", "reviews"))
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {"app.properties": f"{props}\ndb.host=db.{namespace}.svc.cluster.local\ndb.port=5432\n"
                                           "cache.ttl=300\nlog.level=info\n" * 3,
                         "LOG_FORMAT": "json", "MAX_CONNECTIONS": "64"}}
    if resource == "secrets":
        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode()
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                "data": {"username": b64(b"app"), "password": b64(os.urandom(24)),
                         "tls.key": b64(os.urandom(600))}}
    if resource == "deployments":
        container = {
            "name": "app", "image": "registry.example.com/shop/web:1.27.3",
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "DB_HOST", "value": f"db.{namespace}.svc"}, {"name": "LOG_LEVEL", "value": "info"}],
            "envFrom": [{"configMapRef": {"name": "settings-000000"}}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        }
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [container]}}}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


class _Seeder:
    """Writes N objects of the MIX into one test server's etcd and checks they list."""

    def __init__(self, etcd_endpoints: list[str], kubeconfig: str) -> None:
        from kubectl_state.core.etcd.client import EtcdClient
        from kubectl_state.core.kube.client import KubeClient

        self.etcd = EtcdClient(etcd_endpoints, timeout=60)
        self.kube = KubeClient.from_kubeconfig(kubeconfig)

    def close(self) -> None:
        self.etcd.close()
        self.kube.close()

    def count(self, resource: str) -> int:
        """Objects in the collection, from one item and the server's remainingItemCount."""
        page = self.kube.get(f"{API_PATH[resource]}/{resource}", params={"limit": 1})
        return len(page.get("items") or []) + int((page.get("metadata") or {}).get("remainingItemCount") or 0)

    def seed(self, size: int) -> None:
        started = time.monotonic()
        for index in range(NAMESPACES):
            self.kube.request("POST", "/api/v1/namespaces",
                              body={"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": _namespace(index), "labels": {"team": _namespace(index)}}})
        templates: dict[str, tuple[int, str]] = {}
        for first in range(20):
            resource = _kind_of(first)[0]
            if resource in templates:
                continue
            body = _body(resource, first)
            self.kube.request("POST", f"{API_PATH[resource]}/namespaces/{_namespace(first)}/{resource}", body=body)
            key = f"/registry/{KEY_RESOURCE[resource]}/{_namespace(first)}/{_object_name(first)}".encode()
            kv = self.etcd.get(key)
            if kv is None:
                raise SystemExit(f"the test server did not store {key!r} where expected")
            templates[resource] = (first, kv.value.decode())
        before = {resource: self.count(resource) for resource in templates}
        expected = dict.fromkeys(templates, 0)
        rest = [i for i in range(size) if i not in {first for first, _ in templates.values()}]
        for index in rest:
            expected[_kind_of(index)[0]] += 1
        batches = [rest[i:i + TXN_OPS] for i in range(0, len(rest), TXN_OPS)]
        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(lambda batch: self._write(batch, templates), batches))
        for resource, added in expected.items():
            now = self.count(resource)
            if now - before[resource] != added:
                raise SystemExit(f"seeded {added} {resource} but the server lists {now - before[resource]} more")
        self._check_readable(rest[-1] if rest else 0)
        print(f"seeded {size} objects in {NAMESPACES} namespaces in {time.monotonic() - started:.1f}s",
              file=sys.stderr, flush=True)

    def _write(self, batch: list[int], templates: dict[str, tuple[int, str]]) -> None:
        from kubectl_state.core.etcd.client import Op

        ops = []
        for index in batch:
            resource, _ = _kind_of(index)
            first, text = templates[resource]
            stored = json.loads(text)
            value = (text.replace(f'"{_object_name(first)}"', f'"{_object_name(index)}"')
                     .replace(_namespace(first), _namespace(index))
                     .replace(stored["metadata"]["uid"], str(uuid.uuid4())))
            if resource == "services":
                ip = str(FIRST_SEEDED_IP + index)
                value = value.replace(f'"{stored["spec"]["clusterIP"]}"', f'"{ip}"')
            key = f"/registry/{KEY_RESOURCE[resource]}/{_namespace(index)}/{_object_name(index)}"
            ops.append(Op.put(key.encode(), value.encode()))
        result = self.etcd.txn([], ops)
        if not result.succeeded:
            raise SystemExit("an unconditional seeding transaction failed")

    def _check_readable(self, index: int) -> None:
        """The last object seeded reads back through the API as a complete object."""
        resource, _ = _kind_of(index)
        obj = self.kube.get(f"{API_PATH[resource]}/namespaces/{_namespace(index)}/{resource}/{_object_name(index)}")
        meta = obj.get("metadata") or {}
        if (meta.get("name"), meta.get("namespace")) != (_object_name(index), _namespace(index)) or not (
                meta.get("uid") and meta.get("resourceVersion") and meta.get("creationTimestamp")):
            raise SystemExit(f"a seeded object reads back incomplete: {json.dumps(obj)[:300]}")


def _start(stack: ExitStack, size: int) -> str:
    """A seeded cluster of its own for `size` objects; its kubeconfig path."""
    from tests.apiserver.fixture import start_cluster
    from tests.etcd_cluster import EtcdCluster

    etcd = stack.enter_context(EtcdCluster(1, "3.5").start())
    cluster = stack.enter_context(start_cluster(etcd.endpoints))
    seeder = _Seeder(etcd.endpoints, cluster.kubeconfig)
    try:
        seeder.seed(size)
    finally:
        seeder.close()
    return cluster.kubeconfig


def cases(stack: ExitStack, workdir: Path, quick: bool) -> list[Case]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("bench export needs kubectl on PATH")
    scripts = sysconfig.get_path("scripts")
    kubectl_state = shutil.which("kubectl-state", path=scripts) or shutil.which("kubectl-state")
    if kubectl_state is None:
        raise SystemExit("bench export needs the kubectl-state console script (pip install -e .)")
    home = workdir / "home"  # kubectl's discovery cache lives here, warm after its first run
    home.mkdir()
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]), "HOME": str(home)}
    env.pop("KUBECONFIG", None)
    script = workdir / "kube-backup.sh"
    script.write_text(KUBE_BACKUP_SCRIPT)

    result: list[Case] = []
    exports: dict[int, list[str]] = {}
    for size in QUICK_SIZES if quick else FULL_SIZES:
        label = _label(size)
        kubeconfig = _start(stack, size)
        export = exports[size] = [kubectl_state, "export", str(workdir / f"export-{label}.tar.gz"),
                                  "--kubeconfig", kubeconfig, "--overwrite", "--quiet",
                                  "--concurrency", str(CONCURRENCY), "--page-size", str(PAGE_SIZE)]
        # The 100,000-object runs take minutes; one of each keeps the full run short.
        repeat = 1 if size >= 100_000 else 3
        result.append(Case("export", f"vs-kubectl-{label}", export,
                           baseline=["bash", str(script), kubeconfig, str(workdir / f"kubectl-{label}")],
                           baseline_name="kubectl get -A -o json, each resource", repeat=repeat, env=env))
        result.append(Case("export", f"vs-raw-lists-{label}", export,
                           baseline=[sys.executable, str(Path(__file__).resolve()), "raw-lists",
                                     "--kubeconfig", kubeconfig, "--concurrency", str(CONCURRENCY),
                                     "--page-size", str(PAGE_SIZE)],
                           baseline_name="raw paged GETs", repeat=repeat, env=env))
    if not quick:
        small, large = FULL_SIZES
        result.append(Case("export", f"rss-{_label(large)}-vs-{_label(small)}", exports[large],
                           baseline=exports[small], baseline_name=f"export of {_label(small)}", repeat=1, env=env))
    return result


# --- raw-lists: the floor ----------------------------------------------------------------------


def _collections(client: RawClient, concurrency: int) -> list[str]:
    """The collection paths the export lists: every group version's discovery document is
    read (as the export does), the preferred versions' listable resources are kept, minus
    what the export's skip table leaves out."""
    from kubectl_state.core.transform.skip import resource_skip_reason

    targets: list[tuple[str, str, str, bool]] = []
    core_versions = client.get("/api").get("versions") or []
    targets += [(f"/api/{v}", "", v, v == core_versions[0]) for v in core_versions]
    for group in client.get("/apis").get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version")
        targets += [(f"/apis/{group['name']}/{v['version']}", group["name"], v["version"], v["version"] == preferred)
                    for v in group.get("versions") or []]
    with ThreadPoolExecutor(concurrency) as pool:
        docs = list(pool.map(lambda target: client.get(target[0]), targets))
    paths = []
    for (base, group, version, preferred), doc in zip(targets, docs, strict=True):
        for entry in doc.get("resources") or [] if preferred else []:
            name = entry["name"]
            if resource_skip_reason(group, version, name, entry.get("verbs") or []) is None:
                paths.append(f"{base}/{name}")
    return paths


def _read_collection(client: RawClient, path: str, page_size: int) -> tuple[int, int]:
    """(objects, pages) of one paged list, each page dropped once its token is known."""
    params: dict[str, str | int] = {"limit": page_size}
    objects = pages = 0
    while True:
        page = client.get(path, params)
        objects += len(page.get("items") or [])
        pages += 1
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return objects, pages
        params["continue"] = token


def raw_lists(kubeconfig: str, concurrency: int, page_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-raw-lists-") as tmp:
        client = RawClient(kubeconfig, Path(tmp))
        paths = _collections(client, concurrency)
        with ThreadPoolExecutor(concurrency) as pool:
            counts = list(pool.map(lambda path: _read_collection(client, path, page_size), paths))
    return {"objects": sum(c[0] for c in counts), "pages": sum(c[1] for c in counts), "collections": len(paths)}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    raw = sub.add_parser("raw-lists", help="the floor: the export's paged lists, read and dropped")
    raw.add_argument("--kubeconfig", required=True)
    raw.add_argument("--concurrency", type=int, default=CONCURRENCY)
    raw.add_argument("--page-size", type=int, default=PAGE_SIZE)
    seed = sub.add_parser("seed", help="start etcd and a test server, seed N objects, print the kubeconfig, "
                                       "and keep serving until interrupted (for profiling by hand)")
    seed.add_argument("--objects", type=int, default=QUICK_SIZES[0])
    args = parser.parse_args(argv)
    if args.mode == "raw-lists":
        print(json.dumps(raw_lists(args.kubeconfig, args.concurrency, args.page_size)))
        return 0
    # `kill` (SIGTERM) as well as Ctrl-C stops the servers; the default SIGTERM would orphan them.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with ExitStack() as stack:
        print(_start(stack, args.objects), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(_main())
