"""Hostile archives: each is refused with an ArchiveError that names the reason, before
anything untrusted is parsed, extracted or held in memory."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from pathlib import Path

import pytest

from kubectl_state.core.archive import ReadLimits, open_archive, verify
from kubectl_state.core.errors import ArchiveError
from tests.unit.test_archive_support import (
    TarEntry,
    dir_to_tar,
    edit_manifest,
    member,
    read_all,
    resign,
    tar_entries,
    write_sample,
    write_tar,
)

CM = "resources/configmaps/namespaces/default/app.yaml"


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    write_sample(tmp_path / "d")
    return tmp_path / "d"


@pytest.fixture
def entries(tmp_path: Path) -> list[TarEntry]:
    write_sample(tmp_path / "good.tar.gz")
    return tar_entries(tmp_path / "good.tar.gz")


def refuse(path: Path, match: str) -> None:
    """Reading the whole archive fails with ArchiveError matching `match`; verify agrees."""
    with pytest.raises(ArchiveError, match=match):
        read_all(path)
    assert not verify(path).ok


# --- tar members ---------------------------------------------------------------------


@pytest.mark.parametrize("position", ["first", "after-manifest"])
def test_a_symlink_member_is_refused(tmp_path: Path, entries: list[TarEntry], position: str) -> None:
    link = member("resources/configmaps/namespaces/default/evil.yaml", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    ordered = [link, *entries] if position == "first" else [*entries, link]
    write_tar(tmp_path / "t.tar.gz", ordered)
    refuse(tmp_path / "t.tar.gz", "symbolic link")


def test_a_hardlink_member_is_refused(tmp_path: Path, entries: list[TarEntry]) -> None:
    link = member("resources/configmaps/namespaces/default/evil.yaml", type=tarfile.LNKTYPE, linkname=CM)
    write_tar(tmp_path / "t.tar.gz", [link, *entries])
    refuse(tmp_path / "t.tar.gz", "hard link")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_a_device_member_is_refused(tmp_path: Path, entries: list[TarEntry], kind: bytes) -> None:
    write_tar(tmp_path / "t.tar.gz", [member("resources/dev", type=kind, devmajor=1, devminor=3), *entries])
    refuse(tmp_path / "t.tar.gz", "device")


def test_a_fifo_member_is_refused(tmp_path: Path, entries: list[TarEntry]) -> None:
    write_tar(tmp_path / "t.tar.gz", [member("resources/fifo", type=tarfile.FIFOTYPE), *entries])
    refuse(tmp_path / "t.tar.gz", "FIFO")


def test_an_absolute_member_name_is_refused(tmp_path: Path, entries: list[TarEntry]) -> None:
    write_tar(tmp_path / "t.tar.gz", [member("/etc/cron.d/evil", b"* * * * * root sh"), *entries])
    refuse(tmp_path / "t.tar.gz", "absolute")


def test_a_dotdot_member_name_is_refused(tmp_path: Path, entries: list[TarEntry]) -> None:
    write_tar(tmp_path / "t.tar.gz", [member("resources/../../evil.yaml", b"x"), *entries])
    refuse(tmp_path / "t.tar.gz", r"contains '\.\.'")


def test_a_member_larger_than_the_manifest_declares_is_refused(tmp_path: Path, entries: list[TarEntry]) -> None:
    bigger = [(member(CM, (data or b"") + b"#" * 4096) if info.name == CM else (info, data)) for info, data in entries]
    write_tar(tmp_path / "t.tar.gz", bigger)
    refuse(tmp_path / "t.tar.gz", "larger than the .* bytes the manifest declares")


def test_a_file_larger_than_the_manifest_declares_is_refused_in_a_directory(archive_dir: Path) -> None:
    with open(archive_dir / CM, "ab") as handle:
        handle.write(b"#" * 4096)
    refuse(archive_dir, "larger than the .* bytes the manifest declares")


def test_duplicate_member_names_are_refused(tmp_path: Path, entries: list[TarEntry]) -> None:
    [original] = [e for e in entries if e[0].name == CM]
    write_tar(tmp_path / "t.tar.gz", [*entries[:-1], original, entries[-1]])
    refuse(tmp_path / "t.tar.gz", "more than once")


def test_a_huge_pax_header_is_refused_without_reading_it_into_memory(tmp_path: Path, entries: list[TarEntry]) -> None:
    info, data = member(CM, b"x")
    info.pax_headers = {"comment": "A" * (2 * 1024 * 1024)}
    write_tar(tmp_path / "t.tar.gz", [(info, data), *entries])
    refuse(tmp_path / "t.tar.gz", "tar header is larger than")


# --- gzip bombs ------------------------------------------------------------------------

GIB = 1024 * 1024 * 1024


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _bomb(path: Path, members: int, member_size: int) -> None:
    # A gzip file may be several gzip streams back to back, so 8 MiB of zeros is compressed
    # once and repeated: 1 GiB of tar data is written in a fraction of a second.
    chunk = 8 * 1024 * 1024
    assert member_size % chunk == 0
    zeros = gzip.compress(bytes(chunk), compresslevel=9)
    with open(path, "wb") as out:
        for number in range(members):
            name = f"resources/configmaps/namespaces/default/b{number}.yaml"
            out.write(gzip.compress(_tar_header(name, member_size)))
            out.write(zeros * (member_size // chunk))
        out.write(gzip.compress(bytes(1024)))


def test_a_single_member_of_one_gib_of_zeros_is_refused_from_its_header(tmp_path: Path) -> None:
    _bomb(tmp_path / "bomb.tar.gz", 1, GIB)
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="declares 1073741824 bytes, more than the limit"):
        open_archive(tmp_path / "bomb.tar.gz")
    assert time.monotonic() - started < 2


def test_a_gzip_bomb_of_many_small_members_is_refused_by_the_decompression_limit(tmp_path: Path) -> None:
    _bomb(tmp_path / "bomb.tar.gz", 128, 8 * 1024 * 1024)  # 1 GiB in members under the object limit
    assert (tmp_path / "bomb.tar.gz").stat().st_size < 2 * 1024 * 1024
    with pytest.raises(ArchiveError, match="decompresses to more than 268435456 bytes"):
        open_archive(tmp_path / "bomb.tar.gz")


def test_the_decompression_limit_can_be_set_explicitly(tmp_path: Path) -> None:
    write_sample(tmp_path / "t.tar.gz")
    with pytest.raises(ArchiveError, match="decompresses to more than 1000 bytes"):
        read_all(tmp_path / "t.tar.gz", limits=ReadLimits(max_decompressed_bytes=1000))


def test_a_truncated_archive_is_refused(tmp_path: Path) -> None:
    write_sample(tmp_path / "t.tar.gz")
    data = (tmp_path / "t.tar.gz").read_bytes()
    (tmp_path / "t.tar.gz").write_bytes(data[: len(data) // 2])
    refuse(tmp_path / "t.tar.gz", "not a readable .tar.gz")


# --- object files --------------------------------------------------------------------

ALIAS_BOMB = b"""apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: default}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""

HOSTILE_OBJECTS = {
    "alias-bomb": (ALIAS_BOMB, "anchors are not allowed"),
    "alias": (b"apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: app}\nx: *m\n", "anchors are not allowed"),
    "invalid-utf8": (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff\xfe}\n", "not valid UTF-8"),
    "python-tag": (b"!!python/object/apply:os.system ['true']\n", "not valid YAML"),
    "deep-nesting": (b"[" * 50_000 + b"]" * 50_000, "nested more than"),
    "two-documents": (b"apiVersion: v1\n---\napiVersion: v1\n", "not valid YAML"),
    "not-a-mapping": (b"- just\n- a list\n", "not a YAML mapping"),
    "kind-mismatch": (
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: default}\ndata: {}\n",
        "kind is 'Secret' but configmaps holds ConfigMap",
    ),
    "name-mismatch": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: default}\n",
        "named 'other', not 'app'",
    ),
    "namespace-mismatch": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app, namespace: kube-system}\n",
        "namespace is 'kube-system'",
    ),
}


@pytest.mark.parametrize("fmt", ["directory", "tar.gz"])
@pytest.mark.parametrize("case", sorted(HOSTILE_OBJECTS))
def test_hostile_object_files_with_valid_checksums_are_refused(
    archive_dir: Path, tmp_path: Path, case: str, fmt: str
) -> None:
    data, reason = HOSTILE_OBJECTS[case]
    resign(archive_dir, CM, data)  # the attacker controls the manifest too
    path = archive_dir
    if fmt == "tar.gz":
        path = tmp_path / "t.tar.gz"
        dir_to_tar(archive_dir, path)
    refuse(path, reason)
    assert CM in {p.path for p in verify(path).problems}


def test_an_object_over_the_size_limit_is_refused(archive_dir: Path) -> None:
    with pytest.raises(ArchiveError, match="more than the limit of 10"):
        read_all(archive_dir, limits=ReadLimits(max_object_bytes=10))


def test_an_oversized_manifest_is_refused(archive_dir: Path) -> None:
    with pytest.raises(ArchiveError, match="larger than 100 bytes"):
        open_archive(archive_dir, limits=ReadLimits(max_manifest_bytes=100))


def test_a_manifest_of_deeply_nested_json_is_refused(archive_dir: Path) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    (archive_dir / "manifest.json").write_bytes(b'{"formatVersion": 1, "filters": ' + nested + b"}")
    with pytest.raises(ArchiveError, match="not valid JSON"):
        open_archive(archive_dir)


def test_no_member_is_ever_extracted_to_disk(tmp_path: Path, entries: list[TarEntry]) -> None:
    write_tar(tmp_path / "t.tar.gz", [member("../escaped.txt", b"x"), *entries])
    with pytest.raises(ArchiveError):
        read_all(tmp_path / "t.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tar.gz", "t.tar.gz"]
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_reader_reads_tar_members_one_at_a_time_not_all_at_once(tmp_path: Path) -> None:
    # The tarfile list of members is cleared as the reader goes; a huge archive therefore
    # costs memory for one member, not all of them.
    write_sample(tmp_path / "t.tar.gz")
    with open_archive(tmp_path / "t.tar.gz") as archive:
        seen = [entry.path for entry, _ in archive.iter_objects()]
    assert len(seen) == 5


def test_gzip_framing_errors_are_archive_errors(tmp_path: Path) -> None:
    good = io.BytesIO()
    with gzip.GzipFile(fileobj=good, mode="wb") as handle:
        handle.write(b"\0" * 10240)
    data = bytearray(good.getvalue())
    data[-5] ^= 0xFF  # corrupt the length trailer
    (tmp_path / "x.tar.gz").write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        open_archive(tmp_path / "x.tar.gz")


def test_verify_reports_a_manifest_whose_resource_names_are_not_strings(archive_dir: Path) -> None:
    # Found by tests/hostile/test_fuzz.py: a list where a group belongs crashed verify's
    # salvage of a schema-invalid manifest with TypeError (unhashable) instead of reporting it.
    edit_manifest(archive_dir, lambda doc: doc["resources"][0].update(group=["a"]))
    report = verify(archive_dir)
    assert "schema-invalid" in {p.kind.value for p in report.problems}
    with pytest.raises(ArchiveError, match="does not match its schema"):
        open_archive(archive_dir)
