"""The resume acceptance test of issue 5: a 5,000-object import killed (SIGKILL of the real
`kubectl state import` process) at 10 random points and resumed each time ends in the same
cluster as a clean import of the same archive, with nothing created twice.

The archive is bench/bench_import.py's mix (namespaces, a CRD and its Widgets, ConfigMaps,
Secrets, Deployments, and ConfigMaps and Widgets owned by Deployments), written straight
to a .tar.gz with the source uids in the manifest. Two empty clusters share one etcd under
different prefixes: the killed-and-resumed import goes into one, a clean import into the
other (run meanwhile, with its export, to keep the test short). The kill points are drawn
from a seeded random generator: a number of journaled objects to wait for (one point in
each tenth of the run), then a random delay of up to 50 ms, so that some kills land between
a write the server acknowledged and its journal line.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.bench_import import mixed_objects, write_archive
from kubectl_state.core.etcd.client import EtcdClient
from tests.apiserver.testing import kubectl
from tests.helpers import read_dir_archive
from tests.helpers import run_cli as run
from tests.unit.test_import_report import validate_report

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = 5_000
KILLS = 10
SEED = 20_261_123
CONCURRENCY = "32"


class JournalWatch:
    """Counts the journal's object lines as they are appended (reading only what is new)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0
        self.tail = b""

    def objects(self) -> int:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return 0
        self.offset += len(data)
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        self.count += sum(1 for line in lines if line.startswith(b'{"key"'))
        return self.count


def import_argv(archive: Path, kubeconfig: str, journal: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kubectl_state", "import", str(archive), "--kubeconfig", kubeconfig,
            "--journal", str(journal), "--concurrency", CONCURRENCY, "-o", "json", *extra]


def etcd_objects(endpoints: list[str], prefix: str) -> dict[str, tuple[int, int]]:
    """Every key under the cluster's prefix (prefix stripped) -> (the revision that created it,
    its version: how many times it was written since)."""
    with EtcdClient(endpoints) as etcd:
        return {kv.key.decode()[len(prefix):]: (kv.create_revision, kv.version)
                for kv in etcd.iter_prefix(prefix.encode() + b"/", keys_only=True)}


def export(kubeconfig: str, target: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    code, _, err = run("export", str(target), "--kubeconfig", kubeconfig, "-A", "-q")
    assert code == 0, err
    return read_dir_archive(target)


def without_owner_uids(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for path, obj in objects.items():
        copy = json.loads(json.dumps(obj))
        for ref in copy["metadata"].get("ownerReferences", []):
            ref.pop("uid")
        out[path] = copy
    return out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_an_import_killed_at_ten_random_points_resumes_to_a_clean_imports_state(
        kube_cluster_factory: Any, tmp_path: Path) -> None:
    items = mixed_objects(OBJECTS)
    archive = tmp_path / "backup.tar.gz"
    write_archive(archive, items)
    resumed = kube_cluster_factory()
    clean = kube_cluster_factory(etcd_endpoints=resumed.etcd_endpoints, prefix="/clean")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    journal = tmp_path / "journal.jsonl"
    watch = JournalWatch(journal)
    rng = random.Random(SEED)  # noqa: S311 - reproducible kill points, not secrets
    # Spread over the run: one kill point in each tenth of the objects (the last ones short of
    # the end, so that no run can finish in the random delay before its kill).
    band = (OBJECTS - 200) // KILLS
    thresholds = [rng.randrange(band * n, band * (n + 1)) for n in range(KILLS)]
    first_created: dict[str, int] = {}
    # The clean import, and its export, run meanwhile (the kill loop mostly waits).
    cli = f"{shlex.quote(sys.executable)} -m kubectl_state"
    with (tmp_path / "clean.err").open("wb") as clean_err:
        clean_side = subprocess.Popen(
            ["sh", "-c", f"{cli} import {archive} --kubeconfig {clean.kubeconfig} --concurrency {CONCURRENCY} "
                         f"-o json > {tmp_path}/clean.json && "
                         f"{cli} export {tmp_path}/clean --kubeconfig {clean.kubeconfig} -A -q"],
            env=env, cwd=ROOT, stderr=clean_err)
    proc = clean_side
    try:
        for number, threshold in enumerate(thresholds):
            argv = import_argv(archive, resumed.kubeconfig, journal, *(["--resume"] if number else []))
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 120
            while proc.poll() is None and watch.objects() < threshold and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == -signal.SIGKILL, (
                f"run {number} ended by itself ({proc.returncode}) before its kill point {threshold}: "
                + err.decode(errors="replace")[-2000:])
            # A key that exists now keeps the revision that created it to the end: no object is
            # deleted and created again.
            for key, (created, _) in etcd_objects(resumed.etcd_endpoints, "/registry").items():
                assert first_created.setdefault(key, created) == created, f"{key} was created twice"

        done = subprocess.run(import_argv(archive, resumed.kubeconfig, journal, "--resume"), env=env, cwd=ROOT,
                              capture_output=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        report = json.loads(done.stdout)
        validate_report(report)
        # Every object counted once, as created (by this run or a killed one), none failed.
        assert report["summary"] == {"created": OBJECTS, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 0,
                                     "total": OBJECTS, "filteredOut": 0}, report["summary"]
        assert sum(1 for o in report["objects"] if o.get("resumed")) >= thresholds[-1]
        # Some kills landed after the server acknowledged a create and before its journal line:
        # those objects answered AlreadyExists on resume and were recognised as this import's.
        assert any("interrupted run" in o.get("reason", "") for o in report["objects"]), \
            "no kill fell between an acknowledged write and its journal line"

        clean_side.wait(timeout=600)
        assert clean_side.returncode == 0, (tmp_path / "clean.err").read_text(errors="replace")[-3000:]
        assert json.loads((tmp_path / "clean.json").read_text())["summary"]["created"] == OBJECTS
    finally:
        for started in (proc, clean_side):
            if started.poll() is None:
                started.kill()
                started.wait()

    # The same objects in both clusters (owner uids aside: each cluster has its own) ...
    manifest, got = export(resumed.kubeconfig, tmp_path / "resumed")
    _, want = read_dir_archive(tmp_path / "clean")
    assert len(got) == len(want) >= OBJECTS
    assert without_owner_uids(got) == without_owner_uids(want)
    # ... the same etcd keys, each written as many times (objects of the import: once) ...
    resumed_keys = etcd_objects(resumed.etcd_endpoints, "/registry")
    clean_keys = etcd_objects(clean.etcd_endpoints, "/clean")
    assert resumed_keys.keys() == clean_keys.keys()
    assert {key: v for key, (_, v) in resumed_keys.items()} == {key: v for key, (_, v) in clean_keys.items()}
    ours = {key: version for key, (_, version) in resumed_keys.items() if "/obj-" in key}
    assert len(ours) == sum(1 for item in items if item.namespaced)
    assert set(ours.values()) == {1}
    assert {key: resumed_keys[key][0] for key in first_created} == first_created
    # ... and owner references relinked to the owners' uids in this cluster (as its export
    # recorded them), owners created by killed runs included.
    uids = {entry["path"]: entry["uid"] for entry in manifest["objects"]}
    by_uid = {item.uid: item for item in items}
    checked = 0
    for item in items:
        refs = item.obj["metadata"].get("ownerReferences")
        if refs:
            owner = by_uid[refs[0]["uid"]]
            assert got[archive_path(item)]["metadata"]["ownerReferences"][0]["uid"] == uids[archive_path(owner)]
            checked += 1
    assert checked == sum(1 for item in items if item.obj["metadata"].get("ownerReferences")) > 900


def archive_path(item: Any) -> str:
    group = f".{item.group}" if item.group else ""
    meta = item.obj["metadata"]
    return f"resources/{item.resource}{group}/namespaces/{meta['namespace']}/{meta['name']}.yaml"


def test_hand_written_objects_resume_as_created_and_import_again_as_unchanged(kube_cluster_factory: Any,
                                                                             tmp_path: Path) -> None:
    """Objects the server defaults on create (a Deployment's strategy, a container's pull
    policy) differ from an archive of hand-written objects as written; they still count as
    created on resume, as unchanged when imported again and as the same by diff, and a
    change by someone else still shows."""
    items = mixed_objects(120)
    archive = tmp_path / "backup.tar.gz"
    write_archive(archive, items)
    cluster = kube_cluster_factory()
    journal = tmp_path / "journal.jsonl"
    code, _, err = run("import", str(archive), "--kubeconfig", cluster.kubeconfig, "--journal", str(journal))
    assert code == 0, err
    # As if the process died after every write and before any journal line.
    journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[:2]))
    code, out, err = run("import", str(archive), "--kubeconfig", cluster.kubeconfig, "--journal", str(journal),
                         "--resume", "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["summary"]["created"] == len(items), report["summary"]
    assert all("interrupted run" in o["reason"] for o in report["objects"])

    code, out, err = run("import", str(archive), "--kubeconfig", cluster.kubeconfig, "-o", "json")
    assert code == 0, err
    assert {o["outcome"] for o in json.loads(out)["objects"]} == {"unchanged"}
    # diff agrees: the server's defaults are no difference.
    code, out, err = run("diff", str(archive), "--kubeconfig", cluster.kubeconfig)
    assert (code, out) == (0, ""), err

    deployment = next(item for item in items if item.kind == "Deployment")
    meta = deployment.obj["metadata"]
    kubectl(cluster.kubeconfig, "label", "deployment", meta["name"], "-n", meta["namespace"], "changed=yes")
    code, out, err = run("diff", str(archive), "--kubeconfig", cluster.kubeconfig)
    assert code == 1, err
    assert out.count("+++ ") == 1 and "-    changed: 'yes'" in out
    code, out, err = run("import", str(archive), "--kubeconfig", cluster.kubeconfig, "-o", "json")
    assert code == 0, err
    found = {(o["kind"], o["name"]): o for o in json.loads(out)["objects"]}
    assert found[("Deployment", meta["name"])]["outcome"] == "skipped"
    assert {o["outcome"] for key, o in found.items() if key != ("Deployment", meta["name"])} == {"unchanged"}


def test_sigterm_mid_import_finishes_what_is_in_flight_reports_it_exits_130_and_resumes(
        kube_cluster_factory: Any, tmp_path: Path) -> None:
    count = 1_500
    archive = tmp_path / "backup.tar.gz"
    write_archive(archive, mixed_objects(count))
    cluster = kube_cluster_factory()
    journal = tmp_path / "journal.jsonl"
    partial = tmp_path / "partial.json"
    watch = JournalWatch(journal)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(import_argv(archive, cluster.kubeconfig, journal, "--report", str(partial)),
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and watch.objects() < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; the import stopped after" in err and "--resume" in err
    report = json.loads(partial.read_text())
    validate_report(report)
    done_before = report["summary"]["total"]
    assert 300 <= done_before < count
    # Every object the report counts was journaled: the objects in flight finished and were written down.
    assert watch.objects() >= done_before

    resumed = subprocess.run(import_argv(archive, cluster.kubeconfig, journal, "--resume"), env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = json.loads(resumed.stdout)
    assert final["summary"]["failed"] == 0
    assert final["summary"]["created"] == count
    assert sum(1 for o in final["objects"] if o.get("resumed")) >= done_before
