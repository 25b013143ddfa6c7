"""Helpers shared by the archive tests (this module holds no tests itself).

Archives are built by the real writer; hostile variants are made from them by editing real
files and repacking real tar streams, never by mocking the reader's inputs.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kubectl_state.core.archive import Manifest, Source, open_archive, open_archive_writer

SOURCE = Source(server="https://10.0.0.1:6443", kubernetes_version="v1.32.0", cluster_id="c0ffee", context="kind")


def configmap(name: str, namespace: str = "default", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def deployment(name: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}},
        "metadata": {
            "namespace": namespace,
            "name": name,
            "labels": {"app": name},
            "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Foo", "name": "owner", "uid": "old-uid"}],
        },
        "apiVersion": "apps/v1",
    }


def crd(name: str = "foos.example.com") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": "example.com", "scope": "Namespaced"},
    }


def secret(name: str = "db", namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {"password": "c2VjcmV0LXBhc3N3b3Jk"},
    }


SAMPLE_OBJECTS: list[tuple[tuple[str, str, str, str, bool], dict[str, Any], str]] = [
    (("", "v1", "configmaps", "ConfigMap", True), configmap("app", "default", key="value"), "uid-app"),
    (("", "v1", "configmaps", "ConfigMap", True), configmap("other", "prod", key="x"), "uid-other"),
    (("apps", "v1", "deployments", "Deployment", True), deployment("web"), "uid-web"),
    (
        ("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
        crd(),
        "uid-crd",
    ),
    (("", "v1", "secrets", "Secret", True), secret(), "uid-secret"),
]


def write_sample(path: Path, **kwargs: Any) -> Manifest:
    with open_archive_writer(path, source=SOURCE, filters={"namespaces": ["default", "prod"]}, **kwargs) as writer:
        writer.record_list("", "v1", "configmaps", "ConfigMap", True, "1001")
        writer.record_list("", "v1", "services", "Service", True, "1002")
        for (group, version, resource, kind, namespaced), obj, uid in SAMPLE_OBJECTS:
            writer.add_object(group, version, resource, kind, namespaced, copy.deepcopy(obj), uid=uid)
        writer.count_skip("owned-by-controller", "replicasets", group="apps", count=3)
        writer.count_skip("derived", "events")
        return writer.commit()


def read_all(path: Path, **kwargs: Any) -> list[tuple[Any, dict[str, Any]]]:
    with open_archive(path, **kwargs) as archive:
        return list(archive.iter_objects())


def object_files(archive_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(archive_dir)) for p in archive_dir.rglob("*.yaml"))


def resign(archive_dir: Path, relpath: str, data: bytes) -> None:
    """Replace an object file of a directory archive and update its manifest entry to match,
    as an attacker who can write the whole archive would."""
    (archive_dir / relpath).write_bytes(data)
    edit_manifest(archive_dir, lambda doc: _resign_entry(doc, relpath, data))


def _resign_entry(doc: dict[str, Any], relpath: str, data: bytes) -> None:
    for entry in doc["objects"]:
        if entry["path"] == relpath:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["size"] = len(data)


def edit_manifest(archive_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = archive_dir / "manifest.json"
    doc = json.loads(manifest.read_text())
    change(doc)
    manifest.write_text(json.dumps(doc))


TarEntry = tuple[tarfile.TarInfo, bytes | None]


def tar_entries(path: Path) -> list[TarEntry]:
    """Every member of a .tar.gz with its data, in order."""
    out: list[TarEntry] = []
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            handle = tar.extractfile(info) if info.isreg() else None
            out.append((info, handle.read() if handle else None))
    return out


def member(name: str, data: bytes = b"", **attrs: Any) -> TarEntry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    for key, value in attrs.items():
        setattr(info, key, value)
    if info.type != tarfile.REGTYPE:
        info.size = 0
    return info, data if info.type == tarfile.REGTYPE else None


def write_tar(path: Path, entries: Iterable[TarEntry]) -> None:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def dir_to_tar(archive_dir: Path, path: Path) -> None:
    """Pack a directory archive the way the writer does: objects first, manifest last."""
    entries = [
        member(rel, (archive_dir / rel).read_bytes()) for rel in object_files(archive_dir)
    ]
    entries.append(member("manifest.json", (archive_dir / "manifest.json").read_bytes()))
    write_tar(path, entries)


def tar_bytes_decompressed(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())
