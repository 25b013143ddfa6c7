"""Writing and reading archives: round trips, layout, modes, atomicity, refusing to clobber."""

from __future__ import annotations

import io
import os
import resource
import signal
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from kubectl_state.core.archive import (
    ArchiveWriter,
    YamlStreamWriter,
    inspect,
    object_path,
    open_archive,
    open_archive_writer,
    verify,
)
from kubectl_state.core.errors import ArchiveError, UsageError
from tests.unit.test_archive_support import (
    SAMPLE_OBJECTS,
    SOURCE,
    configmap,
    read_all,
    tar_entries,
    write_sample,
    write_tar,
)

FORMATS = ["backup", "backup.tar.gz"]


@pytest.fixture(params=FORMATS, ids=["directory", "tar.gz"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / str(request.param)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    # The writer must not rely on the umask for privacy: with umask 0 a plain open() or
    # mkdir() would make world-readable files.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_round_trip_returns_every_object_unchanged(target: Path) -> None:
    write_sample(target)
    read = read_all(target)
    assert sorted((e.path, obj) for e, obj in read) == sorted(
        (object_path(ident[2], ident[0], obj["metadata"].get("namespace"), obj["metadata"]["name"]), obj)
        for ident, obj, _ in SAMPLE_OBJECTS
    )


def test_round_trip_keeps_uids_in_the_manifest_and_owner_references_in_the_object(target: Path) -> None:
    write_sample(target)
    by_name = {entry.name: (entry, obj) for entry, obj in read_all(target)}
    entry, obj = by_name["web"]
    assert entry.uid == "uid-web"
    assert obj["metadata"]["ownerReferences"][0]["uid"] == "old-uid"
    assert "uid" not in obj["metadata"]


def test_uid_defaults_to_metadata_uid_when_not_given(tmp_path: Path) -> None:
    obj = configmap("a")
    obj["metadata"]["uid"] = "from-metadata"
    with open_archive_writer(tmp_path / "a", source=SOURCE) as writer:
        assert writer.add_object("", "v1", "configmaps", "ConfigMap", True, obj).uid == "from-metadata"
        writer.commit()


def test_manifest_records_source_lists_skips_and_counts(target: Path) -> None:
    write_sample(target)
    with open_archive(target) as archive:
        manifest = archive.manifest
    assert manifest.source == SOURCE
    assert manifest.filters == {"namespaces": ["default", "prod"]}
    resources = {r.key: r for r in manifest.resources}
    assert resources["configmaps"].count == 2
    assert resources["configmaps"].list_resource_version == "1001"
    assert resources["services"].count == 0  # listed, nothing kept
    assert resources["deployments.apps"].list_resource_version is None
    assert manifest.skipped == {"derived": {"events": 1}, "owned-by-controller": {"replicasets.apps": 3}}
    assert manifest.created_at.tzinfo is not None


def test_object_paths_follow_the_documented_layout(target: Path) -> None:
    write_sample(target)
    with open_archive(target) as archive:
        paths = sorted(entry.path for entry in archive.manifest.objects)
    assert paths == [
        "resources/configmaps/namespaces/default/app.yaml",
        "resources/configmaps/namespaces/prod/other.yaml",
        "resources/customresourcedefinitions.apiextensions.k8s.io/cluster/foos.example.com.yaml",
        "resources/deployments.apps/namespaces/default/web.yaml",
        "resources/secrets/namespaces/default/db.yaml",
    ]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../etc", "a\0b", "a\\b"])
def test_object_path_rejects_names_that_could_escape(name: str) -> None:
    with pytest.raises(ArchiveError):
        object_path("configmaps", "", "default", name)
    with pytest.raises(ArchiveError):
        object_path("configmaps", "", name, "ok")


def test_object_path_rejects_resources_and_groups_that_would_collide() -> None:
    with pytest.raises(ArchiveError):
        object_path("foo.bar", "", None, "x")  # would share resources/foo.bar with group "bar"
    with pytest.raises(ArchiveError):
        object_path("foos", "Example/../x", None, "x")


def test_object_files_are_yaml_with_apiversion_kind_metadata_first(tmp_path: Path) -> None:
    write_sample(tmp_path / "a")
    text = (tmp_path / "a/resources/deployments.apps/namespaces/default/web.yaml").read_text()
    top_keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top_keys == ["apiVersion", "kind", "metadata", "spec"]
    assert text.splitlines()[3:5] == ["  name: web", "  namespace: default"]
    assert "{" not in text  # block style


def test_writing_the_same_objects_twice_gives_identical_bytes(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    write_sample(tmp_path / "a.tar.gz", created_at=moment)
    write_sample(tmp_path / "b.tar.gz", created_at=moment)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path: Path, umask_zero: None) -> None:
    write_sample(tmp_path / "d")
    write_sample(tmp_path / "t.tar.gz")
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "d", *(tmp_path / "d").rglob("*")]}
    assert {m for p, m in modes.items() if p.is_dir()} == {0o700}
    assert {m for p, m in modes.items() if p.is_file()} == {0o600}
    assert stat.S_IMODE((tmp_path / "t.tar.gz").stat().st_mode) == 0o600
    members = tar_entries(tmp_path / "t.tar.gz")
    assert {info.mode for info, _ in members if info.isdir()} == {0o700}
    assert {info.mode for info, _ in members if info.isfile()} == {0o600}


def test_tar_members_are_streamed_with_the_manifest_last(tmp_path: Path) -> None:
    write_sample(tmp_path / "t.tar.gz")
    names = [info.name for info, _ in tar_entries(tmp_path / "t.tar.gz")]
    assert names[-1] == "manifest.json"


def test_an_exception_inside_the_with_block_leaves_nothing_behind(target: Path) -> None:
    before = set(os.listdir(target.parent))
    with pytest.raises(RuntimeError), open_archive_writer(target, source=SOURCE) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))
        raise RuntimeError("interrupted export")
    assert set(os.listdir(target.parent)) == before


def test_leaving_the_with_block_without_commit_leaves_nothing_behind(target: Path) -> None:
    before = set(os.listdir(target.parent))
    with open_archive_writer(target, source=SOURCE) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))
    assert set(os.listdir(target.parent)) == before
    with pytest.raises(ArchiveError, match="aborted"):
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("b"))


def test_the_partial_archive_is_hidden_until_commit(target: Path) -> None:
    with open_archive_writer(target, source=SOURCE) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))
        assert not target.exists()
        [partial] = os.listdir(target.parent)
        assert partial.startswith(f".{target.name}.partial-")
        writer.commit()
    assert os.listdir(target.parent) == [target.name]


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup/notes.txt").write_text("keep me")
    with pytest.raises(ArchiveError, match=r"already exists.*refusing to overwrite"):
        open_archive_writer(tmp_path / "backup", source=SOURCE)
    assert (tmp_path / "backup/notes.txt").read_text() == "keep me"


def test_refuses_an_existing_file(tmp_path: Path) -> None:
    (tmp_path / "backup.tar.gz").write_bytes(b"old")
    with pytest.raises(ArchiveError, match="already exists"):
        open_archive_writer(tmp_path / "backup.tar.gz", source=SOURCE)


def test_an_empty_directory_is_used_as_the_target(tmp_path: Path) -> None:
    (tmp_path / "backup").mkdir()
    write_sample(tmp_path / "backup")
    assert verify(tmp_path / "backup").ok


def test_overwrite_replaces_an_older_archive(target: Path) -> None:
    write_sample(target)
    with open_archive_writer(target, source=SOURCE, overwrite=True) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("only"))
        writer.commit()
    assert [e.name for e, _ in read_all(target)] == ["only"]
    assert os.listdir(target.parent) == [target.name]


def test_overwrite_never_replaces_a_directory_that_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home/precious").write_text("x")
    with pytest.raises(ArchiveError, match="not a kubectl-state archive"):
        open_archive_writer(tmp_path / "home", source=SOURCE, overwrite=True)


def test_a_target_that_appears_during_the_export_is_not_clobbered(target: Path) -> None:
    with open_archive_writer(target, source=SOURCE) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))
        target.mkdir()
        (target / "someone-elses").write_text("x")
        with pytest.raises(ArchiveError, match="already exists"):
            writer.commit()
    assert os.listdir(target) == ["someone-elses"]
    assert sorted(os.listdir(target.parent)) == [target.name]


def test_missing_parent_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        open_archive_writer(tmp_path / "no/such/dir", source=SOURCE)


def test_dash_is_not_an_archive_path() -> None:
    with pytest.raises(UsageError):
        open_archive_writer("-", source=SOURCE)


def test_an_object_can_be_stored_only_once(tmp_path: Path) -> None:
    with open_archive_writer(tmp_path / "a", source=SOURCE) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))
        with pytest.raises(ArchiveError, match="already written"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))


def test_an_object_that_is_not_what_the_caller_says_is_refused(tmp_path: Path) -> None:
    with open_archive_writer(tmp_path / "a", source=SOURCE) as writer:
        with pytest.raises(ArchiveError, match="cannot store"):
            writer.add_object("apps", "v1", "deployments", "Deployment", True, configmap("a"))
        with pytest.raises(ArchiveError, match="cluster-scoped"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", False, configmap("a"))
        with pytest.raises(ArchiveError, match="one version of each resource"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("a"))
            writer.record_list("", "v2", "configmaps", "ConfigMap", True, "1")


def test_add_object_is_thread_safe(target: Path) -> None:
    names = [f"cm-{i}" for i in range(200)]
    barrier = threading.Barrier(8)

    def add(chunk: list[str], writer: ArchiveWriter) -> None:
        barrier.wait()
        for name in chunk:
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name, data="x" * 100))

    with open_archive_writer(target, source=SOURCE) as writer, ThreadPoolExecutor(8) as pool:
        list(pool.map(add, [names[i::8] for i in range(8)], [writer] * 8))
        writer.commit()
    assert sorted(e.name for e, _ in read_all(target)) == sorted(names)
    assert verify(target).ok


def test_commit_during_concurrent_adds_publishes_exactly_what_the_manifest_lists(target: Path) -> None:
    stop = threading.Event()
    added: list[str] = []

    def keep_adding(worker: int, writer: ArchiveWriter) -> None:
        for number in range(10_000):
            try:
                entry = writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(f"w{worker}-{number}"))
            except ArchiveError:
                return  # the writer is committing: expected
            added.append(entry.name)
            if number == 20:
                stop.set()

    with open_archive_writer(target, source=SOURCE) as writer, ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(keep_adding, worker, writer) for worker in range(6)]
        stop.wait(10)
        manifest = writer.commit()
        for future in futures:
            future.result()
    report = verify(target)
    assert report.ok, report.problems  # no stray file, no missing file
    assert sorted(e.name for e in manifest.objects) == sorted(added)


@pytest.fixture
def small_file_size_limit() -> Iterator[int]:
    # A real write failure: past RLIMIT_FSIZE, write(2) fails with EFBIG (SIGXFSZ ignored).
    limit = 256 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_an_object_that_fails_to_write_is_neither_listed_nor_published(
    tmp_path: Path, small_file_size_limit: int
) -> None:
    huge = configmap("huge", blob="x" * (2 * small_file_size_limit))
    with open_archive_writer(tmp_path / "d", source=SOURCE) as writer:
        with pytest.raises(ArchiveError, match="File too large"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, huge)
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("small"))
        writer.commit()
    assert [e.name for e, _ in read_all(tmp_path / "d")] == ["small"]
    assert verify(tmp_path / "d").ok


def test_a_tar_stream_that_failed_once_refuses_to_be_committed(tmp_path: Path, small_file_size_limit: int) -> None:
    noise = os.urandom(2 * small_file_size_limit).hex()  # incompressible
    with open_archive_writer(tmp_path / "t.tar.gz", source=SOURCE) as writer:
        with pytest.raises(ArchiveError, match="File too large"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("huge", blob=noise))
        with pytest.raises(ArchiveError, match="failed earlier"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("small"))
        with pytest.raises(ArchiveError, match="failed earlier"):
            writer.commit()
    assert os.listdir(tmp_path) == []


def test_reader_accepts_a_tar_made_by_gnu_tar_from_a_directory_archive(tmp_path: Path) -> None:
    write_sample(tmp_path / "d")
    # `./`-prefixed names, directory members and the manifest somewhere in the middle.
    subprocess.run(["tar", "-czf", str(tmp_path / "gnu.tar.gz"), "-C", str(tmp_path / "d"), "."], check=True)
    assert sorted(e.path for e, _ in read_all(tmp_path / "gnu.tar.gz")) == sorted(
        e.path for e, _ in read_all(tmp_path / "d")
    )
    assert verify(tmp_path / "gnu.tar.gz").ok


def test_reader_accepts_the_manifest_as_the_first_member(tmp_path: Path) -> None:
    write_sample(tmp_path / "t.tar.gz")
    entries = tar_entries(tmp_path / "t.tar.gz")
    write_tar(tmp_path / "first.tar.gz", [entries[-1], *entries[:-1]])
    assert len(read_all(tmp_path / "first.tar.gz")) == len(SAMPLE_OBJECTS)


def test_a_file_that_is_neither_a_directory_nor_gzip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.tar.gz").write_bytes(b"PK\x03\x04 not a tarball")
    with pytest.raises(ArchiveError, match=r"neither a directory nor a \.tar\.gz"):
        open_archive(tmp_path / "x.tar.gz")


def test_yaml_stream_writer_writes_one_document_per_object() -> None:
    out = io.StringIO()
    with YamlStreamWriter(out) as stream:
        stream.record_list("", "v1", "configmaps", "ConfigMap", True, "1")
        for name in ("a", "b"):
            stream.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name), uid="u")
        stream.count_skip("derived", "events")
        stream.commit()
    assert [doc["metadata"]["name"] for doc in yaml.safe_load_all(out.getvalue())] == ["a", "b"]
    assert out.getvalue().startswith("---\napiVersion: v1\nkind: ConfigMap\n")


def test_inspect_summarises_counts_sizes_and_source(target: Path) -> None:
    manifest = write_sample(target)
    summary = inspect(target)
    assert summary.objects == 5
    assert summary.by_resource == {
        "configmaps": 2,
        "customresourcedefinitions.apiextensions.k8s.io": 1,
        "deployments.apps": 1,
        "secrets": 1,
        "services": 0,
    }
    assert summary.by_namespace == {"default": 3, "prod": 1}
    assert summary.cluster_scoped == 1
    assert summary.object_bytes == sum(e.size for e in manifest.objects)
    assert summary.archive_bytes > 0
    assert summary.source == SOURCE
    assert summary.created_at == manifest.created_at
    assert summary.age.total_seconds() >= 0
    assert summary.to_dict()["skipped"] == {"derived": {"events": 1}, "owned-by-controller": {"replicasets.apps": 3}}


def test_inspect_reports_the_tar_size_on_disk(tmp_path: Path) -> None:
    write_sample(tmp_path / "t.tar.gz")
    assert inspect(tmp_path / "t.tar.gz").archive_bytes == (tmp_path / "t.tar.gz").stat().st_size


def test_tar_member_metadata_is_neutral(tmp_path: Path) -> None:
    write_sample(tmp_path / "t.tar.gz")
    with tarfile.open(tmp_path / "t.tar.gz") as tar:
        assert {(m.uid, m.gid, m.uname, m.gname) for m in tar.getmembers()} == {(0, 0, "", "")}
