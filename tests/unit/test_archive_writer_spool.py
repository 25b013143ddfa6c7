"""The writer keeps its manifest entries out of memory: spilled to temporary files in sorted
runs and merged at commit, checked against the schema in batches, duplicates refused by
path hash. Small runs and batches here make every one of those paths run on a few objects."""

from __future__ import annotations

import json
import os
import random
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_state.core.archive import ArchiveWriter, Manifest, open_archive_writer, verify
from kubectl_state.core.archive.manifest import (
    ObjectEntry,
    _object_json,
    encode_manifest,
    entry_line_path,
    object_entry_line,
)
from kubectl_state.core.errors import ArchiveError
from tests.unit.test_archive_support import SOURCE, configmap

FORMATS = ["backup", "backup.tar.gz"]
MOMENT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
#: Names whose paths sort differently from the names themselves ("a.yaml" after "a-b.yaml"),
#: and a few that need JSON escapes or are not ASCII.
NAMES = ["a", "a-b", "a.b", "a0", "b", 'quote"d', "tab\there", "caf\u00e9", "\u2028line", "z" * 200] + [
    f"cm-{n:03d}" for n in range(40)
]


@pytest.fixture(params=FORMATS, ids=["directory", "tar.gz"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / str(request.param)


@pytest.fixture
def small_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ArchiveWriter, "SPOOL_RUN", 4)
    monkeypatch.setattr(ArchiveWriter, "CHECK_BATCH", 3)


def write_shuffled(path: Path, names: list[str]) -> Manifest:
    shuffled = list(names)
    random.Random(7).shuffle(shuffled)  # noqa: S311 - an arbitrary order, not a secret
    with open_archive_writer(path, source=SOURCE, created_at=MOMENT) as writer:
        writer.record_list("", "v1", "configmaps", "ConfigMap", True, "7")
        for index, name in enumerate(shuffled):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name, f"ns-{index % 3}", k=name),
                              uid=f"uid-{name}")
        return writer.commit()


def manifest_bytes(path: Path) -> bytes:
    if path.is_dir():
        return (path / "manifest.json").read_bytes()
    with tarfile.open(path) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        return member.read()


@pytest.mark.usefixtures("small_runs")
def test_spilled_entries_come_back_sorted_and_byte_identical_to_the_whole_manifest(target: Path) -> None:
    manifest = write_shuffled(target, NAMES)
    assert [e.path for e in manifest.objects] == sorted(e.path for e in manifest.objects)
    assert len(manifest.objects) == len(NAMES)
    # What the one-piece encoder makes of the same manifest, byte for byte.
    assert manifest_bytes(target) == encode_manifest(manifest)
    report = verify(target)
    assert report.ok, report.problems


def test_spilling_changes_nothing_in_the_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = write_shuffled(tmp_path / "whole", NAMES)
    monkeypatch.setattr(ArchiveWriter, "SPOOL_RUN", 2)
    monkeypatch.setattr(ArchiveWriter, "CHECK_BATCH", 1)
    spilled = write_shuffled(tmp_path / "spilled", NAMES)
    assert manifest_bytes(tmp_path / "whole") == manifest_bytes(tmp_path / "spilled")
    assert whole.objects == spilled.objects


@pytest.mark.usefixtures("small_runs")
def test_commit_without_entries_still_writes_them_all(target: Path) -> None:
    with open_archive_writer(target, source=SOURCE) as writer:
        for name in NAMES:
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name))
        manifest = writer.commit(entries=False)
    assert manifest.objects == ()
    assert manifest.resources[0].count == len(NAMES)
    report = verify(target)
    assert report.ok, report.problems
    assert report.objects_listed == report.objects_ok == len(NAMES)


@pytest.mark.usefixtures("small_runs")
def test_a_path_written_before_a_spill_is_still_refused_a_second_time(target: Path) -> None:
    with open_archive_writer(target, source=SOURCE) as writer:
        for name in NAMES[:12]:
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name))
        with pytest.raises(ArchiveError, match="already written"):
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(NAMES[0]))
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(NAMES[0], "elsewhere"))
        manifest = writer.commit()
    assert len(manifest.objects) == 13


@pytest.mark.usefixtures("small_runs")
def test_paths_whose_hashes_collide_are_told_apart(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every path hashes alike: each add must then look at the entries themselves.
    monkeypatch.setattr("kubectl_state.core.archive.writer._path_hash", lambda path: 42)
    with open_archive_writer(target, source=SOURCE) as writer:
        for name in NAMES[:15]:
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name))
        for name in (NAMES[0], NAMES[7], NAMES[14]):  # in a run, in the buffer, just added
            with pytest.raises(ArchiveError, match="already written"):
                writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name))
        manifest = writer.commit()
    assert len(manifest.objects) == 15
    assert verify(target).ok


@pytest.mark.parametrize("batch", [1, 512])
def test_an_entry_the_schema_refuses_leaves_nothing_at_path(target: Path, monkeypatch: pytest.MonkeyPatch,
                                                             batch: int) -> None:
    monkeypatch.setattr(ArchiveWriter, "CHECK_BATCH", batch)
    # Refused when its batch is checked: at once (batch 1) or at commit (batch 512).
    with pytest.raises(ArchiveError, match="does not match its schema"), \
            open_archive_writer(target, source=SOURCE) as writer:
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("fine"))
        # A namespace that is no DNS label makes a safe path but not a valid manifest.
        writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap("x", "Not_A_Label"))
        writer.commit()
    assert not os.path.lexists(target)
    assert sorted(os.listdir(target.parent)) == []


@pytest.mark.usefixtures("small_runs")
def test_the_spool_leaves_no_file_behind(target: Path) -> None:
    with open_archive_writer(target, source=SOURCE) as writer:
        for name in NAMES:
            writer.add_object("", "v1", "configmaps", "ConfigMap", True, configmap(name))
    # Not committed: nothing at all remains, neither the archive nor a spilled run.
    assert os.listdir(target.parent) == []
    write_shuffled(target, NAMES)
    assert os.listdir(target.parent) == [target.name]


@settings(max_examples=300, deadline=None)
@given(
    path=st.text(), sha256=st.text(), size=st.integers(min_value=0), group=st.text(), resource=st.text(),
    name=st.text(), namespace=st.none() | st.text(), uid=st.none() | st.text(),
)
def test_an_entry_line_is_what_json_dumps_writes(  # noqa: PLR0917 - one per entry field
        path: str, sha256: str, size: int, group: str, resource: str, name: str, namespace: str | None,
        uid: str | None) -> None:
    entry = ObjectEntry(path, sha256, size, group, resource, name, namespace, uid)
    line = object_entry_line(entry)
    assert line == json.dumps(_object_json(entry), ensure_ascii=False)
    assert entry_line_path(line) == path
