"""Import: `kubectl state import` of N objects against two baselines (issue 5).

The objects (`mixed_objects`, also the data of the resume test): namespaces, a CRD and its
custom resources, ConfigMaps, Secrets, Deployments, and ConfigMaps and Widgets owned by
Deployments, so the import has tiers, a CRD wait and owner relinking to do. Every measured
command writes into an empty Kubernetes API test server of its own (TLS, one replica, its
own etcd), started before the clock runs.

Cases (quick: N = 1,000; full: N = 10,000), one run each:
- vs-raw-posts: the floor, this file's `raw-posts` mode: the archive's files read with
  libyaml (no checks), and the objects POSTed to their collections by the same number of
  threads (a requests.Session each), in three stages (cluster-scoped objects, then the
  CRD waited for until Established, then objects without owners, then their dependents
  with their owners' new uids): what any correct import has to send, with no archive to
  verify, no plan, no journal and no report. Target: wall ratio <= 1.5.
- vs-kubectl-apply: `kubectl apply -R -f` of the same objects as one YAML file each in a
  directory per namespace (what users do today; owner references left out, as kubectl
  cannot relink them): cluster-scoped objects, a `kubectl wait` for the CRD, then the rest
  (kubectl refuses custom resources whose CRD it did not know when it started). kubectl
  writes one object after the other (a GET and a POST each). It runs whole, at the same N;
  at 10,000 that takes tens of minutes. Target: wall ratio <= 0.25.
"peak MB" is the import's peak RSS (the memory question of issue 5: < 250 MB at 10,000).

    python -m bench [--quick] import
    KUBECTL_STATE_BENCH_IMPORT_CASES=raw-posts python -m bench import     (the floor case only)
    python bench/bench_import.py raw-posts --archive DIR --kubeconfig K [--concurrency 32]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `bench`, `tests`, `kubectl_state` importable

from bench.harness import Case  # noqa: E402
from bench.rawclient import RawClient  # noqa: E402

QUICK_SIZE = 1_000
FULL_SIZE = 10_000
CONCURRENCY = 32
#: Comma-separated parts of case names to run (e.g. "raw-posts"); all cases when unset.
CASES_ENV = "KUBECTL_STATE_BENCH_IMPORT_CASES"
WIDGET_GROUP = "bench.example.com"
CRD_NAME = f"widgets.{WIDGET_GROUP}"


# --- the objects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One archived object: its resource, its uid in the (imaginary) source cluster, its body."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    uid: str
    obj: dict[str, Any]


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD_NAME},
        "spec": {"group": WIDGET_GROUP, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]}}


def mixed_objects(count: int, *, seed: int = 5, namespaces: int = 10) -> list[Item]:
    """`count` objects (exactly): the namespaces and the CRD, then blocks of 20 objects in one
    namespace each: 7 ConfigMaps, 5 Secrets, 3 Deployments, 3 ConfigMaps owned by the block's
    last Deployment and 2 Widgets (the second owned by it too). Deterministic for a seed."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets

    def new_uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    items = [Item("", "v1", "namespaces", "Namespace", False, new_uid(),
                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n:02d}"}})
             for n in range(namespaces)]
    items.append(Item("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                      False, new_uid(), widget_crd()))
    owner: Item | None = None
    index = 0
    while len(items) < count:
        slot = index % 20
        meta: dict[str, Any] = {"name": f"obj-{index:06d}", "namespace": f"bench-{index // 20 % namespaces:02d}",
                                "labels": {"bench": "import"}}
        if slot >= 15 and owner is not None and slot != 18:
            meta["ownerReferences"] = [_owner_ref(owner)]
        if slot < 7 or 15 <= slot < 18:
            data = {"owned": "yes"} if slot >= 15 else {"index": str(index), "settings": "feature=true\n" * 8}
            items.append(Item("", "v1", "configmaps", "ConfigMap", True, new_uid(),
                              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}))
        elif slot < 12:
            value = base64.b64encode(rng.randbytes(48)).decode()
            items.append(Item("", "v1", "secrets", "Secret", True, new_uid(),
                              {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                               "data": {"token": value}}))
        elif slot < 15:
            labels = {"app": meta["name"]}
            owner = Item("apps", "v1", "deployments", "Deployment", True, new_uid(), {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}})
            items.append(owner)
        else:
            items.append(Item(WIDGET_GROUP, "v1", "widgets", "Widget", True, new_uid(),
                              {"apiVersion": f"{WIDGET_GROUP}/v1", "kind": "Widget", "metadata": meta,
                               "spec": {"size": index % 7, "color": "blue"}}))
        index += 1
    return items


def _owner_ref(owner: Item) -> dict[str, Any]:
    return {"apiVersion": owner.obj["apiVersion"], "kind": owner.kind, "name": owner.obj["metadata"]["name"],
            "uid": owner.uid, "controller": True, "blockOwnerDeletion": True}


def write_archive(path: Path, items: list[Item]) -> None:
    """A directory archive of `items`, with their uids in the manifest (as export records them)."""
    from kubectl_state.core.archive import Source, open_archive_writer

    source = Source(server="https://bench.invalid", kubernetes_version="v1.33.0")
    with open_archive_writer(path, source=source, filters={}) as writer:
        for item in items:
            writer.add_object(item.group, item.version, item.resource, item.kind, item.namespaced, item.obj,
                              uid=item.uid)
        writer.commit()


def write_yaml_tree(path: Path, items: list[Item]) -> None:
    """The objects as one YAML file each: cluster-scoped ones under cluster/, the rest under
    namespaces/<namespace>/ (for `kubectl apply -R`). Owner references are left out: their
    uids exist only in the source cluster, and kubectl cannot relink them."""
    import yaml

    for number, item in enumerate(items):
        obj = json.loads(json.dumps(item.obj))
        obj["metadata"].pop("ownerReferences", None)
        namespace = obj["metadata"].get("namespace")
        folder = path / "namespaces" / namespace if namespace else path / "cluster"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{number:06d}-{item.resource}-{obj['metadata']['name']}.yaml").write_text(
            yaml.safe_dump(obj, sort_keys=False))


def kubectl_apply_script(kubectl: str, tree: Path, kubeconfig: str) -> list[str]:
    """What a user has to run: kubectl validates every object against the OpenAPI it read when
    it started, so custom resources cannot be applied together with their CRD. The CRD and
    namespaces first, a wait until the CRD is Established, then everything else."""
    k = f"{kubectl} --kubeconfig {kubeconfig}"
    return ["sh", "-c", f"set -e; {k} apply -R -f {tree}/cluster >/dev/null; "
                        f"{k} wait --for=condition=Established crd/{CRD_NAME} --timeout=60s >/dev/null; "
                        f"{k} apply -R -f {tree}/namespaces >/dev/null"]


# --- raw-posts: the floor ----------------------------------------------------------------------


def _collection(item: Item) -> str:
    base = f"/apis/{item.group}/{item.version}" if item.group else f"/api/{item.version}"
    namespace = item.obj["metadata"].get("namespace")
    return f"{base}/namespaces/{namespace}/{item.resource}" if item.namespaced else f"{base}/{item.resource}"


def _stages(items: list[Item]) -> Iterator[list[Item]]:
    """Namespaces and the CRD, then objects without owners, then their dependents."""
    first = [i for i in items if not i.namespaced]
    owned = [i for i in items if i.namespaced and i.obj["metadata"].get("ownerReferences")]
    rest = [i for i in items if i.namespaced and not i.obj["metadata"].get("ownerReferences")]
    yield from (first, rest, owned)


def raw_posts(archive: Path, kubeconfig: str, concurrency: int) -> dict[str, Any]:
    """POST every object of the directory archive in stages, `concurrency` at a time. The
    files are read the cheapest way (libyaml, no checksums, no checks): the floor is what
    sending the objects costs, not what trusting an archive costs."""
    import yaml

    manifest = json.loads((archive / "manifest.json").read_text())
    versions = {(r["group"], r["resource"]): r["version"] for r in manifest["resources"]}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    items = []
    for entry in manifest["objects"]:
        obj = yaml.load((archive / entry["path"]).read_bytes(), Loader=loader)  # noqa: S506 - a safe loader
        items.append(Item(entry["group"], versions[(entry["group"], entry["resource"])], entry["resource"],
                          obj["kind"], entry.get("namespace") is not None, entry.get("uid") or "", obj))
    new_uids: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-raw-posts-") as tmp, \
            ThreadPoolExecutor(concurrency) as pool:
        client = RawClient(kubeconfig, Path(tmp))

        def post(item: Item) -> None:
            body = item.obj
            refs = body["metadata"].get("ownerReferences")
            if refs:
                body = {**body, "metadata": {**body["metadata"],
                                             "ownerReferences": [{**r, "uid": new_uids[r["uid"]]} for r in refs]}}
            created = client.request("POST", _collection(item), body)
            new_uids[item.uid] = created["metadata"]["uid"]

        for number, stage in enumerate(_stages(items)):
            list(pool.map(post, stage))
            if number == 0:
                _wait_established(client)
    return {"objects": len(items)}


def _wait_established(client: RawClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        crd = client.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}")
        conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.05)
    raise RuntimeError(f"{CRD_NAME} was not Established in 60s")


# --- cases -------------------------------------------------------------------------------------


def cases(stack: ExitStack, workdir: Path, quick: bool) -> list[Case]:
    import shutil

    from tests.apiserver.fixture import start_cluster

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("bench import needs kubectl on PATH")
    count = QUICK_SIZE if quick else FULL_SIZE
    items = mixed_objects(count)
    archive = workdir / "archive"
    write_archive(archive, items)
    tree = workdir / "yaml"
    write_yaml_tree(tree, items)
    state = workdir / "state"
    state.mkdir()
    env = {**os.environ, "HOME": str(workdir), "XDG_STATE_HOME": str(state)}

    def empty_cluster() -> str:
        """A new, empty cluster for one measured command (each writes everything once)."""
        return stack.enter_context(start_cluster(None, replicas=1)).kubeconfig

    plugin = str(Path(sysconfig.get_path("scripts")) / "kubectl-state")

    def ours() -> list[str]:
        return [plugin, "import", str(archive), "--kubeconfig", empty_cluster(), "--concurrency", str(CONCURRENCY),
                "-q"]

    def floor() -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "raw-posts", "--archive", str(archive),
                "--kubeconfig", empty_cluster(), "--concurrency", str(CONCURRENCY)]

    wanted = [w for w in os.environ.get(CASES_ENV, "").split(",") if w]
    found: list[Case] = []
    # One run each (every run needs an empty cluster); kubectl apply of 10,000 objects takes ~25 minutes.
    if not wanted or any(w in "raw-posts" for w in wanted):
        found.append(Case("import", f"vs-raw-posts-{count}", ours(), baseline=floor(),
                          baseline_name="raw parallel POSTs", repeat=1, env=env))
    if not wanted or any(w in "kubectl-apply" for w in wanted):
        found.append(Case("import", f"vs-kubectl-apply-{count}", ours(),
                          baseline=kubectl_apply_script(kubectl, tree, empty_cluster()),
                          baseline_name="kubectl apply -R -f", repeat=1, env=env))
    return found


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    raw = sub.add_parser("raw-posts", help="the floor: the archive's objects POSTed in parallel, owners first")
    raw.add_argument("--archive", required=True, type=Path)
    raw.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    raw.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args(argv)
    print(json.dumps(raw_posts(args.archive, args.kubeconfig, args.concurrency)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
