"""Import: `kubectl state import` of N ConfigMaps against `kubectl apply -f` of the same YAML.

Both write into a fresh namespace on every run, on the same Kubernetes API test server
(TLS, one replica, its own etcd): the archive's namespace is mapped to a new name for the
import; the YAML's namespace placeholder is replaced by one for kubectl. N is 300 with
--quick, 10,000 otherwise. kubectl applies one object after the other (a GET and a POST
each); the import writes in parallel (--concurrency 8), owners first.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from contextlib import ExitStack
from pathlib import Path

from bench.harness import Case

SOURCE_NS = "bench-source"
PLACEHOLDER = "__NAMESPACE__"


def _objects(count: int, namespace: str) -> list[dict[str, object]]:
    objects: list[dict[str, object]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    objects += [{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"cm-{index:06d}", "namespace": namespace, "labels": {"bench": "yes"}},
                 "data": {"key": "value" * 10, "index": str(index)}} for index in range(count)]
    return objects


def _write_archive(path: Path, count: int) -> None:
    from kubectl_state.core.archive import Source, open_archive_writer

    source = Source(server="https://bench.invalid", kubernetes_version="v1.33.0")
    with open_archive_writer(path, source=source, filters={}) as writer:
        for obj in _objects(count, SOURCE_NS):
            if obj["kind"] == "Namespace":
                writer.add_object("", "v1", "namespaces", "Namespace", False, obj)
            else:
                writer.add_object("", "v1", "configmaps", "ConfigMap", True, obj)
        writer.record_list("", "v1", "namespaces", "Namespace", False, None)
        writer.record_list("", "v1", "configmaps", "ConfigMap", True, None)
        writer.commit()


def _write_yaml(path: Path, count: int) -> None:
    import yaml

    path.write_text(yaml.safe_dump_all(_objects(count, PLACEHOLDER), sort_keys=False))


def cases(stack: ExitStack, workdir: Path, quick: bool) -> list[Case]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("bench import needs kubectl on PATH")
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.apiserver.fixture import start_cluster

    count = 300 if quick else 10_000
    cluster = stack.enter_context(start_cluster(None, replicas=1))
    archive = workdir / "archive"
    _write_archive(archive, count)
    manifest = workdir / "objects.yaml"
    _write_yaml(manifest, count)
    state = workdir / "state"
    state.mkdir()
    plugin = Path(sysconfig.get_path("scripts")) / "kubectl-state"
    env = {**os.environ, "HOME": str(workdir), "XDG_STATE_HOME": str(state), "KUBECONFIG": cluster.kubeconfig}
    # A new namespace per run: its name from the clock, in a shell that then execs the tool.
    fresh = 'ns="bench-$(date +%s%N)"'
    ours = f'{fresh}; exec "{plugin}" import "{archive}" --namespace-mapping "{SOURCE_NS}:$ns" -q'
    stream = (f'{fresh}; sed "s/{PLACEHOLDER}/$ns/g" "{manifest}" | '
              f'"{plugin}" import - -q')
    theirs = f'{fresh}; sed "s/{PLACEHOLDER}/$ns/g" "{manifest}" | "{kubectl}" apply -f - >/dev/null'
    # One run each: kubectl apply of 10,000 objects takes tens of minutes on its own.
    repeat = 1
    return [
        Case("import", f"archive-{count}-configmaps", ["sh", "-c", ours], baseline=["sh", "-c", theirs],
             baseline_name="kubectl apply -f", repeat=repeat, env=env),
        Case("import", f"stream-{count}-configmaps", ["sh", "-c", stream], baseline=["sh", "-c", theirs],
             baseline_name="kubectl apply -f", repeat=repeat, env=env),
    ]
