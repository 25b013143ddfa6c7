"""verify(): every problem with an archive is reported, with its path and kind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubectl_state.core.archive import ProblemKind, VerifyReport, verify
from tests.unit.test_archive_support import (
    dir_to_tar,
    edit_manifest,
    member,
    object_files,
    read_all,
    tar_entries,
    write_sample,
    write_tar,
)

SAMPLE_FILES = [
    "resources/configmaps/namespaces/default/app.yaml",
    "resources/configmaps/namespaces/prod/other.yaml",
    "resources/customresourcedefinitions.apiextensions.k8s.io/cluster/foos.example.com.yaml",
    "resources/deployments.apps/namespaces/default/web.yaml",
    "resources/secrets/namespaces/default/db.yaml",
]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    write_sample(tmp_path / "backup")
    return tmp_path / "backup"


def kinds(report: VerifyReport) -> set[tuple[ProblemKind, str]]:
    return {(p.kind, p.path) for p in report.problems}


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_fresh_archive_verifies_clean(archive: Path) -> None:
    report = verify(archive)
    assert report.ok, report.problems
    assert (report.objects_listed, report.objects_ok) == (5, 5)
    assert object_files(archive) == SAMPLE_FILES


@pytest.mark.parametrize("relpath", SAMPLE_FILES)
@pytest.mark.parametrize("where", [0, 17, -1])
def test_one_flipped_byte_in_any_object_file_is_a_checksum_mismatch(archive: Path, relpath: str, where: int) -> None:
    flip_byte(archive / relpath, where)
    report = verify(archive)
    assert kinds(report) == {(ProblemKind.CHECKSUM_MISMATCH, relpath)}
    assert report.objects_ok == 4


@pytest.mark.parametrize("relpath", SAMPLE_FILES[:2])
def test_one_flipped_byte_in_a_tar_member_is_a_checksum_mismatch(archive: Path, tmp_path: Path, relpath: str) -> None:
    flip_byte(archive / relpath, 5)
    dir_to_tar(archive, tmp_path / "t.tar.gz")
    assert kinds(verify(tmp_path / "t.tar.gz")) == {(ProblemKind.CHECKSUM_MISMATCH, relpath)}


def test_a_deleted_file_is_reported_missing(archive: Path) -> None:
    os.unlink(archive / SAMPLE_FILES[2])
    assert kinds(verify(archive)) == {(ProblemKind.MISSING_FILE, SAMPLE_FILES[2])}


def test_a_deleted_tar_member_is_reported_missing(archive: Path, tmp_path: Path) -> None:
    dir_to_tar(archive, tmp_path / "t.tar.gz")
    entries = [e for e in tar_entries(tmp_path / "t.tar.gz") if e[0].name != SAMPLE_FILES[0]]
    write_tar(tmp_path / "t.tar.gz", entries)
    assert kinds(verify(tmp_path / "t.tar.gz")) == {(ProblemKind.MISSING_FILE, SAMPLE_FILES[0])}


def test_a_stray_file_not_in_the_manifest_is_reported(archive: Path) -> None:
    stray = "resources/configmaps/namespaces/default/extra.yaml"
    (archive / stray).write_text("apiVersion: v1\nkind: ConfigMap\n")
    assert kinds(verify(archive)) == {(ProblemKind.STRAY_FILE, stray)}


def test_a_stray_tar_member_is_reported(archive: Path, tmp_path: Path) -> None:
    dir_to_tar(archive, tmp_path / "t.tar.gz")
    write_tar(tmp_path / "t.tar.gz", [*tar_entries(tmp_path / "t.tar.gz"), member("README", b"hi")])
    assert kinds(verify(tmp_path / "t.tar.gz")) == {(ProblemKind.STRAY_FILE, "README")}


@pytest.mark.parametrize("fmt", ["directory", "tar.gz"])
def test_the_reader_ignores_stray_files_it_never_reads(archive: Path, tmp_path: Path, fmt: str) -> None:
    (archive / "resources/configmaps/namespaces/default/unlisted.yaml").write_text("not: [valid")
    path = archive
    if fmt == "tar.gz":
        path = tmp_path / "t.tar.gz"
        dir_to_tar(archive, path)
    assert sorted(e.path for e, _ in read_all(path)) == SAMPLE_FILES


def test_a_dotdot_path_in_the_manifest_is_reported_and_never_opened(archive: Path, tmp_path: Path) -> None:
    # A real file outside the archive that the entry points at, with the right checksum.
    (tmp_path / "outside.yaml").write_bytes((archive / SAMPLE_FILES[0]).read_bytes())
    evil = "resources/configmaps/../../../outside.yaml"

    def point_outside(doc: dict) -> None:  # type: ignore[type-arg]
        doc["objects"][0]["path"] = evil

    edit_manifest(archive, point_outside)
    report = verify(archive)
    assert (ProblemKind.PATH_OUTSIDE_ARCHIVE, evil) in kinds(report)
    assert report.objects_ok == 4


def test_an_absolute_path_in_the_manifest_is_reported(archive: Path) -> None:
    edit_manifest(archive, lambda doc: doc["objects"][0].update(path="/etc/passwd"))
    report = verify(archive)
    assert (ProblemKind.PATH_OUTSIDE_ARCHIVE, "/etc/passwd") in kinds(report)
    assert ProblemKind.SCHEMA_INVALID in {p.kind for p in report.problems}


def test_a_path_that_does_not_match_its_entry_is_reported(archive: Path) -> None:
    edit_manifest(archive, lambda doc: doc["objects"][0].update(name="renamed"))
    assert (ProblemKind.PATH_MISMATCH, SAMPLE_FILES[0]) in kinds(verify(archive))


def test_an_unknown_format_version_is_reported(archive: Path) -> None:
    edit_manifest(archive, lambda doc: doc.update(formatVersion=2))
    report = verify(archive)
    [problem] = report.problems
    assert problem.kind is ProblemKind.UNKNOWN_FORMAT_VERSION
    assert "version 2" in problem.message


def test_an_invalid_manifest_schema_is_reported_with_every_violation(archive: Path) -> None:
    def break_two_fields(doc: dict) -> None:  # type: ignore[type-arg]
        doc["createdAt"] = "yesterday"
        doc["tool"]["version"] = 3

    edit_manifest(archive, break_two_fields)
    messages = [p.message for p in verify(archive).problems if p.kind is ProblemKind.SCHEMA_INVALID]
    assert len(messages) == 2
    assert any(m.startswith("createdAt") for m in messages)
    assert any(m.startswith("tool.version") for m in messages)


def test_verify_collects_all_problems_instead_of_stopping_at_the_first(archive: Path) -> None:
    edit_manifest(archive, lambda doc: doc.update(createdAt="yesterday"))  # schema invalid
    flip_byte(archive / SAMPLE_FILES[0], 3)
    os.unlink(archive / SAMPLE_FILES[1])
    (archive / "stray.txt").write_text("x")
    os.symlink("/etc/passwd", archive / "resources/link.yaml")
    assert {(k, p) for k, p in kinds(verify(archive)) if k is not ProblemKind.SCHEMA_INVALID} == {
        (ProblemKind.CHECKSUM_MISMATCH, SAMPLE_FILES[0]),
        (ProblemKind.MISSING_FILE, SAMPLE_FILES[1]),
        (ProblemKind.STRAY_FILE, "stray.txt"),
        (ProblemKind.UNSAFE_MEMBER, "resources/link.yaml"),
    }


def test_an_object_file_replaced_by_a_symlink_is_refused(archive: Path, tmp_path: Path) -> None:
    target = archive / SAMPLE_FILES[0]
    (tmp_path / "elsewhere.yaml").write_bytes(target.read_bytes())
    target.unlink()
    os.symlink(tmp_path / "elsewhere.yaml", target)
    report = verify(archive)
    assert kinds(report) == {(ProblemKind.UNSAFE_MEMBER, SAMPLE_FILES[0])}
    assert "symbolic link" in report.problems[0].message


def test_a_symlinked_directory_is_never_followed(archive: Path, tmp_path: Path) -> None:
    real = archive / "resources/configmaps"
    os.rename(real, tmp_path / "moved")
    os.symlink(tmp_path / "moved", real)
    report = verify(archive)
    assert (ProblemKind.UNSAFE_MEMBER, "resources/configmaps") in kinds(report)
    assert report.objects_ok == 3


def test_a_manifest_count_that_disagrees_with_the_objects_is_reported(archive: Path) -> None:
    edit_manifest(archive, lambda doc: doc["resources"][0].update(count=9))
    assert ProblemKind.INCONSISTENT in {p.kind for p in verify(archive).problems}


def test_a_missing_manifest_is_reported(archive: Path) -> None:
    os.unlink(archive / "manifest.json")
    assert kinds(verify(archive)) == {(ProblemKind.MANIFEST_MISSING, "manifest.json")}


def test_a_path_that_does_not_exist_is_reported_not_raised(tmp_path: Path) -> None:
    report = verify(tmp_path / "nothing-here")
    assert [p.kind for p in report.problems] == [ProblemKind.UNREADABLE]


def test_report_serialises_for_json_output(archive: Path) -> None:
    os.unlink(archive / SAMPLE_FILES[0])
    doc = verify(archive).to_dict()
    assert doc["ok"] is False
    assert doc["problems"] == [{"kind": "missing-file", "path": SAMPLE_FILES[0], "message": "the file is missing"}]
