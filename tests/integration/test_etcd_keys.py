"""`kubectl state etcd export|import`: raw keys between real etcd clusters, byte-exact."""

from __future__ import annotations

import base64
import gzip
import io
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_state.cli.env import Environment
from kubectl_state.cli.main import main
from kubectl_state.core.etcd.client import EtcdClient
from tests.conftest import EtcdClusterFactory
from tests.etcd_cluster import EtcdBinaryMissing, EtcdCluster

pytestmark = pytest.mark.timeout(120)

SOURCE = {
    b"/registry/configmaps/default/cm": b'{"kind":"ConfigMap","apiVersion":"v1","data":{"x":"y"}}',
    b"/registry/pods/default/web": b"k8s\x00\n\t\n\x02v1\x12\x03Pod\x12\x00\x1a\x00",
    b"/registry/secrets/kube-system/bin": b"\x00\x00\xff\xfe\x00binary\x00",
    b"/registry/empty": b"",
    b"/registry/\xff\xfe/odd-key": b"\x00",
    **{f"/registry/leases/ns/l{i:04d}".encode(): bytes([i % 256]) * (i * 37 % 3000) for i in range(300)},
}
OUTSIDE = {b"/other/key": b"not exported", b"/registrz": b"outside the prefix"}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["etcd", *argv], Environment(stdout=out, stderr=err, environ={}))
    return code, out.getvalue(), err.getvalue()


def dump(endpoints: list[str], prefix: bytes = b"") -> dict[bytes, bytes]:
    with EtcdClient(endpoints) as c:
        return {kv.key: kv.value for kv in c.iter_prefix(prefix)}


@pytest.fixture(scope="module")
def source() -> Iterator[list[str]]:
    """One filled etcd for the module: the tests only read it (or write outside /registry)."""
    try:
        cluster = EtcdCluster(1, "3.5")
    except EtcdBinaryMissing as exc:
        pytest.skip(str(exc))
    with cluster:
        with EtcdClient(cluster.endpoints) as c:
            for k, v in {**SOURCE, **OUTSIDE}.items():
                c.put(k, v)
        yield cluster.endpoints


@pytest.fixture
def target(etcd_cluster_factory: EtcdClusterFactory) -> list[str]:
    return etcd_cluster_factory(members=1).endpoints


@pytest.mark.parametrize("name", ["export-dir", "export.tar.gz"])
def test_export_import_round_trip_between_clusters_is_byte_identical(
    source: list[str], target: list[str], tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    code, out, err = cli("export", str(path), "--endpoints", source[0], "-o", "json")
    assert code == 0, err
    manifest = json.loads(out)["manifest"]
    assert manifest["count"] == len(SOURCE) and manifest["prefix"] == "/registry"
    assert manifest["valueBytes"] == sum(len(v) for v in SOURCE.values())
    files = [path / "manifest.json", path / "keys.jsonl"] if path.is_dir() else [path]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    if path.is_dir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp files left

    code, out, err = cli("import", str(path), "--endpoints", target[0], "-o", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["written"] == len(SOURCE)
    assert result["transactions"] >= len(SOURCE) // 128
    assert dump(target) == SOURCE


def test_export_is_one_revision_while_writes_go_on(source: list[str], tmp_path: Path) -> None:
    halt = threading.Event()

    def write() -> None:
        with EtcdClient(source) as c:
            n = 0
            while not halt.is_set():
                c.put(f"/late/{n:05d}".encode(), b"x" * 200)
                n += 1

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        while not halt.is_set():
            # Export only once some writes have landed, so that the cut really is mid-stream.
            with EtcdClient(source) as c:
                if c.range(b"/late/", prefix=True, count_only=True).count > 100:
                    break
        code, out, err = cli("export", str(tmp_path / "e"), "--endpoints", source[0], "--prefix", "/late",
                             "-o", "json")
    finally:
        halt.set()
        thread.join()
    assert code == 0, err
    revision = json.loads(out)["manifest"]["revision"]
    with EtcdClient(source) as c:
        at_revision = {kv.key for kv in c.iter_prefix(b"/late/", revision=revision)}
        assert c.range(b"/late/", prefix=True, count_only=True).count > len(at_revision)
    lines = (tmp_path / "e" / "keys.jsonl").read_text().splitlines()
    exported = {base64.b64decode(json.loads(line)["key"]) for line in lines}
    assert exported == at_revision


def test_import_refuses_existing_keys_without_overwrite_and_writes_nothing(
    source: list[str], target: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "e.tar.gz"
    assert cli("export", str(path), "--endpoints", source[0])[0] == 0
    # One key that exists in the target, sorted late so that earlier batches would fit.
    clash = b"/registry/secrets/kube-system/bin"
    with EtcdClient(target) as c:
        c.put(clash, b"kept")
        before = c.status().revision
    code, _, err = cli("import", str(path), "--endpoints", target[0])
    assert code == 6
    assert "already exist" in err and "/registry/secrets/kube-system/bin" in err and "nothing was written" in err
    assert dump(target) == {clash: b"kept"}
    with EtcdClient(target) as c:
        assert c.status().revision == before

    code, _, err = cli("import", str(path), "--endpoints", target[0], "--overwrite")
    assert code == 0, err
    assert dump(target) == SOURCE


def test_import_with_prefix_rewrite(source: list[str], target: list[str], tmp_path: Path) -> None:
    path = tmp_path / "e"
    assert cli("export", str(path), "--endpoints", source[0])[0] == 0
    code, _, err = cli("import", str(path), "--endpoints", target[0], "--prefix-rewrite", "/registry:/kubernetes.io")
    assert code == 0, err
    expected = {b"/kubernetes.io" + k[len(b"/registry"):]: v for k, v in SOURCE.items()}
    assert dump(target) == expected
    # A rewrite that does not apply to every key is refused before anything is written.
    code, _, err = cli("import", str(path), "--endpoints", target[0], "--prefix-rewrite", "/registry/pods:/x",
                       "--overwrite")
    assert code == 3 and "does not start with it" in err
    assert dump(target) == expected


@pytest.mark.parametrize("tamper", ["value", "value-and-record-hash", "drop-line", "manifest-count", "tar-cut"])
def test_tampered_export_is_refused_before_anything_is_written(
    source: list[str], target: list[str], tmp_path: Path, tamper: str
) -> None:
    tar = tamper == "tar-cut"
    path = tmp_path / ("e.tar.gz" if tar else "e")
    assert cli("export", str(path), "--endpoints", source[0])[0] == 0
    if tar:
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) - 200])
    else:
        data = path / "keys.jsonl"
        lines = data.read_bytes().splitlines(keepends=True)
        # The last record, so that every batch before it would be written by a careless importer.
        record = json.loads(lines[-1])
        if tamper in ("value", "value-and-record-hash"):
            import hashlib

            value = b"evil"
            record["value"] = base64.b64encode(value).decode()
            if tamper == "value-and-record-hash":
                record["sha256"] = hashlib.sha256(value).hexdigest()
            lines[-1] = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        elif tamper == "drop-line":
            del lines[-1]
        data.write_bytes(b"".join(lines))
        if tamper == "manifest-count":
            manifest = json.loads((path / "manifest.json").read_text())
            manifest["count"] += 1
            (path / "manifest.json").write_text(json.dumps(manifest))
    code, out, err = cli("import", str(path), "--endpoints", target[0], "--overwrite")
    assert code == 3, (out, err)
    assert dump(target) == {}


def test_tar_export_is_a_plain_tar_gz_with_manifest_first(source: list[str], tmp_path: Path) -> None:
    import tarfile

    path = tmp_path / "e.tgz"
    assert cli("export", str(path), "--endpoints", source[0], "--prefix", "/other")[0] == 0
    with gzip.open(path) as gz, tarfile.open(fileobj=gz) as tar:
        assert tar.getnames() == ["manifest.json", "keys.jsonl"]
        data = tar.extractfile("keys.jsonl")
        assert data is not None
        records = [json.loads(line) for line in data.read().splitlines()]
    assert [base64.b64decode(r["key"]) for r in records] == [b"/other/key"]
