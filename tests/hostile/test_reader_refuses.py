"""Every hostile archive of tests/hostile/archives.py, in both forms, through the core: the
reader refuses it with the named problem, `verify` reports that problem, `inspect` refuses
whatever is wrong with the archive's structure, and nothing outside the archive is touched."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from kubectl_state.core.archive import inspect, open_archive, verify
from kubectl_state.core.archive.problems import ArchiveProblemError
from tests.hostile.archives import CASE_IDS, CASE_PARAMS, OUTSIDE, Case, Form


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every path under `directory` (links not followed) with its size and mtime."""
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), directory)] = (info.st_size, info.st_mtime_ns)
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("case", "form"), CASE_PARAMS, ids=CASE_IDS)
def test_the_reader_refuses_with_the_named_reason(tmp_path: Path, case: Case, form: Form) -> None:
    path = case.build(tmp_path, form)
    before = snapshot(tmp_path)

    with pytest.raises(ArchiveProblemError) as caught, open_archive(path) as archive:
        for _ in archive.iter_objects():
            pass
    assert caught.value.problem.kind is case.kind, caught.value
    assert re.search(case.reason, str(caught.value)), caught.value

    report = verify(path)
    assert not report.ok
    assert case.kind in {p.kind for p in report.problems}, report.problems

    if case.structural:
        with pytest.raises(ArchiveProblemError) as by_inspect:
            inspect(path)
        assert by_inspect.value.problem.kind is case.kind, by_inspect.value

    assert snapshot(tmp_path) == before
    if (tmp_path / OUTSIDE).exists():
        assert (tmp_path / OUTSIDE).read_text() == "a file outside the archive\n"
