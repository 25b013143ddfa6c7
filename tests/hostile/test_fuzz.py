"""Property: however an archive is mutated (its compressed bytes, its tar stream, member
names, types and sizes, the manifest's fields, object files re-signed or not), reading,
verifying and inspecting it either succeed or fail with the project's own errors
(KubectlStateError) and never touch anything outside the archive.

tests/unit/test_archive_fuzz.py flips bits; this one makes structured mutations that bit
flips rarely reach (a member renamed to `../x`, a manifest size of -1, a hard link where an
object was). Bounded by the "hostile" profile in `make test`; `make fuzz` runs it long.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kubectl_state.core.archive import ReadLimits, inspect, open_archive, verify
from kubectl_state.core.errors import KubectlStateError
from tests.hostile.conftest import PROFILE
from tests.unit.test_archive_support import TarEntry, tar_entries, write_sample

# Small limits keep an example fast even when a mutation declares a huge size.
LIMITS = ReadLimits(max_decompressed_bytes=8 * 1024 * 1024, max_object_bytes=1024 * 1024,
                    max_manifest_bytes=1024 * 1024)
PROFILE_SETTINGS = settings.get_profile(PROFILE)

HOSTILE_NAMES = [
    "../escaped.yaml", "/etc/passwd", "resources/../../escaped.yaml", "resources//x.yaml", "./manifest.json",
    "manifest.json", "resources/configmaps/namespaces/default/app.yaml", "resources/x\\..\\y.yaml", "",
    ".", "resources/" + "a" * 300 + ".yaml", "resources/\udcff.yaml", "resources/nul\0.yaml",
]
TYPES = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
         tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE, b"Z"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=40)
    | st.sampled_from(["../x.yaml", "/abs.yaml", "resources/a/../b.yaml", "", "0" * 64]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[TarEntry]]:
    work = tmp_path_factory.mktemp("fuzz-structured")
    write_sample(work / "valid.tar.gz")
    write_sample(work / "valid")
    return work, tar_entries(work / "valid.tar.gz")


def manifest_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in the JSON document a value could be replaced, depth first."""
    yield prefix
    if isinstance(doc, dict):
        for key in sorted(doc):
            yield from manifest_paths(doc[key], (*prefix, key))
    elif isinstance(doc, list):
        for index, item in enumerate(doc):
            yield from manifest_paths(item, (*prefix, index))


def replace_at(doc: Any, where: tuple[Any, ...], value: Any) -> Any:
    if not where:
        return value
    doc[where[0]] = replace_at(doc[where[0]], where[1:], value)
    return doc


@st.composite
def manifest_edits(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        places = list(manifest_paths(doc))
        where = draw(st.sampled_from(places))
        doc = replace_at(doc, where, draw(json_values))
    return doc


def resigned(doc: Any, path: str, data: bytes) -> None:
    # The mutation may have replaced the manifest, or its object list, with anything at all.
    entries = doc.get("objects") if isinstance(doc, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("path") == path:
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["size"] = len(data)


def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for position, flip in draw(st.lists(st.tuples(st.integers(0), st.integers(1, 255)), max_size=6)):
        if out:
            out[position % len(out)] ^= flip
    if draw(st.booleans()):
        out += draw(st.binary(max_size=64))
    if out and draw(st.booleans()):
        del out[draw(st.integers(0, len(out) - 1)):]
    return bytes(out)


@st.composite
def tar_mutations(draw: st.DrawFn, entries: list[TarEntry]) -> list[TarEntry]:
    """The archive's members with a few structured mutations applied."""
    members = [(copy.copy(info), data) for info, data in entries]
    [manifest_index] = [i for i, (info, _) in enumerate(members) if info.name == "manifest.json"]
    doc = json.loads(members[manifest_index][1] or b"{}")
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(members) - 1))
        info, data = members[index]
        action = draw(st.sampled_from(["rename", "retype", "data", "data-resigned", "drop", "duplicate", "move",
                                       "manifest", "size"]))
        if action == "rename":
            info.name = draw(st.sampled_from(HOSTILE_NAMES) | st.text(min_size=1, max_size=30))
        elif action == "retype":
            info.type = draw(st.sampled_from(TYPES))
            info.linkname = draw(st.sampled_from(["../../etc/passwd", "/etc/shadow", "manifest.json"]))
        elif action in ("data", "data-resigned") and data is not None:
            data = mutated_bytes(draw, data)
            if action == "data-resigned":
                resigned(doc, info.name, data)
        elif action == "drop" and len(members) > 1:
            del members[index]
            continue
        elif action == "duplicate":
            members.insert(draw(st.integers(0, len(members))), (copy.copy(info), data))
        elif action == "move":
            members.insert(draw(st.integers(0, len(members) - 1)), members.pop(index))
            continue
        elif action == "manifest":
            doc = draw(manifest_edits(doc))
        elif action == "size":
            # The header's size and the data disagree: tarfile must cope and so must we.
            info.size = draw(st.integers(0, 2**40))
        members[index] = (info, data)
    text = json.dumps(doc).encode()
    return [(info, text) if info.name == "manifest.json" and data is not None else (info, data)
            for info, data in members]


def write_members(path: Path, members: list[TarEntry], fmt: int) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in members:
            if data is not None and info.isreg() and info.size == len(data):
                tar.addfile(info, io.BytesIO(data))
            else:
                # Header only, or a header whose size lies about the data that follows.
                buffer.write(info.tobuf(fmt, tar.encoding, tar.errors))
                if data:
                    buffer.write(data + bytes(-len(data) % tarfile.BLOCKSIZE))
    path.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1))


def read_everything(path: Path) -> None:
    """The reader, verify and inspect: only the project's own errors may come out."""
    with contextlib.suppress(KubectlStateError), open_archive(path, limits=LIMITS) as archive:
        for _ in archive.iter_objects(decrypt_secrets=False):
            pass
    report = verify(path, limits=LIMITS)
    assert report.ok or report.problems
    with contextlib.suppress(KubectlStateError):
        inspect(path, limits=LIMITS)


def assert_only_archive_touched(work: Path, before: set[str]) -> None:
    assert {p.name for p in work.iterdir()} == before
    assert not (work.parent / "escaped.yaml").exists()


@settings(PROFILE_SETTINGS)
@given(data=st.data(), fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
def test_structured_tar_mutations_only_raise_project_errors(
    pristine: tuple[Path, list[TarEntry]], data: st.DataObject, fmt: int
) -> None:
    work, entries = pristine
    members = data.draw(tar_mutations(entries))
    path = work / "mutated.tar.gz"
    try:
        write_members(path, members, fmt)
    except (ValueError, UnicodeError, tarfile.TarError):
        assume(False)  # this tar format cannot even express the mutation
    before = {p.name for p in work.iterdir()}
    read_everything(path)
    assert_only_archive_touched(work, before)


DIR_OBJECT = "resources/configmaps/namespaces/default/app.yaml"


@settings(PROFILE_SETTINGS)
@given(data=st.data(), resign_object=st.booleans())
def test_directory_manifest_and_object_mutations_only_raise_project_errors(
    pristine: tuple[Path, list[TarEntry]], data: st.DataObject, resign_object: bool
) -> None:
    work, _ = pristine
    archive = work / "dir"
    shutil.rmtree(archive, ignore_errors=True)
    shutil.copytree(work / "valid", archive)
    doc = json.loads((archive / "manifest.json").read_text())
    if data.draw(st.booleans()):
        doc = data.draw(manifest_edits(doc))
    obj = mutated_bytes(data.draw, (archive / DIR_OBJECT).read_bytes())
    (archive / DIR_OBJECT).write_bytes(obj)
    if resign_object:
        resigned(doc, DIR_OBJECT, obj)
    (archive / "manifest.json").write_text(json.dumps(doc))
    before = {p.name for p in work.iterdir()}
    read_everything(archive)
    assert_only_archive_touched(work, before)
