"""Property: whatever bytes an archive is made of, reading and verifying it either succeed or
fail with ArchiveError/InvalidInputError; never with any other exception, never a hang."""

from __future__ import annotations

import contextlib
import gzip
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_state.core.archive import ReadLimits, inspect, verify
from kubectl_state.core.errors import InvalidInputError
from tests.unit.test_archive_support import read_all, resign, write_sample

# Small limits keep each example fast even when a mutation declares a huge size.
LIMITS = ReadLimits(max_decompressed_bytes=4 * 1024 * 1024)

Mutation = tuple[int, int]
#: (position, xor mask) pairs; positions wrap around the data's length.
mutations = st.lists(
    st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)), min_size=1, max_size=6
)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Path]:
    work = tmp_path_factory.mktemp("fuzz")
    write_sample(work / "valid.tar.gz")
    compressed = (work / "valid.tar.gz").read_bytes()
    return compressed, gzip.decompress(compressed), work


def mutate(data: bytes, changes: list[Mutation], truncate: int | None) -> bytes:
    out = bytearray(data)
    for position, flip in changes:
        out[position % len(out)] ^= flip
    return bytes(out[:truncate] if truncate else out)


def read_everything(path: Path) -> None:
    """Every way of reading: the strict reader, verify (which must not raise at all) and inspect."""
    with contextlib.suppress(InvalidInputError):  # ArchiveError is one
        read_all(path, limits=LIMITS)
    report = verify(path, limits=LIMITS)
    assert report.ok or report.problems
    with contextlib.suppress(InvalidInputError):
        inspect(path, limits=LIMITS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutations, truncate=st.none() | st.integers(min_value=1, max_value=4000))
def test_mutated_compressed_bytes_only_ever_raise_archive_errors(
    valid: tuple[bytes, bytes, Path], changes: list[Mutation], truncate: int | None
) -> None:
    compressed, _, work = valid
    path = work / "mutated.tar.gz"
    path.write_bytes(mutate(compressed, changes, truncate))
    read_everything(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutations)
def test_mutated_tar_bytes_recompressed_only_ever_raise_archive_errors(
    valid: tuple[bytes, bytes, Path], changes: list[Mutation]
) -> None:
    # Mutating the tar inside a valid gzip stream reaches the tar headers, the manifest JSON
    # and the YAML parser, which corrupt compressed bytes mostly cannot.
    _, tar, work = valid
    path = work / "retarred.tar.gz"
    path.write_bytes(gzip.compress(mutate(tar, changes, None), compresslevel=1))
    read_everything(path)


DIR_FILES = ["manifest.json", "resources/deployments.apps/namespaces/default/web.yaml"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=mutations, which=st.sampled_from(DIR_FILES), truncate=st.none() | st.integers(1, 600))
def test_mutated_files_of_a_directory_archive_only_ever_raise_archive_errors(
    valid: tuple[bytes, bytes, Path], changes: list[Mutation], which: str, truncate: int | None
) -> None:
    # Object files are re-signed after mutation, so the YAML parser and the identity checks
    # see the hostile bytes instead of the checksum stopping them first.
    _, _, work = valid
    archive = work / "dir"
    if not archive.exists():
        write_sample(work / "pristine")
        shutil.copytree(work / "pristine", archive)
    for relpath in DIR_FILES:
        shutil.copyfile(work / "pristine" / relpath, archive / relpath)
    data = mutate((archive / which).read_bytes(), changes, truncate)
    if which == "manifest.json":
        (archive / which).write_bytes(data)
    else:
        resign(archive, which, data)
    read_everything(archive)
